using Ingest.Sdk.Files;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Files.Tests;

public sealed class FilesConnectorTests
{
    private static JsonElement Config(string root, string extra = "", string table = """{"name": "orders", "pattern": "orders/**/*.csv*", "format": "csv", "options": {"batchRows": 2}}""") =>
        JsonDocument.Parse($$"""{"path": {{JsonSerializer.Serialize(root)}}, "tables": [{{table}}], "pollInterval": "100ms"{{extra}}}""").RootElement.Clone();

    private static List<long> Ids(IEnumerable<Dictionary<string, object?>> rows) => rows.Select(r => (long)r["id"]!).ToList();

    [Fact]
    public async Task Discover_infers_each_tables_columns_and_offers_its_dead_letter_stream()
    {
        using var dir = new TempDir();
        dir.Write("orders/2024/a.csv", "id,amount\n1,2.50\n");

        var catalog = await new FilesConnector().DiscoverAsync(Config(dir.Path), CancellationToken.None);

        var orders = catalog.Find("orders")!;
        Assert.Equal("id long, amount decimal(3,2), _rescued_data string, _file string not null, _file_modified timestamp not null, _line long not null", Describe.Schema(orders.Schema));
        Assert.Equal(FileColumns_DeadLetters, Describe.Schema(catalog.Find("orders__dead_letters")!.Schema));
    }

    private const string FileColumns_DeadLetters = "_file string not null, _line long not null, raw string, error string not null";

    [Fact]
    public async Task Check_names_the_missing_folder_and_a_bad_table_setting()
    {
        using var dir = new TempDir();
        var connector = new FilesConnector();

        var missing = await connector.CheckAsync(Config(dir.Combine("nope")), CancellationToken.None);
        var badFormat = await connector.CheckAsync(Config(dir.Path, table: """{"name": "t", "pattern": "*.x", "format": "xml"}"""), CancellationToken.None);
        dir.Write("orders/a.csv", "id\n1\n");
        var ok = await connector.CheckAsync(Config(dir.Path), CancellationToken.None);

        Assert.False(missing.Succeeded);
        Assert.Equal("/path", missing.Field);
        Assert.Contains("does not exist", missing.Message);
        Assert.False(badFormat.Succeeded);
        Assert.Equal("/tables/0/format", badFormat.Field);
        Assert.True(ok.Succeeded, ok.Message);
        Assert.Contains("orders: 1 file(s)", ok.Message);
    }

    [Fact]
    public async Task Discover_without_files_or_declared_columns_asks_for_one_or_the_other()
    {
        using var dir = new TempDir();

        var e = await Assert.ThrowsAsync<ConnectorException>(() => new FilesConnector().DiscoverAsync(Config(dir.Path), CancellationToken.None));

        Assert.Equal(ErrorKind.Configuration, e.Kind);
        Assert.Equal("/tables/0/pattern", e.Field);
        Assert.Contains("declare 'columns'", e.Message);
    }

    [Fact]
    public async Task Spec_is_valid_json_schema_with_the_tables_entry_inlined()
    {
        var spec = new FilesConnector().Spec.ConfigSchema;

        Assert.Equal("object", spec["properties"]!["tables"]!["items"]!["type"]!.GetValue<string>());
        Assert.Equal(["path", "tables"], spec["required"]!.AsArray().Select(n => n!.GetValue<string>()));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Each_file_is_read_once_across_resumes_and_a_file_not_acknowledged_is_read_again()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n2\n", secondsAgo: 30);
        dir.Write("orders/b.csv", "id\n3\n", secondsAgo: 20);
        var config = Config(dir.Path);

        Checkpoint durable;
        await using (var first = new ReadSession(new FilesConnector(), config, null, "orders"))
        {
            Assert.True(await first.CaughtUpAsync());
            Assert.Equal([1L, 2L, 3L], Ids(first.RowsOf("orders")));
            durable = first.LastCheckpoint!;
            await first.AcknowledgeAsync(durable);
        }

        // Nothing new: a resumed read emits nothing.
        await using (var second = new ReadSession(new FilesConnector(), config, durable.State, "orders"))
        {
            Assert.True(await second.CaughtUpAsync());
            Assert.Empty(second.RowsOf("orders"));
            durable = second.LastCheckpoint!;
        }

        // A new file is read, but its checkpoint is never made durable (the process dies): the next read reads it again.
        dir.Write("orders/sub/c.csv.gz", "", secondsAgo: 10);
        dir.WriteBytes("orders/sub/c.csv.gz", Compress.Gzip("id\n4\n5\n"), secondsAgo: 10);
        await using (var third = new ReadSession(new FilesConnector(), config, durable.State, "orders"))
        {
            Assert.True(await third.CaughtUpAsync());
            Assert.Equal([4L, 5L], Ids(third.RowsOf("orders")));
        }

        await using (var fourth = new ReadSession(new FilesConnector(), config, durable.State, "orders"))
        {
            Assert.True(await fourth.CaughtUpAsync());
            Assert.Equal([4L, 5L], Ids(fourth.RowsOf("orders")));
            var positions = fourth.Batches.SelectMany(b => b.Positions.Take(b.Length)).ToList();
            Assert.Equal(3UL, positions[0].High); // ordinals 1 and 2 are taken by a and b
            durable = fourth.LastCheckpoint!;
        }

        await using (var fifth = new ReadSession(new FilesConnector(), config, durable.State, "orders"))
        {
            Assert.True(await fifth.CaughtUpAsync());
            Assert.Empty(fifth.RowsOf("orders"));
        }
    }

