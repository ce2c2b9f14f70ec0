using System.Net;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

public sealed class HostLifecycleTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "ingest-host-lifecycle-" + Guid.NewGuid().ToString("N")[..8]);

    private static async Task<JsonObject> StatusAsync(HttpClient client) =>
        (JsonObject)JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sample/status", UriKind.Relative)))!;

    private static async Task<JsonObject> WaitForRowsAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonObject status;
        do
        {
            status = await StatusAsync(client);
            if (status["state"]!.GetValue<string>() == "running" && status["rowsCommitted"]!.GetValue<long>() > 0)
            {
                return status;
            }

            await Task.Delay(250);
        }
        while (DateTime.UtcNow < deadline);
        return status;
    }

    [Fact]
    public async Task Restarted_host_keeps_its_login_and_resumes_the_sample_connection_from_the_lake()
    {
        string password;
        long versionBefore;
        await using (var first = new IngestServerFixture(_data, []))
        {
            await first.InitializeAsync();
            password = first.Password;
            using var client = await first.LoginAsync();
            var status = await WaitForRowsAsync(client);
            Assert.Equal("running", status["state"]!.GetValue<string>());
            versionBefore = status["lastCommitVersion"]!.GetValue<long>();
        }

        await using var second = new IngestServerFixture(_data, []) { ExpectPassword = false };
        await second.InitializeAsync();
        Assert.DoesNotContain("password '", second.Output, StringComparison.Ordinal);
        using var again = await second.LoginAsync(password);
        var resumed = await WaitForRowsAsync(again);
        Assert.Equal("running", resumed["state"]!.GetValue<string>());
        Assert.True(resumed["lastCommitVersion"]!.GetValue<long>() > versionBefore, resumed.ToJsonString());
        var list = JsonNode.Parse(await again.GetStringAsync(new Uri("api/connections", UriKind.Relative)))!.AsArray();
        Assert.Single(list);
    }

    [Fact]
    public async Task Worker_node_runs_connections_without_serving_the_ui_or_api()
    {
        await using var worker = new IngestServerFixture(_data, ["--role", "worker"]) { ExpectPassword = false };
        await worker.InitializeAsync();
        using var client = worker.Anonymous();
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("login", UriKind.Relative))).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !Directory.Exists(Path.Combine(_data, "lake", "sample", "orders", "_delta_log")))
        {
            await Task.Delay(250);
        }

        Assert.True(Directory.Exists(Path.Combine(_data, "lake", "sample", "orders", "_delta_log")), worker.Output);
    }

    public void Dispose()
    {
        if (Directory.Exists(_data))
        {
            Directory.Delete(_data, recursive: true);
        }
    }
}
