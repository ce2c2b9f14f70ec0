using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Delta.Operations;
using Ingest.Engine.Pipelines;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Sink;

/// <summary>What a table's own commits say about the progress of its stream (DESIGN.md section 4).</summary>
/// <param name="Sequence">The engine's checkpoint sequence of the latest ingest commit.</param>
/// <param name="Checkpoint">The connector state that commit recorded.</param>
/// <param name="Position">The highest source position the table holds, or null when it holds none.</param>
internal sealed record TableProgress(long Sequence, JsonElement Checkpoint, SourcePosition? Position);

/// <summary>
/// One stream's table: buffers the stream's rows, commits them with the connection's checkpoint, and skips
/// rows the table already holds when a read is replayed.
/// </summary>
internal sealed class TableSink
{
    private readonly string _connection;
    private readonly Schema _arrowSchema;
    private readonly Schema _buildSchema;
    private readonly StreamSchema _tableSchema;
    private readonly string[] _rescued;
    private readonly bool _project;
    private readonly int[] _keyOrdinals;
    private readonly List<Segment> _pending = [];
    private readonly List<Segment> _covered = [];
    private SourcePosition? _position;
    private DeltaOverwrite? _overwrite;
    private bool _replaced;
    private long _stagedRows;
    private SourcePosition? _lastStaged;

    private TableSink(string connection, SinkTarget target, DeltaTable table, StreamSchema built, string[] rescued, TableProgress? progress, long txnVersion)
    {
        _connection = connection;
        Target = target;
        Table = table;
        _tableSchema = table.Snapshot.Schema;
        _arrowSchema = _tableSchema.ToArrowSchema();
        _buildSchema = built.ToArrowSchema();
        _rescued = rescued;
        // Rows are built in the stream's layout; only a table that evolved differently (or rescues) needs them reshaped.
        _project = rescued.Length > 0 || _tableSchema.Count != built.Count
            || _tableSchema.Columns.Zip(built.Columns).Any(p => p.First.Name != p.Second.Name || p.First.Type != p.Second.Type);
        _keyOrdinals = target.Stream.PrimaryKey.Select(k => _tableSchema.IndexOf(k)).ToArray();
        Progress = progress;
        TxnVersion = txnVersion;
        _position = progress?.Position;
        SkipUpTo = progress?.Position;
        RecordedSequence = progress?.Sequence;
    }

    public SinkTarget Target { get; }

    public DeltaTable Table { get; }

    public string AppId => Target.AppId(_connection);

    /// <summary>What the table's commits said when the read started (null: the table holds no ingest commit of this stream).</summary>
    public TableProgress? Progress { get; }

    /// <summary>The table's txn version for <see cref="AppId"/> when the read started (-1 when none).</summary>
    public long TxnVersion { get; }

    /// <summary>Rows at or before this position are already in the table.</summary>
    public SourcePosition? SkipUpTo { get; }

    /// <summary>The sequence the table's newest ingest commit carries.</summary>
    public long? RecordedSequence { get; private set; }

    /// <summary>The checkpoint the table's newest ingest commit carries (this run's or the resumed one).</summary>
    public JsonElement? RecordedCheckpoint { get; private set; }

    public DateTimeOffset LastCommitAt { get; private set; } = DateTimeOffset.MinValue;

    public long CoveredRows { get; private set; }

    public long PendingRows { get; private set; }

    public long? LastCommitVersion { get; private set; }

    public long RowsCommitted { get; private set; }

    /// <summary>
    /// Opens or creates the table, reconciles its columns with the stream's by the stream's schema policy, and reads its
    /// progress from its own log (never for overwrite: a full refresh reads everything every run).
    /// </summary>
    public static async Task<TableSink> OpenAsync(string connection, SinkTarget target, CancellationToken cancellationToken)
    {
        var schema = LakeColumns.TableSchema(target.Stream.Schema, target.Mode);
        var table = await DeltaTable.OpenOrCreateAsync(target.TablePath, schema, [], null, cancellationToken);
        var rescued = await ReconcileAsync(connection, target, table, schema, cancellationToken);

        var appId = target.AppId(connection);
        var txn = table.Snapshot.TxnVersions.TryGetValue(appId, out var v) ? v : -1;
        TableProgress? progress = null;
        if (txn >= 0 && target.Mode != SinkMode.Overwrite)
        {
            progress = await ReadProgressAsync(table, connection, target.Stream.Name, cancellationToken);
        }

        var sink = new TableSink(connection, target, table, schema, rescued, progress, txn);
        sink.RecordedCheckpoint = progress?.Checkpoint;
        return sink;
    }

