using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

[Collection(ServerCollection.Name)]
public sealed class ApiTests(IngestServerFixture server)
{
    /// <summary>The config store's bytes on disk (database and write-ahead log) as text.</summary>
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

    private static async Task<JsonObject> JsonAsync(HttpResponseMessage r) => (JsonObject)JsonNode.Parse(await r.Content.ReadAsStringAsync())!;

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage r, HttpStatusCode status)
    {
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        return await JsonAsync(r);
    }

    [Fact]
    public async Task OpenApi_document_describes_the_connection_and_table_endpoints()
    {
        using var client = await server.LoginAsync();
        var doc = await JsonAsync(await client.GetAsync(new Uri("openapi/v1.json", UriKind.Relative)));
        var paths = (JsonObject)doc["paths"]!;
        foreach (var p in new[] { "/api/connectors", "/api/connections", "/api/connections/{name}", "/api/connections/{name}/start", "/api/tables/{connection}/{stream}/preview" })
        {
            Assert.True(paths.ContainsKey(p), $"{p} is missing from the OpenAPI document");
        }
    }

    [Fact]
    public async Task Every_api_endpoint_refuses_an_anonymous_call()
    {
        using var admin = await server.LoginAsync();
        var doc = await JsonAsync(await admin.GetAsync(new Uri("openapi/v1.json", UriKind.Relative)));
        using var anonymous = server.Anonymous();
        var checkedCount = 0;
        foreach (var (path, item) in (JsonObject)doc["paths"]!)
        {
            if (path == "/api/auth/login")
            {
                continue;
            }

            foreach (var (method, _) in (JsonObject)item!)
            {
                var url = path.Replace("{name}", "sample", StringComparison.Ordinal).Replace("{connection}", "sample", StringComparison.Ordinal).Replace("{stream}", "orders", StringComparison.Ordinal).TrimStart('/');
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), new Uri(url, UriKind.Relative));
                if (method is "post" or "put")
                {
                    request.Content = JsonContent.Create(new { name = "x", connector = "sample", config = new { } });
                }

                var r = await anonymous.SendAsync(request);
                Assert.True(r.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} answered {(int)r.StatusCode} to an anonymous call");
                checkedCount++;
            }
        }

        Assert.True(checkedCount >= 15, $"only {checkedCount} endpoints in the OpenAPI document");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("openapi/v1.json", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Api_token_authenticates_a_client_without_a_cookie_and_a_wrong_one_is_refused()
    {
        using var admin = await server.LoginAsync();
        var created = await JsonAsync(await admin.PostAsJsonAsync("api/tokens", new { name = "ci" }));
        var token = created["token"]!.GetValue<string>();
        Assert.StartsWith("ingest_", token, StringComparison.Ordinal);

        using var bearer = server.Anonymous();
        bearer.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await bearer.GetAsync(new Uri("api/connections", UriKind.Relative))).StatusCode);

        using var wrong = server.Anonymous();
        wrong.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync(new Uri("api/connections", UriKind.Relative))).StatusCode);
        Assert.DoesNotContain(token, await RawStoreTextAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_password_is_refused()
    {
        using var client = server.Anonymous();
        var r = await client.PostAsJsonAsync("api/auth/login", new { user = "admin", password = server.Password + "x" });
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("api/connections", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Catalog_lists_the_sample_connector_with_its_schema()
    {
        using var client = await server.LoginAsync();
        var list = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connectors", UriKind.Relative)))!.AsArray();
        var sample = list.Single(c => c!["name"]!.GetValue<string>() == "sample")!;
        Assert.False(string.IsNullOrEmpty(sample["version"]!.GetValue<string>()));
        Assert.NotNull(sample["configSchema"]!["properties"]!["changesPerSecond"]);
        var vault = list.Single(c => c!["name"]!.GetValue<string>() == "vault")!;
        Assert.Equal(["/password", "/replicas/*/password", "/mode/token", "/tls/clientKey"], vault["secretFields"]!.AsArray().Select(x => x!.GetValue<string>()));
    }

    [Fact]
    public async Task Connection_is_created_read_updated_and_deleted()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new { name = "crud", connector = "sample", config = new { seed = 7, changesPerSecond = 0 }, streams = new[] { new { name = "orders", mode = "append" } } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/api/connections/crud", created.Headers.Location?.ToString());

        var read = await JsonAsync(await client.GetAsync(new Uri("api/connections/crud", UriKind.Relative)));
        Assert.Equal(7, read["config"]!["seed"]!.GetValue<int>());
        Assert.Equal("append", read["streams"]![0]!["mode"]!.GetValue<string>());
        Assert.Equal("idle", read["status"]!["state"]!.GetValue<string>());

        var updated = await client.PutAsJsonAsync("api/connections/crud", new { connector = "sample", config = new { seed = 8 }, streams = (object?)null });
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        read = await JsonAsync(await client.GetAsync(new Uri("api/connections/crud", UriKind.Relative)));
        Assert.Equal(8, read["config"]!["seed"]!.GetValue<int>());
        Assert.Null(read["streams"]);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri("api/connections/crud", UriKind.Relative))).StatusCode);
        var gone = await ProblemAsync(await client.GetAsync(new Uri("api/connections/crud", UriKind.Relative)), HttpStatusCode.NotFound);
        Assert.Equal("name", gone["field"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"name":"bad1","connector":"sample","config":{"seed":"abc"}}""", "config.seed", "expected integer")]
    [InlineData("""{"name":"bad2","connector":"sample","config":{"customers":-1}}""", "config.customers", "expected a value >= 0")]
    [InlineData("""{"name":"bad3","connector":"sample","config":{"sed":1}}""", "config.sed", "did you mean 'seed'")]
    [InlineData("""{"name":"bad4","connector":"nosuch","config":{}}""", "connector", "unknown connector 'nosuch'")]
    [InlineData("""{"name":"Bad Name","connector":"sample","config":{}}""", "name", "not a valid name")]
    [InlineData("""{"name":"bad5","connector":"sample","config":{},"streams":[{"name":"orders","mode":"upsert"}]}""", "streams[0].mode", "expected one of")]
    [InlineData("""{"name":"bad6","connector":"vault","config":{"host":"h"}}""", "config.password", "required: missing setting 'password'")]
    [InlineData("""{"name":"bad7","connector":"vault","config":{"host":"h","password":"p","region":"mars"}}""", "config.region", "expected one of \"eu\", \"us\"")]
    public async Task Invalid_connection_is_refused_with_a_problem_naming_the_field(string body, string field, string message)
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsync(new Uri("api/connections", UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var problem = await ProblemAsync(r, HttpStatusCode.BadRequest);
        var errors = (JsonObject)problem["errors"]!;
        Assert.True(errors.ContainsKey(field), $"errors name {string.Join(", ", errors.Select(e => e.Key))}, not {field}");
        Assert.Contains(message, errors[field]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains(field, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Duplicate_name_is_a_conflict_naming_the_field()
    {
        using var client = await server.LoginAsync();
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsJsonAsync("api/connections", new { name = "dup", connector = "sample", config = new { } })).StatusCode);
        var problem = await ProblemAsync(await client.PostAsJsonAsync("api/connections", new { name = "dup", connector = "sample", config = new { } }), HttpStatusCode.Conflict);
        Assert.Contains("exists already", problem["errors"]!["name"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Secrets_are_never_returned_and_kept_when_the_mask_is_sent_back()
    {
        using var client = await server.LoginAsync();
        var body = new { name = "vault1", connector = "vault", config = new { host = "vault.local", password = "open-sesame", tls = new { enabled = true, clientKey = "k3y-material" } } };
        var created = await client.PostAsJsonAsync("api/connections", body);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        foreach (var text in new[]
                 {
                     await created.Content.ReadAsStringAsync(),
                     await client.GetStringAsync(new Uri("api/connections/vault1", UriKind.Relative)),
                     await client.GetStringAsync(new Uri("api/connections", UriKind.Relative)),
                 })
        {
            Assert.DoesNotContain("open-sesame", text, StringComparison.Ordinal);
            Assert.DoesNotContain("k3y-material", text, StringComparison.Ordinal);
        }

        var read = await JsonAsync(await client.GetAsync(new Uri("api/connections/vault1", UriKind.Relative)));
        Assert.Equal("********", read["config"]!["password"]!.GetValue<string>());
        Assert.Equal("********", read["config"]!["tls"]!["clientKey"]!.GetValue<string>());

        // The client sends the masked configuration back with one change: the secrets keep their values.
        var config = read["config"]!.AsObject();
        config["port"] = 8300;
        Assert.Equal(HttpStatusCode.OK, (await client.PutAsJsonAsync("api/connections/vault1", new { connector = "vault", config })).StatusCode);
        var check = await JsonAsync(await client.PostAsync(new Uri("api/connections/vault1/check", UriKind.Relative), null));
        Assert.True(check["succeeded"]!.GetValue<bool>(), check.ToJsonString());
        Assert.Equal("Connected to vault.local.", check["message"]!.GetValue<string>());

        // Nor are secrets readable in the data folder: they are encrypted at rest.
        var raw = await RawStoreTextAsync();
        Assert.DoesNotContain("open-sesame", raw, StringComparison.Ordinal);
        Assert.Contains("vault.local", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_of_an_unsaved_configuration_reports_the_connector_message_and_field()
    {
        using var client = await server.LoginAsync();
        var bad = await JsonAsync(await client.PostAsJsonAsync("api/check", new { connector = "vault", config = new { host = "h1", password = "wrong" } }));
        Assert.False(bad["succeeded"]!.GetValue<bool>());
        Assert.Equal("config.password", bad["field"]!.GetValue<string>());
        Assert.Contains("refused the password", bad["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var good = await JsonAsync(await client.PostAsJsonAsync("api/check", new { connector = "vault", config = new { host = "h1", password = "open-sesame" } }));
        Assert.True(good["succeeded"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Discover_lists_streams_with_columns_keys_and_modes()
    {
        using var client = await server.LoginAsync();
        var r = await JsonAsync(await client.PostAsJsonAsync("api/discover", new { connector = "sample", config = new { seed = 1 } }));
        Assert.True(r["succeeded"]!.GetValue<bool>());
        var streams = r["streams"]!.AsArray();
        Assert.Equal(["customers", "products", "orders", "order_lines"], streams.Select(s => s!["name"]!.GetValue<string>()));
        var lines = streams.Single(s => s!["name"]!.GetValue<string>() == "order_lines")!;
        Assert.Equal(["order_id", "line_no"], lines["primaryKey"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Contains("merge", lines["modes"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.NotEmpty(lines["columns"]!.AsArray());
    }

    [Fact]
    public async Task Started_connection_commits_rows_that_the_table_preview_shows_and_stops_on_request()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "shop",
            connector = "sample",
            config = new { seed = 3, customers = 50, products = 10, orders = 100, changes = 100, changesPerSecond = 20, batchSize = 100 },
            streams = new[] { new { name = "customers", mode = "merge" }, new { name = "orders", mode = "append" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var started = await client.PostAsync(new Uri("api/connections/shop/start", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);

        JsonObject status = [];
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            status = await JsonAsync(await client.GetAsync(new Uri("api/connections/shop/status", UriKind.Relative)));
            if (status["state"]!.GetValue<string>() == "running" && status["streams"]!.AsArray().All(s => s!["lastCommitVersion"] is not null && s["rowsCommitted"]!.GetValue<long>() > 0))
            {
                break;
            }

            await Task.Delay(250);
        }

        Assert.Equal("running", status["state"]!.GetValue<string>());
        var customers = status["streams"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == "customers")!;
        Assert.True(customers["rowsCommitted"]!.GetValue<long>() >= 50, status.ToJsonString());
        Assert.Equal("merge", customers["mode"]!.GetValue<string>());

        var tables = JsonNode.Parse(await client.GetStringAsync(new Uri("api/tables", UriKind.Relative)))!.AsArray();
        Assert.Contains(tables, t => t!["name"]!.GetValue<string>() == "shop/customers");
        Assert.DoesNotContain(tables, t => t!["name"]!.GetValue<string>() == "shop/products");

        var detail = await JsonAsync(await client.GetAsync(new Uri("api/tables/shop/customers", UriKind.Relative)));
        Assert.Contains(detail["columns"]!.AsArray(), c => c!["name"]!.GetValue<string>() == "id");
        Assert.Contains(detail["columns"]!.AsArray(), c => c!["name"]!.GetValue<string>() == "_position");
        Assert.NotEmpty(detail["history"]!.AsArray());

        var preview = await JsonAsync(await client.GetAsync(new Uri("api/tables/shop/customers/preview?limit=10", UriKind.Relative)));
        var rows = preview["rows"]!.AsArray();
        Assert.Equal(10, rows.Count);
        Assert.All(rows, r => Assert.NotNull(r!["id"]));

        var stopped = await client.PostAsync(new Uri("api/connections/shop/stop", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.OK, stopped.StatusCode);
        deadline = DateTime.UtcNow.AddSeconds(15);
        string state;
        do
        {
            state = (await JsonAsync(await client.GetAsync(new Uri("api/connections/shop/status", UriKind.Relative))))["state"]!.GetValue<string>();
            await Task.Delay(200);
        }
        while (state != "stopped" && DateTime.UtcNow < deadline);
        Assert.Equal("stopped", state);
        Assert.False((await JsonAsync(await client.GetAsync(new Uri("api/connections/shop", UriKind.Relative))))["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Starting_a_connection_with_an_unknown_stream_names_the_field()
    {
        using var client = await server.LoginAsync();
        await client.PostAsJsonAsync("api/connections", new { name = "typo", connector = "sample", config = new { }, streams = new[] { new { name = "ordrs", mode = "merge" } } });
        var problem = await ProblemAsync(await client.PostAsync(new Uri("api/connections/typo/start", UriKind.Relative), null), HttpStatusCode.BadRequest);
        Assert.Contains("did you mean 'orders'", problem["errors"]!["streams[0].name"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_table_is_a_not_found_problem()
    {
        using var client = await server.LoginAsync();
        var r = await client.GetAsync(new Uri("api/tables/nosuch/orders", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("api/tables/..%2F../x/preview", UriKind.Relative))).StatusCode);
    }
}
