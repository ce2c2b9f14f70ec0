using System.Globalization;
using Apache.Arrow;
using BenchmarkDotNet.Attributes;
using Ingest.Delta;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Benchmarks;

/// <summary>
/// Small merges, copy-on-write against deletion vectors: 100 or 10k keys (9 in 10 updates, 1 in 10 deletes), spread
/// over a 1M-row table of 10 files (8 columns: ints, decimals, timestamps, strings), into a table without and one with
/// <c>delta.enableDeletionVectors</c>. Copy-on-write rewrites every file holding a changed key; deletion vectors read
/// only the key column of those files and write a DV file and one new file of the changed rows. Each iteration merges
/// into a fresh copy of the table (setup not timed); what each merge did is printed after it.
/// Run: <c>dotnet run -c Release --project tests/Ingest.Benchmarks -- --filter *DeltaMerge* --job short</c>.
/// </summary>
public class DeltaMergeBenchmarks
{
    private const int Rows = 1_000_000;
    private const int BatchRows = 131_072;


    private string _root = "";
    private string _workTable = "";
    private long[] _keys = [];
    private bool[] _deletes = [];

    /// <summary>Keys changed by the merge.</summary>
    [Params(100, 10_000)]
    public int Keys { get; set; }

    /// <summary><c>cow</c>: copy-on-write (default tables); <c>dv</c>: deletion vectors.</summary>
    [Params("cow", "dv")]
    public string Mode { get; set; } = "cow";

    private string BaseTable => Path.Combine(_root, "base-" + Mode);

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "ingest-bench-merge-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        var config = Mode == "dv" ? new Dictionary<string, string> { ["delta.enableDeletionVectors"] = "true" } : null;
        var table = DeltaTable.OpenOrCreateAsync(BaseTable, OrderRows.Schema, [], config, CancellationToken.None).GetAwaiter().GetResult();
        table.MaxRowsPerFile = Rows / 10;
        var batches = new List<RecordBatch>();
        for (long s = 0; s < Rows; s += BatchRows)
        {
            var n = (int)Math.Min(BatchRows, Rows - s);
            batches.Add(OrderRows.Build(Enumerable.Range(0, n).Select(i => s + i).ToArray(), 0));
        }

        table.AppendAsync(batches, new CommitOptions("WRITE"), CancellationToken.None).GetAwaiter().GetResult();

        var random = new Random(42);
        var keys = new HashSet<long>();
        while (keys.Count < Keys)
        {
            keys.Add(random.NextInt64(Rows));
        }

