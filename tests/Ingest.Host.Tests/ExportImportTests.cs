using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Ingest.Engine.Pipelines;

namespace Ingest.Host.Tests;

[Collection(ServerCollection.Name)]
public sealed class ExportImportTests(IngestServerFixture server)
{
    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");

    private static async Task<JsonNode> JsonAsync(HttpResponseMessage r) => JsonNode.Parse(await r.Content.ReadAsStringAsync())!;

    [Fact]
    public async Task Export_writes_a_pipeline_file_without_secrets_that_the_engine_parses_back()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "exp-vault",
            connector = "vault",
            config = new { host = "vault.example", port = 8300, password = "exp-pass-4711", tags = new[] { "a b", "yes" }, tls = new { enabled = false, clientKey = "exp-key-0815" } },
            streams = new[] { new { name = "keys", mode = "append" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var r = await client.GetAsync(new Uri("api/connections/exp-vault/export", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("application/yaml", r.Content.Headers.ContentType?.MediaType);
        var yaml = await r.Content.ReadAsStringAsync();
        Assert.DoesNotContain("exp-pass-4711", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("exp-key-0815", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("enc:v1", yaml, StringComparison.Ordinal);
        Assert.Contains("# password: secret, not exported", yaml, StringComparison.Ordinal);
        Assert.Contains("# clientKey: secret, not exported", yaml, StringComparison.Ordinal);

        var parsed = PipelineFile.Parse(yaml, "/tmp/exported.yaml");
        var c = Assert.Single(parsed.Connections);
        Assert.Equal("exp-vault", c.Name);
        Assert.Equal("vault", c.Connector);
        Assert.Equal("""{"host":"vault.example","port":8300,"tags":["a b","yes"],"tls":{"enabled":false}}""", JsonNode.Parse(c.Config.GetRawText())!.ToJsonString());
        var s = Assert.Single(c.Streams!);
        Assert.Equal(("keys", SinkMode.Append), (s.Name, s.Mode!.Value));

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("api/connections/no-such/export", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Import_of_an_export_creates_the_connection_and_warns_about_the_secrets_it_left_out()
    {
        using var client = await server.LoginAsync();
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("api/connections", new
        {
            name = "imp-source",
            connector = "vault",
            config = new { host = "vault.example", password = "imp-pass-1", region = "us", replicas = new[] { new { host = "r1", weight = 2 } } },
        })).StatusCode);
        var yaml = (await client.GetStringAsync(new Uri("api/connections/imp-source/export", UriKind.Relative))).Replace("name: \"imp-source\"", "name: \"imp-copy\"", StringComparison.Ordinal);

        var r = await client.PostAsync(new Uri("api/connections/import?file=copy.yaml", UriKind.Relative), Yaml(yaml));
        var body = await JsonAsync(r);
        Assert.True(r.StatusCode == HttpStatusCode.Created, body.ToJsonString());
        Assert.Equal("imp-copy", body["connections"]![0]!["name"]!.GetValue<string>());
        var warning = Assert.Single(body["warnings"]!.AsArray());
        Assert.Equal("imp-copy.config.password", warning!["field"]!.GetValue<string>());
        Assert.Contains("copy.yaml:", warning["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var copy = await JsonAsync(await client.GetAsync(new Uri("api/connections/imp-copy", UriKind.Relative)));
        Assert.Equal("""{"host":"vault.example","region":"us","replicas":[{"host":"r1","weight":2}]}""", copy["config"]!.ToJsonString());

        // The secret is set afterwards; then the imported connection checks fine.
        var config = (JsonObject)copy["config"]!.DeepClone();
        config["password"] = "open-sesame";
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsJsonAsync("api/connections/imp-copy", new { config })).StatusCode);
        var check = await JsonAsync(await client.PostAsync(new Uri("api/connections/imp-copy/check", UriKind.Relative), null));
        Assert.True(check["succeeded"]!.GetValue<bool>(), check.ToJsonString());

        var audit = await client.GetStringAsync(new Uri("api/audit?connection=imp-copy", UriKind.Relative));
        Assert.Contains("\"import\"", audit, StringComparison.Ordinal);
        Assert.DoesNotContain("open-sesame", audit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_refuses_a_file_with_errors_naming_field_line_and_column_and_creates_nothing()
    {
        using var client = await server.LoginAsync();
        const string yaml = """
            lake: ./lake
            connections:
              - name: imp-good
                connector: sample
                config: {seed: 1}
              - name: imp-bad
                connector: vault
                config:
                  host: vault.example
                  port: "eighty"
                streams:
                  - {name: keys, mode: merge}
              - name: imp-unknown
                connector: nosuch
            """;
        var r = await client.PostAsync(new Uri("api/connections/import?file=shop.yaml", UriKind.Relative), Yaml(yaml));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var errors = (JsonObject)(await JsonAsync(r))["errors"]!;
        Assert.StartsWith("shop.yaml:10:", errors["connections[1].config.port"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.StartsWith("shop.yaml:14:16: unknown connector 'nosuch'", errors["connections[2].connector"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("api/connections/imp-good", UriKind.Relative))).StatusCode);

        var syntax = await client.PostAsync(new Uri("api/connections/import", UriKind.Relative), Yaml("connections:\n  - name: x\n   connector: [oops"));
        Assert.Equal(HttpStatusCode.BadRequest, syntax.StatusCode);
        var detail = (await JsonAsync(syntax))["detail"]!.GetValue<string>();
        Assert.Matches(@"import\.yaml:\d+:\d+: invalid YAML", detail);

        var unknownKey = await client.PostAsync(new Uri("api/connections/import", UriKind.Relative), Yaml("connections:\n  - name: x\n    connecter: sample\n"));
        var unknownErrors = (JsonObject)(await JsonAsync(unknownKey))["errors"]!;
        Assert.StartsWith("import.yaml:3:5: unknown key 'connecter'; did you mean 'connector'?", unknownErrors["connections[0].connecter"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_of_an_existing_name_is_a_conflict()
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsync(new Uri("api/connections/import", UriKind.Relative), Yaml("connections:\n  - name: sample\n    connector: sample\n    config: {seed: 2}\n"));
        Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        var errors = (JsonObject)(await JsonAsync(r))["errors"]!;
        Assert.Contains("exists already", errors["connections[0].name"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
