using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta;

namespace Ingest.Connectors.Stripe.Tests;

/// <summary>The real <c>ingest</c> executable reads the fake Stripe into merge tables (needs src/Ingest.Host built).</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Ingest_run_once_mirrors_stripe_into_merge_tables_and_a_second_run_applies_updates_and_deletes_from_events()
    {
        using var stripe = new FakeStripe();
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 45; i++)
        {
            stripe.Seed("customers", now.AddDays(-90).AddHours(i * 40));
        }

        for (var i = 0; i < 12; i++)
        {
            stripe.Seed("charges", now.AddDays(-20).AddHours(i));
        }

        stripe.ThrottleAt.Add(4);
        stripe.FailAt.Add(7);
        var dir = Path.Combine(Path.GetTempPath(), "ingest-stripe-e2e-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            var pipeline = Path.Combine(dir, "pipeline.yaml");
            await File.WriteAllTextAsync(pipeline, $$"""
                lake: ./lake
                connections:
                  - name: pay
                    connector: stripe
                    config:
                      apiKey: {{FakeStripe.ApiKey}}
                      apiBase: {{JsonSerializer.Serialize(stripe.BaseUrl)}}
                      startDate: {{JsonSerializer.Serialize(now.AddDays(-365).ToString("O", CultureInfo.InvariantCulture))}}
                      requestsPerSecond: 25
                      pageSize: 10
                    streams:
                      - {name: customers, mode: merge}
                      - {name: charges, mode: merge}
                """);

            var first = await RunAsync(dir, pipeline);
            Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");
            await AssertTablesEqualFakeAsync(stripe, dir);

            var ids = stripe.Objects("customers").Keys.Order(StringComparer.Ordinal).ToList();
            stripe.Update("customers", ids[0], o => o["email"] = "updated@example.com");
            stripe.Delete("customers", ids[1]);
            stripe.Create("customers", new JsonObject { ["email"] = "fresh@example.com" });
            stripe.Update("charges", stripe.Objects("charges").Keys.First(), o => o["amount_refunded"] = 250);
            var second = await RunAsync(dir, pipeline);
            Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");
            await AssertTablesEqualFakeAsync(stripe, dir);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task Killed_mid_snapshot_and_restarted_loses_no_object_reads_none_twice_and_does_not_re_read_committed_pages()
    {
        using var stripe = new FakeStripe { Latency = TimeSpan.FromMilliseconds(5) };
        var now = DateTimeOffset.UtcNow;
        const int Customers = 1500;
        for (var i = 0; i < Customers; i++)
        {
            stripe.Seed("customers", now.AddDays(-200).AddMinutes(i * 150));
        }

        var dir = Path.Combine(Path.GetTempPath(), "ingest-stripe-kill-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            var pipeline = Path.Combine(dir, "pipeline.yaml");
            await File.WriteAllTextAsync(pipeline, $$"""
                lake: ./lake
                connections:
                  - name: pay
                    connector: stripe
                    config:
                      apiKey: {{FakeStripe.ApiKey}}
                      apiBase: {{JsonSerializer.Serialize(stripe.BaseUrl)}}
                      startDate: {{JsonSerializer.Serialize(now.AddDays(-365).ToString("O", CultureInfo.InvariantCulture))}}
                      requestsPerSecond: 15
                      pageSize: 10
                      parallelWindows: 2
                    streams:
                      - {name: customers, mode: merge}
                """);

            var commitsAtKill = 0;
            var killedAt = 0;
            // Kill -9 about half-way through the 150 pages (the sink commits every 2 s, so some pages are durable by then).
            using (var p = Start(dir, pipeline))
            {
                var log = Path.Combine(dir, "lake", "pay", "customers", "_delta_log");
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (stripe.Log.Count(l => l.Path == "/v1/customers") < 80 && DateTime.UtcNow < deadline && !p.HasExited)
                {
                    await Task.Delay(50);
                }

                if (p.HasExited)
                {
                    Assert.Fail("ingest finished before it could be killed: " + await p.StandardError.ReadToEndAsync());
                }

                killedAt = stripe.Log.Count;
                commitsAtKill = Directory.Exists(log) ? Directory.GetFiles(log, "*.json").Length : 0;
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }

            var pagesBefore = stripe.Log.Count(l => l.Path == "/v1/customers" && l.Status == 200);
            Assert.True(pagesBefore < Customers / 10, $"all {pagesBefore} pages were read before the kill (killed at {killedAt} requests; {stripe.Log.Count} now)");
            Assert.True(commitsAtKill >= 2, $"only {commitsAtKill} commit(s) of customers before the kill");
            var second = await RunAsync(dir, pipeline);
            Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");
            await AssertTablesEqualFakeAsync(stripe, dir, "customers");

            // The restart resumed from the durable checkpoint: only pages read after the last commit (the sink commits
            // every 2 s: some 30 pages at 15 requests/s) and those in flight were fetched again, not the committed ones.
            var served = stripe.Log.Where(l => l.Path == "/v1/customers").Sum(l => l.Items);
            Assert.InRange(served - Customers, 0, 45 * 10);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task AssertTablesEqualFakeAsync(FakeStripe stripe, string dir, params string[] only)
    {
        foreach (var (stream, column) in new[] { ("customers", "email"), ("charges", "amount_refunded") })
        {
            if (only.Length > 0 && !only.Contains(stream))
            {
                continue;
            }

            var expected = stripe.Objects(stream).ToDictionary(kv => kv.Key, kv => kv.Value[column]?.ToJsonString() ?? "null", StringComparer.Ordinal);
            var actual = await ReadAsync(Path.Combine(dir, "lake", "pay", stream), column);
            Assert.Equal(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal), actual.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }
    }

    private static async Task<Dictionary<string, string>> ReadAsync(string tablePath, string column)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                var ids = (StringArray)batch.Column(batch.Schema.GetFieldIndex("id"));
                var values = batch.Column(batch.Schema.GetFieldIndex(column));
                for (var r = 0; r < batch.Length; r++)
                {
                    var v = values switch
                    {
                        StringArray s => s.IsNull(r) ? "null" : JsonSerializer.Serialize(s.GetString(r)),
                        Int64Array l => l.IsNull(r) ? "null" : l.GetValue(r)!.Value.ToString(CultureInfo.InvariantCulture),
                        _ => throw new InvalidOperationException($"Unexpected column type {values.GetType().Name}"),
                    };
                    Assert.True(rows.TryAdd(ids.GetString(r), v), $"{ids.GetString(r)} appears twice in {tablePath}");
                }
            }
        }

        return rows;
    }

    private static Task<(int Code, string Out, string Err)> RunAsync(string dir, string pipeline) =>
        Repo.RunIngestAsync(Path.Combine(dir, "state"), dir, "run", pipeline, "--once", "--plugins", Repo.Plugins);

    private static Process Start(string dir, string pipeline) =>
        Repo.Start(Path.Combine(dir, "state"), dir, "run", pipeline, "--once", "--plugins", Repo.Plugins);
}
