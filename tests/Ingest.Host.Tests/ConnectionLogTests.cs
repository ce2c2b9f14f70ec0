using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

[Collection(ServerCollection.Name)]
public sealed class ConnectionLogTests(IngestServerFixture server)
{
    private async Task<JsonArray> WaitForLinesAsync(HttpClient client, string url, Func<JsonArray, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonArray lines;
        do
        {
            var r = await client.GetAsync(new Uri(url, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            lines = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsArray();
            if (done(lines))
            {
                return lines;
            }

            await Task.Delay(250);
        }
        while (DateTime.UtcNow < deadline);
        Assert.Fail($"{url} did not show the expected lines within 30 s: {lines.ToJsonString()}\n{server.Output}");
        return lines;
    }

    private static string Level(JsonNode? line) => line!["level"]!.GetValue<string>();

    private static string Message(JsonNode? line) => line!["message"]!.GetValue<string>();

    [Fact]
    public async Task Log_shows_the_lines_the_engine_wrote_for_the_connection_only()
    {
        using var client = await server.LoginAsync();
        var lines = await WaitForLinesAsync(client, "api/connections/sample/log", l => l.Count > 0);
        Assert.All(lines, l => Assert.StartsWith("sample", Message(l), StringComparison.Ordinal));
        Assert.Contains(lines, l => Level(l) == "information" && l!["category"]!.GetValue<string>().StartsWith("Ingest.", StringComparison.Ordinal));
        var at = lines.Select(l => l!["at"]!.GetValue<DateTimeOffset>()).ToList();
        Assert.Equal(at.Order().ToList(), at);
    }

    [Fact]
    public async Task Level_filter_keeps_the_error_of_a_failing_connection_and_drops_information_lines()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new { name = "log-failing", connector = "vault", config = new { host = "vault.example", password = "wrong-password" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        await client.PostAsync(new Uri("api/connections/log-failing/start", UriKind.Relative), null);

        var errors = await WaitForLinesAsync(client, "api/connections/log-failing/log?level=error", l => l.Count > 0);
        Assert.All(errors, l => Assert.Contains(Level(l), new[] { "error", "critical" }));
        Assert.Contains(errors, l => Message(l).Contains("refused the password", StringComparison.Ordinal));
        Assert.DoesNotContain("wrong-password", errors.ToJsonString(), StringComparison.Ordinal);

        var all = await WaitForLinesAsync(client, "api/connections/log-failing/log?level=debug&limit=1000", l => l.Count >= errors.Count);
        Assert.True(all.Count >= errors.Count);
        var one = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/log-failing/log?level=debug&limit=1", UriKind.Relative)))!.AsArray();
        Assert.Single(one);
        Assert.Equal(all[^1]!.ToJsonString(), one[0]!.ToJsonString());
        await client.PostAsync(new Uri("api/connections/log-failing/stop", UriKind.Relative), null);
    }

    [Fact]
    public async Task Log_refuses_an_unknown_level_and_an_unknown_connection_naming_the_field()
    {
        using var client = await server.LoginAsync();
        var bad = await client.GetAsync(new Uri("api/connections/sample/log?level=loud", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var problem = JsonNode.Parse(await bad.Content.ReadAsStringAsync())!;
        Assert.Contains("warning", problem["errors"]!["level"]![0]!.GetValue<string>(), StringComparison.Ordinal);

        var missing = await client.GetAsync(new Uri("api/connections/no-such/log", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("name", JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["field"]!.GetValue<string>());
    }
}
