using System.Text;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Confluent.Kafka;
using Ingest.Delta;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The dead-letter table beside a table (<c>&lt;table&gt;_dead_letters</c>): records the sink cannot decode or that do not fit the
/// table, with topic, partition, offset, key, value and the error. Written before the table's own commit, with one txn
/// <c>kafka:&lt;topic&gt;:&lt;partition&gt;</c> per partition, so a replay after a crash adds no record twice.
/// </summary>
internal sealed class DeadLetterTable
{
    /// <summary>The dead-letter table's columns.</summary>
    public static readonly StreamSchema Schema = new([
        new Field("topic", DataType.String, Nullable: false),
        new Field("partition", DataType.Int32, Nullable: false),
        new Field("offset", DataType.Int64, Nullable: false),
        new Field("key", DataType.String, Description: "The record key as UTF-8 text."),
        new Field("value", DataType.String, Description: "The record value as UTF-8 text."),
        new Field("error", DataType.String, Nullable: false),
        new Field("failed_at", DataType.Timestamp, Nullable: false),
    ]);

    private readonly List<(string Topic, int Partition, long Offset, string? Key, string? Value, string Error, DateTimeOffset At)> _pending = [];
    private Dictionary<string, long> _versions = new(StringComparer.Ordinal);

    private DeadLetterTable(string path)
    {
        Path = path;
    }

    /// <summary>The table's folder.</summary>
    public string Path { get; }

    /// <summary>Records dead-lettered (committed) by this process.</summary>
    public long Committed { get; private set; }

    /// <summary>True when records wait for <see cref="FlushAsync"/>.</summary>
    public bool Pending => _pending.Count > 0;

    /// <summary>The dead-letter folder of a table.</summary>
    public static string Beside(string tablePath) => System.IO.Path.TrimEndingDirectorySeparator(tablePath) + "_dead_letters";

    /// <summary>Reads the dead-letter table's txn versions (none when it does not exist yet).</summary>
    public static async Task<DeadLetterTable> OpenAsync(string tablePath, CancellationToken cancellationToken)
    {
        var d = new DeadLetterTable(Beside(tablePath));
        await d.RefreshAsync(cancellationToken);
        return d;
    }

    /// <summary>Rereads the txn versions (after a rebalance another member may have written).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        _pending.Clear();
        var table = await DeltaTable.TryOpenAsync(Path, cancellationToken);
        _versions = table?.Snapshot.TxnVersions.ToDictionary(StringComparer.Ordinal) ?? new(StringComparer.Ordinal);
    }

    /// <summary>Queues a record (skipped when the table holds it already).</summary>
    public void Add(ConsumeResult<byte[]?, byte[]?> r, string error)
    {
        if (_versions.TryGetValue($"kafka:{r.Topic}:{r.Partition.Value}", out var v) && r.Offset.Value <= v)
        {
            return;
        }

        _pending.Add((r.Topic, r.Partition.Value, r.Offset.Value, Text(r.Message.Key), Text(r.Message.Value), error, DateTimeOffset.UtcNow));
    }

    /// <summary>Drops queued records (a revoked partition: the next owner reads them again).</summary>
    public void Reset() => _pending.Clear();

    /// <summary>Commits the queued records in one append with one txn per partition.</summary>
    public async Task FlushAsync(string owner, CancellationToken cancellationToken)
    {
        if (_pending.Count == 0)
        {
            return;
        }

        var table = await DeltaTable.OpenOrCreateAsync(Path, Schema, [], null, cancellationToken);
        var arrays = new IArrowArray[]
        {
            ArrowValues.BuildArray(DataType.String, _pending.Select(p => (object?)p.Topic).ToList()),
            ArrowValues.BuildArray(DataType.Int32, _pending.Select(p => (object?)p.Partition).ToList()),
            ArrowValues.BuildArray(DataType.Int64, _pending.Select(p => (object?)p.Offset).ToList()),
            ArrowValues.BuildArray(DataType.String, _pending.Select(p => (object?)p.Key).ToList()),
            ArrowValues.BuildArray(DataType.String, _pending.Select(p => (object?)p.Value).ToList()),
            ArrowValues.BuildArray(DataType.String, _pending.Select(p => (object?)p.Error).ToList()),
            ArrowValues.BuildArray(DataType.Timestamp, _pending.Select(p => (object?)p.At).ToList()),
        };
        using var batch = new RecordBatch(Schema.ToArrowSchema(), arrays, _pending.Count);
        var txns = _pending.GroupBy(p => $"kafka:{p.Topic}:{p.Partition}").Select(g => new TxnAction(g.Key, g.Max(p => p.Offset))).ToList();
        await table.AppendAsync([batch], new CommitOptions("WRITE", new Dictionary<string, string> { ["mode"] = "Append" }, txns,
            new JsonObject { ["ingest"] = new JsonObject { ["owner"] = owner, ["deadLetters"] = _pending.Count } }), cancellationToken);
        foreach (var txn in txns)
        {
            _versions[txn.AppId] = txn.Version;
        }

        Committed += _pending.Count;
        _pending.Clear();
    }

    private static string? Text(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);
}
