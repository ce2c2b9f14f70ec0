using System.Globalization;
using System.Text.Json;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

/// <summary>The real <c>ingest</c> executable loads the plugin and reads the fake GA4 into a merge table (needs src/Ingest.Host built).</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Ingest_run_once_mirrors_a_report_into_a_merge_table_and_a_second_run_applies_revisions_and_removals()
    {
        using var fake = new FakeGa();
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        fake.Seed(today.AddDays(-6), today, perDate: 9);
        fake.ThrottleAt.Add(3);
        fake.FailAt.Add(6);
        using var dir = new TempDir("ingest-ga-e2e-");
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            connections:
              - name: web
                connector: google-analytics
                config:
                  propertyId: "{{FakeGa.PropertyId}}"
                  credentialsJson: {{JsonSerializer.Serialize(fake.ServiceAccountJson())}}
                  apiBase: {{JsonSerializer.Serialize(fake.BaseUrl)}}
                  startDate: "{{today.AddDays(-6).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}}"
                  lookbackDays: 3
                  requestsPerSecond: 20
                  pageSize: 4
                  reports:
                    - name: traffic
                      dimensions: [country, deviceCategory]
                      metrics: [activeUsers, totalRevenue]
                streams:
                  - {name: traffic, mode: merge}
            """);

        var first = await RunAsync(dir, pipeline);
        Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");
        await AssertTableEqualsFakeAsync(fake, dir);

        fake.Update(r => r.Date == today.AddDays(-1) && r.Device == "mobile", r => r.Metrics["activeUsers"] += 500);
        Assert.Equal(1, fake.Remove(r => r.Date == today.AddDays(-1) && r.Country == "C002" && r.Device == "tablet"));
        fake.Add(today, "DE", "desktop", "Berlin", 42, 3.5);
        var second = await RunAsync(dir, pipeline);
        Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");
        await AssertTableEqualsFakeAsync(fake, dir);
        // The second run re-read the lookback window only.
        Assert.Equal(1, fake.RequestsFor(today.AddDays(-6)));
    }

    internal static async Task AssertTableEqualsFakeAsync(FakeGa fake, TempDir dir)
    {
        var rows = await Repo.ReadTableAsync(dir.Combine("lake", "web", "traffic"));
        var actual = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            var key = FakeGa.Key3((DateOnly)r["date"]!, (string)r["country"]!, (string)r["deviceCategory"]!);
            Assert.True(actual.TryAdd(key, (long)r["activeUsers"]!), $"{key} appears twice");
        }

        Assert.Equal(fake.Expected().OrderBy(kv => kv.Key, StringComparer.Ordinal), actual.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    internal static Task<(int Code, string Out, string Err)> RunAsync(TempDir dir, string pipeline) =>
        Repo.RunIngestAsync(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
}

/// <summary>SIGKILL of the real <c>ingest</c> mid-run, then a restart (its own class: it runs beside the other engine test).</summary>
public sealed class KillRestartTests
{
    [Fact]
    public async Task Killed_mid_run_and_restarted_loses_no_row_duplicates_none_and_does_not_re_read_committed_dates()
    {
        using var fake = new FakeGa { Latency = TimeSpan.FromMilliseconds(5) };
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        const int Days = 90;
        fake.Seed(today.AddDays(-(Days - 1)), today, perDate: 4);
        using var dir = new TempDir("ingest-ga-kill-");
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            connections:
              - name: web
                connector: google-analytics
                config:
                  propertyId: "{{FakeGa.PropertyId}}"
                  credentialsJson: {{JsonSerializer.Serialize(fake.ServiceAccountJson())}}
                  apiBase: {{JsonSerializer.Serialize(fake.BaseUrl)}}
                  startDate: "{{today.AddDays(-(Days - 1)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}}"
                  requestsPerSecond: 12
                  concurrency: 1
                  reports:
                    - name: traffic
                      dimensions: [country, deviceCategory]
                      metrics: [activeUsers]
                streams:
                  - {name: traffic, mode: merge}
            """);

        int commitsAtKill;
        // Kill -9 once the sink has committed twice (it commits every 2 s), well before the 90 dates are read.
        using (var p = Repo.Start(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins))
        {
            var log = dir.Combine("lake", "web", "traffic", "_delta_log");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((Directory.Exists(log) ? Directory.GetFiles(log, "*.json").Length : 0) < 2 && DateTime.UtcNow < deadline && !p.HasExited)
            {
                await Task.Delay(20);
            }

            if (p.HasExited)
            {
                Assert.Fail("ingest finished before it could be killed: " + await p.StandardError.ReadToEndAsync());
            }

            commitsAtKill = Directory.Exists(log) ? Directory.GetFiles(log, "*.json").Length : 0;
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }

        var before = fake.Log.Count(l => l.Date is not null);
        Assert.True(before < Days, $"all {before} dates were read before the kill");
        Assert.True(commitsAtKill >= 2, $"only {commitsAtKill} commit(s) before the kill");
        var second = await EndToEndTests.RunAsync(dir, pipeline);
        Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");
        await EndToEndTests.AssertTableEqualsFakeAsync(fake, dir);

        // Only the dates read after the last durable checkpoint (about 2 s at 12 requests/s) were fetched again.
        var again = Enumerable.Range(0, Days).Count(i => fake.RequestsFor(today.AddDays(-i)) > 1);
        Assert.InRange(again, 0, 30);
        Assert.True(again < before, $"{again} of the {before} dates read before the kill were read again");
    }
}
