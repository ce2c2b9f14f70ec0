using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>Figures a connector reports about a connection travel from the worker's run to the status API.</summary>
[Collection(ServerCollection.Name)]
public sealed class ConnectionFiguresTests(IngestServerFixture server)
{
    [Fact]
    public async Task Status_api_shows_the_figures_the_connector_reported_with_label_value_and_unit()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new { name = "figures-api", connector = "vault", config = new { host = "v", password = "open-sesame" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var before = await JsonAsync(await client.GetAsync(new Uri("api/connections/figures-api/status", UriKind.Relative)));
        Assert.Empty(before["figures"]!.AsArray());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/figures-api/start", UriKind.Relative), null)).StatusCode);
        JsonObject status = [];
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            status = await JsonAsync(await client.GetAsync(new Uri("api/connections/figures-api/status", UriKind.Relative)));
            if (status["figures"]!.AsArray().Count > 0)
            {
                break;
            }

            await Task.Delay(200);
        }

        var figure = Assert.Single(status["figures"]!.AsArray())!;
        Assert.Equal("cache_bytes", figure["name"]!.GetValue<string>());
        Assert.Equal("key cache", figure["label"]!.GetValue<string>());
        Assert.Equal(13_002_342, figure["value"]!.GetValue<double>());
        Assert.Equal("bytes", figure["unit"]!.GetValue<string>());

        // The connection's own document carries the same status.
        var connection = await JsonAsync(await client.GetAsync(new Uri("api/connections/figures-api", UriKind.Relative)));
        Assert.Equal("cache_bytes", connection["status"]!["figures"]![0]!["name"]!.GetValue<string>());
    }

    private static async Task<JsonObject> JsonAsync(HttpResponseMessage r)
    {
        Assert.True(r.IsSuccessStatusCode, $"{(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
        return (JsonObject)JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
    }
}
