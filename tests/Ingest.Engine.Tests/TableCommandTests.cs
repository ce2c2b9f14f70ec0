using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Engine.Tests;

public sealed class TableCommandTests
{
    private static async Task<string> TableAsync(TempDir dir, int appends)
    {
        var path = dir.Combine("t");
        var table = await DeltaTable.OpenOrCreateAsync(path, FakeConnector.ItemsSchema, [], null, CancellationToken.None);
        for (var i = 0; i < appends; i++)
        {
            var batch = new RecordBatch(FakeConnector.ItemsSchema.ToArrowSchema(),
                [new Int64Array.Builder().Append(i).Build(), new StringArray.Builder().Append($"n{i}").Build()], 1);
            await table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return path;
    }

    [Fact]
    public async Task Describe_prints_schema_protocol_files_and_rows_as_json()
    {
        using var dir = new TempDir();
        var path = await TableAsync(dir, 3);

        var run = await Cli.RunAsync("table", "describe", path, "--json");

        Assert.Equal(0, run.ExitCode);
        var o = JsonNode.Parse(run.Out)!;
        Assert.Equal(3, o["files"]!.GetValue<int>());
        Assert.Equal(3, o["rows"]!.GetValue<long>());
        Assert.Equal(2, o["protocol"]!["minWriterVersion"]!.GetValue<int>());
        Assert.Equal("id", o["schema"]!["fields"]![0]!["name"]!.GetValue<string>());
        Assert.True(o["writable"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Optimize_then_vacuum_dry_run_and_forced_vacuum_leave_one_file_with_all_rows()
    {
        using var dir = new TempDir();
        var path = await TableAsync(dir, 4);

        var optimize = await Cli.RunAsync("table", "optimize", path);
        var refused = await Cli.RunAsync("table", "vacuum", path, "--retain", "0");
        var dry = await Cli.RunAsync("table", "vacuum", path, "--retain", "0", "--force", "--dry-run");
        var filesAfterDryRun = Directory.GetFiles(path, "*.parquet").Length;
        var vacuum = await Cli.RunAsync("table", "vacuum", path, "--retain", "0", "--force");
        var scan = await Cli.RunAsync("table", "scan", path);

        Assert.Equal(0, optimize.ExitCode);
        Assert.Contains("compacted 4 files into 1", optimize.Out, StringComparison.Ordinal);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--force", refused.Error, StringComparison.Ordinal);
        Assert.Contains("would delete 4 files", dry.Out, StringComparison.Ordinal);
        Assert.Equal(5, filesAfterDryRun);
        Assert.Contains("deleted 4 files", vacuum.Out, StringComparison.Ordinal);
        Assert.Single(Directory.GetFiles(path, "*.parquet"));
        Assert.Equal(4, scan.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Scan_with_limit_and_as_of_reads_the_version_current_then()
    {
        using var dir = new TempDir();
        var path = await TableAsync(dir, 3);
        // Commit times are the commit files' modification times: spread them out.
        for (var v = 0; v <= 3; v++)
        {
            File.SetLastWriteTimeUtc(Path.Combine(path, "_delta_log", $"{v:D20}.json"), new DateTime(2024, 1, 1 + v, 0, 0, 0, DateTimeKind.Utc));
        }

        var asOf = await Cli.RunAsync("table", "scan", path, "--as-of", "2024-01-02T12:00:00Z");
        var limited = await Cli.RunAsync("table", "scan", path, "--limit", "2");
        var tooEarly = await Cli.RunAsync("table", "scan", path, "--as-of", "2023-01-01T00:00:00Z");
        var both = await Cli.RunAsync("table", "scan", path, "--as-of", "2024-01-02T12:00:00Z", "--version", "1");

        Assert.Equal(0, asOf.ExitCode);
        Assert.Single(asOf.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("\"n0\"", asOf.Out, StringComparison.Ordinal);
        Assert.Equal(2, limited.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(2, tooEarly.ExitCode);
        Assert.Contains("no version as of", tooEarly.Error, StringComparison.Ordinal);
        Assert.Equal(2, both.ExitCode);
    }
}

public sealed class TablePropertiesCommandTests
{
    [Fact]
    public async Task Properties_set_enables_type_widening_so_that_evolve_can_widen()
    {
        using var dir = new TempDir();
        var path = dir.Combine("t");
        var table = await DeltaTable.OpenOrCreateAsync(path, FakeConnector.ItemsSchema, [], null, CancellationToken.None);

        var refused = await Cli.RunAsync("table", "properties", path, "--set", "delta.enableRowTracking=true");
        var set = await Cli.RunAsync("table", "properties", path, "--set", "delta.enableTypeWidening=true", "--set", "delta.checkpointInterval=5");
        var describe = await Cli.RunAsync("table", "describe", path, "--json");

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("delta.enableRowTracking", refused.Error, StringComparison.Ordinal);
        Assert.Equal(0, set.ExitCode);
        Assert.Contains("delta.checkpointInterval=5", set.Out, StringComparison.Ordinal);
        var protocol = JsonNode.Parse(describe.Out)!["protocol"]!;
        Assert.Equal(7, protocol["minWriterVersion"]!.GetValue<int>());
        Assert.Contains("typeWidening", protocol["writerFeatures"]!.AsArray().Select(f => f!.GetValue<string>()));
        await table.RefreshAsync(CancellationToken.None);
        var widened = new StreamSchema([new Field("id", DataType.Int64, false), new Field("name", DataType.String), new Field("n", DataType.Int32)]);
        await table.EvolveSchemaAsync(widened, new CommitOptions("ADD COLUMNS"), CancellationToken.None);
        await table.EvolveSchemaAsync(new StreamSchema([.. widened.Columns.Take(2), new Field("n", DataType.Int64)]), new CommitOptions("CHANGE COLUMN"), CancellationToken.None);
        Assert.Equal(DataType.Int64, table.Snapshot.Schema["n"].Type);
    }
}
