using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>A stream's destination table chosen per stream: stored, validated, written by the run, exported.</summary>
[Collection(ServerCollection.Name)]
public sealed class TablePathTests(IngestServerFixture server)
{
    [Fact]
    public async Task Run_writes_a_stream_to_the_table_path_chosen_for_it()
    {
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new
        {
            name = "tp-run",
            connector = "sample",
            config = new { seed = 3, customers = 20, products = 5, orders = 10, changes = 0, changesPerSecond = 10, batchSize = 50 },
            streams = new object[] { new { name = "customers", mode = "merge", table = "tp_lake/clients" }, new { name = "products", mode = "append" } },
        });
        var body = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        Assert.True(created.StatusCode == HttpStatusCode.Created, body.ToJsonString());
        Assert.Equal("""[{"name":"customers","mode":"merge","table":"tp_lake/clients"},{"name":"products","mode":"append"}]""", body["streams"]!.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/tp-run/start", UriKind.Relative), null)).StatusCode);
        var lake = Path.Combine(server.DataPath, "lake");
        JsonNode status = new JsonObject();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        do
        {
            await Task.Delay(250);
            status = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/tp-run/status", UriKind.Relative)))!;
        }
        while (DateTime.UtcNow < deadline && !(Directory.Exists(Path.Combine(lake, "tp_lake", "clients", "_delta_log")) && status["streams"]!.AsArray().Count == 2));

        await client.PostAsync(new Uri("api/connections/tp-run/stop", UriKind.Relative), null);
        Assert.True(Directory.Exists(Path.Combine(lake, "tp_lake", "clients", "_delta_log")), status.ToJsonString());
        Assert.False(Directory.Exists(Path.Combine(lake, "tp-run", "customers")));
        string TablePath(string stream) => status["streams"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == stream)!["tablePath"]!.GetValue<string>();
        Assert.Equal(Path.Combine(lake, "tp_lake", "clients"), TablePath("customers"));
        Assert.Equal(Path.Combine(lake, "tp-run", "products"), TablePath("products"));

        var yaml = await client.GetStringAsync(new Uri("api/connections/tp-run/export", UriKind.Relative));
        Assert.Contains("table: \"tp_lake/clients\"", yaml, StringComparison.Ordinal);
        var imported = await client.PostAsync(new Uri("api/connections/import", UriKind.Relative), new StringContent(yaml.Replace("name: \"tp-run\"", "name: \"tp-copy\"", StringComparison.Ordinal).Replace("tp_lake/clients", "tp_lake/clients_copy", StringComparison.Ordinal)));
        Assert.Equal(HttpStatusCode.Created, imported.StatusCode);
        var copy = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/tp-copy", UriKind.Relative)))!;
        Assert.Equal("tp_lake/clients_copy", copy["streams"]![0]!["table"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("../outside")]
    [InlineData("/abs/path")]
    [InlineData("s3://bucket/t")]
    [InlineData("just-one-part")]
    [InlineData("a/../b")]
    public async Task Table_path_outside_the_lake_or_not_folder_and_table_is_refused_on_the_field(string table)
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsJsonAsync("api/connections", new { name = "tp-bad", connector = "sample", config = new { seed = 1 }, streams = new[] { new { name = "orders", mode = "merge", table } } });
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var errors = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["errors"]!;
        Assert.Contains("folder/table", errors["streams[0].table"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_streams_writing_one_table_are_refused()
    {
        using var client = await server.LoginAsync();
        var r = await client.PostAsJsonAsync("api/connections", new
        {
            name = "tp-twice",
            connector = "sample",
            config = new { seed = 1 },
            streams = new object[] { new { name = "orders", mode = "merge" }, new { name = "customers", mode = "merge", table = "tp-twice/orders" } },
        });
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var errors = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["errors"]!;
        Assert.Contains("same table", errors["streams[1].table"]![0]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
