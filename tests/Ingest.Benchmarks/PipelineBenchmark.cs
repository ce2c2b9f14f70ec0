using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Ingest.Delta;

namespace Ingest.Benchmarks;

/// <summary>
/// Runs `ingest run --once` on a sample-connector snapshot of about N rows into a fresh lake, once per
/// table mode (merge, then append as the baseline in the same run), and reports rows/s and the child's
/// peak resident set (VmHWM).
/// </summary>
internal static class PipelineBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 1_000_000L;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--rows" && i + 1 < args.Length)
            {
                rows = long.Parse(args[++i], CultureInfo.InvariantCulture);
            }
        }

        var meta = typeof(PipelineBenchmark).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value);
        var root = meta["IngestRepoRoot"]!;
        var configuration = meta["IngestConfiguration"]!;
        var ingestDll = Path.Combine(root, "src", "Ingest.Host", "bin", configuration, "net10.0", "ingest.dll");
        if (!File.Exists(ingestDll))
        {
            Console.Error.WriteLine($"ingest.dll not found at {ingestDll}: build the solution first.");
            return 1;
        }

        // The sample's order count drives most rows (each order has 1-5 lines): size the rest around it.
        var orders = Math.Max(1, rows * 10 / 46);
        var customers = Math.Max(1, rows / 10);
        var products = Math.Max(1, rows / 100);

        Console.WriteLine($"Pipeline benchmark: sample connector snapshot (customers {customers}, products {products}, orders {orders} + lines), configuration {configuration}, {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| mode   | rows      | seconds | rows/s    | peak RSS MiB | commits |");
        Console.WriteLine("|--------|-----------|---------|-----------|--------------|---------|");
        foreach (var mode in new[] { "merge", "append" })
        {
            var dir = Directory.CreateTempSubdirectory("ingest-bench-");
            try
            {
                var pipeline = Path.Combine(dir.FullName, "pipeline.yaml");
                await File.WriteAllTextAsync(pipeline, $"""
                    lake: ./lake
                    transport: embedded
                    connections:
                      - name: shop
                        connector: sample
                        config: {"{"}seed: 7, customers: {customers}, products: {products}, orders: {orders}, changes: 0, changesPerSecond: 0, batchSize: 10000{"}"}
                        streams:
                          - {"{"}name: customers, mode: {mode}{"}"}
                          - {"{"}name: products, mode: {mode}{"}"}
                          - {"{"}name: orders, mode: {mode}{"}"}
                          - {"{"}name: order_lines, mode: {mode}{"}"}
                    """);
                var (seconds, peakKib, exit) = await IngestChild.RunOnceAsync(ingestDll, pipeline, Path.Combine(root, "artifacts", "plugins"));
                if (exit != 0)
                {
                    Console.Error.WriteLine($"ingest exited with {exit}");
                    return 1;
                }

                long total = 0;
                long commits = 0;
                foreach (var stream in new[] { "customers", "products", "orders", "order_lines" })
                {
                    var table = await DeltaTable.TryOpenAsync(Path.Combine(dir.FullName, "lake", "shop", stream), CancellationToken.None)
                        ?? throw new InvalidOperationException($"table {stream} missing");
                    total += table.Snapshot.RowCount ?? 0;
                    commits += table.Snapshot.Version + 1;
                }

                Console.WriteLine($"| {mode,-6} | {total,9} | {seconds,7:F2} | {total / seconds,9:F0} | {peakKib / 1024.0,12:F0} | {commits,7} |");
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        }

        return 0;
    }
}
