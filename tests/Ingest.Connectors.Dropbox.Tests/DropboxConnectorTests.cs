using System.Diagnostics;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Dropbox.Tests;

public sealed class DropboxConnectorTests : IDisposable
{
    private readonly FakeDropbox _dropbox = new(pageSize: 2);

    public void Dispose() => _dropbox.Dispose();

    private JsonElement Config(string auth = "") => JsonDocument.Parse($$"""
        {
          "path": "/Exports",
          "apiBase": "{{_dropbox.BaseUrl}}",
          "contentBase": "{{_dropbox.BaseUrl}}",
          {{(auth.Length > 0 ? auth : $"\"refreshToken\": \"{FakeDropbox.RefreshToken}\", \"appKey\": \"{FakeDropbox.AppKey}\", \"appSecret\": \"{FakeDropbox.AppSecret}\"")}},
          "pollInterval": "200ms",
          "tables": [{"name": "orders", "pattern": "orders/**/*.csv", "format": "csv", "primaryKey": ["id"]}]
        }
        """).RootElement.Clone();

    private void PutOrders(int from, int to, string folder = "orders")
    {
        for (var i = from; i <= to; i++)
        {
            _dropbox.Put($"/Exports/{folder}/part-{i:000}.csv", $"id,amount\n{i},{i}.50\n", DateTime.UtcNow.AddMinutes(-10).AddSeconds(i));
        }
    }

    [Fact]
    public async Task Discover_lists_the_folder_and_infers_the_tables_columns()
    {
        PutOrders(1, 3);

        var catalog = await new DropboxConnector().DiscoverAsync(Config(), CancellationToken.None);

        var orders = catalog.Find("orders")!;
        Assert.Equal(["id", "amount"], orders.Schema.Columns.Take(2).Select(c => c.Name));
        Assert.Equal("decimal(3,2)", orders.Schema["amount"].Type.DisplayName);
        Assert.NotNull(catalog.Find("orders__dead_letters"));
    }

    [Fact]
    public async Task A_first_read_pages_through_the_listing_samples_the_first_page_and_downloads_each_revision_once_to_read_it()
    {
        PutOrders(1, 5);
        _dropbox.Put("/Exports/other/skip.csv", "id\n99\n");

        await using var session = new Session(Config(), null);
        Assert.True(await session.CaughtUpAsync());

        Assert.Equal([1L, 2L, 3L, 4L, 5L], session.Ids());
        Assert.Equal(5, _dropbox.Downloads.Distinct().Count());
        Assert.Equal(7, _dropbox.Downloads.Count); // the schema sample from the first listing page (first run only: 2 files here), then the read
        Assert.All(_dropbox.Downloads, d => Assert.StartsWith("rev:", d));
        Assert.Equal(1, _dropbox.Calls["files/list_folder"]);
        Assert.True(_dropbox.Calls["files/list_folder/continue"] >= 2); // 6 entries in pages of 2
        Assert.Equal(1, _dropbox.TokensIssued);
        Assert.Equal("orders/part-001.csv", session.Rows()[0]["_file"]);
    }

    [Fact]
    public async Task A_second_run_continues_from_the_saved_cursor_and_reads_only_the_new_file()
    {
        PutOrders(1, 3);
        Checkpoint durable;
        await using (var first = new Session(Config(), null))
        {
            Assert.True(await first.CaughtUpAsync());
            durable = first.LastCheckpoint!;
        }

        Assert.Equal("c", durable.State.GetProperty("store").GetProperty("cursor").GetString()![..1]);
        PutOrders(4, 4);
        var listingsBefore = _dropbox.Calls["files/list_folder"];
        var downloadsBefore = _dropbox.Downloads.Count;

        await using var second = new Session(Config(), durable.State);
        Assert.True(await second.CaughtUpAsync());

        Assert.Equal([4L], second.Ids());
        Assert.Equal(listingsBefore, _dropbox.Calls["files/list_folder"]); // no full listing: the cursor was continued
        Assert.Equal(downloadsBefore + 1, _dropbox.Downloads.Count);
    }

