using System.Runtime.InteropServices;
using Apache.Arrow;
using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Operations;

/// <summary>
/// Change data files (PROTOCOL.md "Change Data Files", "Add CDC File"): the table's columns plus <c>_change_type</c>
/// (<c>insert</c>, <c>update_preimage</c>, <c>update_postimage</c>, <c>delete</c>), under <c>_change_data/</c> with the
/// table's partition folders, named <c>cdc-…</c> as Spark names them. A commit with <c>cdc</c> actions has its changes
/// read from them alone; commits that only add or only remove whole files need none.
/// </summary>
internal sealed class ChangeDataWriter : IDisposable
{
    public const string ChangeTypeColumn = "_change_type";
    public const string Folder = "_change_data/";

    private readonly TableWriter _writer;
    private readonly Schema _arrowSchema;

    public ChangeDataWriter(ILogStore store, DeltaSnapshot snapshot, long maxRowsPerFile)
    {
        CheckSchema(snapshot);
        var schema = new StreamSchema([.. snapshot.Schema.Columns, new Field(ChangeTypeColumn, DataType.String, Nullable: false)]);
        _arrowSchema = schema.ToArrowSchema();
        _writer = new TableWriter(store, schema, snapshot.PartitionColumns, snapshot.Configuration, maxRowsPerFile, Folder, "cdc");
    }

    /// <summary>Refuses a table whose schema has the column the change data feed reserves.</summary>
    public static void CheckSchema(DeltaSnapshot snapshot)
    {
        if (snapshot.Schema.IndexOf(ChangeTypeColumn) >= 0)
        {
            throw new NotSupportedException($"The table has a column named '{ChangeTypeColumn}', which the change data feed reserves; disable delta.enableChangeDataFeed or rename the column.");
        }
    }

    /// <summary>Whether the table records its changes (<c>delta.enableChangeDataFeed=true</c>).</summary>
    public static bool IsEnabled(DeltaSnapshot snapshot) => WriterFeatures.IsTrue(snapshot.Configuration, "delta.enableChangeDataFeed");

    public long Rows => _writer.RowsWritten;

    /// <summary>Records rows <paramref name="rows"/> of <paramref name="batch"/> (the table's schema) as changes of one type; the batch is only read.</summary>
    public void Write(RecordBatch batch, List<int> rows, string changeType)
    {
        if (rows.Count == 0)
        {
            return;
        }

        using var taken = ArrowKernels.Take(batch, CollectionsMarshal.AsSpan(rows));
        var type = new StringArray.Builder();
        for (var i = 0; i < rows.Count; i++)
        {
            type.Append(changeType);
        }

        _writer.Write(new RecordBatch(_arrowSchema, [.. taken.Arrays, type.Build()], rows.Count));
    }

    /// <summary>Closes and publishes the files; their <c>cdc</c> actions (dataChange false).</summary>
    public async Task<List<AddFile>> FinishAsync(CancellationToken cancellationToken) =>
        (await _writer.FinishAsync(cancellationToken).ConfigureAwait(false)).Select(a => a with { DataChange = false, Stats = null }).ToList();

    /// <summary>Deletes the files written (the commit failed).</summary>
    public Task AbortAsync(CancellationToken cancellationToken) => _writer.AbortAsync(cancellationToken);

    public void Dispose() => _writer.Dispose();
}
