using Apache.Arrow;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;
using ParquetSharp;

namespace Ingest.Delta.Parquet;

/// <summary>One Parquet data file being written: Snappy (Spark's default), stats collected batch by batch.</summary>
internal sealed class DataFileWriter : IDisposable
{
    private readonly ParquetSharp.Arrow.FileWriter _writer;
    private readonly StatsCollector _stats;
    private readonly ILogStore _store;
    private bool _closed;

    public DataFileWriter(ILogStore store, string relativePath, Schema dataSchema, IReadOnlyList<Field> dataColumns, int numIndexedCols)
    {
        _store = store;
        RelativePath = relativePath;
        _stats = new StatsCollector(dataColumns, numIndexedCols);
        using var builder = new WriterPropertiesBuilder();
        builder.Compression(Compression.Snappy);
        builder.MaxRowGroupLength(128 * 1024);
        builder.CreatedBy("Ingest " + DeltaTable.EngineVersion);
        using var props = builder.Build();
        using var arrowBuilder = new ParquetSharp.Arrow.ArrowWriterPropertiesBuilder();
        arrowBuilder.StoreSchema();
        using var arrowProps = arrowBuilder.Build();
        var stream = store.CreateForWrite(relativePath);
        try
        {
            _writer = new ParquetSharp.Arrow.FileWriter(stream, dataSchema, props, arrowProps, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public string RelativePath { get; }

    public long Rows => _stats.NumRecords;

    public void Write(RecordBatch batch)
    {
        if (batch.Length == 0)
        {
            return;
        }

        // Stats first: exporting the batch to Parquet (Arrow C data interface) moves its native buffers away.
        _stats.Add(batch);
        _writer.WriteBufferedRecordBatch(batch);
    }

    /// <summary>Closes the file; returns its exact length and the stats JSON.</summary>
    public (long Size, string Stats) Finish()
    {
        Close();
        var info = _store.Stat(RelativePath) ?? throw new IOException($"Data file '{RelativePath}' vanished after writing.");
        return (info.Size, _stats.ToJson());
    }

    private void Close()
    {
        if (!_closed)
        {
            _closed = true;
            _writer.Close();
            _writer.Dispose();
        }
    }

    public void Dispose() => Close();
}
