using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>Secrets inside array items and oneOf alternatives: masked, encrypted at rest, kept on save, never exported.</summary>
[Collection(ServerCollection.Name)]
public sealed class NestedSecretTests(IngestServerFixture server)
{
    private static readonly string[] Secrets = ["pw-r1", "pw-r2", "tok-updated_at"];

    private async Task<string> RawStoreTextAsync()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var f in new[] { "ingest.db", "ingest.db-wal" }.Select(f => Path.Combine(server.DataPath, f)).Where(File.Exists))
        {
            await using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, System.Text.Encoding.Latin1);
            sb.Append(await reader.ReadToEndAsync());
        }

        return sb.ToString();
    }

    private static async Task<JsonNode> CheckAsync(HttpClient client, string name) =>
        JsonNode.Parse(await (await client.PostAsync(new Uri($"api/connections/{name}/check", UriKind.Relative), null)).Content.ReadAsStringAsync())!;

    [Fact]
    public async Task Secrets_in_array_items_and_a_oneOf_alternative_are_masked_encrypted_and_kept_when_an_item_is_removed()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "sec-nested",
            connector = "vault",
            config = new
            {
                host = "vault.example",
                password = "open-sesame",
                replicas = new[] { new { host = "r1", password = "pw-r1" }, new { host = "r2", password = "pw-r2" } },
                mode = new { kind = "incremental", cursor = "updated_at", token = "tok-updated_at" },
            },
        });
        var createdText = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, createdText);
        var view = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sec-nested", UriKind.Relative)))!;
        var config = (JsonObject)view["config"]!;
        Assert.Equal("""[{"host":"r1","password":"********"},{"host":"r2","password":"********"}]""", config["replicas"]!.ToJsonString());
        Assert.Equal("********", config["mode"]!["token"]!.GetValue<string>());
        var store = await RawStoreTextAsync();
        foreach (var secret in Secrets)
        {
            Assert.DoesNotContain(secret, createdText, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, store, StringComparison.Ordinal);
        }

        Assert.True((await CheckAsync(client, "sec-nested"))["succeeded"]!.GetValue<bool>());

        // The client sends the masks back with the first replica removed: r2 keeps its own password, the token stays.
        var edited = (JsonObject)config.DeepClone();
        edited["replicas"]!.AsArray().RemoveAt(0);
        var put = await client.PutAsJsonAsync("api/connections/sec-nested", new { config = edited });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var check = await CheckAsync(client, "sec-nested");
        Assert.True(check["succeeded"]!.GetValue<bool>(), check.ToJsonString());

        // A wrong replica password is refused on that item's field.
        edited["replicas"]![0]!["password"] = "pw-wrong";
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsJsonAsync("api/connections/sec-nested", new { config = edited })).StatusCode);
        check = await CheckAsync(client, "sec-nested");
        Assert.False(check["succeeded"]!.GetValue<bool>());
        Assert.Equal("config.replicas[0].password", check["field"]!.GetValue<string>());

        var audit = await client.GetStringAsync(new Uri("api/audit?connection=sec-nested", UriKind.Relative));
        var export = await client.GetStringAsync(new Uri("api/connections/sec-nested/export", UriKind.Relative));
        foreach (var text in new[] { audit, export })
        {
            Assert.DoesNotContain("pw-r", text, StringComparison.Ordinal);
            Assert.DoesNotContain("pw-wrong", text, StringComparison.Ordinal);
            Assert.DoesNotContain("tok-updated_at", text, StringComparison.Ordinal);
        }

        Assert.Contains("(changed)", audit, StringComparison.Ordinal);
        Assert.Contains("# token: secret, not exported", export, StringComparison.Ordinal);
        Assert.Contains("# password: secret, not exported", export, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Catalog_lists_secret_paths_inside_arrays_and_oneOf_alternatives()
    {
        using var client = await server.LoginAsync();
        var vault = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connectors/vault", UriKind.Relative)))!;
        var secrets = vault["secretFields"]!.AsArray().Select(s => s!.GetValue<string>()).ToList();
        Assert.Equal(["/password", "/replicas/*/password", "/mode/token", "/tls/clientKey"], secrets);
    }
}