        _keys = keys.Order().ToArray();
        _deletes = _keys.Select((_, i) => i % 10 == 0).ToArray();
    }

    [IterationSetup]
    public void FreshTable()
    {
        _workTable = Path.Combine(_root, "merge-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var f in Directory.GetFiles(BaseTable, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_workTable, Path.GetRelativePath(BaseTable, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
    }

    [Benchmark(Description = "Merge keys spread over 1M rows / 10 files")]
    public async Task<int> Merge()
    {
        var table = (await DeltaTable.TryOpenAsync(_workTable, CancellationToken.None))!;
        table.MaxRowsPerFile = Rows / 10;
        var source = OrderRows.Build(_keys, version: 1);
        var result = await table.MergeAsync(new MergeRequest(source, _deletes, ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        var dvs = table.Describe().FilesWithDeletionVectors;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"// merge {Keys} keys ({Mode}): removed {result.FilesRemoved} files, wrote {result.FilesAdded} files / {result.RowsWritten} rows, {dvs} files with a DV"));
        return result.FilesRemoved;
    }

    [IterationCleanup]
    public void DropTable()
    {
        if (Directory.Exists(_workTable))
        {
            Directory.Delete(_workTable, recursive: true);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);
}

/// <summary>
/// A merge whose keys the table cannot hold yet (a snapshot into a <c>merge</c> table) against a plain append of the same
/// 1M rows x 8 columns: into an empty table, and into a table of 1M lower keys (10 files whose key stats exclude every
/// source key). Such a merge should cost what the append costs. The source batch is built per iteration (not timed).
/// Run: <c>dotnet run -c Release --project tests/Ingest.Benchmarks -- --filter *DeltaMergeNewKeys* --job short --inProcess</c>.
/// </summary>
public class DeltaMergeNewKeysBenchmarks
{
    private const int Rows = 1_000_000;

    private string _root = "";
    private string _workTable = "";
    private RecordBatch? _source;

    private string LowerTable => Path.Combine(_root, "lower");

    [GlobalSetup]
    public void Setup()
    {
        _root = Path.Combine(Path.GetTempPath(), "ingest-bench-newkeys-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_root);
        var table = DeltaTable.OpenOrCreateAsync(LowerTable, OrderRows.Schema, [], null, CancellationToken.None).GetAwaiter().GetResult();
        table.MaxRowsPerFile = Rows / 10;
        table.AppendAsync(OrderRows.Batches(0, Rows, 0, 131_072), new CommitOptions("WRITE"), CancellationToken.None).GetAwaiter().GetResult();
    }

    [IterationSetup(Targets = [nameof(Append), nameof(MergeIntoEmpty)])]
    public void FreshEmptyTable()
    {
        _workTable = Path.Combine(_root, "empty-" + Guid.NewGuid().ToString("N")[..8]);
        DeltaTable.OpenOrCreateAsync(_workTable, OrderRows.Schema, [], null, CancellationToken.None).GetAwaiter().GetResult();
        _source = OrderRows.Build(Enumerable.Range(Rows, Rows).Select(i => (long)i).ToArray(), 1);
    }

    [IterationSetup(Targets = [nameof(MergeIntoLowerKeys), nameof(MergeIntoLowerKeysGeneralPath)])]
    public void FreshLowerTable()
    {
        _workTable = Path.Combine(_root, "lower-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var f in Directory.GetFiles(LowerTable, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_workTable, Path.GetRelativePath(LowerTable, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }

        _source = OrderRows.Build(Enumerable.Range(Rows, Rows).Select(i => (long)i).ToArray(), 1);
    }

    [Benchmark(Baseline = true, Description = "Append 1M rows")]
    public async Task<long> Append()
    {
        var table = (await DeltaTable.TryOpenAsync(_workTable, CancellationToken.None))!;
        table.MaxRowsPerFile = Rows;
        var result = await table.AppendAsync([_source!], new CommitOptions("WRITE"), CancellationToken.None);
        return result.RowsWritten;
    }

    [Benchmark(Description = "Merge 1M new keys into an empty table")]
    public Task<long> MergeIntoEmpty() => MergeAsync();

    [Benchmark(Description = "Merge 1M new keys into 1M lower keys")]
    public Task<long> MergeIntoLowerKeys() => MergeAsync();

    /// <summary>The same merge with its last row a delete (of a key the table lacks): the general merge, for comparison.</summary>
    [Benchmark(Description = "Merge 1M new keys into 1M lower keys, 1 delete (general merge)")]
    public Task<long> MergeIntoLowerKeysGeneralPath()
    {
        var deletes = new bool[Rows];
        deletes[^1] = true;
        return MergeAsync(deletes);
    }

    private async Task<long> MergeAsync(bool[]? deletes = null)
    {
        var table = (await DeltaTable.TryOpenAsync(_workTable, CancellationToken.None))!;
        table.MaxRowsPerFile = Rows;
        deletes ??= new bool[Rows];
        var result = await table.MergeAsync(new MergeRequest(_source!, deletes, ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        var expected = deletes.Count(d => !d);
        if (result.FilesRemoved != 0 || result.RowsWritten != expected)
        {
            throw new InvalidOperationException($"The merge removed {result.FilesRemoved} files and wrote {result.RowsWritten} rows; new keys should only add {expected}.");
        }

        return result.RowsWritten;
    }

    [IterationCleanup]
    public void DropTable()
    {
        if (Directory.Exists(_workTable))
        {
            Directory.Delete(_workTable, recursive: true);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);
}
