using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ingest.Connectors.Stripe;
using Ingest.Connectors.Stripe.Tests;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Benchmarks;

/// <summary>
/// Issue 8's Stripe figure: the Stripe connector's reader snapshots N customers from the stateful Stripe fake (the one of
/// tests/Ingest.Connectors.Stripe.Tests, compiled in) at <c>requestsPerSecond</c>, with the fake enforcing Stripe's live-mode
/// limit of 100 requests/s as Stripe does (a 429 for any request over it in a one-second window; <c>--enforce</c> changes
/// it). The fake stamps a request after its simulated latency, so its one-second windows see the client's even pacing
/// with that latency's jitter. Prints the achieved request rate against the
/// setting, the 429s, rows/s and the elapsed time. The goal: within 5% of the setting, no 429.
/// </summary>
internal static class StripeRateBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var objects = 100_000;
        var rps = 80.0;
        var latencyMs = 30;
        var parallel = 8;
        var enforce = 100;
        for (var i = 0; i + 1 < args.Length; i++)
        {
            switch (args[i])
            {
                case "--objects": objects = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rps": rps = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--latency-ms": latencyMs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--parallel-windows": parallel = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--enforce": enforce = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: break;
            }
        }

        using var fake = new FakeStripe { Latency = TimeSpan.FromMilliseconds(latencyMs), EnforcedRatePerSecond = enforce };
        var now = DateTimeOffset.UtcNow;
        // Spread over a year before now so that the created windows (30 days) are read in parallel.
        var span = TimeSpan.FromDays(360).Ticks / Math.Max(1, objects);
        for (var i = 0; i < objects; i++)
        {
            fake.Seed("customers", now.AddDays(-361).AddTicks(span * i));
        }

        var config = JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["apiKey"] = FakeStripe.ApiKey,
            ["apiBase"] = fake.BaseUrl,
            ["startDate"] = now.AddDays(-400).ToString("O", CultureInfo.InvariantCulture),
            ["requestsPerSecond"] = rps,
            ["pageSize"] = 100,
            ["windowDays"] = 30,
            ["parallelWindows"] = parallel,
        });

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Stripe rate benchmark: {objects} customers, requestsPerSecond {rps}, fake latency {latencyMs} ms (it answers 429 above {enforce} requests in any second), parallelWindows {parallel}, {Environment.ProcessorCount} cores"));
        var connector = new StripeConnector();
        var context = new ReadContext("bench", config, [new StreamSelection("customers", SyncMode.Incremental)], null, NullConnectorLog.Instance);
        long rows = 0;
        var sw = Stopwatch.StartNew();
        await using (var reader = connector.OpenReader(context))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(30));
            await foreach (var m in reader.ReadAsync(cts.Token))
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

        sw.Stop();
        var log = fake.Log.ToList();
        var throttled = log.Count(l => l.Status == 429);
        // The achieved rate over the requests' own span (first to last arrival), and over the whole read.
        var first = log.Min(l => l.At);
        var last = log.Max(l => l.At);
        var spanSeconds = (last - first).TotalSeconds;
        var achieved = (log.Count - 1) / spanSeconds;
        Console.WriteLine();
        Console.WriteLine("| objects | requests | 429s | setting req/s | achieved req/s | of setting | max in 1 s | rows/s | elapsed s |");
        Console.WriteLine("|---------|----------|------|---------------|----------------|------------|------------|--------|-----------|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {rows,7} | {log.Count,8} | {throttled,4} | {rps,13:0.#} | {achieved,14:0.0} | {achieved / rps,10:P1} | {fake.MaxRequestsPerSecond(),10} | {rows / sw.Elapsed.TotalSeconds,6:0} | {sw.Elapsed.TotalSeconds,9:0.00} |"));
        if (rows != objects)
        {
            Console.Error.WriteLine($"Read {rows} rows, expected {objects}.");
            return 1;
        }

        return 0;
    }
}
