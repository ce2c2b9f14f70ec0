using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ingest.Connectors.MailChimp.Tests;

/// <summary>The real <c>ingest</c> executable reads the fake MailChimp into merge tables (needs src/Ingest.Host built).</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Ingest_run_once_mirrors_mailchimp_into_merge_tables_and_a_second_run_applies_member_and_campaign_changes()
    {
        using var fake = new FakeMailChimp();
        var lists = new[] { fake.AddList("Newsletter"), fake.AddList("Customers") };
        for (var i = 0; i < 40; i++)
        {
            fake.AddMember(lists[i % 2], $"person{i}@example.com");
        }

        var campaign = fake.AddCampaign(lists[0], "Launch");
        fake.SendCampaign(campaign, 20);
        var first = fake.Members().Keys.Where(k => k.ListId == lists[0]).Select(k => k.Id).ToList();
        fake.Unsubscribe(campaign, lists[0], first[0], "NORMAL");
        fake.Advance(TimeSpan.FromSeconds(2));
        fake.ThrottleAt.Add(4);
        fake.Throttle403At.Add(6);
        fake.FailAt.Add(8);
        using var dir = new TempDir("ingest-mailchimp-e2e-");
        var pipeline = await WritePipelineAsync(dir, fake, rps: 30, concurrency: 4);

        var run1 = await RunAsync(dir, pipeline);
        Assert.True(run1.Code == 0, $"exit {run1.Code}\n{run1.Out}\n{run1.Err}");
        await AssertTablesEqualFakeAsync(fake, dir);

        var second = fake.Members().Keys.Where(k => k.ListId == lists[1]).Select(k => k.Id).ToList();
        fake.UpdateMember(lists[1], second[0], m => m["full_name"] = "Renamed Person");
        fake.ArchiveMember(lists[1], second[1]);
        fake.AddMember(lists[1], "newcomer@example.com");
        fake.Unsubscribe(campaign, lists[0], first[1], "SPAM");
        var next = fake.AddCampaign(lists[1], "Follow-up");
        fake.SendCampaign(next, 5);
        fake.Advance(TimeSpan.FromSeconds(2));
        var run2 = await RunAsync(dir, pipeline);
        Assert.True(run2.Code == 0, $"exit {run2.Code}\n{run2.Out}\n{run2.Err}");
        await AssertTablesEqualFakeAsync(fake, dir);
        var members = await Repo.ReadTableAsync(Path.Combine(dir.Path, "lake", "news", "members"));
        Assert.Equal("archived", members.Single(r => (string)r["list_id"]! == lists[1] && (string)r["id"]! == second[1])["status"]);
        Assert.Contains(fake.LogSnapshot(), l => l.Status == 429);
        Assert.Contains(fake.LogSnapshot(), l => l.Status == 500);
    }

    [Fact]
    public async Task Killed_mid_read_and_restarted_loses_no_member_reads_none_twice_and_does_not_re_read_committed_pages()
    {
        using var fake = new FakeMailChimp { Latency = TimeSpan.FromMilliseconds(5) };
        const int Members = 1000;
        var lists = new[] { fake.AddList("A"), fake.AddList("B") };
        for (var i = 0; i < Members; i++)
        {
            fake.AddMember(lists[i % 2], $"bulk{i}@example.com");
        }

        fake.Advance(TimeSpan.FromSeconds(2));
        using var dir = new TempDir("ingest-mailchimp-kill-");
        var pipeline = await WritePipelineAsync(dir, fake, rps: 20, concurrency: 2, pageSize: 10, streams: ["members"]);

        var commitsAtKill = 0;
        // Members answers after the 50th are held until the process is killed, so the kill lands mid-read however busy
        // the machine is; the sink commits every 2 s meanwhile.
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var asked = 0;
        fake.Gate = path => FakeMailChimp.IsMembers(path) && Interlocked.Increment(ref asked) > 50 ? hold.Task : Task.CompletedTask;
        using (var p = Repo.Start(Path.Combine(dir.Path, "state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins))
        {
            var log = Path.Combine(dir.Path, "lake", "news", "members", "_delta_log");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Volatile.Read(ref asked) <= 50 && DateTime.UtcNow < deadline && !p.HasExited)
            {
                await Task.Delay(50);
            }

            // Held: give the sink time to commit what it has (it commits every 2 s).
            var held = DateTime.UtcNow;
            while (Commits(log) < 2 && DateTime.UtcNow < held.AddSeconds(8) && !p.HasExited)
            {
                await Task.Delay(50);
            }

            if (p.HasExited)
            {
                Assert.Fail("ingest finished before it could be killed: " + await p.StandardError.ReadToEndAsync());
            }

            commitsAtKill = Commits(log);
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }

        fake.Gate = null;
        hold.SetResult();
        var servedBefore = fake.Served(FakeMailChimp.IsMembers);
        Assert.True(servedBefore < Members, $"all {servedBefore} members were read before the kill");
        Assert.True(commitsAtKill >= 2, $"only {commitsAtKill} commit(s) of members before the kill");
        var run = await RunAsync(dir, pipeline);
        Assert.True(run.Code == 0, $"exit {run.Code}\n{run.Out}\n{run.Err}");
        await AssertTablesEqualFakeAsync(fake, dir, "members");

        // The restart resumed from the durable checkpoint: only pages read after the last commit (at most 2 s' worth at
        // 20 requests/s, 40 pages) and those held were fetched again, not the committed ones.
        var served = fake.Served(FakeMailChimp.IsMembers);
        Assert.InRange(served - Members, 0, 45 * 10);
    }

    private static int Commits(string log) => Directory.Exists(log) ? Directory.GetFiles(log, "*.json").Length : 0;

    private static async Task<string> WritePipelineAsync(TempDir dir, FakeMailChimp fake, double rps, int concurrency, int pageSize = 7, string[]? streams = null)
    {
        var pipeline = dir.Combine("pipeline.yaml");
        var selected = string.Join("\n", (streams ?? ["lists", "members", "campaigns", "reports", "unsubscribes"]).Select(s => $"          - {{name: {s}, mode: merge}}"));
        await File.WriteAllTextAsync(pipeline, $$"""
            lake: ./lake
            connections:
              - name: news
                connector: mailchimp
                config:
                  apiKey: {{FakeMailChimp.ApiKey}}
                  apiBase: {{JsonSerializer.Serialize(fake.BaseUrl)}}
                  requestsPerSecond: {{rps}}
                  maxConcurrency: {{concurrency}}
                  pageSize: {{pageSize}}
                streams:
            {{selected}}
            """);
        return pipeline;
    }

    private static async Task AssertTablesEqualFakeAsync(FakeMailChimp fake, TempDir dir, params string[] only)
    {
        var expected = new Dictionary<string, Dictionary<string, JsonObject>>(StringComparer.Ordinal)
        {
            ["lists"] = fake.Lists(),
            ["members"] = fake.Members().ToDictionary(kv => kv.Key.ListId + "/" + kv.Key.Id, kv => kv.Value),
            ["campaigns"] = fake.Campaigns(),
            ["reports"] = fake.Reports(),
            ["unsubscribes"] = fake.Unsubscribes().ToDictionary(kv => kv.Key.CampaignId + "/" + kv.Key.EmailId, kv => kv.Value),
        };
        foreach (var (stream, objects) in expected)
        {
            if (only.Length > 0 && !only.Contains(stream))
            {
                continue;
            }

            var key = MailChimpStreams.Find(stream)!.Key;
            var rows = await Repo.ReadTableAsync(Path.Combine(dir.Path, "lake", "news", stream));
            var actual = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var r in rows)
            {
                var id = string.Join('/', key.Select(k => (string)r[k]!));
                Assert.True(actual.TryAdd(id, JsonNode.Parse((string)r["_raw"]!)!.ToJsonString()), $"{stream} {id} appears twice");
            }

            Assert.Equal(
                objects.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToJsonString())).OrderBy(kv => kv.Key, StringComparer.Ordinal),
                actual.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }
    }

    private static Task<(int Code, string Out, string Err)> RunAsync(TempDir dir, string pipeline) =>
        Repo.RunIngestAsync(Path.Combine(dir.Path, "state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
}
