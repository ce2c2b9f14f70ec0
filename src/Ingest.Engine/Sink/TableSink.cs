using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta;
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
    private readonly int[] _keyOrdinals;
    private readonly List<Segment> _pending = [];
    private readonly List<Segment> _covered = [];
    private SourcePosition? _position;

    private TableSink(string connection, SinkTarget target, DeltaTable table, StreamSchema schema, TableProgress? progress, long txnVersion)
    {
        _connection = connection;
        Target = target;
        Table = table;
        _arrowSchema = schema.ToArrowSchema();
        _keyOrdinals = target.Stream.PrimaryKey.Select(k => target.Stream.Schema.IndexOf(k)).ToArray();
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

    /// <summary>Opens or creates the table and reads its progress from its own log.</summary>
    public static async Task<TableSink> OpenAsync(string connection, SinkTarget target, CancellationToken cancellationToken)
    {
        var schema = LakeColumns.TableSchema(target.Stream.Schema, target.Mode);
        var table = await DeltaTable.OpenOrCreateAsync(target.TablePath, schema, [], null, cancellationToken);
        var existing = table.Snapshot.Schema;
        if (!existing.Equals(schema))
        {
            throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                $"Table {target.TablePath} has columns ({existing}) but stream '{target.Stream.Name}' in {target.Mode.ToString().ToLowerInvariant()} mode needs ({schema}). "
                + "Point the stream at a new table, or remove the old one.");
        }

        var appId = target.AppId(connection);
        var txn = table.Snapshot.TxnVersions.TryGetValue(appId, out var v) ? v : -1;
        TableProgress? progress = null;
        if (txn >= 0)
        {
            progress = await ReadProgressAsync(table, connection, target.Stream.Name, cancellationToken);
        }

        var sink = new TableSink(connection, target, table, schema, progress, txn);
        sink.RecordedCheckpoint = progress?.Checkpoint;
        return sink;
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
        var rows = LakeColumns.Build(_arrowSchema, Target.Mode, batch, start, length, ingestedAtMicros);
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
        _pending.Clear();
        _covered.Clear();
        PendingRows = 0;
        CoveredRows = 0;
    }

    /// <summary>
    /// Commits the covered rows (or, when there are none, an empty commit) in one table commit carrying
    /// <c>txn(appId, sequence)</c> and the checkpoint in commitInfo.
    /// </summary>
    public async Task<CommitResult> CommitAsync(long sequence, Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var segments = _covered.ToList();
        var last = segments.Count == 0 ? (SourcePosition?)null : segments[^1].Positions[segments[^1].Start + segments[^1].Length - 1];
        var position = last is { } l && (_position is null || l > _position) ? l : _position;
        var options = new CommitOptions(
            "STREAMING UPDATE",
            new Dictionary<string, string>
            {
                ["outputMode"] = Target.Mode == SinkMode.Append ? "Append" : "Update",
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

        CommitResult result;
        long rows = 0;
        if (segments.Count == 0)
        {
            result = await Table.CommitEmptyAsync(options, cancellationToken);
        }
        else if (Target.Mode == SinkMode.Append)
        {
            var batches = segments.Select(s => s.Rows).ToList();
            result = await Table.AppendAsync(batches, options, cancellationToken);
            rows = CoveredRows;
        }
        else
        {
            (result, rows) = await MergeAsync(segments, options, cancellationToken);
        }

        _covered.Clear();
        CoveredRows = 0;
        _position = position;
        RecordedSequence = sequence;
        RecordedCheckpoint = checkpoint.State;
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

        // Newest row per key wins (emission order).
        var latest = new Dictionary<string, (int Source, int Row)>(StringComparer.Ordinal);
        var sb = new StringBuilder();
        for (var s = fromSeg; s < segments.Count; s++)
        {
            var seg = segments[s];
            for (var r = s == fromSeg ? fromRow : 0; r < seg.Length; r++)
            {
                latest[LakeColumns.Key(seg.Rows, _keyOrdinals, r, sb)] = (s, r);
            }
        }

        if (latest.Count == 0)
        {
            // Only a truncate (and what it removed): that is the whole commit.
            return (await Table.DeleteAllAsync(options, cancellationToken), 0);
        }

        if (truncated)
        {
            await Table.DeleteAllAsync(new CommitOptions("DELETE", new Dictionary<string, string> { ["predicate"] = "[]" }), cancellationToken);
        }

        var picks = latest.Values.OrderBy(p => p.Source).ThenBy(p => p.Row).ToList();
        var isDelete = new bool[picks.Count];
        for (var i = 0; i < picks.Count; i++)
        {
            var seg = segments[picks[i].Source];
            isDelete[i] = seg.Ops[seg.Start + picks[i].Row] == ChangeOp.Delete;
        }

        using var rows = LakeColumns.Gather(_arrowSchema, segments.Select(s => s.Rows).ToList(), picks);
        var request = new MergeRequest(rows, isDelete, Target.Stream.PrimaryKey, LakeColumns.Position);
        var result = await Table.MergeAsync(request, options with { Operation = "MERGE" }, cancellationToken);
        return (result, picks.Count);
    }

    private sealed record Segment(RecordBatch Rows, ChangeOp[] Ops, SourcePosition[] Positions, int Start, int Length);
}
