using Apache.Arrow;
using DuckDB.NET.Data;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ingest-delta-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class TestData
{
    public static readonly StreamSchema IdNameVersion = new([
        new Field("id", DataType.Int64, Nullable: false),
        new Field("name", DataType.String),
        new Field("version", DataType.Int64),
    ]);

    public static RecordBatch Rows(StreamSchema schema, IEnumerable<(long Id, string? Name, long Version)> rows)
    {
        var ids = new Int64Array.Builder();
        var names = new StringArray.Builder();
        var versions = new Int64Array.Builder();
        var n = 0;
        foreach (var (id, name, version) in rows)
        {
            ids.Append(id);
            if (name is null)
            {
                names.AppendNull();
            }
            else
            {
                names.Append(name);
            }

            versions.Append(version);
            n++;
        }

        return new RecordBatch(schema.ToArrowSchema(), [ids.Build(), names.Build(), versions.Build()], n);
    }

    public static async Task<Dictionary<long, (string? Name, long Version)>> ReadAllAsync(DeltaTable table, DeltaSnapshot snapshot)
    {
        var result = new Dictionary<long, (string?, long)>();
        await foreach (var batch in table.ScanAsync(snapshot, CancellationToken.None))
        {
            var ids = (Int64Array)batch.Column(0);
            var names = (StringArray)batch.Column(1);
            var versions = (Int64Array)batch.Column(2);
            for (var i = 0; i < batch.Length; i++)
            {
                Assert.True(result.TryAdd(ids.GetValue(i)!.Value, (names.GetString(i), versions.GetValue(i)!.Value)), $"id {ids.GetValue(i)} appears twice");
            }
        }

        return result;
    }

    public static async Task<long> CountAsync(DeltaTable table, DeltaSnapshot snapshot)
    {
        long n = 0;
        await foreach (var batch in table.ScanAsync(snapshot, CancellationToken.None))
        {
            n += batch.Length;
        }

        return n;
    }

    /// <summary>
    /// The folder holding delta-golden: env INGEST_SHARED_DIR, else the repository's copy in tests/data (found by an
    /// upward search from the test binaries), so a fresh clone runs the golden tests on its own.
    /// </summary>
    public static string SharedDir()
    {
        var env = Environment.GetEnvironmentVariable("INGEST_SHARED_DIR");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(System.IO.Path.Combine(env, "delta-golden")))
        {
            return env;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "tests", "data");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "delta-golden")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("No tests/data/delta-golden folder found above the test binaries; set INGEST_SHARED_DIR.");
    }

    public static DuckDBConnection DuckDb()
    {
        var c = new DuckDBConnection("Data Source=:memory:");
        c.Open();
        return c;
    }

    public static object? Scalar(DuckDBConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
