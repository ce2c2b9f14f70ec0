using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Ingest.Host.Tests;

/// <summary>A backfill's saga state is persisted: a restarted host shows it and the backfill resumes under the same id.</summary>
public sealed class BackfillRestartTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "ingest-host-backfill-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Backfill_interrupted_by_a_host_restart_shows_its_progress_and_resumes_to_completion()
    {
        const int customers = 20_000;
        string password;
        string id;
        long doneBefore;
        await using (var first = new IngestServerFixture(_data, ["--no-sample"]))
        {
            await first.InitializeAsync();
            password = first.Password;
            using var client = await first.LoginAsync();
            await BackfillTests.StartSampleAsync(client, "bf-restart", customers, batchSize: 100);
            var r = await client.PostAsJsonAsync("api/connections/bf-restart/backfills", new { stream = "customers" });
            Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
            id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
            var running = await BackfillTests.WaitForBackfillAsync(client, "bf-restart", id, b => b["rowsDone"]!.GetValue<long>() > 0 || b["state"]!.GetValue<string>() != "pending");
            doneBefore = running["rowsDone"]!.GetValue<long>();
            Assert.True(running["state"]!.GetValue<string>() is "running" or "pending", $"the backfill finished before the restart: {running.ToJsonString()}");
        }

        await using var second = new IngestServerFixture(_data, ["--no-sample"]) { ExpectPassword = false };
        await second.InitializeAsync();
        using var again = await second.LoginAsync(password);

        // Right after the restart the persisted state shows (no 404, not reset), then the resumed backfill completes.
        var shown = JsonNode.Parse(await again.GetStringAsync(new Uri($"api/connections/bf-restart/backfills/{id}", UriKind.Relative)))!;
        Assert.Equal(id, shown["id"]!.GetValue<string>());
        Assert.True(shown["rowsDone"]!.GetValue<long>() >= doneBefore, shown.ToJsonString());
        var done = await BackfillTests.WaitForBackfillAsync(again, "bf-restart", id, b => b["state"]!.GetValue<string>() == "completed", seconds: 120);
        // Every customer at least (those the live changes added since arrive too).
        Assert.True(done["rowsDone"]!.GetValue<long>() >= customers, $"{done.ToJsonString()} (before the restart: {doneBefore} rows)");
        Assert.Contains($"backfill {id} of stream customers handed back", second.Output, StringComparison.Ordinal);
        var list = JsonNode.Parse(await again.GetStringAsync(new Uri("api/connections/bf-restart/backfills", UriKind.Relative)))!.AsArray();
        Assert.Single(list);
    }

    public void Dispose()
    {
        if (Directory.Exists(_data))
        {
            Directory.Delete(_data, recursive: true);
        }
    }
}
