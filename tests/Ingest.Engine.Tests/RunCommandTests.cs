namespace Ingest.Engine.Tests;

public sealed class RunCommandTests
{
    [Fact]
    public async Task Run_once_fills_merge_tables_with_the_final_state_and_append_tables_with_every_event_once()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline());

        var run = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);

        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Error}");
        await SampleLake.AssertExactAsync(dir.Combine("lake"));
        Assert.True(File.Exists(dir.Combine(".ingest", "state.db")));

        // Merge tables are created with deletion vectors: updated and deleted rows are marked, not rewritten.
        var log = string.Concat(Directory.GetFiles(dir.Combine("lake", "shop", "customers", "_delta_log"), "*.json").Select(File.ReadAllText));
        Assert.Contains("\"deletionVectors\"", log, StringComparison.Ordinal);
        Assert.Contains("\"deletionVector\"", log, StringComparison.Ordinal);
        var appendLog = string.Concat(Directory.GetFiles(dir.Combine("lake", "shop_log", "customers", "_delta_log"), "*.json").Select(File.ReadAllText));
        Assert.DoesNotContain("deletionVector", appendLog, StringComparison.Ordinal);

        // A second run resumes from the lake's own progress and adds nothing.
        var again = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(again.ExitCode == 0, $"exit {again.ExitCode}: {again.Error}");
        await SampleLake.AssertExactAsync(dir.Combine("lake"));
    }

    [Fact]
    public async Task Deleting_the_state_store_between_runs_neither_loses_nor_duplicates_rows()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline());
        var first = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(first.ExitCode == 0, first.Error);

        Directory.Delete(dir.Combine(".ingest"), recursive: true);
        var second = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins, "--data", dir.Combine("other-state"));

        Assert.True(second.ExitCode == 0, second.Error);
        await SampleLake.AssertExactAsync(dir.Combine("lake"));
    }

    [Fact]
    public async Task Pointing_the_pipeline_at_a_new_lake_reads_everything_again_despite_the_cached_checkpoint()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline());
        Assert.Equal(0, (await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins)).ExitCode);

        var other = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins, "--lake", dir.Combine("new-lake"));

        Assert.True(other.ExitCode == 0, other.Error);
        await SampleLake.AssertExactAsync(dir.Combine("new-lake"));
    }

    [Fact]
    public async Task Run_exits_1_naming_the_connection_when_one_fails_and_finishes_the_others()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", """
            lake: ./lake
            connections:
              - name: broken
                connector: sample
                config: {seed: 1, customers: 20, products: 5, orders: 10, changes: 50, changesPerSecond: 0, batchSize: 25}
                streams: [customers]
              - name: fine
                connector: sample
                config: {seed: 1, customers: 20, products: 5, orders: 10, changes: 50, changesPerSecond: 0, batchSize: 25}
                streams: [customers]
            """);

        // A table already there whose id is a string: the stream's long ids cannot be written to it (schema evolution cannot help).
        var stringIds = new Ingest.Sdk.Types.StreamSchema([new Ingest.Sdk.Types.Field("id", Ingest.Sdk.Types.DataType.String, false), new Ingest.Sdk.Types.Field("name", Ingest.Sdk.Types.DataType.String)]);
        await Ingest.Delta.DeltaTable.OpenOrCreateAsync(dir.Combine("lake", "broken", "customers"), stringIds, [], null, CancellationToken.None);

        var run = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("connection 'broken' failed", run.Error, StringComparison.Ordinal);
        Assert.Contains("column 'id' is string in the table but long", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("'fine'", run.Error, StringComparison.Ordinal);
        var options = Ingest.Connectors.Sample.SampleExpectations.ParseOptions(SampleLake.YamlFlowToJson("{seed: 1, customers: 20, products: 5, orders: 10, changes: 50, changesPerSecond: 0, batchSize: 25}"));
        var expected = Ingest.Connectors.Sample.SampleExpectations.FinalState(options, options.Changes)["customers"].Count;
        Assert.Equal(expected, (await Lake.ReadAsync(dir.Combine("lake", "fine", "customers"))).Count);
    }

    [Fact]
    public async Task Table_scan_and_history_print_rows_and_commits()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline("{seed: 1, customers: 20, products: 5, orders: 10, changes: 50, changesPerSecond: 0, batchSize: 25}"));
        Assert.Equal(0, (await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins)).ExitCode);
        var table = dir.Combine("lake", "shop", "customers");

        var scan = await Cli.RunAsync("table", "scan", table);
        var history = await Cli.RunAsync("table", "history", table, "--json");
        var old = await Cli.RunAsync("table", "scan", table, "--version", "0");

        Assert.Equal(0, scan.ExitCode);
        var lines = scan.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal((await Lake.ReadAsync(table)).Count, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"_position\":", l, StringComparison.Ordinal));
        Assert.Equal(0, history.ExitCode);
        Assert.Contains("\"checkpointSeq\"", history.Out, StringComparison.Ordinal);
        Assert.Equal(0, old.ExitCode);
        Assert.Equal("", old.Out.Trim());
    }

    [Fact]
    public async Task Table_commands_refuse_a_folder_without_a_table_with_exit_code_2()
    {
        using var dir = new TempDir();
        var scan = await Cli.RunAsync("table", "scan", dir.Combine("nothing"));
        Assert.Equal(2, scan.ExitCode);
        Assert.Contains("no Delta table", scan.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connectors_lists_the_sample_plugin()
    {
        var list = await Cli.RunAsync("connectors", "--plugins", Repo.Plugins);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("sample", list.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_arguments_exit_with_code_2()
    {
        var r = await Cli.RunAsync("run");
        Assert.Equal(2, r.ExitCode);
        Assert.NotEqual("", r.Error);
    }

    [Theory]
    [InlineData("connections:\n  - name: shop\n    connector: sample\n    config: {seed: [1\n", "pipeline.yaml:5:1: invalid YAML", "")]
    [InlineData("connections:\n  - name: shop\n    connectr: sample\n", "pipeline.yaml:3:5: connections[0].connectr: unknown key 'connectr'; did you mean 'connector'?", "")]
    [InlineData("connections:\n  - name: shop\n    connector: sample\n    config:\n      seed: abc\n", "pipeline.yaml:5:13: connections[0].config.seed: expected integer, got \"abc\"", "")]
    [InlineData("connections:\n  - name: shop\n    connector: nosuch\n", "pipeline.yaml:3:16: connections[0].connector: unknown connector 'nosuch'", "loaded connectors:")]
    [InlineData("connections:\n  - name: shop\n    connector: sample\n    streams: [{name: invoices}]\n", "pipeline.yaml:4:22: connections[0].streams[0].name: unknown stream 'invoices'", "offers: customers, products, orders, order_lines")]
    [InlineData("connections:\n  - name: shop\n    connector: sample\n    config: {batchSize: 0}\n", "pipeline.yaml:4:25: connections[0].config.batchSize: expected a value >= 1, got 0", "")]
    [InlineData("lake: gs://bucket/x\nconnections:\n  - {name: shop, connector: sample}\n", "pipeline.yaml:1:7: lake:", "not supported")]
    [InlineData("lake: s3://Bad_Bucket/x\nconnections:\n  - {name: shop, connector: sample}\n", "pipeline.yaml:1:7: lake:", "bucket name")]
    public async Task Invalid_pipeline_exits_with_code_2_names_file_field_and_line_and_writes_nothing(string yaml, string expected, string alsoExpected)
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", yaml);

        var run = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
        Assert.Contains(alsoExpected, run.Error, StringComparison.Ordinal);
        Assert.Equal(["pipeline.yaml"], Directory.EnumerateFileSystemEntries(dir.Path).Select(Path.GetFileName));
    }
}
