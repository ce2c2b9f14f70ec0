using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using DuckDB.NET.Data;
using Ingest.Delta;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;

namespace Ingest.Benchmarks;

/// <summary>
/// Issue 7's performance goal: ~1 GB of CSV (10M rows x 8 columns in several files) from a local folder into a
/// Delta table through the engine (`ingest run --once`, files connector, append mode, schema inferred), against
/// DuckDB's <c>COPY (SELECT * FROM read_csv(...)) TO '...parquet'</c> on the same files in the same run. Goals:
/// at most 2x DuckDB's time, and a peak RSS (VmHWM of the ingest child process) of at most 300 MB.
/// The CSV is generated once and cached under the temp folder (ingest-bench-files-csv-&lt;rows&gt;).
/// </summary>
internal static class FileIngestBenchmark
{
    private const int Files = 10;

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 10_000_000L;
        var batchRows = 10_000; // the connector's default
        var threads = 0;
        var readerOnly = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rows" when i + 1 < args.Length: rows = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch-rows" when i + 1 < args.Length: batchRows = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--duckdb-threads" when i + 1 < args.Length: threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--reader-only": readerOnly = true; break;
                default:
                    Console.Error.WriteLine($"Unknown argument '{args[i]}': files-csv takes --rows N, --batch-rows N, --duckdb-threads N, --reader-only.");
                    return 2;
            }
        }

        var meta = typeof(FileIngestBenchmark).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value);
        var root = meta["IngestRepoRoot"]!;
        var configuration = meta["IngestConfiguration"]!;
        var ingestDll = Path.Combine(root, "src", "Ingest.Host", "bin", configuration, "net10.0", "ingest.dll");
        var plugins = Path.Combine(root, "artifacts", "plugins");
        if (!File.Exists(ingestDll) || !Directory.Exists(Path.Combine(plugins, "Ingest.Connectors.Files")))
        {
            Console.Error.WriteLine($"ingest.dll ({ingestDll}) or the files plugin ({plugins}) is missing: build the solution in {configuration} first.");
            return 1;
        }

        var source = Path.Combine(Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"ingest-bench-files-csv-{rows}"));
        var bytes = await GenerateAsync(source, rows);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Files benchmark: {rows:N0} rows x 8 columns in {Files} CSV files, {bytes / 1e9:F2} GB ({source}); configuration {configuration}, {Environment.ProcessorCount} cores"));

        if (readerOnly)
        {
            // The shared file reader alone in this process (no DuckDB, no engine): its time and this process's peak RSS.
            var (s, n) = await ReaderOnlyAsync(source, batchRows);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"file reader alone: {n:N0} rows in {s:F2} s ({n / s:F0} rows/s), peak RSS {IngestChild.ReadVmHwmKib(Environment.ProcessId) * 1024 / 1e6:F0} MB"));
            return 0;
        }

        var work = Directory.CreateTempSubdirectory("ingest-bench-files-");
        try
        {
            // DuckDB first (it also warms the page cache for both).
            var parquet = Path.Combine(work.FullName, "duck.parquet");
            var duckSeconds = DuckDbCopy(source, parquet, threads);
            var duckRows = DuckDbCount(parquet);

            // The connector's share: the shared file reader alone, in this process, batches dropped.
            var (readerSeconds, readerRows) = await ReaderOnlyAsync(source, batchRows);

            var pipeline = Path.Combine(work.FullName, "pipeline.yaml");
            await File.WriteAllTextAsync(pipeline, string.Create(CultureInfo.InvariantCulture, $$"""
                lake: ./lake
                transport: embedded
                connections:
                  - name: bench
                    connector: files
                    config:
                      path: "{{source}}"
                      tables:
                        - name: orders
                          pattern: "*.csv"
                          format: csv
                          options: {batchRows: {{batchRows}}}
                    streams:
                      - {name: orders, mode: append}
                """));
            var (seconds, peakKib, exit) = await IngestChild.RunOnceAsync(ingestDll, pipeline, plugins, environment: new Dictionary<string, string> { ["INGEST_DATA"] = Path.Combine(work.FullName, "state") }, workDir: work.FullName);
            if (exit != 0)
            {
                Console.Error.WriteLine($"ingest exited with {exit}");
                return 1;
            }

            var table = await DeltaTable.TryOpenAsync(Path.Combine(work.FullName, "lake", "bench", "orders"), CancellationToken.None)
                ?? throw new InvalidOperationException("the orders table is missing");
            var ours = table.Snapshot.RowCount ?? 0;
            if (ours != rows || duckRows != rows)
            {
                Console.Error.WriteLine($"row counts differ: ours {ours}, DuckDB {duckRows}, expected {rows}");
                return 1;
            }

            var ratio = seconds / duckSeconds;
            var peakMb = peakKib * 1024 / 1e6;
            Console.WriteLine();
            Console.WriteLine("| engine                                   | rows       | seconds | rows/s     | peak RSS MB |");
            Console.WriteLine("|------------------------------------------|------------|---------|------------|-------------|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| DuckDB COPY read_csv -> Parquet (in-proc) | {duckRows,10} | {duckSeconds,7:F2} | {duckRows / duckSeconds,10:F0} |             |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| ingest run --once files -> Delta (append) | {ours,10} | {seconds,7:F2} | {ours / seconds,10:F0} | {peakMb,11:F0} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| of which: file reader alone (in-proc)    | {readerRows,10} | {readerSeconds,7:F2} | {readerRows / readerSeconds,10:F0} |             |"));
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio ours/DuckDB: {ratio:F2}x (goal <= 2x: {(ratio <= 2 ? "met" : "missed")}); peak RSS {peakMb:F0} MB (goal <= 300 MB: {(peakMb <= 300 ? "met" : "missed")}); {table.Snapshot.Version + 1} commits"));
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Writes the files once (a marker file says they are complete); returns their total size.</summary>
    private static async Task<long> GenerateAsync(string folder, long rows)
    {
        var done = Path.Combine(folder, "_COMPLETE");
        if (!File.Exists(done))
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }

            Directory.CreateDirectory(folder);
            var sw = Stopwatch.StartNew();
            var perFile = (rows + Files - 1) / Files;
            var start = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            await Parallel.ForAsync(0, Files, async (f, ct) =>
            {
                var random = new Random(f + 1);
                await using var w = new StreamWriter(Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"part-{f:000}.csv")), false, new UTF8Encoding(false), 1 << 20);
                await w.WriteAsync("id,customer,sku,qty,price,placed,updated_at,note\n");
                var sb = new StringBuilder(256);
                for (var r = f * perFile; r < Math.Min(rows, (f + 1) * perFile); r++)
                {
                    var placed = start.AddDays(random.Next(0, 730));
                    var updated = start.AddSeconds(random.NextInt64(0, 730L * 86400));
                    sb.Clear();
                    sb.Append(CultureInfo.InvariantCulture, $"{r},cust-{random.Next(0, 1_000_000):000000},SKU-{random.Next(0, 50_000):00000},{random.Next(1, 20)},{random.Next(100, 1_000_000) / 100m:F2},{placed:yyyy-MM-dd},{updated:yyyy-MM-ddTHH:mm:ss}Z,order note {random.Next():x8} {(r % 7 == 0 ? "gift wrap" : "standard")}\n");
                    await w.WriteAsync(sb, ct);
                }
            });
            await File.WriteAllTextAsync(done, "");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generated {rows:N0} rows in {sw.Elapsed.TotalSeconds:F1} s"));
        }

        return Directory.EnumerateFiles(folder, "*.csv").Sum(p => new FileInfo(p).Length);
    }

    /// <summary>A folder as a store (the files connector's own is internal to its plugin).</summary>
    private sealed class Folder(string root) : IFileStore
    {
        public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            foreach (var f in new DirectoryInfo(root).EnumerateFiles("*.csv"))
            {
                yield return new FileEntry(f.Name, f.Length, new DateTimeOffset(f.LastWriteTimeUtc, TimeSpan.Zero));
            }
        }

        public Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken) =>
            Task.FromResult<Stream>(new FileStream(Path.Combine(root, file.Path), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous));
    }

    private static async Task<(double Seconds, long Rows)> ReaderOnlyAsync(string source, int batchRows)
    {
        var table = new FileTableOptions("orders", "*.csv", FileFormat.Csv, new CsvFormatOptions(), null, [], BatchRows: batchRows);
        var context = new ReadContext("bench", default, [new StreamSelection("orders", SyncMode.Cdc)], null, NullConnectorLog.Instance);
        var sw = Stopwatch.StartNew();
        long rows = 0;
        await using (var reader = new FileSourceReader(new Folder(source), [table], context, new FileReadOptions(TimeSpan.FromMinutes(1), TimeSpan.FromHours(1))))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    rows += b.Length;
                    b.Dispose();
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        return (sw.Elapsed.TotalSeconds, rows);
    }

    private static double DuckDbCopy(string source, string parquet, int threads)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        if (threads > 0)
        {
            cmd.CommandText = string.Create(CultureInfo.InvariantCulture, $"SET threads = {threads}");
            cmd.ExecuteNonQuery();
        }

        var glob = Path.Combine(source, "*.csv").Replace("'", "''", StringComparison.Ordinal);
        cmd.CommandText = $"COPY (SELECT * FROM read_csv('{glob}')) TO '{parquet.Replace("'", "''", StringComparison.Ordinal)}' (FORMAT parquet)";
        var sw = Stopwatch.StartNew();
        cmd.ExecuteNonQuery();
        return sw.Elapsed.TotalSeconds;
    }

    private static long DuckDbCount(string parquet)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM read_parquet('{parquet.Replace("'", "''", StringComparison.Ordinal)}')";
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}
