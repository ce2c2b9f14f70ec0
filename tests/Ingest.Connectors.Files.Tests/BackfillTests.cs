using System.Text.Json;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Connectors.Files.Tests;

public sealed class BackfillTests
{
    private static JsonElement Config(string root) =>
        JsonDocument.Parse($$$"""{"path": {{{JsonSerializer.Serialize(root)}}}, "pollInterval": "100ms", "tables": [{"name": "orders", "pattern": "orders/**/*.csv", "format": "csv", "primaryKey": ["id"], "options": {"batchRows": 2}}]}""").RootElement.Clone();

    /// <summary>Three files of 2024 (June and July) and one of 2025, oldest first.</summary>
    private static TempDir Folder()
    {
        var dir = new TempDir();
        dir.Write("orders/2024/a.csv", "id\n1\n2\n3\n", secondsAgo: 400);
        dir.Write("orders/2024/b.csv", "id\n4\n", secondsAgo: 300);
        dir.Write("orders/2024/c.csv", "id\n5\n", secondsAgo: 200);
        dir.Write("orders/2025/d.csv", "id\n6\n", secondsAgo: 100);
        File.SetLastWriteTimeUtc(dir.Combine("orders", "2024", "a.csv"), new DateTime(2024, 6, 10, 8, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(dir.Combine("orders", "2024", "b.csv"), new DateTime(2024, 6, 30, 23, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(dir.Combine("orders", "2024", "c.csv"), new DateTime(2024, 7, 2, 0, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(dir.Combine("orders", "2025", "d.csv"), new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        return dir;
    }

    private sealed class Session : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new(TimeSpan.FromMinutes(1));
        private readonly IAsyncEnumerator<SourceMessage> _messages;

        public Session(JsonElement config, JsonElement? state, params BackfillRequest[] backfills)
        {
            Reader = new FilesConnector().OpenReader(new ReadContext("t", config, [new StreamSelection("orders", SyncMode.Cdc)], state, NullConnectorLog.Instance) { Backfills = backfills });
            _messages = Reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
        }

        public ISourceReader Reader { get; }

        public IBackfillReader Backfills => (IBackfillReader)Reader;

        public List<SourceMessage> Messages { get; } = [];

        public Checkpoint? LastCheckpoint => Messages.OfType<Checkpoint>().LastOrDefault();

        public async Task ReadUntilAsync(Func<SourceMessage, bool> stop)
        {
            while (await _messages.MoveNextAsync())
            {
                Messages.Add(_messages.Current);
                if (stop(_messages.Current))
                {
                    return;
                }
            }

            Assert.Fail("The read ended early.");
        }

        /// <summary>Reads through the checkpoint that follows the backfill's BackfillDone.</summary>
        public async Task<BackfillDone> UntilDoneAsync(string id)
        {
            BackfillDone? done = null;
            await ReadUntilAsync(m =>
            {
                done ??= m is BackfillDone d && d.Id == id ? d : null;
                return done is not null && m is Checkpoint;
            });
            return done!;
        }

        public List<long> Ids(Func<ChangeBatch, bool>? where = null) =>
            Rows.Of(Messages.OfType<ChangeBatch>().Where(where ?? (_ => true))).Select(r => (long)r["id"]!).ToList();

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            await _messages.DisposeAsync();
            await Reader.DisposeAsync();
            _cts.Dispose();
        }
    }

    private static bool IsBackfillRow(ChangeBatch b) => b.Ops.Take(b.Length).All(op => op == ChangeOp.Read);

    [Fact]
    public async Task A_prefix_backfill_re_reads_only_the_ingested_files_under_the_prefix_as_upserts_with_progress_then_done_and_a_checkpoint()
    {
        using var dir = Folder();
        await using var s = new Session(Config(dir.Path), null);
        await s.ReadUntilAsync(m => m is CaughtUp);
        var before = s.Messages.Count;

        await s.Backfills.StartBackfillAsync(new BackfillRequest("bf-1", "orders", "prefix=orders/2024/"), CancellationToken.None);
        var done = await s.UntilDoneAsync("bf-1");

        var after = s.Messages.Skip(before).ToList();
        Assert.Equal(5, done.Rows);
        Assert.False(done.Cancelled);
        Assert.Equal([1L, 2L, 3L, 4L, 5L], Rows.Of(after.OfType<ChangeBatch>()).Select(r => (long)r["id"]!));
        Assert.All(after.OfType<ChangeBatch>(), b => Assert.True(IsBackfillRow(b)));
        var progress = after.OfType<StreamProgress>().Where(p => p.Phase == StreamPhase.Backfill).ToList();
        Assert.NotEmpty(progress);
        Assert.All(progress, p => Assert.Equal("bf-1", p.BackfillId));
        Assert.Equal(5, progress[^1].RowsDone);
        Assert.Equal(5, progress[^1].RowsTotal);
        Assert.IsType<Checkpoint>(s.Messages[^1]);
        Assert.True(s.Messages.IndexOf(done) < s.Messages.Count - 1);

        // Positions keep increasing: the re-read rows are newer than the first read's, so a merge keeps them.
        var positions = s.Messages.OfType<ChangeBatch>().SelectMany(b => b.Positions.Take(b.Length)).ToList();
        Assert.Equal(positions.Order(), positions);
        Assert.Contains("bf-1", s.LastCheckpoint!.State.GetProperty("backfillsDone").EnumerateArray().Select(e => e.GetString()));
        Assert.False(s.LastCheckpoint.State.TryGetProperty("jobs", out _));
    }

    [Fact]
    public async Task A_modified_range_backfill_takes_whole_days_inclusive()
    {
        using var dir = Folder();
        await using var s = new Session(Config(dir.Path), null);
        await s.ReadUntilAsync(m => m is CaughtUp);
        var before = s.Messages.Count;

        await s.Backfills.StartBackfillAsync(new BackfillRequest("june", "orders", "modified=2024-06-01..2024-06-30"), CancellationToken.None);
        var done = await s.UntilDoneAsync("june");

        Assert.Equal(4, done.Rows);
        Assert.Equal([1L, 2L, 3L, 4L], Rows.Of(s.Messages.Skip(before).OfType<ChangeBatch>()).Select(r => (long)r["id"]!));
    }

    [Theory]
    [InlineData("modified=2024-07-01", "range")]
    [InlineData("modified=2024-07-01..2024-06-01", "empty")]
    [InlineData("path=x", "Unknown")]
    [InlineData("modified=yesterday..", "neither a date")]
    public async Task A_bad_filter_is_refused_naming_the_filter(string filter, string message)
    {
        using var dir = Folder();
        await using var s = new Session(Config(dir.Path), null);

        var e = await Assert.ThrowsAsync<ConnectorException>(async () => await s.Backfills.StartBackfillAsync(new BackfillRequest("x", "orders", filter), CancellationToken.None));

        Assert.Equal(ErrorKind.Configuration, e.Kind);
        Assert.Equal("filter", e.Field);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public async Task A_backfill_of_a_stream_that_is_not_a_selected_table_is_refused()
    {
        using var dir = Folder();
        await using var s = new Session(Config(dir.Path), null);

        var e = await Assert.ThrowsAsync<ConnectorException>(async () => await s.Backfills.StartBackfillAsync(new BackfillRequest("x", "invoices", null), CancellationToken.None));

        Assert.Equal("stream", e.Field);
    }

    [Fact]
    public async Task A_backfill_interrupted_by_a_restart_resumes_at_the_next_file_and_counts_all_its_rows()
    {
        using var dir = Folder();
        var config = Config(dir.Path);
        Checkpoint afterFirstFile;
        await using (var s = new Session(config, null))
        {
            await s.ReadUntilAsync(m => m is CaughtUp);
            await s.Backfills.StartBackfillAsync(new BackfillRequest("bf", "orders", null), CancellationToken.None);

            // a.csv (3 rows, batches of 2) is done once the job's state names it as the last file done.
            await s.ReadUntilAsync(m => m is Checkpoint c && c.State.TryGetProperty("jobs", out var j) && j[0].TryGetProperty("after", out _));
            afterFirstFile = s.LastCheckpoint!;
        }

        var job = afterFirstFile.State.GetProperty("jobs")[0];
        Assert.Equal("orders/2024/a.csv", job.GetProperty("after")[1].GetString());
        Assert.Equal(3, job.GetProperty("rows").GetInt64());

        // The engine hands the unfinished backfill to the next read; the state says where it was.
        await using var resumed = new Session(config, afterFirstFile.State, new BackfillRequest("bf", "orders", null));
        var done = await resumed.UntilDoneAsync("bf");

        Assert.Equal([4L, 5L, 6L], resumed.Ids());
        Assert.Equal(6, done.Rows);
    }

    [Fact]
    public async Task A_cancelled_backfill_stops_and_reports_done_as_cancelled()
    {
        using var dir = Folder();
        await using var s = new Session(Config(dir.Path), null);
        await s.ReadUntilAsync(m => m is CaughtUp);

        await s.Backfills.StartBackfillAsync(new BackfillRequest("bf", "orders", null), CancellationToken.None);
        await s.ReadUntilAsync(m => m is StreamProgress { Phase: StreamPhase.Backfill });
        await s.Backfills.CancelBackfillAsync("bf", CancellationToken.None);
        var done = await s.UntilDoneAsync("bf");

        Assert.True(done.Cancelled);
        Assert.True(done.Rows < 6);
    }

    [Fact]
    public async Task Discover_offers_backfills_with_the_filter_syntax()
    {
        using var dir = Folder();

        var catalog = await new FilesConnector().DiscoverAsync(Config(dir.Path), CancellationToken.None);

        Assert.Contains("prefix=", catalog.Find("orders")!.Backfill!.FilterHelp);
        Assert.Null(catalog.Find("orders__dead_letters")!.Backfill);
    }

    [Fact]
    public async Task The_engine_runs_a_requested_backfill_into_the_lake_and_completes_it()
    {
        using var dir = Folder();
        var yaml = $$"""
            lake: ./lake
            commit: {interval: 10ms}
            connections:
              - name: shop
                connector: files
                config:
                  path: {{JsonSerializer.Serialize(dir.Path)}}
                  tables: [{name: orders, pattern: "orders/**/*.csv", format: csv, primaryKey: [id]}]
                streams:
                  - {name: orders, mode: merge}
                  - {name: orders, mode: append, table: shop_log/orders}
            """;
        var connectors = new Dictionary<string, ISourceConnector> { ["files"] = new FilesConnector() };
        var options = new RunOptions { Once = true, RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 1 };
        var bound = await PipelineBinder.BindAsync(PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml")), connectors, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var first = await PipelineRunner.RunAsync(bound, options, null, NullLoggerFactory.Instance, new RunStatus(), timeout.Token);
        Assert.True(first.Succeeded);

        var status = new RunStatus();
        status.Connection("shop").Backfills.Request(new BackfillRequest("bf-2024", "orders", "prefix=orders/2024/"));
        var second = await PipelineRunner.RunAsync(bound, options, null, NullLoggerFactory.Instance, status, timeout.Token);
        Assert.True(second.Succeeded);

        var backfill = status.Connection("shop").Backfills.Find("bf-2024")!;
        Assert.Equal("completed", backfill.State);
        Assert.Equal(5, backfill.RowsDone);
        var log = await Repo.ReadTableAsync(dir.Combine("lake", "shop_log", "orders"));
        Assert.Equal([1L, 1L, 2L, 2L, 3L, 3L, 4L, 4L, 5L, 5L, 6L], log.Select(r => (long)r["id"]!).Order());
        var merged = await Repo.ReadTableAsync(dir.Combine("lake", "shop", "orders"));
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], merged.Select(r => (long)r["id"]!).Order());
    }
}
