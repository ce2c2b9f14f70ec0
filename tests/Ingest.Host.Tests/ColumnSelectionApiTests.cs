using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;
using Microsoft.AspNetCore.DataProtection;

namespace Ingest.Host.Tests;

/// <summary>Per-stream column selection through the REST API, the config store and YAML export/import.</summary>
[Collection(ServerCollection.Name)]
public sealed class ColumnSelectionApiTests(IngestServerFixture server)
{
    private static async Task<JsonObject> JsonAsync(HttpResponseMessage r) => (JsonObject)JsonNode.Parse(await r.Content.ReadAsStringAsync())!;

    private static string[] Names(JsonNode? array) => array!.AsArray().Select(x => x!.GetValue<string>()).ToArray();

    [Fact]
    public async Task Columns_round_trip_through_the_api_and_export_and_only_they_reach_the_table()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "cols",
            connector = "sample",
            config = new { seed = 5, customers = 40, products = 5, orders = 20, changes = 50, changesPerSecond = 0, batchSize = 100 },
            streams = new object[] { new { name = "customers", mode = "merge", columns = new[] { "id", "email" } }, new { name = "products", mode = "append" } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var read = await JsonAsync(await client.GetAsync(new Uri("api/connections/cols", UriKind.Relative)));
        var streams = read["streams"]!.AsArray();
        Assert.Equal(["id", "email"], Names(streams[0]!["columns"]));
        Assert.False(streams[1]!.AsObject().ContainsKey("columns"), "a stream without a selection has no 'columns'");

        var yaml = await client.GetStringAsync(new Uri("api/connections/cols/export", UriKind.Relative));
        Assert.Contains("columns: [\"id\", \"email\"]", yaml, StringComparison.Ordinal);
        var parsed = PipelineFile.Parse(yaml, "/tmp/cols.yaml");
        Assert.Equal(["id", "email"], parsed.Connections[0].Streams![0].Columns);

        var imported = await client.PostAsync(new Uri("api/connections/import?file=cols.yaml", UriKind.Relative),
            new StringContent(yaml.Replace("name: \"cols\"", "name: \"cols-copy\"", StringComparison.Ordinal), Encoding.UTF8, "application/yaml"));
        Assert.True(imported.IsSuccessStatusCode, await imported.Content.ReadAsStringAsync());
        var copy = await JsonAsync(await client.GetAsync(new Uri("api/connections/cols-copy", UriKind.Relative)));
        Assert.Equal(["id", "email"], Names(copy["streams"]![0]!["columns"]));
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri("api/connections/cols-copy", UriKind.Relative))).StatusCode);

        // Run it: the customers table has the key and email only.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/cols/start", UriKind.Relative), null)).StatusCode);
        JsonObject? detail = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var r = await client.GetAsync(new Uri("api/tables/cols/customers", UriKind.Relative));
            if (r.IsSuccessStatusCode && (detail = await JsonAsync(r))["history"]!.AsArray().Count > 0)
            {
                break;
            }

            await Task.Delay(250);
        }

        Assert.NotNull(detail);
        Assert.Equal(["id", "email"], detail["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()).Where(n => !n.StartsWith('_')));
        var preview = await JsonAsync(await client.GetAsync(new Uri("api/tables/cols/customers/preview?limit=5", UriKind.Relative)));
        Assert.All(preview["rows"]!.AsArray(), r => Assert.False(r!.AsObject().ContainsKey("full_name")));
        await client.PostAsync(new Uri("api/connections/cols/stop", UriKind.Relative), null);
    }

    [Theory]
    [InlineData("""[]""", "streams[0].columns", "expected at least one column")]
    [InlineData("""["id", "ID"]""", "streams[0].columns[1]", "listed twice")]
    [InlineData("""["id", ""]""", "streams[0].columns[1]", "expected a column name")]
    public async Task A_malformed_column_list_is_refused_naming_the_field(string columns, string field, string message)
    {
        using var client = await server.LoginAsync();
        var body = $$"""{"name":"badcols","connector":"sample","config":{},"streams":[{"name":"orders","mode":"merge","columns":{{columns}}}]}""";

        var r = await client.PostAsync(new Uri("api/connections", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var errors = (JsonObject)(await JsonAsync(r))["errors"]!;
        Assert.True(errors.ContainsKey(field), $"errors name {string.Join(", ", errors.Select(e => e.Key))}, not {field}");
        Assert.Contains(message, errors[field]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sqlite_store_keeps_a_streams_columns()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ingest-cols-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var protector = new Protector(DataProtectionProvider.Create(new DirectoryInfo(Path.Combine(dir, "keys"))));
            var path = Path.Combine(dir, "ingest.db");
            var now = DateTimeOffset.UtcNow;
            StreamChoice[] streams = [new("orders", SinkMode.Merge, null, ["id", "status"]), new("customers", SinkMode.Append)];
            await using (var store = await ConnectionConfigStore.OpenAsync(path, protector, CancellationToken.None))
            {
                Assert.True(await store.CreateAsync(new StoredConnection("c", "sample", [], streams, "/lake", true, now, now), [], CancellationToken.None));
            }

            await using (var store = await ConnectionConfigStore.OpenAsync(path, protector, CancellationToken.None))
            {
                var c = await store.GetAsync("c", CancellationToken.None);
                Assert.Equal(streams, c!.Streams);
                Assert.Equal(["id", "status"], c.Streams![0].Columns);
                Assert.Null(c.Streams[1].Columns);
                Assert.Equal(["id", "status"], Assert.Single(ConnectionSupervisorDefinition(c).Connections[0].Streams!, s => s.Name == "orders").Columns);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static PipelineDefinition ConnectionSupervisorDefinition(StoredConnection c) => Ingest.Engine.Control.ConnectionSupervisor.Definition(c);

    private sealed class Protector(IDataProtectionProvider provider) : ISecretProtector
    {
        private readonly IDataProtector _p = provider.CreateProtector("test");

        public string Protect(string plaintext) => _p.Protect(plaintext);

        public string Unprotect(string protectedText) => _p.Unprotect(protectedText);
    }
}
