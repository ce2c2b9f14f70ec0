using Apache.Arrow;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Records;

/// <summary>
/// A columnar batch of changes to one stream: the row images as an Arrow <see cref="RecordBatch"/>
/// (columns exactly as the stream's <see cref="StreamSchema"/>), and per row the operation, the
/// source position and the source timestamp in plain arrays. Nothing is boxed per value.
/// </summary>
/// <remarks>
/// For <see cref="ChangeOp.Delete"/> rows the key columns must be set; other columns may be null.
/// For <see cref="ChangeOp.Truncate"/> every column is null. Build batches with <see cref="ChangeBatchBuilder"/>.
/// The batch owns its Arrow buffers: the engine disposes it once written.
/// </remarks>
public sealed class ChangeBatch : SourceMessage, IDisposable
{
    /// <summary>Creates a batch; every array must have <c>data.Length</c> entries.</summary>
    /// <exception cref="ArgumentException">The lengths disagree.</exception>
    public ChangeBatch(string stream, RecordBatch data, ChangeOp[] ops, SourcePosition[] positions, long[] sourceTimestampsMicros, RecordBatch? before = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(ops);
        ArgumentNullException.ThrowIfNull(positions);
        ArgumentNullException.ThrowIfNull(sourceTimestampsMicros);
        if (ops.Length < data.Length || positions.Length < data.Length || sourceTimestampsMicros.Length < data.Length)
        {
            throw new ArgumentException($"Batch of stream '{stream}' has {data.Length} rows but fewer ops, positions or timestamps.");
        }

        if (before is not null && before.Length != data.Length)
        {
            throw new ArgumentException($"Batch of stream '{stream}' has {data.Length} rows but {before.Length} before-images.");
        }

        Stream = stream;
        Data = data;
        Ops = ops;
        Positions = positions;
        SourceTimestampsMicros = sourceTimestampsMicros;
        Before = before;
    }

    /// <summary>The stream the rows belong to.</summary>
    public string Stream { get; }

    /// <summary>The row images (after-images; for deletes, at least the key).</summary>
    public RecordBatch Data { get; }

    /// <summary>The before-images, where the source gives them (same schema as <see cref="Data"/>); else null.</summary>
    public RecordBatch? Before { get; }

    /// <summary>The operation of each row (the first <see cref="Length"/> entries are used).</summary>
    public ChangeOp[] Ops { get; }

    /// <summary>The source position of each row, strictly increasing within the stream.</summary>
    public SourcePosition[] Positions { get; }

    /// <summary>The source's commit time of each row, microseconds since 1970-01-01 UTC (0 when unknown).</summary>
    public long[] SourceTimestampsMicros { get; }

    /// <summary>Number of rows.</summary>
    public int Length => Data.Length;

    /// <summary>
    /// Columns whose value the source did not send for a row (PostgreSQL's unchanged TOASTed values): row index to
    /// column ordinals, sorted. Their slot in <see cref="Data"/> is null and means "keep the previous value", not
    /// null: a merge keeps the table's value and an append records the columns as unchanged. Null when every row is
    /// complete (the common case). Set it with <see cref="ChangeBatchBuilder.SetUnchanged"/>.
    /// </summary>
    public IReadOnlyDictionary<int, int[]>? Unchanged { get; init; }

    /// <summary>True when <paramref name="column"/> of row <paramref name="row"/> was not sent by the source (see <see cref="Unchanged"/>).</summary>
    public bool IsUnchanged(int row, int column) =>
        Unchanged is { } u && u.TryGetValue(row, out var columns) && System.Array.BinarySearch(columns, column) >= 0;

    /// <summary>The position of the last row, or <see cref="SourcePosition.Zero"/> when empty.</summary>
    public SourcePosition LastPosition => Length == 0 ? SourcePosition.Zero : Positions[Length - 1];

    /// <inheritdoc />
    public void Dispose()
    {
        Data.Dispose();
        Before?.Dispose();
    }
}
