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
    private readonly INewFile _file;
    private bool _closed;

    public DataFileWriter(ILogStore store, string relativePath, Schema dataSchema, IReadOnlyList<Field> dataColumns, int numIndexedCols)
    {
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
        _file = store.CreateFile(relativePath);
        try
        {
            _writer = new ParquetSharp.Arrow.FileWriter(_file.Stream, dataSchema, props, arrowProps, leaveOpen: true);
        }
        catch
        {
            _file.Dispose();
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

    /// <summary>Closes the Parquet file (no more rows); returns the stats JSON. <see cref="CompleteAsync"/> publishes it.</summary>
    public string Close()
    {
        if (!_closed)
        {
            _closed = true;
            _writer.Close();
            _writer.Dispose();
            _file.Stream.Dispose();
        }

        return _stats.ToJson();
    }

    /// <summary>Publishes the closed file (an upload for object stores); returns its exact length.</summary>
    public Task<long> CompleteAsync(CancellationToken cancellationToken) => _file.CompleteAsync(cancellationToken);

    public void Dispose()
    {
        try
        {
            if (!_closed)
            {
                _closed = true;
                _writer.Close();
                _writer.Dispose();
            }
        }
        finally
        {
            _file.Dispose();
        }
    }
}
