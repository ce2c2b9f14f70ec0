using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>Arrays and oneOf groups of a connector's schema (the vault plugin's) through the API; the browser side is in <see cref="BrowserTests"/>.</summary>
[Collection(ServerCollection.Name)]
public sealed class SchemaFormTests(IngestServerFixture server)
{
    [Fact]
    public async Task Arrays_and_a_oneOf_alternative_round_trip_through_the_api()
    {
        using var client = await server.LoginAsync();
        var config = JsonNode.Parse("""
            {"host":"h","password":"open-sesame","tags":["blue","green"],"timeouts":[1,5],
             "replicas":[{"host":"r1","weight":2},{"host":"r2"}],"mode":{"kind":"incremental","cursor":"updated_at"}}
            """)!;
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("api/connections", new { name = "arrays", connector = "vault", config })).StatusCode);
        var saved = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/arrays", UriKind.Relative)))!["config"]!.AsObject();
        saved["password"] = "open-sesame";
        Assert.True(JsonNode.DeepEquals(config, saved), saved.ToJsonString());
    }

    [Theory]
    [InlineData("""{"host":"h","password":"p","tags":["ok",""]}""", "config.tags[1]", "at least 1 characters")]
    [InlineData("""{"host":"h","password":"p","timeouts":[3,"x"]}""", "config.timeouts[1]", "expected integer, got string")]
    [InlineData("""{"host":"h","password":"p","replicas":[{"host":"r1"},{"weight":2}]}""", "config.replicas[1].host", "required: missing setting 'host'")]
    [InlineData("""{"host":"h","password":"p","mode":{"kind":"incremental"}}""", "config.mode.cursor", "required")]
    [InlineData("""{"host":"h","password":"p","mode":{"kind":"sideways"}}""", "config.mode.kind", "expected \"full\", got \"sideways\"")]
    public async Task Invalid_array_item_or_oneOf_alternative_is_refused_naming_the_field(string body, string field, string message)
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsJsonAsync("api/connections", new { name = "bad-form", connector = "vault", config = JsonNode.Parse(body) });
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, text);
        var errors = JsonNode.Parse(text)!["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(field), text);
        Assert.Contains(message, errors[field]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chosen_oneOf_alternative_alone_judges_the_value()
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsJsonAsync("api/connections", new { name = "bad-oneof", connector = "vault", config = JsonNode.Parse("""{"host":"h","password":"p","mode":{"kind":"incremental"}}""") });
        var errors = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["errors"]!.AsObject();
        Assert.Equal(["config.mode.cursor"], errors.Select(e => e.Key));
    }
}
