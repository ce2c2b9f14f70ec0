using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>Backfills through the API: requested on the bus, run by the worker, their saga's state persisted.</summary>
[Collection(ServerCollection.Name)]
public sealed class BackfillTests(IngestServerFixture server)
{
    internal static async Task StartSampleAsync(HttpClient client, string name, int customers, int batchSize)
    {
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name,
            connector = "sample",
            config = new { seed = 5, customers, products = 5, orders = 20, changes = 0, changesPerSecond = 20, batchSize },
            streams = new[] { new { name = "customers", mode = "merge" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri($"api/connections/{name}/start", UriKind.Relative), null)).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var status = JsonNode.Parse(await client.GetStringAsync(new Uri($"api/connections/{name}/status", UriKind.Relative)))!;
            if (status["state"]!.GetValue<string>() == "running" && status["rowsCommitted"]!.GetValue<long>() >= customers)
            {
                return;
            }

            await Task.Delay(200);
        }

        Assert.Fail($"{name} did not commit its snapshot within 30 s");
    }

    internal static async Task<JsonNode> WaitForBackfillAsync(HttpClient client, string name, string id, Func<JsonNode, bool> done, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonNode b;
        do
        {
            var r = await client.GetAsync(new Uri($"api/connections/{name}/backfills/{id}", UriKind.Relative));
            b = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            if (r.StatusCode == HttpStatusCode.OK && done(b))
            {
                return b;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"backfill {id} of {name}: {b.ToJsonString()}");
        return b;
    }

    private static string State(JsonNode b) => b["state"]!.GetValue<string>();

    [Fact]
    public async Task Backfill_of_a_key_range_runs_while_the_connection_streams_and_completes()
    {
        using var client = await server.LoginAsync();
        await StartSampleAsync(client, "bf-range", customers: 300, batchSize: 25);

        var r = await client.PostAsJsonAsync("api/connections/bf-range/backfills", new { stream = "customers", filter = "1..120" });
        var accepted = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        Assert.True(r.StatusCode == HttpStatusCode.Accepted, accepted.ToJsonString());
        var id = accepted["id"]!.GetValue<string>();
        Assert.Equal($"/api/connections/bf-range/backfills/{id}", r.Headers.Location?.OriginalString);
        Assert.Contains(State(accepted), new[] { "pending", "running" });

        var done = await WaitForBackfillAsync(client, "bf-range", id, b => State(b) == "completed");
        Assert.Equal(120, done["rowsDone"]!.GetValue<long>());
        Assert.Equal("1..120", done["filter"]!.GetValue<string>());
        Assert.NotNull(done["finishedAt"]);

        var list = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/bf-range/backfills", UriKind.Relative)))!.AsArray();
        Assert.Equal(id, Assert.Single(list)!["id"]!.GetValue<string>());
        var status = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/bf-range/status", UriKind.Relative)))!;
        Assert.Equal("running", status["state"]!.GetValue<string>());

        // A finished backfill cannot be cancelled.
        var cancel = await client.DeleteAsync(new Uri($"api/connections/bf-range/backfills/{id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Conflict, cancel.StatusCode);
        await client.PostAsync(new Uri("api/connections/bf-range/stop", UriKind.Relative), null);
    }

    [Fact]
    public async Task Backfill_requests_that_cannot_run_are_refused_naming_the_field()
    {
        using var client = await server.LoginAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsJsonAsync("api/connections/no-such/backfills", new { stream = "customers" })).StatusCode);
        await StartSampleAsync(client, "bf-refused", customers: 50, batchSize: 25);

        async Task<JsonObject> ErrorsAsync(object body, HttpStatusCode expected)
        {
            var r = await client.PostAsJsonAsync("api/connections/bf-refused/backfills", body);
            var problem = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            Assert.True(r.StatusCode == expected, problem.ToJsonString());
            return (JsonObject)problem["errors"]!;
        }

        Assert.Contains("required", (await ErrorsAsync(new { stream = "" }, HttpStatusCode.BadRequest))["stream"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("no stream 'nope'", (await ErrorsAsync(new { stream = "nope" }, HttpStatusCode.BadRequest))["stream"]![0]!.GetValue<string>(), StringComparison.Ordinal);

        // A filter the connector cannot read fails the backfill with the connector's message.
        var bad = await client.PostAsJsonAsync("api/connections/bf-refused/backfills", new { stream = "customers", filter = "everything" });
        Assert.Equal(HttpStatusCode.Accepted, bad.StatusCode);
        var badId = JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        var failed = await WaitForBackfillAsync(client, "bf-refused", badId, b => State(b) == "failed");
        Assert.Contains("id range", failed["error"]!.GetValue<string>(), StringComparison.Ordinal);

        await client.PostAsync(new Uri("api/connections/bf-refused/stop", UriKind.Relative), null);
        Assert.Contains("not running", (await ErrorsAsync(new { stream = "customers" }, HttpStatusCode.Conflict))["connection"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync(new Uri("api/connections/bf-refused/backfills/unknown-id", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Cancelled_backfill_stops_and_keeps_the_rows_it_read()
    {
        using var client = await server.LoginAsync();
        await StartSampleAsync(client, "bf-cancel", customers: 20_000, batchSize: 100);
        var r = await client.PostAsJsonAsync("api/connections/bf-cancel/backfills", new { stream = "customers" });
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        var id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        await WaitForBackfillAsync(client, "bf-cancel", id, b => true);

        var cancel = await client.DeleteAsync(new Uri($"api/connections/bf-cancel/backfills/{id}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var cancelled = await WaitForBackfillAsync(client, "bf-cancel", id, b => State(b) is "cancelled" or "completed");
        Assert.Equal("cancelled", State(cancelled));
        Assert.True(cancelled["rowsDone"]!.GetValue<long>() < 20_000, cancelled.ToJsonString());
        var audit = await client.GetStringAsync(new Uri("api/audit?connection=bf-cancel", UriKind.Relative));
        Assert.Contains("cancel-backfill", audit, StringComparison.Ordinal);
        await client.PostAsync(new Uri("api/connections/bf-cancel/stop", UriKind.Relative), null);
    }
}
