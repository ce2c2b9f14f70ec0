using System.Diagnostics;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using static Ingest.Connectors.GoogleAnalytics.Tests.GaTestKit;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

public sealed class GoogleAnalyticsReaderTests
{
    [Fact]
    public async Task First_run_reads_every_page_of_every_date_with_columns_typed_from_metadata()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 25);
        var model = new MergeModel();
        await using var session = Open(Config(fake, pageSize: 7), null, Hooks());
        var (state, seen) = await session.ReadAsync(model, keepBatches: true);

        AssertEqualsFake(fake, model);
        Assert.Equal(250, model.Table.Count);
        Assert.All(model.Ops, op => Assert.Equal(ChangeOp.Read, op));
        // 25 rows at 7 per page: offsets 0, 7, 14, 21 for each of the 10 dates.
        Assert.Equal(40, fake.Log.Count(l => l.Path.EndsWith(":runReport", StringComparison.Ordinal)));
        Assert.Equal(10, fake.Log.Count(l => l.Offset == 21));

        var batch = seen.OfType<ChangeBatch>().First().Data;
        Assert.IsType<Date32Array>(batch.Column(batch.Schema.GetFieldIndex("date")));
        Assert.IsType<StringArray>(batch.Column(batch.Schema.GetFieldIndex("country")));
        Assert.IsType<Int64Array>(batch.Column(batch.Schema.GetFieldIndex("activeUsers")));
        Assert.Equal(0.25, ((DoubleArray)batch.Column(batch.Schema.GetFieldIndex("totalRevenue"))).GetValue(0));
        Assert.IsType<DoubleArray>(batch.Column(batch.Schema.GetFieldIndex("userEngagementDuration")));
        Assert.Contains(seen, m => m is StreamProgress { Stream: "traffic", Phase: StreamPhase.Snapshot, RowsDone: 250 });
        foreach (var b in seen.OfType<ChangeBatch>())
        {
            b.Dispose();
        }

        Assert.Equal("2025-03-20", state!.Value.GetProperty("Reports").GetProperty("traffic").GetProperty("LastDate").GetString());
    }

    [Fact]
    public async Task Second_run_replaces_the_lookback_window_with_revised_values_and_deletes_rows_ga_dropped()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 6);
        var model = new MergeModel();
        var today = Today;
        var hooks = Hooks(() => today);
        JsonElement? state;
        await using (var session = Open(Config(fake, pageSize: 4), null, hooks))
        {
            (state, _) = await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);

        // GA revises yesterday, drops a row two days ago, and a new day starts.
        fake.Update(r => r.Date == Today.AddDays(-1) && r.Country == "C000", r => r.Metrics["activeUsers"] += 1000);
        Assert.Equal(1, fake.Remove(r => r.Date == Today.AddDays(-2) && r.Country == "C001" && r.Device == "mobile"));
        fake.Add(Today, "FR", "desktop", "Lyon", 77, 1);
        fake.Seed(Today.AddDays(1), Today.AddDays(1), perDate: 6);
        today = Today.AddDays(1);
        await using (var session = Open(Config(fake, pageSize: 4), state, hooks))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        Assert.Equal(1, model.Ops.Count(op => op == ChangeOp.Delete));
        Assert.Contains(ChangeOp.Update, model.Ops);
        // The window is lastDate - 3 .. today: older dates were read once only.
        Assert.Equal(1, fake.RequestsFor(Today.AddDays(-4)));
        Assert.Equal(2, fake.RequestsFor(Today.AddDays(-3)));
    }

    [Fact]
    public async Task Restart_resumes_after_the_last_committed_date_without_re_reading_committed_dates()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-19), Today, perDate: 3);
        var model = new MergeModel();
        var config = Config(fake, concurrency: 3, start: Today.AddDays(-19));
        JsonElement? state;
        await using (var session = Open(config, null, Hooks()))
        {
            var checkpoints = 0;
            (state, _) = await session.ReadAsync(model, m => m is Checkpoint && ++checkpoints == 6);
        }

        var next = DateOnly.Parse(state!.Value.GetProperty("Pass").GetProperty("Next").GetProperty("traffic").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Today.AddDays(-19 + 6), next);
        await using (var session = Open(config, state, Hooks()))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        for (var d = Today.AddDays(-19); d <= Today; d = d.AddDays(1))
        {
            // Committed dates were requested once; the ones prefetched beyond the checkpoint at most twice.
            Assert.InRange(fake.RequestsFor(d), 1, d < next ? 1 : 2);
        }
    }

    [Fact]
    public async Task Server_errors_are_retried_and_lose_nothing()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 4);
        fake.FailAt.UnionWith([2, 3, 7]);
        var model = new MergeModel();
        await using (var session = Open(Config(fake, pageSize: 3), null, Hooks()))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        Assert.Equal(3, fake.Log.Count(l => l.Status == 500));
    }

    [Fact]
    public async Task Expired_token_is_refreshed_and_the_request_sent_again()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 4);
        fake.ExpireTokensAt.Add(5);
        var model = new MergeModel();
        await using (var session = Open(Config(fake, concurrency: 1), null, Hooks()))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        Assert.Equal(1, fake.Unauthorized);
        Assert.Equal(2, fake.TokenRequests);
    }

    [Fact]
    public async Task Backfill_of_a_date_range_replaces_those_dates_and_reports_progress_and_done()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 5);
        var model = new MergeModel();
        await using var session = Open(Config(fake, lookback: 2), null, Hooks());
        await session.ReadAsync(model);

        // GA reprocessed two old days (outside the lookback window): values change and a row appears.
        fake.Update(r => r.Date >= Today.AddDays(-8) && r.Date <= Today.AddDays(-7), r => r.Metrics["activeUsers"] *= 3);
        fake.Add(Today.AddDays(-7), "JP", "mobile", "Tokyo", 5, 2);
        var before = fake.RequestsFor(Today.AddDays(-9));
        await session.Reader.StartBackfillAsync(new BackfillRequest("bf-1", "traffic", "2025-03-12..2025-03-13"), CancellationToken.None);
        var done = false;
        var (_, seen) = await session.ReadAsync(model, m =>
        {
            if (m is BackfillDone)
            {
                done = true;
                return false;
            }

            return done && m is Checkpoint;
        });

        AssertEqualsFake(fake, model);
        var finished = Assert.Single(seen.OfType<BackfillDone>());
        Assert.Equal(("bf-1", "traffic", 11L, false), (finished.Id, finished.Stream, finished.Rows, finished.Cancelled));
        Assert.Equal(2, seen.OfType<StreamProgress>().Count(p => p.Phase == StreamPhase.Backfill && p.BackfillId == "bf-1"));
        Assert.Equal(before, fake.RequestsFor(Today.AddDays(-9)));
        Assert.Equal(2, fake.RequestsFor(Today.AddDays(-8)));
    }

    [Fact]
    public async Task Backfill_interrupted_by_a_restart_resumes_from_its_checkpointed_date()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 3);
        var model = new MergeModel();
        var config = Config(fake, concurrency: 1, lookback: 1);
        JsonElement? state;
        await using (var session = Open(config, null, Hooks()))
        {
            (state, _) = await session.ReadAsync(model);
        }

        fake.Update(r => r.Date <= Today.AddDays(-4), r => r.Metrics["activeUsers"] += 7);
        var request = new BackfillRequest("bf-2", "traffic", "2025-03-11..2025-03-16");
        await using (var session = Open(config, state, Hooks(), null, request))
        {
            var progress = 0;
            (state, _) = await session.ReadAsync(model, m => m is Checkpoint && progress >= 3 || (m is StreamProgress { Phase: StreamPhase.Backfill } && ++progress < 0));
        }

        var next = state!.Value.GetProperty("Backfills").GetProperty("bf-2").GetProperty("Next").GetString();
        Assert.Equal("2025-03-14", next);
        List<SourceMessage> seen;
        await using (var session = Open(config, state, Hooks(), null, request))
        {
            (_, seen) = await session.ReadAsync(model, m => m is CaughtUp);
        }

        AssertEqualsFake(fake, model, Today.AddDays(-9), Today.AddDays(-4));
        var done = Assert.Single(seen.OfType<BackfillDone>());
        Assert.Equal(18L, done.Rows);
        Assert.Equal(2, fake.RequestsFor(Today.AddDays(-9)));
        Assert.Equal(2, fake.RequestsFor(Today.AddDays(-7)));
        Assert.Equal(2, fake.RequestsFor(Today.AddDays(-4)));
    }

    [Fact]
    public async Task Cancelled_backfill_stops_between_dates_says_so_and_leaves_the_checkpoint()
    {
        using var fake = new FakeGa();
        fake.Seed(Today.AddDays(-9), Today, perDate: 2);
        var model = new MergeModel();
        await using var session = Open(Config(fake, concurrency: 1), null, Hooks());
        await session.ReadAsync(model);
        await session.Reader.StartBackfillAsync(new BackfillRequest("bf-3", "traffic", "2025-03-11..2025-03-20"), CancellationToken.None);
        _ = await session.ReadAsync(model, m => m is StreamProgress { Phase: StreamPhase.Backfill });
        await session.Reader.CancelBackfillAsync("bf-3", CancellationToken.None);
        var done = false;
        var (state, rest) = await session.ReadAsync(model, m =>
        {
            done |= m is BackfillDone;
            return done && m is Checkpoint;
        });

        var finished = Assert.Single(rest.OfType<BackfillDone>());
        Assert.True(finished.Cancelled);
        Assert.InRange(finished.Rows, 2, 6);
        Assert.False(state!.Value.GetProperty("Backfills").TryGetProperty("bf-3", out _));
        Assert.Contains("bf-3", state.Value.GetProperty("DoneBackfills").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, fake.RequestsFor(Today));
        AssertEqualsFake(fake, model);
    }

    [Fact]
    public async Task Backfill_with_an_unusable_filter_is_refused_naming_the_filter()
    {
        using var fake = new FakeGa();
        await using var session = Open(Config(fake), null, Hooks());
        var e = await Assert.ThrowsAsync<ConnectorException>(() => session.Reader.StartBackfillAsync(new BackfillRequest("x", "traffic", "last week"), CancellationToken.None).AsTask());
        Assert.Equal("filter", e.Field);
        e = await Assert.ThrowsAsync<ConnectorException>(() => session.Reader.StartBackfillAsync(new BackfillRequest("y", "traffic", "2025-03-10..2025-03-01"), CancellationToken.None).AsTask());
        Assert.Equal("filter", e.Field);
    }
}