    [Fact]
    public async Task A_read_interrupted_inside_a_file_resumes_after_the_last_durable_line_with_the_same_positions()
    {
        using var dir = new TempDir();
        dir.Write("orders/big.csv", "id\n" + string.Join("\n", Enumerable.Range(1, 9)) + "\n");
        var config = Config(dir.Path);

        Checkpoint? mid = null;
        List<SourcePosition> before;
        await using (var first = new ReadSession(new FilesConnector(), config, null, "orders"))
        {
            var checkpoints = 0;
            await first.ReadUntilAsync(m => m is Checkpoint && ++checkpoints == 2);
            mid = first.LastCheckpoint;
            before = first.Batches.SelectMany(b => b.Positions.Take(b.Length)).ToList();
            Assert.Equal([1L, 2L, 3L, 4L], Ids(first.RowsOf("orders")));
        }

        await using var resumed = new ReadSession(new FilesConnector(), config, mid!.State, "orders");
        Assert.True(await resumed.CaughtUpAsync());

        Assert.Equal([5L, 6L, 7L, 8L, 9L], Ids(resumed.RowsOf("orders")));
        var after = resumed.Batches.SelectMany(b => b.Positions.Take(b.Length)).ToList();
        Assert.True(after[0] > before[^1]);
        Assert.Equal(before[0].High, after[0].High);
    }

    [Fact]
    public async Task New_and_rewritten_files_are_picked_up_while_polling_and_deleted_files_change_nothing()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n", secondsAgo: 30);
        var config = Config(dir.Path);

        await using var session = new ReadSession(new FilesConnector(), config, null, "orders");
        Assert.True(await session.CaughtUpAsync());
        Assert.Equal([1L], Ids(session.RowsOf("orders")));

        File.Delete(dir.Combine("orders", "a.csv"));
        dir.Write("orders/b.csv", "id\n2\n", secondsAgo: 5);
        Assert.True(await session.ReadUntilAsync(m => m is Checkpoint));
        Assert.Equal([1L, 2L], Ids(session.RowsOf("orders")));
        Assert.All(session.Batches.Last(b => b.Stream == "orders").Ops.Take(1), op => Assert.Equal(ChangeOp.Insert, op));

