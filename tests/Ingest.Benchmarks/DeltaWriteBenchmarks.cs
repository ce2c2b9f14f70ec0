using System.Globalization;
using Apache.Arrow;
using BenchmarkDotNet.Attributes;
using DuckDB.NET.Data;
using Ingest.Delta;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Benchmarks;

/// <summary>
/// The Delta writer against DuckDB's Parquet writer on the same 1M rows x 8 columns (ints, decimals, timestamps,
/// strings), both from memory to Snappy Parquet; and a merge of 10k changed keys (9k updates, 1k deletes) into a
/// 1M-row table of 10 files, keys spread over the whole table or clustered in recent ids. Each iteration starts from
/// fresh batches / a fresh copy of the table (setup not timed). The files a merge rewrites are printed after it.
/// Run: <c>dotnet run -c Release --project tests/Ingest.Benchmarks -- --filter *DeltaWrite* --job short</c>.
/// </summary>
public class DeltaWriteBenchmarks
{
    private const int Rows = 1_000_000;
    private const int BatchRows = 131_072;
    private const int Changes = 10_000;


    private string _root = "";
    private string _baseTable = "";
    private string _workTable = "";
    private List<RecordBatch> _batches = [];
    private DuckDBConnection? _duck;
    private long[] _spread = [];
    private long[] _recent = [];
    private bool[] _deletes = [];

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "ingest-bench-delta-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        _duck = new DuckDBConnection("Data Source=:memory:");
        _duck.Open();
        Exec($"""
            CREATE TABLE t AS SELECT
              i::BIGINT AS id, (i % 1000)::INTEGER AS qty, ((i % 100000) / 100.0)::DECIMAL(12,2) AS price,
              CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 0.0001)::DECIMAL(18,4) END AS amount,
              TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i) AS created_at,
              CASE WHEN i % 3 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i + 60) END AS updated_at,
              'customer-' || (i % 50000)::VARCHAR AS name,
              CASE WHEN i % 7 = 0 THEN NULL ELSE (['new', 'paid', 'shipped', 'cancelled'])[(i % 4) + 1] END AS status
            FROM range({Rows}) r(i)
            """);

        // The merge target: 1M rows in 10 files, ids ascending (as an append-ordered table is).
        _baseTable = Path.Combine(_root, "base");
        var table = DeltaTable.OpenOrCreateAsync(_baseTable, OrderRows.Schema, [], null, CancellationToken.None).GetAwaiter().GetResult();
        table.MaxRowsPerFile = Rows / 10;
        table.AppendAsync(OrderRows.Batches(0, Rows, 0, BatchRows), new CommitOptions("WRITE"), CancellationToken.None).GetAwaiter().GetResult();

        _spread = Pick(42, Rows, 0);
        _recent = Pick(43, 20_000, Rows - 20_000);
        _deletes = _spread.Select((_, i) => i % 10 == 0).ToArray();
    }

    /// <summary>10k distinct ids among <paramref name="range"/> ids from <paramref name="offset"/>, ascending.</summary>
    private static long[] Pick(int seed, long range, long offset)
    {
        var random = new Random(seed);
        var keys = new HashSet<long>();
        while (keys.Count < Changes)
        {
            keys.Add(offset + random.NextInt64(range));
        }

        return keys.Order().ToArray();
    }

    private void Exec(string sql)
    {
        using var cmd = _duck!.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    // Writing hands a batch's buffers to Parquet: every iteration gets fresh ones.
    [IterationSetup(Target = nameof(DeltaAppend))]
    public void FreshBatches() => _batches = OrderRows.Batches(0, Rows, 0, BatchRows);

    [Benchmark(Description = "Delta append 1M x 8")]
    public async Task<long> DeltaAppend()
    {
        var path = Path.Combine(_root, "append-" + Guid.NewGuid().ToString("N")[..8]);
        var table = await DeltaTable.OpenOrCreateAsync(path, OrderRows.Schema, [], null, CancellationToken.None);
        var result = await table.AppendAsync(_batches, new CommitOptions("WRITE"), CancellationToken.None);
        Directory.Delete(path, recursive: true);
        return result.RowsWritten;
    }

    // Same invocation settings as the Delta side (one call per iteration), so that the ratio is computed.
    [IterationSetup(Target = nameof(DuckDbCopy))]
    public void NothingToPrepare()
    {
    }

    [Benchmark(Baseline = true, Description = "DuckDB COPY 1M x 8 to Parquet")]
    public void DuckDbCopy()
    {
        var file = Path.Combine(_root, "duck-" + Guid.NewGuid().ToString("N")[..8] + ".parquet");
        Exec($"COPY t TO '{file}' (FORMAT parquet, COMPRESSION snappy)");
        File.Delete(file);
    }

    [IterationSetup(Targets = [nameof(MergeSpread), nameof(MergeRecent)])]
    public void FreshTable()
    {
        _workTable = Path.Combine(_root, "merge-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var f in Directory.GetFiles(_baseTable, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_workTable, Path.GetRelativePath(_baseTable, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
    }

    [Benchmark(Description = "Merge 10k keys (spread) into 1M rows")]
    public Task<int> MergeSpread() => MergeAsync(_spread, "spread");

    [Benchmark(Description = "Merge 10k keys (recent) into 1M rows")]
    public Task<int> MergeRecent() => MergeAsync(_recent, "recent");

    private async Task<int> MergeAsync(long[] keys, string what)
    {
        var table = (await DeltaTable.TryOpenAsync(_workTable, CancellationToken.None))!;
        table.MaxRowsPerFile = Rows / 10;
        // The source's buffers go into the new files: a fresh batch each time (9k updates, 1k deletes).
        var source = OrderRows.Build(keys, version: 1);
        var result = await table.MergeAsync(new MergeRequest(source, _deletes, ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// merge ({what}): rewrote {result.FilesRemoved} of 10 files, wrote {result.FilesAdded} files, {result.RowsWritten} rows"));
        return result.FilesRemoved;
    }

    [IterationCleanup(Targets = [nameof(MergeSpread), nameof(MergeRecent)])]
    public void DropTable()
    {
        if (Directory.Exists(_workTable))
        {
            Directory.Delete(_workTable, recursive: true);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _duck?.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
