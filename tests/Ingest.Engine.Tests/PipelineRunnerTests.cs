using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Engine.State;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests;

public sealed class PipelineRunnerTests
{
    private static readonly RunOptions Fast = new() { Once = true, RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 3 };

    private static async Task<(RunResult Result, RunStatus Status)> RunAsync(TempDir dir, Dictionary<string, ISourceConnector> connectors, string connections, RunOptions? options = null, StateStore? store = null)
    {
        var yaml = "lake: ./lake\ncommit: {interval: 10ms}\nconnections:\n" + connections;
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));
        var bound = await PipelineBinder.BindAsync(def, connectors, CancellationToken.None);
        var status = new RunStatus();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var result = await PipelineRunner.RunAsync(bound, options ?? Fast, store, NullLoggerFactory.Instance, status, timeout.Token);
        return (result, status);
    }

    private static async Task AssertItemsAsync(string lake, string connection, int rows)
    {
        var merged = await Lake.ReadAsync(Path.Combine(lake, connection, "items"));
        Assert.Equal(Enumerable.Range(0, rows).Select(i => (long)i), merged.Select(r => (long)r["id"]!).Order());
        var log = await Lake.ReadAsync(Path.Combine(lake, connection, "events"));
        Assert.Equal(Enumerable.Range(0, rows).Select(i => (long)i), log.Select(r => (long)r["id"]!).Order());
        Assert.All(log, r => Assert.Equal("c", r["_op"]));
    }

    [Fact]
    public async Task Transient_failure_restarts_the_read_from_the_lake_and_loses_or_duplicates_nothing()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { Rows = 100, BatchSize = 10, BeforeBatch = (read, next) => { if (read == 1 && next == 50) { throw new ConnectorException(ErrorKind.Transient, "connection reset"); } } };
        await using var store = await StateStore.OpenAsync(dir.Combine("state.db"), CancellationToken.None);

        var (result, status) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n", store: store);

        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => c.Error)));
        Assert.Equal(ConnectionState.Completed, result.Connections[0].State);
        Assert.Equal(2, fake.Reads);
        Assert.Equal(1, status.Connections["a"].Restarts);
        Assert.NotNull(fake.States[1]);
        await AssertItemsAsync(dir.Combine("lake"), "a", 100);
        Assert.Contains(100, fake.Acknowledged);
        var errors = await store.RecentErrorsAsync(10, CancellationToken.None);
        Assert.Contains(errors, e => e.Kind == "transient" && e.Message.Contains("connection reset", StringComparison.Ordinal));
        var checkpoint = await store.GetCheckpointAsync("a", CancellationToken.None);
        Assert.Equal(100, checkpoint!.State.GetProperty("next").GetInt32());
        var run = Assert.Single(await store.RecentRunsAsync(5, CancellationToken.None));
        Assert.Equal("succeeded", run.Status);
    }

    [Fact]
    public async Task A_connectors_progress_note_reaches_the_status_and_the_terminal_view()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { Rows = 30, Note = "waiting for the API quota to reset at 14:00 UTC" };

        var (result, status) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.True(result.Succeeded);
        Assert.Equal(fake.Note, status.Connections["a"].Streams["items"].Message);
        var lines = Ingest.Host.Cli.ProgressView.Render(status, []);
        Assert.Contains(lines, l => l.Trim() == fake.Note);
    }

    [Fact]
    public async Task Lag_is_the_time_from_the_sources_commit_of_the_newest_committed_row_to_its_lake_commit()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { Rows = 30 };

        var (result, status) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.True(result.Succeeded);
        var items = status.Connections["a"].Streams["items"];

        // The fake's row i was committed at the source at 1_700_000_000 s + i microseconds (2023-11-14).
        var sourceCommit = DateTimeOffset.UnixEpoch.AddTicks((1_700_000_000_000_000 + 29) * 10);
        Assert.Equal(items.LastCommitAt!.Value - sourceCommit, items.Lag);
    }

    [Fact]
    public async Task Fatal_failure_stops_only_its_own_connection()
    {
        using var dir = new TempDir();
        var bad = new FakeConnector { BeforeBatch = (_, next) => { if (next == 30) { throw new InvalidOperationException("plugin bug"); } } };
        var good = new FakeConnector { Rows = 60 };

        var (result, _) = await RunAsync(dir, new() { ["bad"] = bad, ["good"] = good },
            "  - {name: a, connector: bad, config: {host: h}}\n  - {name: b, connector: good, config: {host: h}}\n");

        Assert.False(result.Succeeded);
        var a = result.Connections.Single(c => c.Name == "a");
        Assert.Equal(ConnectionState.Failed, a.State);
        Assert.Contains("plugin bug", a.Error, StringComparison.Ordinal);
        Assert.Equal(1, bad.Reads);
        Assert.Equal(ConnectionState.Completed, result.Connections.Single(c => c.Name == "b").State);
        await AssertItemsAsync(dir.Combine("lake"), "b", 60);
    }

    [Fact]
    public async Task Transient_failures_beyond_the_attempt_limit_fail_the_connection()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { BeforeBatch = (_, _) => throw new ConnectorException(ErrorKind.Transient, "server restarting") };

        var (result, _) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.Equal(ConnectionState.Failed, result.Connections[0].State);
        Assert.Contains("gave up after 3 restarts: server restarting", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.Equal(4, fake.Reads);
    }

    [Fact]
    public async Task Failed_check_stops_the_connection_with_the_connectors_message()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { Check = () => CheckResult.Failed("password authentication failed", "/password") };

        var (result, _) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.Equal(ConnectionState.Failed, result.Connections[0].State);
        Assert.Equal("check failed: password authentication failed (field /password)", result.Connections[0].Error);
        Assert.Equal(0, fake.Reads);
    }

    [Fact]
    public async Task Connector_breaking_position_order_fails_clearly()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { BreakPositions = true };

        var (result, _) = await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.Equal(ConnectionState.Failed, result.Connections[0].State);
        Assert.Contains("positions of stream 'items' must strictly increase", result.Connections[0].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Second_run_resumes_from_the_lake_and_adds_nothing()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { Rows = 40 };
        await RunAsync(dir, new() { ["fake"] = fake }, "  - {name: a, connector: fake, config: {host: h}}\n");

        var again = new FakeConnector { Rows = 40 };
        var (result, _) = await RunAsync(dir, new() { ["fake"] = again }, "  - {name: a, connector: fake, config: {host: h}}\n");

        Assert.True(result.Succeeded);
        Assert.Equal(40, again.States[0]!.Value.GetProperty("next").GetInt32());
        await AssertItemsAsync(dir.Combine("lake"), "a", 40);
    }

    [Fact]
    public async Task Discovery_failure_at_the_source_fails_only_that_connection()
    {
        using var dir = new TempDir();
        var down = new FakeConnector { DiscoverFailure = new HttpRequestException("connection refused") };
        var good = new FakeConnector { Rows = 20 };

        var (result, _) = await RunAsync(dir, new() { ["down"] = down, ["good"] = good },
            "  - {name: a, connector: down, config: {host: h}}\n  - {name: b, connector: good, config: {host: h}}\n");

        var a = result.Connections.Single(c => c.Name == "a");
        Assert.Equal(ConnectionState.Failed, a.State);
        Assert.Equal("HttpRequestException: connection refused", a.Error);
        Assert.Equal(ConnectionState.Completed, result.Connections.Single(c => c.Name == "b").State);
        await AssertItemsAsync(dir.Combine("lake"), "b", 20);
    }

    [Fact]
    public async Task Configuration_error_from_discovery_is_refused_as_an_invalid_pipeline_naming_the_field()
    {
        using var dir = new TempDir();
        var fake = new FakeConnector { DiscoverFailure = new ConnectorException(ErrorKind.Configuration, "no such database", "/host") };
        var def = PipelineFile.Parse("connections:\n  - name: a\n    connector: fake\n    config:\n      host: nowhere\n", dir.Combine("pipeline.yaml"));

        var e = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["fake"] = fake }, CancellationToken.None));

        Assert.Equal("pipeline.yaml:5:13: connections[0].config.host: no such database", Assert.Single(e.Errors).ToString());
    }
}
