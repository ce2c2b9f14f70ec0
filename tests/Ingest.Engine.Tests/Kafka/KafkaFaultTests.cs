using Confluent.Kafka;
using Ingest.Connectors.Sample;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>Faults injected into librdkafka's mock cluster: the Kafka halves restart through the engine's retry path and stay exact.</summary>
public sealed class KafkaFaultTests
{
    private const short ProduceApi = 0;

    private static async Task<(RunResult Result, RunStatus Status)> RunAsync(string pipelinePath, RunRole role, Func<Task>? during = null)
    {
        var definition = PipelineFile.Load(pipelinePath);
        var bound = await PipelineBinder.BindAsync(definition, new Dictionary<string, ISourceConnector> { ["sample"] = new SampleConnector() }, CancellationToken.None);
        var status = new RunStatus();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var options = new RunOptions { Once = true, Role = role, RetryBaseDelay = TimeSpan.FromMilliseconds(200), MaxAttempts = 8 };
        var run = PipelineRunner.RunAsync(bound, options, null, NullLoggerFactory.Instance, status, timeout.Token);
        if (during is not null)
        {
            await during();
        }

        return (await run, status);
    }

    private static string Pipeline(TempDir dir, MockKafka kafka) =>
        dir.Write("pipeline.yaml", SampleLake.Pipeline().Replace("transport: embedded", "transport: " + kafka.Transport, StringComparison.Ordinal));

    /// <summary>
    /// Aborted transactions on librdkafka's mock cluster: its Fetch handler answers read_committed fetches with the log end as last
    /// stable offset and an empty aborted-transactions list (rdkafka_mock_handlers.c, "Response: #Aborted" = 0), so consumers see
    /// aborted records as if committed. What holds regardless, and is asserted: the producer aborts and restarts through the retry
    /// path, resumes from its last checkpoint (none here: the failures come before the first), and the merge tables are exact
    /// (a replayed record has the position of the aborted one). The append tables would show the aborted copies, on the mock only.
    /// </summary>
    [Fact]
    public async Task Failed_produce_requests_abort_the_transaction_and_the_source_restarts_from_its_last_checkpoint()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();

        // One transaction per whole read (no checkpoint commits before the read caught up), so each failure comes before any checkpoint.
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(commit: "{interval: 1h, maxRows: 100000000}")
            .Replace("transport: embedded", "transport: " + kafka.Transport, StringComparison.Ordinal));

        // The next produce requests fail for good (message too large): librdkafka does not retry them, the transaction must be
        // aborted, and the source half restarts (a new producer fences the old one and reads the offsets topic again).
        kafka.PushRequestErrors(ProduceApi, ErrorCode.MsgSizeTooLarge, ErrorCode.MsgSizeTooLarge);
        var (source, status) = await RunAsync(pipeline, RunRole.Source);
        Assert.True(source.Succeeded, string.Join("; ", source.Connections.Select(c => c.Error)));
        Assert.True(status.Connection("shop").Restarts >= 1, "the source restarted through the retry path");
        Assert.Equal(1, status.Connection("shop").CheckpointSequence);

        var (sink, _) = await RunAsync(pipeline, RunRole.Sink);
        Assert.True(sink.Succeeded, string.Join("; ", sink.Connections.Select(c => c.Error)));
        await AssertMergeTablesExactAsync(dir.Combine("lake"));
    }

    /// <summary>
    /// Source processes (`ingest run --role source`, children of this test, on the mock cluster this process hosts) SIGKILLed at
    /// random moments and restarted, then sink processes SIGKILLed the same way, then a final sink: the merge tables equal the
    /// source. (The append tables are not checked: the mock shows the killed producers' aborted records to read_committed
    /// consumers, see <see cref="Failed_produce_requests_abort_the_transaction_and_the_source_restarts_from_its_last_checkpoint"/>.)
    /// </summary>
    [Fact]
    public async Task Source_and_sink_processes_killed_at_random_moments_and_restarted_leave_the_merge_tables_exact()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        const string config = "{seed: 13, customers: 400, products: 60, orders: 2000, changes: 40000, changesPerSecond: 0, batchSize: 250}";
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(config, "{interval: 50ms, maxRows: 2000}")
            .Replace("transport: embedded", "transport: " + kafka.Transport, StringComparison.Ordinal));
        var random = new Random(20261125);
        var kills = 0;
        foreach (var (role, count, from, to) in new[] { ("source", 4, 800, 3000), ("sink", 2, 2500, 6000) })
        {
            for (var i = 0; i < count; i++)
            {
                string[] args = role == "source" ? ["run", pipeline, "--once", "--role", role, "--plugins", Repo.Plugins] : ["run", pipeline, "--role", role, "--plugins", Repo.Plugins];
                using var p = Cli.Start(dir.Combine("state"), args);
                var stderr = p.StandardError.ReadToEndAsync();
                var stdout = p.StandardOutput.ReadToEndAsync();
                using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(random.Next(from, to)));
                try
                {
                    await p.WaitForExitAsync(wait.Token);
                    Assert.True(p.ExitCode == 0, $"{role} run {i} exited {p.ExitCode}: {await stderr}");
                }
                catch (OperationCanceledException)
                {
                    p.Kill(entireProcessTree: true);
                    await p.WaitForExitAsync();
                    kills++;
                }

                await Task.WhenAll(stderr, stdout);
            }

            if (role == "source")
            {
                var source = await Cli.RunAsync("run", pipeline, "--once", "--role", "source", "--plugins", Repo.Plugins, "--data", dir.Combine("state"));
                Assert.True(source.ExitCode == 0, source.Error);
            }
        }

        Assert.True(kills >= 3, $"only {kills} runs were killed before finishing; the scenario is too small to test crashes");
        var sink = await Cli.RunAsync("run", pipeline, "--once", "--role", "sink", "--plugins", Repo.Plugins, "--data", dir.Combine("state"));
        Assert.True(sink.ExitCode == 0, sink.Error);
        await AssertMergeTablesExactAsync(dir.Combine("lake"), config);
    }

    private static async Task AssertMergeTablesExactAsync(string lake, string config = SampleLake.SmallConfig)
    {
        var json = SampleLake.YamlFlowToJson(config);
        var options = SampleExpectations.ParseOptions(json);
        var final = SampleExpectations.FinalState(options, options.Changes);
        var catalog = await new SampleConnector().DiscoverAsync(json, CancellationToken.None);
        foreach (var stream in SampleLake.Streams)
        {
            var keys = catalog.Find(stream)!.PrimaryKey;
            var rows = await Lake.ReadAsync(Path.Combine(lake, "shop", stream));
            Assert.Equal(final[stream].Count, rows.Count);
            foreach (var row in rows)
            {
                var key = Lake.Key(row, keys);
                Assert.True(final[stream].TryGetValue(key, out var expected), $"{stream}: key {key} is not at the source");
                Assert.Null(Lake.Diff($"{stream}[{key}]", expected, row));
            }
        }
    }

    [Fact]
    public async Task Every_broker_down_for_seconds_mid_run_and_back_leaves_both_halves_exact()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var pipeline = Pipeline(dir, kafka);
        var (result, _) = await RunAsync(pipeline, RunRole.All, async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            foreach (var id in kafka.BrokerIds)
            {
                kafka.SetBrokerUp(id, false);
            }

            await Task.Delay(TimeSpan.FromSeconds(4));
            foreach (var id in kafka.BrokerIds)
            {
                kafka.SetBrokerUp(id, true);
            }
        });
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => c.Error)));
        await SampleLake.AssertExactAsync(dir.Combine("lake"));
    }
}
