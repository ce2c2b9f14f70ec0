using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Delta.Operations;
using Ingest.Engine.Pipelines;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

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
internal sealed partial class TableSink
{
    private readonly string _connection;
    private readonly ILogger _logger;
    private readonly List<Segment> _pending = [];
    private readonly List<Segment> _covered = [];
    // The stream's current shape and how its rows become the table's: they change when the source's schema does.
    private StreamSchema _streamSchema = null!;
    private Schema _arrowSchema = null!;
    private Schema _buildSchema = null!;
    private StreamSchema _tableSchema = null!;
    private string[] _rescued = [];
    private bool _project;
    private int[] _keyOrdinals = [];
    private SourcePosition? _position;
    private DeltaOverwrite? _overwrite;
    private bool _replaced;
    // Append tables stream: covered rows are written to data files at once (_staged), and pending rows once they exceed
    // SpillBytes (_spill, which joins _staged when a checkpoint covers it). Only a commit references the files.
    private DeltaAppend? _staged;
    private DeltaAppend? _spill;
    private SourcePosition? _lastCovered;
    private SourcePosition? _lastSpilled;
    private long _pendingBytes;
    private long _stagedRows;
    private bool _warnedUnchanged;
    private SourcePosition? _lastStaged;

    private TableSink(string connection, SinkTarget target, DeltaTable table, StreamSchema built, string[] rescued, TableProgress? progress, long txnVersion, ILogger logger)
    {
        _connection = connection;
        _logger = logger;
        Target = target;
        Table = table;
        Configure(target.Stream.Schema, built, rescued);
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

    /// <summary>Bytes (Arrow buffers) of the covered rows held in memory until the commit: merge, history and overwrite tables (0 for appends, whose covered rows are in files).</summary>
    public long CoveredBytes { get; private set; }

    public long PendingRows { get; private set; }

    public long? LastCommitVersion { get; private set; }

    /// <summary>
    /// Append tables: pending rows (not yet covered by a checkpoint) held in memory beyond this many bytes of Arrow buffers
    /// are written to data files that only the commit after their checkpoint adds to the table.
    /// </summary>
    public long SpillBytes { get; set; } = 16L << 20;

    /// <summary>Rows written to data files that no commit references yet (covered or not).</summary>
    public long StagedRows => (_staged?.RowsWritten ?? 0) + (_spill?.RowsWritten ?? 0);

    /// <summary>Whether rows go to data files when covered (or spilled) rather than at the commit: appends.</summary>
    private bool Streams => Target.Mode == SinkMode.Append || (Target.Mode == SinkMode.Overwrite && _replaced);

    public long RowsCommitted { get; private set; }

    /// <summary>
    /// Opens or creates the table, reconciles its columns with the stream's by the stream's schema policy, and reads its
    /// progress from its own log (never for overwrite: a full refresh reads everything every run).
    /// </summary>
    public static Task<TableSink> OpenAsync(string connection, SinkTarget target, CancellationToken cancellationToken) =>
        OpenAsync(connection, target, null, cancellationToken);

    /// <summary>
    /// Properties of a table the sink creates. Merge tables get deletion vectors: a merge then marks the changed rows
    /// deleted instead of rewriting their files (about 10x faster for small merges in DeltaMergeBenchmarks), at the
    /// cost of needing a reader with the deletionVectors feature (Delta 2.4+ / Spark 3.4+, Databricks, delta-rs,
    /// DuckDB). History tables stay copy-on-write (their merges close rows in place); existing tables keep theirs.
    /// </summary>
    internal static IReadOnlyDictionary<string, string>? NewTableProperties(SinkMode mode) =>
        mode == SinkMode.Merge ? new Dictionary<string, string>(StringComparer.Ordinal) { ["delta.enableDeletionVectors"] = "true" } : null;

    /// <inheritdoc cref="OpenAsync(string, SinkTarget, CancellationToken)"/>
    /// <param name="connection">The connection's name.</param>
    /// <param name="target">The stream and its table.</param>
    /// <param name="logger">Where schema changes and values the sink could not keep are reported.</param>
    /// <param name="cancellationToken">Cancels the open.</param>
    public static async Task<TableSink> OpenAsync(string connection, SinkTarget target, ILogger? logger, CancellationToken cancellationToken)
    {
        var schema = LakeColumns.TableSchema(target.Stream.Schema, target.Mode);
        var table = await DeltaTable.OpenOrCreateAsync(target.TablePath, schema, [], NewTableProperties(target.Mode), cancellationToken);
        var rescued = await ReconcileAsync(connection, target, table, target.Stream.Schema, schema, cancellationToken);

        var appId = target.AppId(connection);
        var txn = table.Snapshot.TxnVersions.TryGetValue(appId, out var v) ? v : -1;
        TableProgress? progress = null;
        if (txn >= 0 && target.Mode != SinkMode.Overwrite)
        {
            progress = await ReadProgressAsync(table, connection, target.Stream.Name, cancellationToken);
        }

        var sink = new TableSink(connection, target, table, schema, rescued, progress, txn, logger ?? NullLogger.Instance);
        sink.RecordedCheckpoint = progress?.Checkpoint;
        return sink;
    }

    /// <summary>Applies the schema policy; returns the stream columns whose values go to <c>_rescued_data</c>.</summary>
    private static async Task<string[]> ReconcileAsync(string connection, SinkTarget target, DeltaTable table, StreamSchema streamSchema, StreamSchema wanted, CancellationToken cancellationToken)
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
                throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration, DescribeFirst(diff, missing, target, streamSchema)
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
                    var hint = e.Message.Contains("delta.enableTypeWidening", StringComparison.Ordinal)
                        ? $" With the CLI: ingest table properties {target.TablePath} --set delta.enableTypeWidening=true, then run again."
                        : "";
                    throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration, $"Stream '{stream}': {e.Message}{hint}");
                }

                return [];
            default:
                // A stream's own _rescued_data is the table's _rescued_data, never a value to rescue.
                var rescued = diff.Added.Concat(diff.Widened.Concat(diff.StructsGrown).Concat(diff.Incompatible).Select(w => w.Incoming)).Select(f => f.Name)
                    .Where(n => !string.Equals(n, LakeColumns.RescuedData, StringComparison.OrdinalIgnoreCase)).ToArray();
                foreach (var name in rescued)
                {
                    if (name.StartsWith('_') && wanted.IndexOf(name) >= streamSchema.Count)
                    {
                        throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                            $"Table {target.TablePath} lacks the sink column '{name}' that {mode} mode needs; schemaPolicy: rescue keeps only source columns. Point the stream at a new table.");
                    }
                }

                if ((rescued.Length > 0 || wanted.IndexOf(LakeColumns.RescuedData) >= 0) && existing.IndexOf(LakeColumns.RescuedData) < 0)
                {
                    await table.EvolveSchemaAsync(new StreamSchema([.. existing.Columns, new Sdk.Types.Field(LakeColumns.RescuedData, DataType.String,
                        Description: "Source values the table has no column for (or whose type no longer fits), as a JSON object by column name.")]), options, cancellationToken);
                }

                return rescued;
        }
    }

    private static string DescribeFirst(SchemaDifference diff, List<Sdk.Types.Field> missing, SinkTarget target, StreamSchema streamSchema)
    {
        var stream = target.Stream.Name;
        if (diff.Incompatible.Count > 0 || diff.Widened.Count > 0 || diff.StructsGrown.Count > 0)
        {
            var (t, i) = diff.Incompatible.Concat(diff.Widened).Concat(diff.StructsGrown).First();
            return $"Table {target.TablePath}: column '{t.Name}' is {t.Type.DisplayName} in the table but {i.Type.DisplayName} in stream '{stream}'";
        }

        if (diff.Added.Count > 0)
        {
            var a = diff.Added[0];
            return $"Table {target.TablePath}: column '{a.Name}' ({a.Type.DisplayName}) of stream '{stream}' is not in the table (the table has: {string.Join(", ", streamSchema.Columns.Select(c => c.Name).Where(n => diff.Added.All(x => x.Name != n)))})";
        }

        var m = missing[0];
        return $"Table {target.TablePath}: column '{m.Name}' ({m.Type.DisplayName}) of the table is no longer in stream '{stream}'";
    }

    /// <summary>Sets how rows of <paramref name="stream"/> (built as <paramref name="built"/>) become rows of the table as it is now.</summary>
    private void Configure(StreamSchema stream, StreamSchema built, string[] rescued)
    {
        _streamSchema = stream;
        _tableSchema = Table.Snapshot.Schema;
        _arrowSchema = _tableSchema.ToArrowSchema();
        _buildSchema = built.ToArrowSchema();
        _rescued = rescued;
        // Rows are built in the stream's layout; only a table that evolved differently (or rescues) needs them reshaped.
        _project = rescued.Length > 0 || _tableSchema.Count != built.Count
            || _tableSchema.Columns.Zip(built.Columns).Any(p => p.First.Name != p.Second.Name || p.First.Type != p.Second.Type);
        _keyOrdinals = Target.Stream.PrimaryKey.Select(k => _tableSchema.IndexOf(k)).ToArray();
    }

    /// <summary>
    /// The source changed the stream's shape during the read (a batch with other columns or types): applies the stream's
    /// schema policy to the table as <see cref="OpenAsync(string, SinkTarget, CancellationToken)"/> does (evolve: add columns,
    /// widen types where the table allows type widening, grow nested structs, keep dropped columns as null; rescue: unfit values to
    /// <c>_rescued_data</c>; fail: stop naming the column and both types). Rows staged under the old shape are converted to
    /// the table's new one, so they commit with their checkpoint as usual; later batches are taken in the new shape.
    /// </summary>
    /// <exception cref="Sdk.Connectors.ConnectorException">The policy refuses the change, or a key column is gone.</exception>
    public async Task ChangeSchemaAsync(StreamSchema incoming, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        var stream = Target.Stream.Name;
        var previous = _streamSchema;
        if (SchemaChange.SameShape(previous, incoming))
        {
            return;
        }

        if (Target.Mode is SinkMode.Merge or SinkMode.History && Target.Stream.PrimaryKey.FirstOrDefault(k => incoming.IndexOf(k) < 0) is { } lostKey)
        {
            throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                $"Stream '{stream}' changed its schema during the read and no longer has its key column '{lostKey}', which {Target.Mode.ToString().ToLowerInvariant()} mode needs (table {Target.TablePath}).");
        }

        if (Target.SchemaPolicy == SchemaPolicy.Fail)
        {
            throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                $"Stream '{stream}' changed its schema during the read: {SchemaChange.DescribeFirst(previous, incoming)} (schemaPolicy: fail, table {Target.TablePath}). "
                + "Set schemaPolicy: evolve or rescue on the stream, or point it at a new table.");
        }

        StreamSchema wanted;
        try
        {
            wanted = LakeColumns.TableSchema(incoming, Target.Mode);
        }
        catch (InvalidOperationException e)
        {
            throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Fatal, $"Stream '{stream}' changed its schema during the read: {e.Message}");
        }

        var before = Table.Snapshot.Schema;
        var rescued = await ReconcileAsync(_connection, Target, Table, incoming, wanted, cancellationToken);
        var after = Table.Snapshot.Schema;
        if (!before.Equals(after))
        {
            if (_overwrite is { } staged)
            {
                // Files staged for the full refresh have the old shape, and the replace must commit the table's own schema:
                // start the refresh over (a transient failure: the read restarts and the table already has the new shape).
                _overwrite = null;
                await DropStagedAsync(staged);
                throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Transient,
                    $"Stream '{stream}' changed its schema during a full refresh of {Target.TablePath}; the refresh starts over with the new schema.");
            }

            // Staged rows are the old table's shape: give them the new one (added columns null, widened types widened).
            Restage(_pending, after);
            Restage(_covered, after);
        }

        Configure(incoming, wanted, rescued);
        LogSchemaChanged(_logger, _connection, stream, SchemaChange.DescribeAll(previous, incoming), Target.SchemaPolicy.ToString().ToLowerInvariant(), Target.TablePath);
    }

    private static void Restage(List<Segment> segments, StreamSchema table)
    {
        for (var i = 0; i < segments.Count; i++)
        {
            segments[i] = segments[i] with { Rows = DeltaSchema.Conform(segments[i].Rows, table) };
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream}: the source changed the stream's schema ({Change}); schemaPolicy {Policy} applied to {Table}")]
    private static partial void LogSchemaChanged(ILogger logger, string connection, string stream, string change, string policy, string table);

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
        if (!SchemaChange.Matches(batch.Data.Schema, _streamSchema))
        {
            throw new InvalidOperationException($"A batch of stream '{Target.Stream.Name}' has other columns than the stream's current schema ({_streamSchema}); {nameof(ChangeSchemaAsync)} must take the new schema first.");
        }

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
        var project = _project;
        IReadOnlyDictionary<int, int[]>? unchanged = null;
        if (batch.Unchanged is { Count: > 0 })
        {
            if (Target.Mode == SinkMode.Append)
            {
                // The change log says which columns the source did not send (EnsureUnchangedColumnAsync added the column).
                rows = new RecordBatch(
                    new Schema([.. rows.Schema.FieldsList, LakeColumns.UnchangedField.ToArrowField()], null),
                    [.. Enumerable.Range(0, rows.ColumnCount).Select(rows.Column), LakeColumns.UnchangedArray(batch, start, length)],
                    rows.Length);
                project = true;
            }
            else if (Target.Mode is SinkMode.Merge or SinkMode.History)
            {
                unchanged = UnchangedOrdinals(batch, start, length);
            }
        }

        if (project)
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
        _pending.Add(new Segment(rows, batch.Ops, batch.Positions, start, length) { Unchanged = unchanged });
        PendingRows += length;
        _pendingBytes += LakeColumns.BufferBytes(rows);
        if (Streams)
        {
            if (_pendingBytes >= SpillBytes)
            {
                // No checkpoint covers these rows yet: to files of their own, which join the commit their checkpoint allows.
                _spill ??= Table.BeginAppend();
                _lastSpilled = WriteAll(_spill, _pending) ?? _lastSpilled;
            }
        }
    }

    /// <summary>Writes the segments' rows (their buffers move to the Parquet writer) and forgets them; returns the last position written.</summary>
    private SourcePosition? WriteAll(DeltaAppend append, List<Segment> segments)
    {
        SourcePosition? last = null;
        foreach (var seg in segments)
        {
            append.Write(seg.Rows);
            last = seg.Positions[seg.Start + seg.Length - 1];
        }

        segments.Clear();
        _pendingBytes = 0;
        return last;
    }

    /// <summary>Per segment row, the table ordinals of the (non-key) columns the source did not send; null when none.</summary>
    private Dictionary<int, int[]>? UnchangedOrdinals(ChangeBatch batch, int start, int length)
    {
        Dictionary<int, int[]>? result = null;
        var names = batch.Data.Schema.FieldsList;
        foreach (var (row, columns) in batch.Unchanged!)
        {
            if (row < start || row >= start + length)
            {
                continue;
            }

            var ordinals = new List<int>(columns.Length);
            foreach (var c in columns)
            {
                var t = _tableSchema.IndexOf(names[c].Name);
                if (t >= 0 && System.Array.IndexOf(_keyOrdinals, t) < 0)
                {
                    ordinals.Add(t);
                }
            }

            if (ordinals.Count > 0)
            {
                ordinals.Sort();
                (result ??= [])[row - start] = [.. ordinals];
            }
        }

        return result;
    }

    /// <summary>
    /// Before an append table takes a batch with unchanged values: adds the <c>_unchanged</c> column when the table lacks it
    /// (a metadata commit, whatever the schema policy: the column is the sink's). Staged rows get it as null.
    /// </summary>
    public async Task EnsureUnchangedColumnAsync(CancellationToken cancellationToken)
    {
        if (Target.Mode != SinkMode.Append || _tableSchema.IndexOf(LakeColumns.Unchanged) >= 0)
        {
            return;
        }

        var options = new CommitOptions("ADD COLUMNS", AppMetadata: new JsonObject { ["ingest"] = new JsonObject { ["connection"] = _connection, ["stream"] = Target.Stream.Name, ["schemaChange"] = true } });
        await Table.EvolveSchemaAsync(new StreamSchema([.. Table.Snapshot.Schema.Columns, LakeColumns.UnchangedField]), options, cancellationToken);
        var after = Table.Snapshot.Schema;
        Restage(_pending, after);
        Restage(_covered, after);
        Configure(_streamSchema, LakeColumns.TableSchema(_streamSchema, Target.Mode), _rescued);
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
        var own = -1;
        for (var c = 0; c < rows.ColumnCount; c++)
        {
            var name = rows.Schema.FieldsList[c].Name;
            if (string.Equals(name, LakeColumns.RescuedData, StringComparison.OrdinalIgnoreCase))
            {
                own = c;
                continue;
            }

            (_rescued.Contains(name, StringComparer.OrdinalIgnoreCase) ? rescuedOrdinals : keep).Add(c);
        }

        var ownValues = own < 0 ? null : (StringArray)rows.Column(own);
        var json = new StringArray.Builder();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var r = 0; r < rows.Length; r++)
        {
            var source = ownValues is null || ownValues.IsNull(r) ? null : ownValues.GetString(r);
            names.Clear();
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

                    if (!any && source is not null)
                    {
                        WriteSourceRescued(w, source, names);
                    }

                    any = true;
                    var name = rows.Schema.FieldsList[c].Name;
                    if (names.Add(name))
                    {
                        w.WritePropertyName(name);
                        JsonSerializer.Serialize(w, ArrowValues.GetValue(col, r));
                    }
                }

                w.WriteEndObject();
                w.Flush();
                if (!any)
                {
                    // Nothing rescued here: the source's own value (or null) as it came.
                    if (source is null)
                    {
                        json.AppendNull();
                    }
                    else
                    {
                        json.Append(source);
                    }

                    continue;
                }
            }

            json.Append(Encoding.UTF8.GetString(buffer.WrittenSpan));
        }

        var fields = keep.Select(c => rows.Schema.FieldsList[c]).Append(new Apache.Arrow.Field(LakeColumns.RescuedData, Apache.Arrow.Types.StringType.Default, true));
        var arrays = keep.Select(rows.Column).Append(json.Build());
        return DeltaSchema.Conform(new RecordBatch(new Schema(fields, null), arrays, rows.Length), _tableSchema);
    }

    /// <summary>
    /// Copies the properties of a source's own <c>_rescued_data</c> object into the row's merged object (they come first: the
    /// source saw the raw text). A value that is not a JSON object is kept whole, as a string under <c>_rescued_data</c>.
    /// </summary>
    private static void WriteSourceRescued(Utf8JsonWriter w, string source, HashSet<string> names)
    {
        try
        {
            using var doc = JsonDocument.Parse(source);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (names.Add(p.Name))
                    {
                        p.WriteTo(w);
                    }
                }

                return;
            }
        }
        catch (JsonException)
        {
            // Not JSON: kept as text below.
        }

        names.Add(LakeColumns.RescuedData);
        w.WriteString(LakeColumns.RescuedData, source);
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
        if (Streams)
        {
            if (_spill is { } spill)
            {
                _spill = null;
                if (_staged is null)
                {
                    _staged = spill;
                }
                else
                {
                    _staged.Absorb(spill);
                }

                _lastCovered = _lastSpilled;
                _lastSpilled = null;
            }

            if (_pending.Count > 0)
            {
                _staged ??= Table.BeginAppend();
                _lastCovered = WriteAll(_staged, _pending) ?? _lastCovered;
            }
        }
        else
        {
            _covered.AddRange(_pending);
            _pending.Clear();
            CoveredBytes += _pendingBytes;
            _pendingBytes = 0;
        }

        CoveredRows += PendingRows;
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

        foreach (var append in new[] { _staged, _spill })
        {
            if (append is not null)
            {
                _ = DropStagedAsync(append);
            }
        }

        _staged = null;
        _spill = null;
        _lastCovered = null;
        _lastSpilled = null;
        _pendingBytes = 0;
        Free(_pending);
        Free(_covered);
        _pending.Clear();
        _covered.Clear();
        PendingRows = 0;
        CoveredRows = 0;
        CoveredBytes = 0;
    }

    /// <summary>
    /// Commits the covered rows (or, when there are none, an empty commit) in one table commit carrying
    /// <c>txn(appId, sequence)</c> and the checkpoint in commitInfo.
    /// </summary>
    public Task<CommitResult> CommitAsync(long sequence, Checkpoint checkpoint, CancellationToken cancellationToken) =>
        CommitAsync(sequence, checkpoint, final: true, cancellationToken);

    private static async Task DropStagedAsync(IAsyncDisposable staged)
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
            CoveredBytes = 0;
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
        else if (Streams)
        {
            last = _lastCovered;
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
        else if (Streams && _staged is { } staged)
        {
            // The covered rows are in data files already: the commit adds them, with the txn and checkpoint.
            _staged = null;
            _lastCovered = null;
            result = await staged.CommitAsync(options, cancellationToken);
            rows = CoveredRows;
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
        CoveredBytes = 0;
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

        using var gathered = LakeColumns.Gather(_arrowSchema, segments.Select(s => s.Rows).ToList(), picks);
        var rows = await KeepUnchangedAsync(gathered, segments, picks, fromSeg, fromRow, truncated, cancellationToken);
        Free(segments);
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

        using var gathered = LakeColumns.Gather(_arrowSchema, segments.Select(s => s.Rows).ToList(), picks);
        var rows = await KeepUnchangedAsync(gathered, segments, picks, 0, 0, truncated: false, cancellationToken);
        Free(segments);
        var request = new HistoryRequest(rows, isDelete.ToArray(), Target.Stream.PrimaryKey, LakeColumns.Position) { IsTruncate = isTruncate.ToArray() };
        var result = await Table.MergeHistoryAsync(request, options with { Operation = "MERGE" }, cancellationToken);
        return (result, picks.Count);
    }

    /// <summary>
    /// Gives the values the source did not send (unchanged TOASTed columns) of the rows about to be merged their previous
    /// value: that of the key's latest earlier row in this commit (from <paramref name="fromSeg"/>/<paramref name="fromRow"/>
    /// on, in source order), else the table's row for the key (its current row in a history table). A truncate or delete
    /// before the row leaves nothing to keep, as does a key the table lacks: the value stays null and a warning is logged
    /// once. Returns <paramref name="rows"/> itself when no row lacks a value.
    /// </summary>
    private async Task<RecordBatch> KeepUnchangedAsync(RecordBatch rows, List<Segment> segments, IReadOnlyList<(int Source, int Row)> picks,
        int fromSeg, int fromRow, bool truncated, CancellationToken cancellationToken)
    {
        var wanted = new SortedSet<int>();
        foreach (var (s, r) in picks)
        {
            if (segments[s].Unchanged is { } u && u.TryGetValue(r, out var cs))
            {
                wanted.UnionWith(cs);
            }
        }

        if (wanted.Count == 0)
        {
            return rows;
        }

        // Every row from the start, in source order, grouped by key (typed hashing, as the merge does).
        var order = new List<(int Source, int Row)>();
        var offsets = new int[segments.Count];
        for (var s = fromSeg; s < segments.Count; s++)
        {
            var first = s == fromSeg ? fromRow : 0;
            offsets[s] = order.Count - first;
            for (var r = first; r < segments[s].Length; r++)
            {
                order.Add((s, r));
            }
        }

        var keyArrays = System.Array.ConvertAll(_keyOrdinals, k => LakeColumns.TakeColumn(_arrowSchema.FieldsList[k].DataType, segments.Select(x => x.Rows.Column(k)).ToArray(), order));
        var group = new KeyIndex(keyArrays, order.Count, Target.Stream.PrimaryKey, allowDuplicates: true).Group;

        // Per column, per row: the row whose value it takes (itself when sent), or the table's, or none.
        const int FromTable = -1, NoValue = -2;
        var columns = wanted.ToArray();
        var source = new int[columns.Length][];
        for (var ci = 0; ci < columns.Length; ci++)
        {
            var from = source[ci] = new int[order.Count];
            var last = new Dictionary<int, int>();
            var fallback = truncated ? NoValue : FromTable;
            for (var i = 0; i < order.Count; i++)
            {
                from[i] = i;
                var (s, r) = order[i];
                var seg = segments[s];
                switch (seg.Ops[seg.Start + r])
                {
                    case ChangeOp.Truncate:
                        last.Clear();
                        fallback = NoValue;
                        continue;
                    case ChangeOp.Delete:
                        last[group[i]] = NoValue;
                        continue;
                }

                if (seg.Unchanged is { } u && u.TryGetValue(r, out var cs) && System.Array.BinarySearch(cs, columns[ci]) >= 0)
                {
                    from[i] = last.TryGetValue(group[i], out var p) ? p : fallback;
                }

                last[group[i]] = from[i];
            }
        }

        var outFlat = new int[picks.Count];
        var lookup = new List<int>();
        for (var o = 0; o < picks.Count; o++)
        {
            outFlat[o] = offsets[picks[o].Source] + picks[o].Row;
            if (source.Any(f => f[outFlat[o]] == FromTable))
            {
                lookup.Add(o);
            }
        }

        IReadOnlyList<RecordBatch> found = [];
        var match = new Dictionary<int, (int Part, int Row)>();
        if (lookup.Count > 0 && Table.Snapshot.Files.Count > 0)
        {
            var keys = LakeColumns.Gather(_arrowSchema, [rows], lookup.Select(o => (0, o)).ToList());
            var (parts, matches) = await KeyLookup.LookupAsync(Table, keys, Target.Stream.PrimaryKey, Target.Mode == SinkMode.History ? ScdColumns.IsCurrent : null, cancellationToken);
            found = parts;
            for (var i = 0; i < lookup.Count; i++)
            {
                match[lookup[i]] = matches[i];
            }
        }

        var arrays = Enumerable.Range(0, rows.ColumnCount).Select(rows.Column).ToArray();
        long kept = 0, lost = 0;
        var lostColumns = new SortedSet<string>(StringComparer.Ordinal);
        for (var ci = 0; ci < columns.Length; ci++)
        {
            var c = columns[ci];
            var parts = new IArrowArray[1 + segments.Count + found.Count];
            parts[0] = rows.Column(c);
            for (var s = 0; s < segments.Count; s++)
            {
                parts[1 + s] = segments[s].Rows.Column(c);
            }

            for (var f = 0; f < found.Count; f++)
            {
                parts[1 + segments.Count + f] = found[f].Column(c);
            }

            var take = new (int, int)[picks.Count];
            for (var o = 0; o < take.Length; o++)
            {
                var from = source[ci][outFlat[o]];
                if (from == outFlat[o])
                {
                    take[o] = (0, o);
                }
                else if (from >= 0)
                {
                    take[o] = (1 + order[from].Source, order[from].Row);
                    kept++;
                }
                else if (from == FromTable && match.TryGetValue(o, out var m) && m.Part >= 0)
                {
                    take[o] = (1 + segments.Count + m.Part, m.Row);
                    kept++;
                }
                else
                {
                    // Nothing to keep: the row's own slot, which is null.
                    take[o] = (0, o);
                    lost++;
                    lostColumns.Add(_tableSchema.Columns[c].Name);
                }
            }

            arrays[c] = LakeColumns.TakeColumn(_arrowSchema.FieldsList[c].DataType, parts, take);
        }

        foreach (var f in found)
        {
            f.Dispose();
        }

        if (lost > 0 && !_warnedUnchanged)
        {
            _warnedUnchanged = true;
            LogUnchangedLost(_logger, _connection, Target.Stream.Name, lost, string.Join(", ", lostColumns), Target.TablePath);
        }

        return kept + lost == 0 ? rows : new RecordBatch(rows.Schema, arrays, rows.Length);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}.{Stream}: {Count} value(s) of column(s) {Columns} were not sent by the source (unchanged) and {Table} holds no earlier row of their key to keep them from, so they are null. At the source, REPLICA IDENTITY FULL (PostgreSQL) sends every value. Logged once per stream.")]
    private static partial void LogUnchangedLost(ILogger logger, string connection, string stream, long count, string columns, string table);

    /// <summary>
    /// Frees the segments' rows, the source batch's columns included: after a merge gathered them (a large transaction
    /// no longer holds its rows twice while its merge writes; a 1M-row one held ~200 MB of rows beside the gathered copy),
    /// and when a read is discarded (segments not written to files). Arrow frees a buffer once, so the runner's later
    /// disposal of the batches is harmless; a failed commit discards the read, so nothing reads freed segments again.
    /// </summary>
    private static void Free(List<Segment> segments)
    {
        foreach (var seg in segments)
        {
            seg.Rows.Dispose();
        }
    }

    private sealed record Segment(RecordBatch Rows, ChangeOp[] Ops, SourcePosition[] Positions, int Start, int Length)
    {
        /// <summary>Merge and history only: per segment row, table ordinals of the columns the source did not send.</summary>
        public IReadOnlyDictionary<int, int[]>? Unchanged { get; init; }
    }
}