    /// <summary>Applies the schema policy; returns the stream columns whose values go to <c>_rescued_data</c>.</summary>
    private static async Task<string[]> ReconcileAsync(string connection, SinkTarget target, DeltaTable table, StreamSchema wanted, CancellationToken cancellationToken)
    {
        var existing = table.Snapshot.Schema;
        var diff = DeltaSchema.Compare(existing, wanted);
        var stream = target.Stream.Name;
        var mode = target.Mode.ToString().ToLowerInvariant();
        var missing = diff.Missing.Where(m => m.Name != LakeColumns.RescuedData).ToList();
        if (!diff.NeedsChange && missing.Count == 0)
        {
            return [];
        }

        if (target.SchemaPolicy != SchemaPolicy.Fail && missing.FirstOrDefault(m => !m.Nullable) is { } required)
        {
            throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                $"Table {target.TablePath}: column '{required.Name}' ({required.Type.DisplayName}, NOT NULL) is not in stream '{stream}' ({mode} mode), so its rows cannot be written. Point the stream at a new table.");
        }

        var options = new CommitOptions("ADD COLUMNS", AppMetadata: new JsonObject { ["ingest"] = new JsonObject { ["connection"] = connection, ["stream"] = stream, ["schemaChange"] = true } });
        switch (target.SchemaPolicy)
        {
            case SchemaPolicy.Fail:
                throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration, DescribeFirst(diff, missing, target, stream)
                    + " (schemaPolicy: fail). Set schemaPolicy: evolve or rescue on the stream, or point it at a new table.");
            case SchemaPolicy.Evolve:
                if (diff.Incompatible.Count > 0)
                {
                    var (t, i) = diff.Incompatible[0];
                    throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                        $"Table {target.TablePath}: column '{t.Name}' is {t.Type.DisplayName} in the table but {i.Type.DisplayName} in stream '{stream}' ({mode} mode), and {t.Type.DisplayName} cannot widen to it. "
                        + "Use schemaPolicy: rescue to keep such values in _rescued_data, or point the stream at a new table.");
                }

                try
                {
                    await table.EvolveSchemaAsync(wanted, options, cancellationToken);
                }
                catch (InvalidOperationException e)
                {
                    throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration, $"Stream '{stream}': {e.Message}");
                }

                return [];
            default:
                var rescued = diff.Added.Concat(diff.Widened.Select(w => w.Incoming)).Concat(diff.Incompatible.Select(w => w.Incoming)).Select(f => f.Name).ToArray();
                foreach (var name in rescued)
                {
                    if (name.StartsWith('_') && wanted.IndexOf(name) >= target.Stream.Schema.Count)
                    {
                        throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                            $"Table {target.TablePath} lacks the sink column '{name}' that {mode} mode needs; schemaPolicy: rescue keeps only source columns. Point the stream at a new table.");
                    }
                }

                if (rescued.Length > 0 && existing.IndexOf(LakeColumns.RescuedData) < 0)
                {
                    await table.EvolveSchemaAsync(new StreamSchema([.. existing.Columns, new Sdk.Types.Field(LakeColumns.RescuedData, DataType.String,
                        Description: "Source values the table has no column for (or whose type no longer fits), as a JSON object by column name.")]), options, cancellationToken);
                }

                return rescued;
        }
    }

    private static string DescribeFirst(SchemaDifference diff, List<Sdk.Types.Field> missing, SinkTarget target, string stream)
    {
        if (diff.Incompatible.Count > 0 || diff.Widened.Count > 0)
        {
            var (t, i) = diff.Incompatible.Count > 0 ? diff.Incompatible[0] : diff.Widened[0];
            return $"Table {target.TablePath}: column '{t.Name}' is {t.Type.DisplayName} in the table but {i.Type.DisplayName} in stream '{stream}'";
        }

        if (diff.Added.Count > 0)
        {
            var a = diff.Added[0];
            return $"Table {target.TablePath}: column '{a.Name}' ({a.Type.DisplayName}) of stream '{stream}' is not in the table (the table has: {string.Join(", ", target.Stream.Schema.Columns.Select(c => c.Name).Where(n => diff.Added.All(x => x.Name != n)))})";
        }

        var m = missing[0];
        return $"Table {target.TablePath}: column '{m.Name}' ({m.Type.DisplayName}) of the table is no longer in stream '{stream}'";
    }

    private static async Task<TableProgress?> ReadProgressAsync(DeltaTable table, string connection, string stream, CancellationToken cancellationToken)
    {
        // Newest first; other writers' commits (OPTIMIZE, VACUUM) may sit on top, so look further when needed.
        foreach (var limit in new int?[] { 64, null })
        {
            var history = await table.HistoryAsync(limit, cancellationToken);
            foreach (var entry in history)
            {
                if (entry.CommitInfo["ingest"] is JsonObject ingest
                    && ingest["connection"]?.GetValue<string>() == connection
                    && ingest["stream"]?.GetValue<string>() == stream
                    && ingest["checkpointSeq"] is JsonValue seq
                    && ingest["checkpoint"] is { } cp)
                {
                    var positionText = ingest["position"] is JsonValue p && p.TryGetValue<string>(out var s) ? s : null;
                    using var doc = JsonDocument.Parse(cp.ToJsonString());
                    return new TableProgress(seq.GetValue<long>(), doc.RootElement.Clone(), positionText is null ? null : SourcePosition.Parse(positionText));
                }
            }

            if (limit is not null && history.Count < limit)
            {
                break;
            }
        }

        return null;
    }

    /// <summary>Takes the rows of a batch the table does not hold yet (the batch stays owned by the caller).</summary>
    /// <param name="batch">The rows.</param>
    /// <param name="ingestedAtMicros">The <c>_ingested_at</c> value.</param>
    /// <param name="copy">
    /// Copy the data columns instead of reusing them. Needed when another table takes the same batch: writing a batch
    /// hands its buffers to Parquet (Arrow's C data interface moves them), so two tables cannot share them.
    /// </param>
    public void Accept(ChangeBatch batch, long ingestedAtMicros, bool copy)
    {
        var n = batch.Length;
        if (n == 0)
        {
            return;
        }

        var start = 0;
        if (SkipUpTo is { } skip)
        {
            if (batch.Positions[n - 1] <= skip)
            {
                return;
            }

            if (batch.Positions[0] <= skip)
            {
                start = FirstAfter(batch.Positions, n, skip);
            }
        }

        var length = n - start;
        var rows = LakeColumns.Build(_buildSchema, Target.Mode, batch, start, length, ingestedAtMicros);
        if (_project)
        {
            rows = Project(rows);
        }

        if (copy && start == 0)
        {
            var picks = new (int, int)[length];
            for (var i = 0; i < length; i++)
            {
                picks[i] = (0, i);
            }

            rows = LakeColumns.Gather(_arrowSchema, [rows], picks);
        }
        _pending.Add(new Segment(rows, batch.Ops, batch.Positions, start, length));
        PendingRows += length;
    }

    /// <summary>Gives built rows the table's columns: rescued values to JSON in <c>_rescued_data</c>, missing columns null, narrower types widened.</summary>
    private RecordBatch Project(RecordBatch rows)
    {
        if (_rescued.Length == 0)
        {
            return DeltaSchema.Conform(rows, _tableSchema);
        }

        var keep = new List<int>();
        var rescuedOrdinals = new List<int>();
        for (var c = 0; c < rows.ColumnCount; c++)
        {
            (_rescued.Contains(rows.Schema.FieldsList[c].Name, StringComparer.OrdinalIgnoreCase) ? rescuedOrdinals : keep).Add(c);
        }

        var json = new StringArray.Builder();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        for (var r = 0; r < rows.Length; r++)
        {
            buffer.ResetWrittenCount();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                var any = false;
                foreach (var c in rescuedOrdinals)
                {
                    var col = rows.Column(c);
                    if (col.IsNull(r))
                    {
                        continue;
                    }

                    any = true;
                    w.WritePropertyName(rows.Schema.FieldsList[c].Name);
                    JsonSerializer.Serialize(w, ArrowValues.GetValue(col, r));
                }

                w.WriteEndObject();
                w.Flush();
                if (!any)
                {
                    json.AppendNull();
                    continue;
                }
            }

            json.Append(Encoding.UTF8.GetString(buffer.WrittenSpan));
        }

        var fields = keep.Select(c => rows.Schema.FieldsList[c]).Append(new Apache.Arrow.Field(LakeColumns.RescuedData, Apache.Arrow.Types.StringType.Default, true));
        var arrays = keep.Select(rows.Column).Append(json.Build());
        return DeltaSchema.Conform(new RecordBatch(new Schema(fields, null), arrays, rows.Length), _tableSchema);
    }

    private static int FirstAfter(SourcePosition[] positions, int n, SourcePosition skip)
    {
        int lo = 0, hi = n;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (positions[mid] <= skip)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>A checkpoint arrived: what was pending is now covered by it.</summary>
    public void Cover()
    {
        _covered.AddRange(_pending);
        CoveredRows += PendingRows;
        _pending.Clear();
        PendingRows = 0;
    }

    /// <summary>Drops uncommitted rows (the read is restarted from the lake's progress).</summary>
    public void Discard()
    {
        if (_overwrite is { } staged)
        {
            _overwrite = null;
            _ = DropStagedAsync(staged);
        }

        _pending.Clear();
        _covered.Clear();
        PendingRows = 0;
        CoveredRows = 0;
    }

    /// <summary>
    /// Commits the covered rows (or, when there are none, an empty commit) in one table commit carrying
    /// <c>txn(appId, sequence)</c> and the checkpoint in commitInfo.
    /// </summary>
    public Task<CommitResult> CommitAsync(long sequence, Checkpoint checkpoint, CancellationToken cancellationToken) =>
        CommitAsync(sequence, checkpoint, final: true, cancellationToken);

    private static async Task DropStagedAsync(DeltaOverwrite staged)
    {
        try
        {
            await staged.DisposeAsync();
        }
        catch (IOException)
        {
            // Unreferenced data files are harmless; VACUUM removes them.
        }
    }

    /// <summary>
    /// As <see cref="CommitAsync(long, Checkpoint, CancellationToken)"/>. <paramref name="final"/> says the read caught up or
    /// ended: in overwrite mode, only then do the rows staged since the read began replace the table (earlier calls write
    /// them to data files no commit references yet, and record no progress). After that replace, later rows of the same
    /// read are appended.
    /// </summary>
    public async Task<CommitResult> CommitAsync(long sequence, Checkpoint checkpoint, bool final, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        if (Target.Mode == SinkMode.Overwrite && !_replaced)
        {
            _overwrite ??= Table.BeginOverwrite();
            foreach (var seg in _covered)
            {
                _overwrite.Write(seg.Rows);
                _lastStaged = seg.Positions[seg.Start + seg.Length - 1];
            }

            var staged = CoveredRows;
            _covered.Clear();
            CoveredRows = 0;
            _stagedRows += staged;
            if (!final)
            {
                return new CommitResult(Table.Snapshot.Version, 0, 0, 0);
            }
        }

        var segments = _covered.ToList();
        var last = segments.Count == 0 ? (SourcePosition?)null : segments[^1].Positions[segments[^1].Start + segments[^1].Length - 1];
        if (_overwrite is not null)
        {
            last = _lastStaged;
        }

        var position = last is { } l && (_position is null || l > _position) ? l : _position;
        var options = new CommitOptions(
            "STREAMING UPDATE",
            new Dictionary<string, string>
            {
                ["outputMode"] = Target.Mode is SinkMode.Append or SinkMode.Overwrite ? "Append" : "Update",
                ["queryId"] = AppId,
                ["epochId"] = sequence.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
            [new TxnAction(AppId, sequence)],
            new JsonObject
            {
                ["ingest"] = new JsonObject
                {
                    ["connection"] = _connection,
                    ["stream"] = Target.Stream.Name,
                    ["checkpointSeq"] = sequence,
                    ["checkpoint"] = JsonNode.Parse(checkpoint.State.GetRawText()),
                    ["position"] = position?.ToString(),
                },
            });

        var result = await CommitCoreAsync(segments, options, cancellationToken);
        _position = position;
        RecordedSequence = sequence;
        RecordedCheckpoint = checkpoint.State;
        return result;
    }

    /// <summary>
    /// Commits the covered rows with the given txn actions (one per Kafka partition on the Kafka path) and commitInfo
    /// <paramref name="ingest"/> block, in one table commit. Not for overwrite tables.
    /// </summary>
    public Task<CommitResult> CommitTxnsAsync(IReadOnlyList<TxnAction> txns, JsonObject ingest, CancellationToken cancellationToken)
    {
        if (Target.Mode == SinkMode.Overwrite)
        {
            throw new InvalidOperationException("overwrite tables commit whole reads, not transactions of a stream");
        }

        var options = new CommitOptions(
            "STREAMING UPDATE",
            new Dictionary<string, string>
            {
                ["outputMode"] = Target.Mode is SinkMode.Append ? "Append" : "Update",
                ["queryId"] = AppId,
            },
            txns,
            new JsonObject { ["ingest"] = ingest });
        return CommitCoreAsync(_covered.ToList(), options, cancellationToken);
    }

    private async Task<CommitResult> CommitCoreAsync(List<Segment> segments, CommitOptions options, CancellationToken cancellationToken)
    {
        CommitResult result;
        long rows = 0;
        if (_overwrite is { } overwrite)
        {
            // The whole read replaces the table: Spark's WRITE with mode Overwrite, progress and txn in the same commit.
            _overwrite = null;
            result = await overwrite.CommitAsync(options with { Operation = "WRITE", OperationParameters = new Dictionary<string, string> { ["mode"] = "Overwrite" } }, cancellationToken);
            rows = _stagedRows;
            _stagedRows = 0;
            _replaced = true;
        }
        else if (segments.Count == 0)
        {
            result = await Table.CommitEmptyAsync(options, cancellationToken);
        }
        else if (Target.Mode is SinkMode.Append or SinkMode.Overwrite)
        {
            var batches = segments.Select(s => s.Rows).ToList();
            result = await Table.AppendAsync(batches, options, cancellationToken);
            rows = CoveredRows;
        }
        else if (Target.Mode == SinkMode.History)
        {
            (result, rows) = await HistoryAsync(segments, options, cancellationToken);
        }
        else
        {
            (result, rows) = await MergeAsync(segments, options, cancellationToken);
        }

        _covered.Clear();
        CoveredRows = 0;
        LastCommitAt = DateTimeOffset.UtcNow;
        LastCommitVersion = result.Version;
        RowsCommitted += rows;
        return result;
    }

    private async Task<(CommitResult Result, long Rows)> MergeAsync(List<Segment> segments, CommitOptions options, CancellationToken cancellationToken)
    {
        // A truncate removes what came before it: start from the last one.
        var (fromSeg, fromRow) = (0, 0);
        var truncated = false;
        for (var s = segments.Count - 1; s >= 0 && !truncated; s--)
        {
            var seg = segments[s];
            for (var r = seg.Length - 1; r >= 0; r--)
            {
                if (seg.Ops[seg.Start + r] == ChangeOp.Truncate)
                {
                    (fromSeg, fromRow, truncated) = (s, r + 1, true);
                    break;
                }
            }
        }

        // Newest row per key wins (emission order): typed hashing and equality on the key columns, as the merge does.
        var keys = new IArrowArray[segments.Count][];
        var lengths = new int[segments.Count];
        for (var s = 0; s < segments.Count; s++)
        {
            var seg = segments[s];
            keys[s] = System.Array.ConvertAll(_keyOrdinals, seg.Rows.Column);
            lengths[s] = seg.Length;
        }

        var picks = KeyIndex.LatestPerKey(keys, lengths, fromSeg, fromRow);
        if (picks.Count == 0)
        {
            // Only a truncate (and what it removed): that is the whole commit.
            return (await Table.DeleteAllAsync(options, cancellationToken), 0);
        }

        if (truncated)
        {
            await Table.DeleteAllAsync(new CommitOptions("DELETE", new Dictionary<string, string> { ["predicate"] = "[]" }), cancellationToken);
        }

        var isDelete = new bool[picks.Count];
        for (var i = 0; i < picks.Count; i++)
        {
            var (part, row) = picks[i];
            var seg = segments[part];
            isDelete[i] = seg.Ops[seg.Start + row] == ChangeOp.Delete;
        }

        using var rows = LakeColumns.Gather(_arrowSchema, segments.Select(s => s.Rows).ToList(), picks);
        var request = new MergeRequest(rows, isDelete, Target.Stream.PrimaryKey, LakeColumns.Position);
        var result = await Table.MergeAsync(request, options with { Operation = "MERGE" }, cancellationToken);
        return (result, picks.Count);
    }

    private async Task<(CommitResult Result, long Rows)> HistoryAsync(List<Segment> segments, CommitOptions options, CancellationToken cancellationToken)
    {
        // Every event, in source order: each version of a row is kept.
        // A truncate closes every row current before it.
        var picks = new List<(int Source, int Row)>();
        var isDelete = new List<bool>();
        var isTruncate = new List<bool>();
        for (var s = 0; s < segments.Count; s++)
        {
            var seg = segments[s];
            for (var r = 0; r < seg.Length; r++)
            {
                var op = seg.Ops[seg.Start + r];
                picks.Add((s, r));
                isDelete.Add(op == ChangeOp.Delete);
                isTruncate.Add(op == ChangeOp.Truncate);
            }
        }

        using var rows = LakeColumns.Gather(_arrowSchema, segments.Select(s => s.Rows).ToList(), picks);
        var request = new HistoryRequest(rows, isDelete.ToArray(), Target.Stream.PrimaryKey, LakeColumns.Position) { IsTruncate = isTruncate.ToArray() };
        var result = await Table.MergeHistoryAsync(request, options with { Operation = "MERGE" }, cancellationToken);
        return (result, picks.Count);
    }

    private sealed record Segment(RecordBatch Rows, ChangeOp[] Ops, SourcePosition[] Positions, int Start, int Length);
}
