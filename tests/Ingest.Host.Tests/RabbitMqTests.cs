using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>A web node and a worker node, two <c>ingest serve</c> processes sharing one data folder, talking through a real RabbitMQ.</summary>
public sealed class RabbitMqTests : IClassFixture<RabbitMqNode>
{
    private readonly RabbitMqNode _rabbit;

    public RabbitMqTests(RabbitMqNode rabbit) => _rabbit = rabbit;

    private static async Task WaitForStateAsync(HttpClient client, string expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string state;
        do
        {
            state = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sample/status", UriKind.Relative)))!["state"]!.GetValue<string>();
            await Task.Delay(200);
        }
        while (state != expected && DateTime.UtcNow < deadline);
        Assert.Equal(expected, state);
    }

    /// <summary>How many workers hold the connection's lease, read from the shared config store.</summary>
    private static async Task<long> LeasesAsync(string data, string connection)
    {
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(data, "ingest.db")};Mode=ReadOnly;Pooling=False");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM leases WHERE connection = $c";
        cmd.Parameters.AddWithValue("$c", connection);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task Web_node_runs_a_connection_on_one_of_two_worker_nodes_through_rabbitmq_and_shows_its_status()
    {
        var data = Path.Combine(Path.GetTempPath(), "ingest-host-rabbit-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var web = new IngestServerFixture(data, ["--role", "web", "--bus", _rabbit.Uri, "--no-sample"]);
            await web.InitializeAsync();
            await using var worker = new IngestServerFixture(data, ["--role", "worker", "--bus", _rabbit.Uri, "--no-sample"]) { ExpectPassword = false };
            await worker.InitializeAsync();
            await using var worker2 = new IngestServerFixture(data, ["--role", "worker", "--bus", _rabbit.Uri, "--no-sample"]) { ExpectPassword = false };
            await worker2.InitializeAsync();
            Assert.Contains($"bus rabbitmq://guest@127.0.0.1:{_rabbit.Port}/", web.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("no worker runs connections", web.Output, StringComparison.Ordinal);

            using var client = await web.LoginAsync();
            var created = await client.PostAsJsonAsync("api/connections", new
            {
                name = "sample",
                connector = "sample",
                config = new { seed = 4, customers = 40, products = 5, orders = 50, changes = 0, changesPerSecond = 20, batchSize = 50 },
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);

            // Check runs on the worker (the web node has no consumer for it), and the broker never sees the secret:
            // a queue bound to the command's exchange receives a copy of the message.
            var factory = new RabbitMQ.Client.ConnectionFactory { Uri = new Uri($"amqp://guest:guest@127.0.0.1:{_rabbit.Port}/") };
            await using var amqp = await factory.CreateConnectionAsync();
            await using var channel = await amqp.CreateChannelAsync();
            var tap = await channel.QueueDeclareAsync("ingest-test-tap", durable: false, exclusive: true, autoDelete: true, arguments: null);
            await channel.QueueBindAsync(tap.QueueName, "Ingest.Host.Control:CheckConnection", "");
            var check = await client.PostAsJsonAsync("api/check", new { connector = "vault", config = new { host = "remote", password = "open-sesame" } });
            var checkBody = JsonNode.Parse(await check.Content.ReadAsStringAsync())!;
            Assert.True(checkBody["succeeded"]!.GetValue<bool>(), checkBody.ToJsonString());
            var copy = await channel.BasicGetAsync(tap.QueueName, autoAck: true);
            Assert.NotNull(copy);
            var body = System.Text.Encoding.UTF8.GetString(copy.Body.Span);
            Assert.Contains("remote", body, StringComparison.Ordinal);
            Assert.Contains("enc:v1:", body, StringComparison.Ordinal);
            Assert.DoesNotContain("open-sesame", body, StringComparison.Ordinal);

            var started = await client.PostAsync(new Uri("api/connections/sample/start", UriKind.Relative), null);
            Assert.Equal(HttpStatusCode.OK, started.StatusCode);

            JsonNode status = new JsonObject();
            var deadline = DateTime.UtcNow.AddSeconds(40);
            while (DateTime.UtcNow < deadline)
            {
                status = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sample/status", UriKind.Relative)))!;
                if (status["state"]!.GetValue<string>() == "running" && status["rowsCommitted"]!.GetValue<long>() >= 40)
                {
                    break;
                }

                await Task.Delay(250);
            }

            Assert.True(status["state"]!.GetValue<string>() == "running" && status["rowsCommitted"]!.GetValue<long>() >= 40, $"{status.ToJsonString()}\nweb:\n{web.Output}\nworker:\n{worker.Output}");
            Assert.Equal(4, status["streams"]!.AsArray().Count);
            Assert.True(Directory.Exists(Path.Combine(data, "lake", "sample", "customers", "_delta_log")), "the worker wrote the table in the shared lake");

            // One worker holds the connection's lease; pause and resume reach that one, whichever it is.
            Assert.Equal(1L, await LeasesAsync(data, "sample"));
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/sample/pause", UriKind.Relative), null)).StatusCode);
            await WaitForStateAsync(client, "paused");
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/sample/resume", UriKind.Relative), null)).StatusCode);
            await WaitForStateAsync(client, "running");
            Assert.Equal(1L, await LeasesAsync(data, "sample"));

            var stopped = await client.PostAsync(new Uri("api/connections/sample/stop", UriKind.Relative), null);
            Assert.Equal(HttpStatusCode.OK, stopped.StatusCode);
            await WaitForStateAsync(client, "stopped");
            Assert.Equal(0L, await LeasesAsync(data, "sample"));
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>The lease owner's process id, read from the shared config store (owners are host:pid:suffix).</summary>
    private static async Task<int?> LeaseProcessAsync(string data, string connection)
    {
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(data, "ingest.db")};Mode=ReadOnly;Pooling=False");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT owner FROM leases WHERE connection = $c";
        cmd.Parameters.AddWithValue("$c", connection);
        return await cmd.ExecuteScalarAsync() is string owner ? int.Parse(owner.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    [Fact]
    public async Task Killed_worker_s_connection_moves_to_the_other_worker_when_its_lease_expires()
    {
        var data = Path.Combine(Path.GetTempPath(), "ingest-host-failover-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var web = new IngestServerFixture(data, ["--role", "web", "--bus", _rabbit.Uri, "--no-sample"]);
            await web.InitializeAsync();
            await using var worker1 = new IngestServerFixture(data, ["--role", "worker", "--bus", _rabbit.Uri, "--no-sample"]) { ExpectPassword = false };
            await worker1.InitializeAsync();
            await using var worker2 = new IngestServerFixture(data, ["--role", "worker", "--bus", _rabbit.Uri, "--no-sample"]) { ExpectPassword = false };
            await worker2.InitializeAsync();

            using var client = await web.LoginAsync();
            var created = await client.PostAsJsonAsync("api/connections", new
            {
                name = "sample",
                connector = "sample",
                config = new { seed = 8, customers = 40, products = 5, orders = 50, changes = 0, changesPerSecond = 20, batchSize = 50 },
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("api/connections/sample/start", UriKind.Relative), null)).StatusCode);
            await WaitForStateAsync(client, "running");

            var owner = await LeaseProcessAsync(data, "sample");
            var (dead, survivor) = owner == worker1.ProcessId ? (worker1, worker2) : (worker2, worker1);
            Assert.Equal(dead.ProcessId, owner);
            // Killed after its first commit, so that the survivor has progress in the lake to resume from.
            long versionBefore = -1;
            var committed = DateTime.UtcNow.AddSeconds(30);
            while (versionBefore < 0 && DateTime.UtcNow < committed)
            {
                versionBefore = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sample/status", UriKind.Relative)))!["lastCommitVersion"]?.GetValue<long>() ?? -1;
                await Task.Delay(200);
            }

            Assert.True(versionBefore >= 0, "the first worker committed nothing within 30 s");
            await dead.KillAsync();

            // The lease expires (15 s) and the survivor's next claim (every 5 s) takes the connection over.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && await LeaseProcessAsync(data, "sample") != survivor.ProcessId)
            {
                await Task.Delay(500);
            }

            Assert.Equal(survivor.ProcessId, await LeaseProcessAsync(data, "sample"));
            JsonNode status = new JsonObject();
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                status = JsonNode.Parse(await client.GetStringAsync(new Uri("api/connections/sample/status", UriKind.Relative)))!;
                if (status["state"]!.GetValue<string>() == "running" && status["lastCommitVersion"]?.GetValue<long>() > versionBefore)
                {
                    break;
                }

                await Task.Delay(250);
            }

            Assert.True(status["state"]!.GetValue<string>() == "running" && status["lastCommitVersion"]?.GetValue<long>() > versionBefore, $"{status.ToJsonString()}\nsurvivor:\n{survivor.Output}");
            Assert.Contains("resuming from checkpoint", survivor.Output, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }
}
