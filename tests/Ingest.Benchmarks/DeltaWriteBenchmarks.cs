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

    private static readonly StreamSchema Schema = new([
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
        var table = DeltaTable.OpenOrCreateAsync(_baseTable, Schema, [], null, CancellationToken.None).GetAwaiter().GetResult();
        table.MaxRowsPerFile = Rows / 10;
        table.AppendAsync(Build(0, Rows, 0), new CommitOptions("WRITE"), CancellationToken.None).GetAwaiter().GetResult();

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

    private static List<RecordBatch> Build(long start, long count, int version)
    {
        var batches = new List<RecordBatch>();
        for (var s = start; s < start + count; s += BatchRows)
        {
            var n = (int)Math.Min(BatchRows, start + count - s);
            batches.Add(Build(Enumerable.Range(0, n).Select(i => s + i).ToArray(), version));
        }

        return batches;
    }

    private static RecordBatch Build(long[] ids, int version)
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

    // Writing hands a batch's buffers to Parquet: every iteration gets fresh ones.
    [IterationSetup(Target = nameof(DeltaAppend))]
    public void FreshBatches() => _batches = Build(0, Rows, 0);

    [Benchmark(Description = "Delta append 1M x 8")]
    public async Task<long> DeltaAppend()
    {
        var path = Path.Combine(_root, "append-" + Guid.NewGuid().ToString("N")[..8]);
        var table = await DeltaTable.OpenOrCreateAsync(path, Schema, [], null, CancellationToken.None);
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
        var source = Build(keys, version: 1);
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
