using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Tests;

/// <summary>Runs alone: it counts the bytes of the process-wide system pool, which every data file writer uses.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SystemMemoryPoolCollection
{
    public const string Name = "system memory pool";
}

[Collection(SystemMemoryPoolCollection.Name)]
public sealed class MemoryPoolTests
{
    [Fact]
    public void Data_file_writer_buffers_its_row_group_in_the_system_pool_and_frees_it_on_close()
    {
        using var dir = new TempDir();
        var store = new LocalLogStore(dir.Path);
        var schema = TestData.IdNameVersion;
        const int rows = 50_000;
        var batch = TestData.Rows(schema, Enumerable.Range(0, rows).Select(i => ((long)i, (string?)("name-" + i), (long)(i % 7))));
        var system = ParquetSharp.MemoryPool.SystemMemoryPool();
        Assert.Equal("system", DataFileWriter.Pool.BackendName);

        var before = system.BytesAllocated;
        long during;
        using (var writer = new DataFileWriter(store, "part-0.parquet", schema.ToArrowSchema(), schema.Columns, numIndexedCols: 32))
        {
            writer.Write(batch);
            during = system.BytesAllocated;
            writer.Close();
        }

        var after = system.BytesAllocated;

        // The open row group (50k ids and names, encoded) lives in the system pool until the file closes.
        Assert.True(during - before > 1_000_000, $"system pool grew by {during - before} bytes while the row group was buffered");
        Assert.True(after - before < 64 * 1024, $"system pool still holds {after - before} bytes after close");
        using var reader = new ParquetSharp.ParquetFileReader(Path.Combine(dir.Path, "part-0.parquet"));
        Assert.Equal(rows, reader.FileMetaData.NumRows);
    }
}
