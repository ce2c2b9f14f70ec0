using System.Text.Json.Nodes;
using Ingest.Delta;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Sink;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Tests;

/// <summary>
/// Append tables stream their rows to data files at each checkpoint (and pending rows past a bound), and the commit only adds
/// the files: the rows must reach the table exactly once, and staged files must never become visible without their commit.
/// </summary>
public sealed class SinkStagedAppendTests
{
    private static readonly StreamSchema People = new([new Field("id", DataType.Int64, false), new Field("name", DataType.String)]);

    private static SinkTarget Target(TempDir dir, StreamSchema? schema = null) =>
        new(new StreamDescriptor("people", schema ?? People, ["id"], [], [SyncMode.Cdc]), SinkMode.Append, dir.Combine("lake", "people"));

    /// <summary>Rows with ids [from, from+count), each at position id+1.</summary>
    private static ChangeBatch Batch(long from, int count, StreamSchema? schema = null)
    {
        var b = new ChangeBatchBuilder("people", schema ?? People);
        for (var id = from; id < from + count; id++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)id + 1, 0), 1_700_000_000_000_000 + id);
            b.SetInt64(0, id);
            b.SetString(1, $"n{id}");
            if ((schema ?? People).Count > 2)
            {
                b.SetString(2, $"e{id}");
            }

            b.EndRow();
        }

        return b.Build();
    }

    private static string[] DataFiles(TempDir dir) => Directory.GetFiles(dir.Combine("lake", "people"), "*.parquet", SearchOption.AllDirectories);

    private static async Task<List<long>> IdsAsync(TempDir dir) =>
        (await Lake.ReadAsync(dir.Combine("lake", "people"))).Select(r => (long)r["id"]!).Order().ToList();

    private static async Task<DeltaTable> OpenTableAsync(TempDir dir) =>
        (await DeltaTable.TryOpenAsync(dir.Combine("lake", "people"), CancellationToken.None))!;

    private static long Micros => (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10;

    [Fact]
    public async Task Covered_rows_go_to_data_files_at_the_checkpoint_and_the_commit_adds_them_exactly_once()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var first = Batch(0, 100);
        using var second = Batch(100, 50);
        sink.Accept(first, Micros, copy: false);
        sink.Accept(second, Micros, copy: false);
        Assert.Equal(0, sink.StagedRows);
        sink.Cover();

        // Written at the checkpoint, not yet in the table.
        Assert.Equal(150, sink.StagedRows);
        Assert.Equal(150, sink.CoveredRows);
        Assert.NotEmpty(DataFiles(dir));
        Assert.Empty((await OpenTableAsync(dir)).Snapshot.Files);

        var result = await sink.CommitAsync(1, Checkpoint.From(new { read = 1 }), CancellationToken.None);

        Assert.Equal(1, result.Version);
        Assert.Equal(150, sink.RowsCommitted);
        Assert.Equal(0, sink.StagedRows);
        Assert.Equal(Enumerable.Range(0, 150).Select(i => (long)i), await IdsAsync(dir));
        var table = await OpenTableAsync(dir);
        Assert.Equal(1, table.Snapshot.TxnVersions[sink.AppId]);
        var ingest = (await table.HistoryAsync(1, CancellationToken.None))[0].CommitInfo["ingest"]!;
        Assert.Equal(1, ingest["checkpoint"]!["read"]!.GetValue<int>());
        Assert.Equal(new SourcePosition(150, 0).ToString(), ingest["position"]!.GetValue<string>());

        // Nothing covered since: the next commit records progress and adds no row.
        await sink.CommitAsync(2, Checkpoint.From(new { read = 2 }), CancellationToken.None);
        Assert.Equal(150, (await IdsAsync(dir)).Count);
        Assert.Equal(table.Snapshot.Files.Count, DataFiles(dir).Length);
    }

    [Fact]
    public async Task Pending_rows_past_the_bound_go_to_files_that_only_the_commit_after_their_checkpoint_adds()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        sink.SpillBytes = 1; // every pending batch spills
        using var covered = Batch(0, 10);
        using var pending = Batch(10, 10);
        sink.Accept(covered, Micros, copy: false);
        sink.Cover();
        sink.Accept(pending, Micros, copy: false);
        Assert.Equal(20, sink.StagedRows);
        Assert.Equal(10, sink.PendingRows);

        // An idle commit between the checkpoint and the next: only what the checkpoint covers.
        await sink.CommitAsync(1, Checkpoint.From(new { upTo = 10 }), CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), await IdsAsync(dir));
        var ingest = (await (await OpenTableAsync(dir)).HistoryAsync(1, CancellationToken.None))[0].CommitInfo["ingest"]!;
        Assert.Equal(new SourcePosition(10, 0).ToString(), ingest["position"]!.GetValue<string>());
        Assert.Equal(10, sink.StagedRows);

        using var more = Batch(20, 5);
        sink.Accept(more, Micros, copy: false);
        sink.Cover();
        await sink.CommitAsync(2, Checkpoint.From(new { upTo = 25 }), CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), await IdsAsync(dir));
        Assert.Equal(25, sink.RowsCommitted);
    }

    [Fact]
    public async Task A_spill_joins_rows_already_covered_so_one_commit_adds_both()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var a = Batch(0, 10);
        using var b = Batch(10, 10);
        using var c = Batch(20, 10);
        sink.Accept(a, Micros, copy: false);
        sink.Cover();
        sink.SpillBytes = 1;
        sink.Accept(b, Micros, copy: false);
        sink.SpillBytes = long.MaxValue;
        sink.Accept(c, Micros, copy: false);
        sink.Cover();

        await sink.CommitAsync(1, Checkpoint.From(new { upTo = 30 }), CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), await IdsAsync(dir));
        var table = await OpenTableAsync(dir);
        Assert.Equal(1, table.Snapshot.Version);
        Assert.Equal(new SourcePosition(30, 0).ToString(), (await table.HistoryAsync(1, CancellationToken.None))[0].CommitInfo["ingest"]!["position"]!.GetValue<string>());
    }

    [Fact]
    public async Task Discard_drops_staged_and_spilled_files_and_the_table_has_no_trace_of_them()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var a = Batch(0, 10);
        using var b = Batch(10, 10);
        sink.Accept(a, Micros, copy: false);
        sink.Cover();
        sink.SpillBytes = 1;
        sink.Accept(b, Micros, copy: false);
        Assert.NotEmpty(DataFiles(dir));

        sink.Discard();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DataFiles(dir).Length > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Empty(DataFiles(dir));
        Assert.Equal(0, sink.StagedRows);
        Assert.Equal(0, sink.CoveredRows);
        Assert.Equal(0, sink.PendingRows);

        // The read restarts: a commit now holds only what the restarted read covers.
        await sink.CommitAsync(1, Checkpoint.From(new { read = 2 }), CancellationToken.None);
        var table = await OpenTableAsync(dir);
        Assert.Empty(table.Snapshot.Files);
        Assert.Empty(await IdsAsync(dir));
    }

    [Fact]
    public async Task A_restart_after_dying_between_staging_and_commit_neither_loses_nor_duplicates_rows()
    {
        using var dir = new TempDir();
        var first = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var a = Batch(0, 10);
        using var b = Batch(10, 10);
        first.Accept(a, Micros, copy: false);
        first.Cover();
        await first.CommitAsync(1, Checkpoint.From(new { upTo = 10 }), CancellationToken.None);
        first.Accept(b, Micros, copy: false);
        first.Cover();
        var committedFiles = (await OpenTableAsync(dir)).Snapshot.Files.Count;
        Assert.True(DataFiles(dir).Length > committedFiles, "rows 10..19 should be staged in a file no commit references");

        // The process dies here: no Discard, no commit. The next run opens the table afresh and the source replays from its
        // last checkpoint it knows of (here: all of it, as a source without state would).
        var second = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        Assert.Equal(new SourcePosition(10, 0), second.SkipUpTo);
        using var replayA = Batch(0, 10);
        using var replayB = Batch(10, 15);
        second.Accept(replayA, Micros, copy: false);
        second.Accept(replayB, Micros, copy: false);
        second.Cover();
        await second.CommitAsync(2, Checkpoint.From(new { upTo = 25 }), CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), await IdsAsync(dir));
        Assert.Equal(15, second.RowsCommitted);
    }

    [Fact]
    public async Task Rows_staged_before_the_stream_gains_a_column_commit_with_the_evolved_table()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var old = Batch(0, 5);
        sink.Accept(old, Micros, copy: false);
        sink.Cover();

        var wider = new StreamSchema([.. People.Columns, new Field("email", DataType.String)]);
        await sink.ChangeSchemaAsync(wider, CancellationToken.None);
        using var newer = Batch(5, 5, wider);
        sink.Accept(newer, Micros, copy: false);
        sink.Cover();
        await sink.CommitAsync(1, Checkpoint.From(new { upTo = 10 }), CancellationToken.None);

        var rows = (await Lake.ReadAsync(dir.Combine("lake", "people"))).OrderBy(r => (long)r["id"]!).ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), rows.Select(r => (long)r["id"]!));
        Assert.All(rows.Take(5), r => Assert.Null(r["email"]));
        Assert.Equal(Enumerable.Range(5, 5).Select(i => $"e{i}"), rows.Skip(5).Select(r => (string?)r["email"]));
    }

    [Fact]
    public async Task Kafka_style_commits_with_txns_add_the_staged_rows()
    {
        using var dir = new TempDir();
        var sink = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        using var a = Batch(0, 10);
        sink.Accept(a, Micros, copy: false);
        sink.Cover();

        await sink.CommitTxnsAsync([new TxnAction("kafka:t:0", 41), new TxnAction("kafka:t:1", 7)], new JsonObject { ["topic"] = "t" }, CancellationToken.None);

        Assert.Equal(10, (await IdsAsync(dir)).Count);
        var table = await OpenTableAsync(dir);
        Assert.Equal(41, table.Snapshot.TxnVersions["kafka:t:0"]);
        Assert.Equal(7, table.Snapshot.TxnVersions["kafka:t:1"]);
    }

    [Fact]
    public async Task Copied_rows_for_a_second_table_are_staged_independently_of_the_first()
    {
        using var dir = new TempDir();
        var one = await TableSink.OpenAsync("c", Target(dir), CancellationToken.None);
        var other = await TableSink.OpenAsync("c", Target(dir) with { TablePath = dir.Combine("lake", "people_copy") }, CancellationToken.None);
        using var batch = Batch(0, 20);
        one.Accept(batch, Micros, copy: true);
        other.Accept(batch, Micros, copy: false);
        one.Cover();
        other.Cover();
        await one.CommitAsync(1, Checkpoint.From(new { upTo = 20 }), CancellationToken.None);
        await other.CommitAsync(1, Checkpoint.From(new { upTo = 20 }), CancellationToken.None);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), await IdsAsync(dir));
        var copy = (await Lake.ReadAsync(dir.Combine("lake", "people_copy"))).Select(r => ((long)r["id"]!, (string?)r["name"])).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => ((long)i, (string?)$"n{i}")), copy);
    }

    [Fact]
    public async Task Killing_the_host_while_rows_are_staged_but_not_committed_then_restarting_neither_loses_nor_duplicates_rows()
    {
        using var dir = new TempDir();
        const string config = "{seed: 3, customers: 300, products: 50, orders: 2000, changes: 40000, changesPerSecond: 0, batchSize: 200}";
        // Commits only when the read catches up: until then each append table's rows sit in staged files.
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(config, "{interval: 1h, maxRows: 100000000}"));
        var orders = dir.Combine("lake", "shop_log", "orders");
        var log = Path.Combine(orders, "_delta_log");
        bool StagedOnly() => Directory.Exists(log) && Directory.GetFiles(log, "*.json").Length == 1
            && Directory.GetFiles(orders, "*.parquet", SearchOption.AllDirectories).Length > 0;

        using (var p = Cli.Start(dir.Combine("state"), "run", pipeline, "--once", "--plugins", Repo.Plugins))
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (!p.HasExited && !StagedOnly() && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5);
            }

            if (p.HasExited)
            {
                Assert.Fail($"the run ended (exit {p.ExitCode}) before any row was staged: {await stderr}");
            }

            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            await Task.WhenAll(stderr, stdout);
        }

        var killed = (await DeltaTable.TryOpenAsync(orders, CancellationToken.None))!;
        Assert.Empty(killed.Snapshot.Files);
        Assert.NotEmpty(Directory.GetFiles(orders, "*.parquet", SearchOption.AllDirectories));

        var again = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(again.ExitCode == 0, again.Error);
        await SampleLake.AssertExactAsync(dir.Combine("lake"), config);

        // The killed run's files stay unreferenced (VACUUM removes them): the table reads only its commits' files.
        var table = (await DeltaTable.TryOpenAsync(orders, CancellationToken.None))!;
        Assert.True(Directory.GetFiles(orders, "*.parquet", SearchOption.AllDirectories).Length > table.Snapshot.Files.Count);
    }
}
