using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

[Collection(ServerCollection.Name)]
public sealed class AuditUsageTests(IngestServerFixture server)
{
    private static async Task<JsonNode> GetAsync(HttpClient client, string url) =>
        JsonNode.Parse(await client.GetStringAsync(new Uri(url, UriKind.Relative)))!;

    private static async Task<JsonObject> WaitForAsync(HttpClient client, string name, Func<JsonObject, bool> done, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonObject status;
        do
        {
            status = (JsonObject)await GetAsync(client, $"api/connections/{name}/status");
            if (done(status))
            {
                return status;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"{name} did not get there in {seconds} s: {status.ToJsonString()}");
        return status;
    }

    private static long Committed(JsonObject status) => status["rowsCommitted"]!.GetValue<long>();

    [Fact]
    public async Task Audit_log_says_who_changed_what_and_that_a_secret_changed_without_its_value()
    {
        using var client = await server.LoginAsync();
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("api/connections", new { name = "audited", connector = "vault", config = new { host = "v1", password = "first-secret-1" } })).StatusCode);
        var put = await client.PutAsJsonAsync("api/connections/audited", new { connector = "vault", config = new { host = "v2", port = 8300, password = "second-secret-2" } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var unchanged = await client.PutAsJsonAsync("api/connections/audited", new { connector = "vault", config = new { host = "v2", port = 8300, password = "********" } });
        Assert.Equal(HttpStatusCode.OK, unchanged.StatusCode);

        var text = await client.GetStringAsync(new Uri("api/audit?connection=audited", UriKind.Relative));
        Assert.DoesNotContain("first-secret-1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("second-secret-2", text, StringComparison.Ordinal);
        var entries = JsonNode.Parse(text)!.AsArray();
        Assert.Equal(["update", "update", "create"], entries.Select(e => e!["action"]!.GetValue<string>()));
        Assert.All(entries, e => Assert.Equal("admin", e!["actor"]!.GetValue<string>()));
        Assert.All(entries, e => Assert.Equal("audited", e!["connection"]!.GetValue<string>()));

        var created = entries[2]!["changes"]!.AsArray();
        Assert.Contains(created, c => c!["field"]!.GetValue<string>() == "connector" && c["to"]!.GetValue<string>() == "\"vault\"");
        var firstPassword = created.Single(c => c!["field"]!.GetValue<string>() == "config.password")!;
        Assert.True(firstPassword["secret"]!.GetValue<bool>());
        Assert.Equal("added", firstPassword["kind"]!.GetValue<string>());

        var update = entries[1]!["changes"]!.AsArray();
        var host = update.Single(c => c!["field"]!.GetValue<string>() == "config.host")!;
        Assert.Equal(("changed", "\"v1\"", "\"v2\""), (host["kind"]!.GetValue<string>(), host["from"]!.GetValue<string>(), host["to"]!.GetValue<string>()));
        var port = update.Single(c => c!["field"]!.GetValue<string>() == "config.port")!;
        Assert.Equal(("added", "8300"), (port["kind"]!.GetValue<string>(), port["to"]!.GetValue<string>()));
        var password = update.Single(c => c!["field"]!.GetValue<string>() == "config.password")!;
        Assert.Equal(("changed", true), (password["kind"]!.GetValue<string>(), password["secret"]!.GetValue<bool>()));
        Assert.Null(password["from"]);
        Assert.Null(password["to"]);

        // Sending the mask back changes nothing, and says so.
        Assert.Empty(entries[0]!["changes"]!.AsArray());

        var all = (await GetAsync(client, "api/audit")).AsArray();
        Assert.Contains(all, e => e!["connection"]!.GetValue<string>() == "audited");
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri("api/connections/audited", UriKind.Relative))).StatusCode);
        var afterDelete = (await GetAsync(client, "api/audit?connection=audited")).AsArray();
        Assert.Equal("delete", afterDelete[0]!["action"]!.GetValue<string>());
    }

    [Fact]
    public async Task Usage_counts_the_rows_and_bytes_each_run_committed_per_stream()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "metered",
            connector = "sample",
            config = new { seed = 5, customers = 40, products = 5, orders = 60, changes = 0, changesPerSecond = 0, batchSize = 100 },
            streams = new[] { new { name = "customers", mode = "merge" }, new { name = "orders", mode = "append" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/metered/start", UriKind.Relative), null)).StatusCode);
        var status = await WaitForAsync(client, "metered", s => s["streams"]!.AsArray().Count == 2 && s["streams"]!.AsArray().All(x => x!["rowsCommitted"]!.GetValue<long>() > 0));

        // The worker records usage on its next tick after the commit.
        JsonArray usage = [];
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            status = (JsonObject)await GetAsync(client, "api/connections/metered/status");
            usage = (await GetAsync(client, "api/connections/metered/usage")).AsArray();
            var byStream = status["streams"]!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["rowsCommitted"]!.GetValue<long>());
            if (usage.Count == 2 && usage.All(u => byStream[u!["stream"]!.GetValue<string>()] == u["rows"]!.GetValue<long>()))
            {
                break;
            }

            await Task.Delay(250);
        }

        Assert.Equal(["customers", "orders"], usage.Select(u => u!["stream"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(Committed(status), usage.Sum(u => u!["rows"]!.GetValue<long>()));
        Assert.Equal(40, usage.Single(u => u!["stream"]!.GetValue<string>() == "customers")!["rows"]!.GetValue<long>());
        Assert.Single(usage.Select(u => u!["runStartedAt"]!.GetValue<string>()).Distinct());

        // Bytes are the data files the commits wrote: at least those the tables hold now, as the table listing counts them.
        var tables = (await GetAsync(client, "api/tables")).AsArray();
        foreach (var u in usage)
        {
            var table = tables.Single(t => t!["name"]!.GetValue<string>() == "metered/" + u!["stream"]!.GetValue<string>())!;
            Assert.True(u!["bytes"]!.GetValue<long>() >= table["sizeBytes"]!.GetValue<long>(), $"{u.ToJsonString()} vs {table.ToJsonString()}");
            Assert.True(u["commits"]!.GetValue<int>() >= 1);
        }

        var missing = await client.GetAsync(new Uri("api/connections/nosuch/usage", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await client.PostAsync(new Uri("api/connections/metered/stop", UriKind.Relative), null);
    }

    [Fact]
    public async Task Paused_connection_stops_committing_stays_paused_and_resumes_from_the_lake()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "pausable",
            connector = "sample",
            config = new { seed = 11, customers = 30, products = 5, orders = 40, changes = 0, changesPerSecond = 40, batchSize = 20 },
            streams = new[] { new { name = "customers", mode = "merge" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var notRunning = await client.PostAsync(new Uri("api/connections/pausable/pause", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Conflict, notRunning.StatusCode);
        Assert.Contains("not running", (await notRunning.Content.ReadAsStringAsync()), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/pausable/start", UriKind.Relative), null)).StatusCode);
        await WaitForAsync(client, "pausable", s => s["state"]!.GetValue<string>() == "running" && Committed(s) >= 30);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/pausable/pause", UriKind.Relative), null)).StatusCode);
        await WaitForAsync(client, "pausable", s => s["state"]!.GetValue<string>() == "paused");

        var versionAtPause = (await GetAsync(client, "api/tables/pausable/customers"))["table"]!["version"]!.GetValue<long>();
        await Task.Delay(1500);
        Assert.Equal(versionAtPause, (await GetAsync(client, "api/tables/pausable/customers"))["table"]!["version"]!.GetValue<long>());
        var connection = await GetAsync(client, "api/connections/pausable");
        Assert.Equal("paused", connection["status"]!["state"]!.GetValue<string>());
        Assert.True(connection["enabled"]!.GetValue<bool>());
        Assert.Equal(0, connection["status"]!["rowsPerSecond"]!.GetValue<double>());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/pausable/resume", UriKind.Relative), null)).StatusCode);
        var resumed = await WaitForAsync(client, "pausable", s => s["state"]!.GetValue<string>() == "running" && s["lastCommitVersion"] is JsonValue v && v.GetValue<long>() > versionAtPause);

        // Resumed from the lake's progress: the new run does not read the 30 customers of the snapshot again.
        var customers = resumed["streams"]!.AsArray().Single()!;
        Assert.NotEqual("snapshot", customers["phase"]?.GetValue<string>());
        var preview = (await GetAsync(client, "api/tables/pausable/customers/preview?limit=1000"))["rows"]!.AsArray();
        Assert.True(preview.Count >= 30);
        Assert.Equal(preview.Count, preview.Select(r => r!["id"]!.ToJsonString()).Distinct().Count());

        var again = await client.PostAsync(new Uri("api/connections/pausable/resume", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        await client.PostAsync(new Uri("api/connections/pausable/stop", UriKind.Relative), null);
        var actions = (await GetAsync(client, "api/audit?connection=pausable")).AsArray().Select(e => e!["action"]!.GetValue<string>()).Reverse().ToList();
        Assert.Equal(["create", "start", "pause", "resume", "stop"], actions);
    }
}
