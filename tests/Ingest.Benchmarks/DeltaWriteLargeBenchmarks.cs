using System.Diagnostics;
using System.Globalization;
using Apache.Arrow;
using BenchmarkDotNet.Attributes;
using DuckDB.NET.Data;
using Ingest.Delta;

namespace Ingest.Benchmarks;

/// <summary>
/// The scale: <see cref="Rows"/> rows x 8 columns (the rows of <see cref="DeltaMergeBenchmarks"/>) appended to a
/// new Delta table against DuckDB's <c>COPY … TO parquet</c> of the same rows in the same run; and 10k changed keys (9k
/// updates, 1k deletes, spread over the whole table) merged into a table of that size, copy-on-write and with
/// deletion vectors. Files of 1M rows (the default). Each iteration starts from fresh batches / a fresh copy of the table
/// (setup not timed); every operation prints what it did and the process's peak working set so far.
/// Run: <c>dotnet run -c Release --project tests/Ingest.Benchmarks -- --filter *DeltaWriteLarge* --inProcess --launchCount 1 --warmupCount 1 --iterationCount 3</c>.
/// </summary>
public class DeltaWriteLargeBenchmarks
{
    private const int BatchRows = 131_072;
    private const int Changes = 10_000;

    private string _root = "";
    private string _workTable = "";
    private List<RecordBatch> _batches = [];
    private DuckDBConnection? _duck;
    private long[] _keys = [];
    private bool[] _deletes = [];

    /// <summary>Rows written, and rows in the merge target.</summary>
    [Params(10_000_000)]
    public int Rows { get; set; }

    /// <summary>The append and COPY benchmarks: DuckDB's copy of the rows (the merge tables are not built for them).</summary>
    [GlobalSetup(Targets = [nameof(DeltaAppend), nameof(DuckDbCopy)])]
    public void SetupWrite()
    {
        CreateRoot();
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
    }

    /// <summary>The merge benchmarks: a base table of <see cref="Rows"/> rows per mode, copied fresh for each iteration.</summary>
    [GlobalSetup(Targets = [nameof(MergeCopyOnWrite), nameof(MergeDeletionVectors)])]
    public void SetupMerge()
    {
        CreateRoot();
        foreach (var mode in new[] { "cow", "dv" })
        {
            var config = mode == "dv" ? new Dictionary<string, string> { ["delta.enableDeletionVectors"] = "true" } : null;
            var table = DeltaTable.OpenOrCreateAsync(Path.Combine(_root, "base-" + mode), OrderRows.Schema, [], config, CancellationToken.None).GetAwaiter().GetResult();
            // One commit per 1M rows: the batches of one commit are held in memory.
            for (long s = 0; s < Rows; s += 1_000_000)
            {
                table.AppendAsync(OrderRows.Batches(s, Math.Min(1_000_000, Rows - s), 0, BatchRows), new CommitOptions("WRITE"), CancellationToken.None).GetAwaiter().GetResult();
            }
        }

        var random = new Random(42);
        var keys = new HashSet<long>();
        while (keys.Count < Changes)
        {
            keys.Add(random.NextInt64(Rows));
        }

        _keys = keys.Order().ToArray();
        _deletes = _keys.Select((_, i) => i % 10 == 0).ToArray();
    }

    private void CreateRoot()
    {
        _root = Path.Combine(Path.GetTempPath(), "ingest-bench-large-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
    }

    private void Exec(string sql)
    {
        using var cmd = _duck!.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static string Peak() =>
        string.Create(CultureInfo.InvariantCulture, $"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024)} MiB");

    [IterationSetup(Target = nameof(DeltaAppend))]
    public void FreshBatches() => _batches = OrderRows.Batches(0, Rows, 0, BatchRows);

    [Benchmark(Description = "Delta append N x 8")]
    public async Task<long> DeltaAppend()
    {
        var path = Path.Combine(_root, "append-" + Guid.NewGuid().ToString("N")[..8]);
        var table = await DeltaTable.OpenOrCreateAsync(path, OrderRows.Schema, [], null, CancellationToken.None);
        var result = await table.AppendAsync(_batches, new CommitOptions("WRITE"), CancellationToken.None);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"// append: {result.FilesAdded} files, {result.RowsWritten} rows, {Peak()}"));
        _batches = [];
        Directory.Delete(path, recursive: true);
        return result.RowsWritten;
    }

    [IterationSetup(Target = nameof(DuckDbCopy))]
    public void NothingToPrepare()
    {
    }

    [Benchmark(Baseline = true, Description = "DuckDB COPY N x 8 to Parquet")]
    public void DuckDbCopy()
    {
        var file = Path.Combine(_root, "duck-" + Guid.NewGuid().ToString("N")[..8] + ".parquet");
        Exec($"COPY t TO '{file}' (FORMAT parquet, COMPRESSION snappy)");
        File.Delete(file);
    }

    [IterationSetup(Target = nameof(MergeCopyOnWrite))]
    public void FreshCopyOnWriteTable() => CopyBase("cow");

    [IterationSetup(Target = nameof(MergeDeletionVectors))]
    public void FreshDeletionVectorTable() => CopyBase("dv");

    private void CopyBase(string mode)
    {
        _workTable = Path.Combine(_root, "merge-" + Guid.NewGuid().ToString("N")[..8]);
        var source = Path.Combine(_root, "base-" + mode);
        foreach (var f in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_workTable, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
    }

    [Benchmark(Description = "Merge 10k keys into N rows, copy-on-write")]
    public Task<int> MergeCopyOnWrite() => MergeAsync("cow");

    [Benchmark(Description = "Merge 10k keys into N rows, deletion vectors")]
    public Task<int> MergeDeletionVectors() => MergeAsync("dv");

    private async Task<int> MergeAsync(string mode)
    {
        var clock = Stopwatch.StartNew();
        var table = (await DeltaTable.TryOpenAsync(_workTable, CancellationToken.None))!;
        var source = OrderRows.Build(_keys, version: 1);
        var result = await table.MergeAsync(new MergeRequest(source, _deletes, ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        clock.Stop();
        var dvs = table.Describe().FilesWithDeletionVectors;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// merge ({mode}): {clock.ElapsedMilliseconds} ms; removed {result.FilesRemoved} of {Rows / 1_000_000} files, {dvs} with a DV, wrote {result.RowsWritten} rows; {Peak()}"));
        return result.FilesRemoved;
    }

    [IterationCleanup(Targets = [nameof(MergeCopyOnWrite), nameof(MergeDeletionVectors)])]
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
