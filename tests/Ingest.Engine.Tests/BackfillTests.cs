using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Connectors.Sample;
using Ingest.Delta;
using Ingest.Engine.Config;
using Ingest.Engine.Control;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Ingest.Engine.Tests;

/// <summary>Backfills while the sample connection streams: the engine's board, the connector's chunks, resumption.</summary>
public sealed class BackfillTests : IDisposable
{
    // Slow live changes so that the backfill interleaves with them; batches of 100 so a backfill takes many chunks.
    private const string Config = """{"seed": 11, "customers": 400, "products": 60, "orders": 1500, "changes": 1000, "changesPerSecond": 40, "batchSize": 100}""";

    // Many order lines (about 60,000) so that a backfill of them takes hundreds of chunks.
    private const string BigConfig = """{"seed": 11, "customers": 400, "products": 60, "orders": 20000, "changes": 1000, "changesPerSecond": 40, "batchSize": 100}""";

    private readonly string _dir = Directory.CreateTempSubdirectory("ingest-backfill-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Backfill_rereads_range_while_streaming_and_tables_stay_equal_to_the_source()
    {
        await using var supervisor = NewSupervisor();
        var connection = Connection();
        Assert.Empty(await supervisor.StartAsync(connection, CancellationToken.None));
        await WaitAsync(() => supervisor.Snapshot("shop") is { CaughtUp: true }, "the connection catches up");

        var customers = await supervisor.RequestBackfillAsync("shop", "customers", "1..150", null, CancellationToken.None);
        var lines = await supervisor.RequestBackfillAsync("shop", "order_lines", null, "lines-all", CancellationToken.None);
        Assert.Equal("lines-all", lines.Id);
        Assert.Equal("pending", customers.State);

        await WaitAsync(() => supervisor.Backfills("shop").All(b => b.Finished), "both backfills finish");
        var done = supervisor.Backfills("shop").ToDictionary(b => b.Stream);
        Assert.Equal("completed", done["customers"].State);
        Assert.Equal("completed", done["order_lines"].State);
        Assert.InRange(done["customers"].RowsDone, 100, 150);
        Assert.True(done["order_lines"].RowsDone > 2000, $"order_lines backfill read {done["order_lines"].RowsDone} rows");
        Assert.NotNull(done["customers"].FinishedAt);

        Assert.True(await supervisor.StopAsync("shop", CancellationToken.None));
        await AssertTablesEqualSourceAsync();
    }

    [Fact]
    public async Task Backfill_interrupted_by_a_stop_resumes_from_its_last_chunk()
    {
        var progress = new ConcurrentQueue<BackfillSnapshot>();
        await using var supervisor = NewSupervisor(readAheadBytes: 1);

        // The stop is requested from the progress event itself, the moment 300 rows are committed: polling for that
        // left the engine time to read and commit the whole backfill before the stop landed.
        var armed = 0;
        var stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        supervisor.BackfillChanged += (sender, b) =>
        {
            progress.Enqueue(b);
            if (b.RowsDone >= 300 && Interlocked.Exchange(ref armed, 0) == 1)
            {
                _ = Task.Run(async () => stopped.SetResult(await supervisor.StopAsync("shop", CancellationToken.None)));
            }
        };
        var connection = Connection(BigConfig);
        Assert.Empty(await supervisor.StartAsync(connection, CancellationToken.None));
        await WaitAsync(() => supervisor.Snapshot("shop") is { CaughtUp: true }, "the connection catches up");

        Volatile.Write(ref armed, 1);
        await supervisor.RequestBackfillAsync("shop", "order_lines", null, "lines", CancellationToken.None);
        Assert.True(await stopped.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        var before = supervisor.Backfills("shop")[0];
        Assert.Equal("running", before.State);
        var committedBefore = before.RowsDone;

        progress.Clear();
        Assert.Empty(await supervisor.StartAsync(connection, CancellationToken.None));
        await WaitAsync(() => supervisor.Backfills("shop")[0].Finished, "the backfill finishes after the restart");
        var after = supervisor.Backfills("shop")[0];
        Assert.Equal("completed", after.State);

        // The first progress after the restart continues from the checkpoint instead of starting over.
        var first = progress.First(p => p.RowsDone > 0);
        Assert.True(first.RowsDone > 100, $"after the restart the backfill reported {first.RowsDone} rows first (before the stop: {committedBefore})");
        Assert.True(await supervisor.StopAsync("shop", CancellationToken.None));
        await AssertTablesEqualSourceAsync(BigConfig);
    }

    [Fact]
    public async Task Backfill_requests_that_cannot_run_say_why()
    {
        await using var supervisor = NewSupervisor();
        var notRunning = await Assert.ThrowsAsync<BackfillRejectedException>(() => supervisor.RequestBackfillAsync("shop", "customers", null, null, CancellationToken.None));
        Assert.Equal("connection", notRunning.Field);

        Assert.Empty(await supervisor.StartAsync(Connection(), CancellationToken.None));
        var unknown = await Assert.ThrowsAsync<BackfillRejectedException>(() => supervisor.RequestBackfillAsync("shop", "invoices", null, null, CancellationToken.None));
        Assert.Equal("stream", unknown.Field);
        Assert.Contains("customers", unknown.Message, StringComparison.Ordinal);

        await WaitAsync(() => supervisor.Snapshot("shop") is { CaughtUp: true }, "the connection catches up");
        var bad = await supervisor.RequestBackfillAsync("shop", "customers", "ten to twenty", null, CancellationToken.None);
        await WaitAsync(() => supervisor.Backfills("shop").Single(b => b.Id == bad.Id).Finished, "the bad filter is refused");
        var refused = supervisor.Backfills("shop").Single(b => b.Id == bad.Id);
        Assert.Equal("failed", refused.State);
        Assert.Contains("ten to twenty", refused.Error, StringComparison.Ordinal);
        Assert.Contains("filter", refused.Error, StringComparison.Ordinal);

        // The connection keeps streaming.
        Assert.Equal("running", supervisor.Snapshot("shop")!.State);
        var cancelled = await supervisor.RequestBackfillAsync("shop", "order_lines", null, null, CancellationToken.None);
        Assert.True(await supervisor.CancelBackfillAsync("shop", cancelled.Id, CancellationToken.None));
        await WaitAsync(() => supervisor.Backfills("shop").Single(b => b.Id == cancelled.Id).Finished, "the cancelled backfill ends");
        Assert.Equal("cancelled", supervisor.Backfills("shop").Single(b => b.Id == cancelled.Id).State);
        Assert.False(await supervisor.CancelBackfillAsync("shop", cancelled.Id, CancellationToken.None));
    }

    [Fact]
    public async Task A_stream_added_to_a_connection_joins_the_resumed_read_without_rereading_the_others()
    {
        const string finite = """{"seed": 11, "customers": 400, "products": 60, "orders": 1500, "changes": 1000, "changesPerSecond": 0, "batchSize": 100}""";
        var first = await RunOnceAsync(finite, ["customers", "orders"]);
        Assert.True(first.Connections["shop"].Streams["customers"].RowsRead > 400);

        var second = await RunOnceAsync(finite, SampleLake.Streams);
        var streams = second.Connections["shop"].Streams;
        Assert.Equal(0, streams["customers"].RowsRead);
        Assert.Equal(0, streams["orders"].RowsRead);
        Assert.Equal(60, streams["products"].RowsRead);
        Assert.True(streams["order_lines"].RowsRead > 1000, $"order_lines read {streams["order_lines"].RowsRead} rows");
        await AssertTablesEqualSourceAsync(finite);
    }

    private async Task<RunStatus> RunOnceAsync(string config, IEnumerable<string> streams)
    {
        var yaml = $"lake: ./lake\ncommit: {{interval: 50ms}}\nconnections:\n  - name: shop\n    connector: sample\n    config: {config}\n    streams:\n"
            + string.Concat(streams.Select(s => $"      - {{name: {s}, mode: merge}}\n"));
        var definition = Pipelines.PipelineFile.Parse(yaml, Path.Combine(_dir, "pipeline.yaml"));
        var bound = await Pipelines.PipelineBinder.BindAsync(definition, new Dictionary<string, ISourceConnector>(StringComparer.Ordinal) { ["sample"] = new SampleConnector() }, CancellationToken.None);
        var status = new RunStatus();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var result = await PipelineRunner.RunAsync(bound, new RunOptions { Once = true }, null, NullLoggerFactory.Instance, status, timeout.Token);
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => c.Error)));
        return status;
    }

    // readAheadBytes: the sample's backfill reads as fast as the engine takes it; a small read-ahead keeps it within a few
    // batches of the commits, so that a stop lands mid-backfill (with the default 16 MB, the whole backfill is read at once).
    private ConnectionSupervisor NewSupervisor(long readAheadBytes = 16L << 20) => new(
        () => new Dictionary<string, ISourceConnector>(StringComparer.Ordinal) { ["sample"] = new SampleConnector() },
        null,
        NullLoggerFactory.Instance,
        new RunOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(50), ReadAheadBytes = readAheadBytes },
        new Pipelines.CommitPolicy(TimeSpan.FromMilliseconds(200), 5000));

    private StoredConnection Connection(string config = Config) => new(
        "shop",
        "sample",
        JsonNode.Parse(config)!.AsObject(),
        SampleLake.Streams.Select(s => new StreamChoice(s, Pipelines.SinkMode.Merge)).ToList(),
        Path.Combine(_dir, "lake"),
        true,
        DateTimeOffset.UtcNow,
        DateTimeOffset.UtcNow);

    /// <summary>Every merge table equals the source's state at the change event its last commit covers.</summary>
    private async Task AssertTablesEqualSourceAsync(string config = Config)
    {
        using var configDoc = JsonDocument.Parse(config);
        var options = SampleExpectations.ParseOptions(configDoc.RootElement);
        var catalog = await new SampleConnector().DiscoverAsync(configDoc.RootElement, CancellationToken.None);
        var problems = new List<string>();
        foreach (var stream in SampleLake.Streams)
        {
            var path = Path.Combine(_dir, "lake", "shop", stream);
            var table = await DeltaTable.TryOpenAsync(path, CancellationToken.None) ?? throw new InvalidOperationException($"no table at {path}");
            var last = (await table.HistoryAsync(1, CancellationToken.None))[0];
            var events = last.CommitInfo["ingest"]!["checkpoint"]!["event"]!.GetValue<long>();
            var expected = SampleExpectations.FinalState(options, events)[stream];
            var keys = catalog.Find(stream)!.PrimaryKey;
            var rows = await Lake.ReadAsync(path);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                var key = Lake.Key(row, keys);
                if (!seen.Add(key))
                {
                    problems.Add($"{stream}: key {key} twice");
                }
                else if (!expected.TryGetValue(key, out var exp))
                {
                    problems.Add($"{stream}: key {key} not at the source after event {events}");
                }
                else if (Lake.Diff($"{stream}[{key}]", exp, row) is { } diff)
                {
                    problems.Add(diff);
                }
            }

            problems.AddRange(expected.Keys.Where(k => !seen.Contains(k)).Select(k => $"{stream}: key {k} missing"));
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting until {what}");
            }

            await Task.Delay(50);
        }
    }
}
