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

    internal static readonly StreamSchema Schema = new([
        new Field("id", DataType.Int64, false),
        new Field("qty", DataType.Int32, false),
        new Field("price", DataType.Decimal(12, 2), false),
        new Field("amount", DataType.Decimal(18, 4)),
        new Field("created_at", DataType.Timestamp, false),
        new Field("updated_at", DataType.Timestamp),
        new Field("name", DataType.String, false),
        new Field("status", DataType.String),
    ]);

    private static readonly string[] Statuses = ["new", "paid", "shipped", "cancelled"];
    private static readonly DateTimeOffset T0 = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

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
        var table = DeltaTable.OpenOrCreateAsync(BaseTable, Schema, [], config, CancellationToken.None).GetAwaiter().GetResult();
        table.MaxRowsPerFile = Rows / 10;
        var batches = new List<RecordBatch>();
        for (long s = 0; s < Rows; s += BatchRows)
        {
            var n = (int)Math.Min(BatchRows, Rows - s);
            batches.Add(Build(Enumerable.Range(0, n).Select(i => s + i).ToArray(), 0));
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

    internal static RecordBatch Build(long[] ids, int version)
    {
        var id = new Int64Array.Builder();
        var qty = new Int32Array.Builder();
        var price = new Decimal128Array.Builder((Apache.Arrow.Types.Decimal128Type)Schema.Columns[2].Type.ToArrowType());
        var amount = new Decimal128Array.Builder((Apache.Arrow.Types.Decimal128Type)Schema.Columns[3].Type.ToArrowType());
        var tsType = (Apache.Arrow.Types.TimestampType)DataType.Timestamp.ToArrowType();
        var created = new TimestampArray.Builder(tsType);
        var updated = new TimestampArray.Builder(tsType);
        var name = new StringArray.Builder();
        var status = new StringArray.Builder();
        foreach (var i in ids)
        {
            id.Append(i);
            qty.Append((int)(i % 1000) + version);
            price.Append((i % 100000) / 100m);
            if (i % 10 == 0)
            {
                amount.AppendNull();
            }
            else
            {
                amount.Append(i * 0.0001m);
            }

            created.Append(T0.AddSeconds(i));
            if (i % 3 == 0)
            {
                updated.AppendNull();
            }
            else
            {
                updated.Append(T0.AddSeconds(i + 60 + version));
            }

            name.Append(string.Create(CultureInfo.InvariantCulture, $"customer-{i % 50000}"));
            if (i % 7 == 0)
            {
                status.AppendNull();
            }
            else
            {
                status.Append(Statuses[i % 4]);
            }
        }

        return new RecordBatch(Schema.ToArrowSchema(), [id.Build(), qty.Build(), price.Build(), amount.Build(), created.Build(), updated.Build(), name.Build(), status.Build()], ids.Length);
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
        var source = Build(_keys, version: 1);
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