        // The same path with new content is a new version: read again.
        dir.Write("orders/b.csv", "id\n2\n3\n", secondsAgo: 0);
        Assert.True(await session.ReadUntilAsync(m => m is Checkpoint));
        Assert.Equal([1L, 2L, 2L, 3L], Ids(session.RowsOf("orders")));
    }

    [Fact]
    public async Task Dead_letters_are_emitted_on_their_own_stream_only_when_selected()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n\"2\n", secondsAgo: 30);

        await using (var both = new ReadSession(new FilesConnector(), Config(dir.Path), null, "orders", "orders__dead_letters"))
        {
            Assert.True(await both.CaughtUpAsync());
            Assert.Equal([1L], Ids(both.RowsOf("orders")));
            var dead = Assert.Single(both.RowsOf("orders__dead_letters"));
            Assert.Equal(3L, dead["_line"]);
        }

        await using var rowsOnly = new ReadSession(new FilesConnector(), Config(dir.Path), null, "orders");
        Assert.True(await rowsOnly.CaughtUpAsync());
        Assert.DoesNotContain(rowsOnly.Batches, b => b.Stream == "orders__dead_letters");
    }

    [Fact]
    public void Reading_a_stream_that_is_not_a_table_is_refused_by_name()
    {
        using var dir = new TempDir();

        var e = Assert.Throws<ConnectorException>(() => new FilesConnector().OpenReader(new ReadContext("t", Config(dir.Path), [new StreamSelection("invoices", SyncMode.Cdc)], null, NullConnectorLog.Instance)));

        Assert.Contains("no table 'invoices'", e.Message);
    }

    [Fact]
    public async Task The_ledger_stays_compact_files_older_than_the_watermark_leave_the_done_set()
    {
        using var dir = new TempDir();
        for (var i = 0; i < 5; i++)
        {
            dir.Write($"orders/{i}.csv", $"id\n{i}\n", secondsAgo: 3600 * 3);
        }

        await using var session = new ReadSession(new FilesConnector(), Config(dir.Path), null, "orders");
        Assert.True(await session.CaughtUpAsync());

        var ledger = session.LastCheckpoint!.State.GetProperty("tables").GetProperty("orders");
        Assert.Equal(0, ledger.GetProperty("done").GetArrayLength());
        Assert.Equal(JsonValueKind.Number, ledger.GetProperty("watermark").ValueKind);
        Assert.Equal(6, ledger.GetProperty("next").GetInt64());
        Assert.Equal(5, session.RowsOf("orders").Count);
    }
    [Fact]
    public async Task With_detectDeletions_a_deleted_file_truncates_the_table_and_the_remaining_files_are_read_again()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n2\n", secondsAgo: 30);
        dir.Write("orders/b.csv", "id\n3\n", secondsAgo: 20);
        var config = Config(dir.Path, """, "detectDeletions": true""");

        await using var session = new ReadSession(new FilesConnector(), config, null, "orders");
        Assert.True(await session.CaughtUpAsync());
        Assert.Equal([1L, 2L, 3L], Ids(session.RowsOf("orders")));
        var before = session.Batches.Count;

        File.Delete(dir.Combine("orders", "a.csv"));
        Assert.True(await session.ReadUntilAsync(m => m is Checkpoint c && session.Batches.Count > before && !c.State.TryGetProperty("jobs", out _)));

        var after = session.Batches.Skip(before).ToList();
        Assert.Equal(ChangeOp.Truncate, Assert.Single(after[0].Ops.Take(after[0].Length)));
        Assert.Equal([3L], Ids(Rows.Of(after.Skip(1))));
        Assert.All(after.Skip(1), b => Assert.All(b.Ops.Take(b.Length), op => Assert.Equal(ChangeOp.Read, op)));
        var positions = session.Batches.SelectMany(b => b.Positions.Take(b.Length)).ToList();
        Assert.Equal(positions.Order(), positions); // the truncate and the re-read come after every earlier row

        // The ledger forgot a.csv: a restart from the last checkpoint reads nothing and truncates nothing.
        var ledger = session.LastCheckpoint!.State.GetProperty("tables").GetProperty("orders");
        Assert.Equal(["orders/b.csv"], ledger.GetProperty("done").EnumerateArray().Select(e => e[0].GetString()));
        Assert.False(session.LastCheckpoint.State.TryGetProperty("jobs", out _));
        await using var resumed = new ReadSession(new FilesConnector(), config, session.LastCheckpoint.State, "orders");
        Assert.True(await resumed.CaughtUpAsync());
        Assert.Empty(resumed.Batches);
    }

    [Fact]
    public async Task With_detectDeletions_a_restart_after_the_truncate_finishes_the_re_read_without_truncating_again()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n", secondsAgo: 40);
        dir.Write("orders/b.csv", "id\n2\n", secondsAgo: 30);
        dir.Write("orders/c.csv", "id\n3\n", secondsAgo: 20);
        var config = Config(dir.Path, """, "detectDeletions": true""");
        Checkpoint afterTruncate;
        await using (var session = new ReadSession(new FilesConnector(), config, null, "orders"))
        {
            Assert.True(await session.CaughtUpAsync());
            File.Delete(dir.Combine("orders", "a.csv"));
            var before = session.Batches.Count;
            Assert.True(await session.ReadUntilAsync(m => m is Checkpoint && session.Batches.Count > before));
            afterTruncate = session.LastCheckpoint!;
            Assert.Single(session.Batches.Skip(before)); // only the truncate so far
        }

        var job = Assert.Single(afterTruncate.State.GetProperty("jobs").EnumerateArray());
        Assert.True(job.GetProperty("internal").GetBoolean());

        await using var resumed = new ReadSession(new FilesConnector(), config, afterTruncate.State, "orders");
        Assert.True(await resumed.CaughtUpAsync());
        Assert.Equal([2L, 3L], Ids(resumed.RowsOf("orders")));
        Assert.DoesNotContain(resumed.Batches, b => b.Ops.Take(b.Length).Contains(ChangeOp.Truncate));
        Assert.False(resumed.LastCheckpoint!.State.TryGetProperty("jobs", out _));
    }
    [Fact]
    public async Task With_detectDeletions_a_file_deleted_while_it_was_half_read_has_its_emitted_rows_removed_after_a_restart()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n1\n", secondsAgo: 40);
        dir.Write("orders/b.csv", "id\n2\n3\n4\n5\n6\n", secondsAgo: 30);
        var config = Config(dir.Path, """, "detectDeletions": true""");
        Checkpoint halfway;
        await using (var session = new ReadSession(new FilesConnector(), config, null, "orders"))
        {
            Assert.True(await session.ReadUntilAsync(m => m is Checkpoint c && c.State.GetProperty("tables").GetProperty("orders").TryGetProperty("current", out _)));
            halfway = session.LastCheckpoint!;
            Assert.Equal([1L, 2L, 3L], Ids(session.RowsOf("orders")));
        }

        File.Delete(dir.Combine("orders", "b.csv"));
        await using var resumed = new ReadSession(new FilesConnector(), config, halfway.State, "orders");
        Assert.True(await resumed.CaughtUpAsync());

        Assert.Equal(ChangeOp.Truncate, resumed.Batches[0].Ops[0]);
        Assert.Equal([1L], Ids(Rows.Of(resumed.Batches.Skip(1))));
    }
}
