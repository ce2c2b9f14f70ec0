namespace Ingest.Engine.Tests;

public sealed class CrashSafetyTests
{
    [Fact]
    public async Task Killing_the_host_at_random_moments_neither_loses_nor_duplicates_rows()
    {
        using var dir = new TempDir();
        const string config = "{seed: 11, customers: 500, products: 80, orders: 3000, changes: 50000, changesPerSecond: 0, batchSize: 250}";
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(config, "{interval: 20ms, maxRows: 2000}"));
        var random = new Random(20261124);
        var kills = 0;
        var completedEarly = 0;
        for (var i = 0; kills < 10 && i < 30; i++)
        {
            using var p = Cli.Start(dir.Combine("state"), "run", pipeline, "--once", "--plugins", Repo.Plugins);
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();

            // Spread over a run (about 2 s from scratch): startup, snapshot, changes, commits.
            var delay = TimeSpan.FromMilliseconds(random.Next(150, 1500));
            using var wait = new CancellationTokenSource(delay);
            try
            {
                await p.WaitForExitAsync(wait.Token);
                completedEarly++;
                Assert.True(p.ExitCode == 0, $"run {i} exited {p.ExitCode}: {await stderr}");
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
                kills++;
            }

            await Task.WhenAll(stderr, stdout);
        }

        Assert.True(kills == 10, $"only {kills} runs were killed before finishing ({completedEarly} finished first); the scenario is too small to test crashes");

        using var final = Cli.Start(dir.Combine("state"), "run", pipeline, "--once", "--plugins", Repo.Plugins);
        var err = final.StandardError.ReadToEndAsync();
        var output = final.StandardOutput.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2)))
        {
            await final.WaitForExitAsync(timeout.Token);
        }

        Assert.True(final.ExitCode == 0, $"final run exited {final.ExitCode}: {await err}\n{await output}");
        await SampleLake.AssertExactAsync(dir.Combine("lake"), config);
    }

    [Fact]
    public async Task Stop_request_commits_and_exits_0_and_a_restart_completes_exactly()
    {
        // The same path as Ctrl+C/SIGTERM (Program.cs turns both into this token).
        using var dir = new TempDir();
        const string config = "{seed: 5, customers: 300, products: 50, orders: 1000, changes: 30000, changesPerSecond: 0, batchSize: 100}";
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(config, "{interval: 50ms, maxRows: 2000}"));
        using var stop = new CancellationTokenSource();
        var run = Cli.RunAsync(["run", pipeline, "--plugins", Repo.Plugins], stop.Token);

        // Stop once some commits are in, well before the backlog is done.
        var log = dir.Combine("lake", "shop", "orders", "_delta_log");
        while (!run.IsCompleted && (!Directory.Exists(log) || Directory.GetFiles(log, "*.json").Length < 4))
        {
            await Task.Delay(20);
        }

        await stop.CancelAsync();
        var stopped = await run;

        Assert.True(stopped.ExitCode == 0, stopped.Error);
        var partial = (await Lake.ReadAsync(dir.Combine("lake", "shop_log", "orders"))).Count;
        var options = Ingest.Connectors.Sample.SampleExpectations.ParseOptions(SampleLake.YamlFlowToJson(config));
        Assert.True(partial < Ingest.Connectors.Sample.SampleExpectations.Events(options, options.Changes)["orders"].Count, "the run finished before it was stopped");

        var again = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(again.ExitCode == 0, again.Error);
        await SampleLake.AssertExactAsync(dir.Combine("lake"), config);
    }
}