    [Fact]
    public async Task A_429_in_the_middle_of_the_listing_waits_retry_after_and_the_read_goes_on()
    {
        PutOrders(1, 6);
        _dropbox.Throttle("files/list_folder/continue", times: 1, retryAfterSeconds: 1);
        var clock = Stopwatch.StartNew();

        await using var session = new Session(Config(), null);
        Assert.True(await session.CaughtUpAsync());

        Assert.Equal(1, _dropbox.Throttled);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], session.Ids());
    }

    [Fact]
    public async Task An_expired_access_token_is_refreshed_and_polling_goes_on()
    {
        PutOrders(1, 2);
        await using var session = new Session(Config(), null);
        Assert.True(await session.CaughtUpAsync());

        _dropbox.ExpireTokens();
        PutOrders(3, 3);
        Assert.True(await session.ReadUntilAsync(m => m is Checkpoint && session.Ids().Contains(3L)));

        Assert.Equal(2, _dropbox.TokensIssued);
        Assert.Equal([1L, 2L, 3L], session.Ids());
    }

    [Fact]
    public async Task A_reset_cursor_lists_the_folder_again_and_reads_nothing_twice()
    {
        PutOrders(1, 3);
        Checkpoint durable;
        await using (var first = new Session(Config(), null))
        {
            Assert.True(await first.CaughtUpAsync());
            durable = first.LastCheckpoint!;
        }

        _dropbox.ResetCursors();
        PutOrders(4, 5);

        await using var second = new Session(Config(), durable.State);
        Assert.True(await second.CaughtUpAsync());

        Assert.Equal(2, _dropbox.Calls["files/list_folder"]); // the reset forced a second full listing
        Assert.Equal([4L, 5L], second.Ids());
    }

    [Fact]
    public async Task A_deleted_file_is_re_read_from_its_last_revision_as_deletes_by_key_and_a_new_version_is_read_after()
    {
        PutOrders(1, 2);
        await using var session = new Session(Config(), null);
        Assert.True(await session.CaughtUpAsync());

        _dropbox.Delete("/Exports/orders/part-001.csv");
        _dropbox.Put("/Exports/orders/part-001.csv", "id,amount\n1,9.50\n");
        Assert.True(await session.ReadUntilAsync(m => m is Checkpoint && session.Ids().Count == 4));

        Assert.Equal([1L, 2L, 1L, 1L], session.Ids());
        Assert.Equal([ChangeOp.Read, ChangeOp.Read, ChangeOp.Delete, ChangeOp.Insert], session.Ops());
        Assert.Equal(9.5m, (decimal)session.Rows()[3]["amount"]!);
        Assert.True(session.Positions()[2] < session.Positions()[3]); // the delete is ordered before the new version
    }

    [Fact]
    public async Task A_file_deleted_while_no_read_runs_is_found_by_its_revisions_and_its_rows_deleted()
    {
        PutOrders(1, 3);
        Checkpoint durable;
        await using (var first = new Session(Config(), null))
        {
            Assert.True(await first.CaughtUpAsync());
            durable = first.LastCheckpoint!;
        }

        _dropbox.Delete("/Exports/orders/part-002.csv");
        _dropbox.Delete("/Exports/orders/never-ingested.csv");

        await using var second = new Session(Config(), durable.State);
        Assert.True(await second.CaughtUpAsync());

        Assert.Equal([2L], second.Ids());
        Assert.Equal([ChangeOp.Delete], second.Ops());
        Assert.Equal(2, _dropbox.Calls["files/list_revisions"]); // both looked up; the path that never existed has none
    }

    [Fact]
    public async Task Check_reports_bad_credentials_on_the_refresh_token_field_and_a_plain_access_token_works()
    {
        PutOrders(1, 1);
        var connector = new DropboxConnector();

        var bad = await connector.CheckAsync(Config($"\"refreshToken\": \"wrong\", \"appKey\": \"{FakeDropbox.AppKey}\", \"appSecret\": \"{FakeDropbox.AppSecret}\""), CancellationToken.None);
        var missingSecret = await connector.CheckAsync(Config("\"refreshToken\": \"x\", \"appKey\": \"k\""), CancellationToken.None);
        var good = await connector.CheckAsync(Config(), CancellationToken.None);

        Assert.False(bad.Succeeded);
        Assert.Equal("/refreshToken", bad.Field);
        Assert.False(missingSecret.Succeeded);
        Assert.Equal("/appSecret", missingSecret.Field);
        Assert.True(good.Succeeded, good.Message);
        Assert.Contains("orders: 1 file(s)", good.Message);
        Assert.Contains("/refreshToken", connector.Spec.SecretPaths());
        Assert.Contains("/appSecret", connector.Spec.SecretPaths());
    }

    /// <summary>Drives a read like the engine does.</summary>
    [Fact]
    public async Task A_long_listing_checkpoints_the_cursor_page_by_page_and_a_restart_from_mid_listing_neither_loses_nor_repeats_files()
    {
        PutOrders(1, 12);
        var config = Config().GetRawText().Replace("\"primaryKey\"", "\"columns\": [{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"amount\", \"type\": \"decimal(5,2)\"}], \"primaryKey\"", StringComparison.Ordinal);
        var declared = JsonDocument.Parse(config).RootElement.Clone();
        List<long> durable;
        Checkpoint mid;
        await using (var first = new Session(declared, null))
        {
            // The first checkpoint that carries a cursor comes after a page, long before the 14 entries are listed.
            Assert.True(await first.ReadUntilAsync(m => m is Checkpoint c && c.State.TryGetProperty("store", out _) || m is CaughtUp));
            mid = first.LastCheckpoint!;
            Assert.True(mid.State.TryGetProperty("store", out _), "no cursor before the listing ended");
            durable = first.Ids();
            Assert.InRange(durable.Count, 1, 3);
            Assert.Equal(1, _dropbox.Calls["files/list_folder"]);
            Assert.False(_dropbox.Calls.ContainsKey("files/list_folder/continue"));
        }

        await using var resumed = new Session(declared, mid.State);
        Assert.True(await resumed.CaughtUpAsync());

        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), durable.Concat(resumed.Ids()).Order());
        Assert.Equal(1, _dropbox.Calls["files/list_folder"]); // the restart continued the saved cursor
    }

    [Fact]
    public async Task A_backfill_after_a_restart_lists_the_folder_afresh_and_re_reads_the_matching_files_while_the_cursor_stays()
    {
        PutOrders(1, 3);
        PutOrders(7, 8, folder: "orders/old");
        Checkpoint durable;
        await using (var first = new Session(Config(), null))
        {
            Assert.True(await first.CaughtUpAsync());
            durable = first.LastCheckpoint!;
        }

        var cursor = durable.State.GetProperty("store").GetProperty("cursor").GetString();
        var reader = new DropboxConnector().OpenReader(new ReadContext("t", Config(), [new StreamSelection("orders", SyncMode.Cdc)], durable.State, NullConnectorLog.Instance)
        {
            Backfills = [new BackfillRequest("bf", "orders", "prefix=orders/old/")],
        });
        await using (reader)
        {
            var ids = new List<long>();
            BackfillDone? done = null;
            Checkpoint? after = null;
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await foreach (var m in reader.ReadAsync(cts.Token))
            {
                switch (m)
                {
                    case ChangeBatch b:
                        ids.AddRange(Enumerable.Range(0, b.Length).Select(r => (long)ArrowValues.GetValue(b.Data.Column(0), r)!));
                        break;
                    case BackfillDone d:
                        done = d;
                        break;
                    case Checkpoint c when done is not null:
                        after = c;
                        break;
                }

                if (after is not null)
                {
                    break;
                }
            }

            Assert.Equal([7L, 8L], ids);
            Assert.Equal(2, done!.Rows);
            Assert.Equal(cursor, after!.State.GetProperty("store").GetProperty("cursor").GetString());
            Assert.Equal(2, _dropbox.Calls["files/list_folder"]); // the first read's listing, then the backfill's
        }
    }

    private sealed class Session : IAsyncDisposable
    {
        private readonly ISourceReader _reader;
        private readonly IAsyncEnumerator<SourceMessage> _messages;
        private readonly CancellationTokenSource _cts = new(TimeSpan.FromMinutes(1));
        private readonly List<ChangeBatch> _batches = [];

        public Session(JsonElement config, JsonElement? state)
        {
            _reader = new DropboxConnector().OpenReader(new ReadContext("t", config, [new StreamSelection("orders", SyncMode.Cdc)], state, NullConnectorLog.Instance));
            _messages = _reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
        }

        public Checkpoint? LastCheckpoint { get; private set; }

        public async Task<bool> ReadUntilAsync(Func<SourceMessage, bool> stop)
        {
            while (await _messages.MoveNextAsync())
            {
                switch (_messages.Current)
                {
                    case ChangeBatch b: _batches.Add(b); break;
                    case Checkpoint c: LastCheckpoint = c; break;
                }

                if (stop(_messages.Current))
                {
                    return true;
                }
            }

            return false;
        }

        public Task<bool> CaughtUpAsync() => ReadUntilAsync(m => m is CaughtUp);

        public List<Dictionary<string, object?>> Rows()
        {
            var rows = new List<Dictionary<string, object?>>();
            foreach (var b in _batches.Where(b => b.Stream == "orders"))
            {
                for (var r = 0; r < b.Length; r++)
                {
                    var row = new Dictionary<string, object?>(StringComparer.Ordinal);
                    for (var c = 0; c < b.Data.ColumnCount; c++)
                    {
                        row[b.Data.Schema.FieldsList[c].Name] = ArrowValues.GetValue(b.Data.Column(c), r);
                    }

                    rows.Add(row);
                }
            }

            return rows;
        }

        public List<long> Ids() => Rows().Select(r => (long)r["id"]!).ToList();

        public List<ChangeOp> Ops() => _batches.Where(b => b.Stream == "orders").SelectMany(b => b.Ops.Take(b.Length)).ToList();

        public List<SourcePosition> Positions() => _batches.Where(b => b.Stream == "orders").SelectMany(b => b.Positions.Take(b.Length)).ToList();

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            await _messages.DisposeAsync();
            await _reader.DisposeAsync();
            _cts.Dispose();
        }
    }
}
