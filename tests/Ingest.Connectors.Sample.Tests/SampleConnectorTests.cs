using System.Diagnostics;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using static Ingest.Connectors.Sample.Tests.SampleReads;

namespace Ingest.Connectors.Sample.Tests;

public class SampleConnectorTests
{
    [Fact]
    public async Task Two_reads_with_the_same_seed_and_the_synthetic_clock_give_identical_messages()
    {
        var first = await ReadAllAsync(Context(SmallConfig(clock: "synthetic")));
        var second = await ReadAllAsync(Context(SmallConfig(clock: "synthetic")));

        Assert.Equal(first.Select(m => m.Text), second.Select(m => m.Text));
        Assert.Contains(first, m => m.Kind == "batch");
    }

    [Fact]
    public async Task Two_reads_with_the_same_seed_and_the_wall_clock_give_the_same_rows_and_checkpoints()
    {
        var first = await ReadAllAsync(Context(SmallConfig()));
        var second = await ReadAllAsync(Context(SmallConfig()));

        Assert.Equal(first.Select(m => m.Content), second.Select(m => m.Content));
        Assert.Contains(first, m => m.Kind == "batch");
    }

    [Fact]
    public async Task A_different_seed_gives_different_rows()
    {
        var a = await ReadAllAsync(Context(SmallConfig(seed: 1)));
        var b = await ReadAllAsync(Context(SmallConfig(seed: 2)));

        Assert.NotEqual(a.First(m => m.Kind == "batch").Text, b.First(m => m.Kind == "batch").Text);
    }

    [Theory]
    [InlineData("synthetic")]
    [InlineData("wall")]
    public async Task Resuming_from_any_checkpoint_yields_exactly_the_remaining_messages(string clock)
    {
        // With the synthetic clock byte for byte; with the wall clock all but the source timestamps.
        var config = SmallConfig(changes: 300, batchSize: 23, clock: clock);
        Func<Message, string> text = clock == "synthetic" ? m => m.Text : m => m.Content;
        var full = await ReadAllAsync(Context(config));
        var checkpoints = full.Select((m, i) => (m, i)).Where(x => x.m.Kind == "checkpoint").ToList();
        Assert.True(checkpoints.Count > 10, $"only {checkpoints.Count} checkpoints");

        // Every third checkpoint, plus the last snapshot one and the very last one.
        var chosen = checkpoints.Where((_, n) => n % 3 == 0).ToList();
        chosen.Add(checkpoints.Last(c => c.m.Text.Contains("\"snapshot\"", StringComparison.Ordinal)));
        chosen.Add(checkpoints[^1]);
        foreach (var (checkpoint, index) in chosen)
        {
            var resumed = await ReadAllAsync(Context(config, checkpoint.State));

            Assert.Equal(full.Skip(index + 1).Select(text), resumed.Select(text));
        }
    }

    [Fact]
    public async Task Positions_strictly_increase_per_stream_and_synthetic_timestamps_follow_them()
    {
        var messages = await ReadAllAsync(Context(SmallConfig(clock: "synthetic")));
        var rows = messages.SelectMany(m => m.Rows).ToList();

        foreach (var stream in AllStreams)
        {
            var positions = rows.Where(r => r.Stream == stream).Select(r => r.Position).ToList();
            Assert.NotEmpty(positions);
            for (var i = 1; i < positions.Count; i++)
            {
                Assert.True(positions[i - 1] < positions[i], $"{stream}: {positions[i - 1]} then {positions[i]}");
            }
        }

        // Globally the sequence numbers form 1..N with no gap or repeat.
        var sequences = rows.Select(r => (long)r.Position.High).Order().ToList();
        Assert.Equal(Enumerable.Range(1, sequences.Count).Select(i => (long)i), sequences);
        Assert.All(rows, r => Assert.Equal(0UL, r.Position.Low));
        Assert.All(rows, r => Assert.Equal(SampleGenerator.TimestampOf((long)r.Position.High), r.SourceTimestampMicros));
    }

    [Fact]
    public async Task Final_state_equals_the_read_events_applied_to_a_dictionary()
    {
        var config = SmallConfig(changes: 600);
        var messages = await ReadAllAsync(Context(config));
        var applied = AllStreams.ToDictionary(s => s, _ => new Dictionary<string, IReadOnlyDictionary<string, object?>>());
        foreach (var row in messages.SelectMany(m => m.Rows))
        {
            var key = SampleExpectations.KeyOf(row.Values, SampleStreams.Keys[SampleStreams.IndexOf(row.Stream)]);
            if (row.Op == ChangeOp.Delete)
            {
                Assert.True(applied[row.Stream].Remove(key), $"delete of missing {row.Stream} {key}");
            }
            else
            {
                applied[row.Stream][key] = row.Values;
            }
        }

        var expected = SampleExpectations.FinalState(SampleExpectations.ParseOptions(config), 600);

        foreach (var stream in AllStreams)
        {
            Assert.Equal(expected[stream].Count, applied[stream].Count);
            foreach (var (key, row) in expected[stream])
            {
                Assert.True(applied[stream].TryGetValue(key, out var actual), $"{stream} {key} missing from the read");
                Assert.Equal(row.OrderBy(kv => kv.Key), actual!.OrderBy(kv => kv.Key));
            }
        }
    }

    [Fact]
    public async Task Expected_events_match_the_read_row_for_row()
    {
        var config = SmallConfig(changes: 250);
        var messages = await ReadAllAsync(Context(config));
        var expected = SampleExpectations.Events(SampleExpectations.ParseOptions(config), 250);

        foreach (var stream in AllStreams)
        {
            var read = messages.SelectMany(m => m.Rows).Where(r => r.Stream == stream).ToList();
            var want = expected[stream];
            Assert.Equal(want.Count, read.Count);
            for (var i = 0; i < want.Count; i++)
            {
                Assert.Equal(want[i].Op, read[i].Op);
                Assert.Equal(want[i].Position, read[i].Position);
                foreach (var (column, value) in want[i].Row)
                {
                    Assert.Equal(value, read[i].Values[column]);
                }
            }
        }
    }

    [Fact]
    public async Task Caught_up_follows_the_checkpoint_that_covers_the_backlog_and_a_finite_read_ends()
    {
        var messages = await ReadAllAsync(Context(SmallConfig(changes: 120)));

        var caughtUp = messages.FindIndex(m => m.Kind == "caughtup");
        Assert.Equal(messages.Count - 1, caughtUp);
        Assert.Single(messages, m => m.Kind == "caughtup");
        var last = messages[caughtUp - 1];
        Assert.Equal("checkpoint", last.Kind);
        Assert.Equal("changes", last.State!.Value.GetProperty("phase").GetString());
        Assert.Equal(120, last.State.Value.GetProperty("event").GetInt64());
    }

    [Fact]
    public async Task Without_a_backlog_caught_up_follows_the_last_snapshot_checkpoint()
    {
        var messages = await ReadAllAsync(Context(SmallConfig(changes: 0)));

        Assert.Equal("caughtup", messages[^1].Kind);
        Assert.Equal("snapshot", messages[^2].State!.Value.GetProperty("phase").GetString());
        Assert.DoesNotContain(messages.SelectMany(m => m.Rows), r => r.Op != ChangeOp.Read);
    }

    [Fact]
    public async Task Every_batch_is_followed_by_progress_and_a_checkpoint()
    {
        var messages = await ReadAllAsync(Context(SmallConfig()));

        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Kind != "batch")
            {
                continue;
            }

            var next = messages.Skip(i + 1).First(m => m.Kind != "batch");
            Assert.Equal("progress", next.Kind);
            Assert.Contains(messages.Skip(i + 1), m => m.Kind == "checkpoint");
            Assert.True(messages[i].Rows.Count <= 37 || messages[i].Rows.All(r => r.Op != ChangeOp.Read));
        }

        var snapshotProgress = messages.Where(m => m.Text.StartsWith("progress customers Snapshot", StringComparison.Ordinal)).Select(m => m.Text).ToList();
        Assert.Equal("progress customers Snapshot 40 40", snapshotProgress[^1]);
    }

    [Fact]
    public async Task Rate_based_continuation_emits_more_events_over_time_and_stops_when_cancelled()
    {
        var connector = new SampleConnector();
        await using var reader = connector.OpenReader(Context(SmallConfig(changes: 50, rate: 400)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var afterCaughtUp = new List<Message>();
        var caughtUp = false;
        var clock = new Stopwatch();
        await foreach (var m in reader.ReadAsync(cts.Token))
        {
            if (m is CaughtUp)
            {
                caughtUp = true;
                clock.Start();
                cts.CancelAfter(TimeSpan.FromMilliseconds(700));
                continue;
            }

            if (caughtUp)
            {
                afterCaughtUp.Add(Message.From(m));
            }
            else
            {
                (m as IDisposable)?.Dispose();
            }
        }

        Assert.True(caughtUp);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), "the read did not stop soon after cancellation");
        var events = afterCaughtUp.Where(m => m.Kind == "checkpoint").Select(m => m.State!.Value.GetProperty("event").GetInt64()).ToList();
        Assert.NotEmpty(events);
        Assert.True(events[^1] > 50 + 40, $"only reached event {events[^1]} in 0.7 s at 400/s");
        var elapsed = clock.Elapsed.TotalSeconds;
        Assert.True(events[^1] - 50 <= (400 * elapsed) + 1, $"reached event {events[^1]} after {elapsed:F2} s: faster than the rate");
        Assert.Equal(events.Order(), events);
        Assert.Contains(afterCaughtUp, m => m.Kind == "batch");
    }

    [Fact]
    public async Task Live_events_continue_the_generator_deterministically()
    {
        // The rate decides when events come, not what they are: the live rows equal the expectations' next events.
        var connector = new SampleConnector();
        await using var reader = connector.OpenReader(Context(SmallConfig(changes: 30, rate: 500)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var rows = new List<RowEvent>();
        long lastEvent = 0;
        await foreach (var m in reader.ReadAsync(cts.Token))
        {
            var message = Message.From(m);
            rows.AddRange(message.Rows);
            if (message.Kind == "checkpoint")
            {
                lastEvent = message.State!.Value.GetProperty("event").GetInt64();
                if (lastEvent > 100)
                {
                    break;
                }
            }
        }

        var expected = SampleExpectations.Events(SampleExpectations.ParseOptions(SmallConfig()), lastEvent);
        foreach (var stream in AllStreams)
        {
            Assert.Equal(expected[stream].Select(e => (e.Op, e.Position)), rows.Where(r => r.Stream == stream).Select(r => (r.Op, r.Position)));
        }
    }

    [Fact]
    public async Task Selected_streams_only_are_read_and_full_refresh_streams_get_the_snapshot_only()
    {
        var streams = new[] { new StreamSelection("orders", SyncMode.Cdc), new StreamSelection("products", SyncMode.FullRefresh) };
        var messages = await ReadAllAsync(Context(SmallConfig(changes: 300), streams: streams));
        var rows = messages.SelectMany(m => m.Rows).ToList();

        Assert.Equal(["orders", "products"], rows.Select(r => r.Stream).Distinct().Order());
        Assert.All(rows.Where(r => r.Stream == "products"), r => Assert.Equal(ChangeOp.Read, r.Op));
        Assert.Equal(12, rows.Count(r => r.Stream == "products"));
        Assert.Contains(rows, r => r.Stream == "orders" && r.Op == ChangeOp.Update);
        Assert.Equal("caughtup", messages[^1].Kind);
    }

    [Fact]
    public void Unknown_stream_or_incremental_mode_is_a_configuration_error()
    {
        var connector = new SampleConnector();

        var unknown = Assert.Throws<ConnectorException>(() => connector.OpenReader(Context(SmallConfig(), streams: [new StreamSelection("invoices", SyncMode.Cdc)])));
        Assert.Equal(ErrorKind.Configuration, unknown.Kind);
        Assert.Contains("invoices", unknown.Message, StringComparison.Ordinal);
        var incremental = Assert.Throws<ConnectorException>(() => connector.OpenReader(Context(SmallConfig(), streams: [new StreamSelection("orders", SyncMode.Incremental)])));
        Assert.Equal(ErrorKind.Configuration, incremental.Kind);
    }

    [Fact]
    public async Task A_checkpoint_from_another_seed_is_refused()
    {
        var messages = await ReadAllAsync(Context(SmallConfig(seed: 1)));
        var state = messages.First(m => m.Kind == "checkpoint").State;

        var ex = Assert.Throws<ConnectorException>(() => new SampleConnector().OpenReader(Context(SmallConfig(seed: 2), state)));
        Assert.Equal(ErrorKind.Configuration, ex.Kind);
        Assert.Equal("/seed", ex.Field);
        Assert.Throws<ConnectorException>(() => new SampleConnector().OpenReader(Context(SmallConfig(), Config("""{"phase":"later"}"""))));
    }

    [Fact]
    public async Task Acknowledge_records_the_last_acknowledged_checkpoint()
    {
        var connector = new SampleConnector();
        await using var reader = connector.OpenReader(Context(SmallConfig(changes: 10)));
        Checkpoint? last = null;
        await foreach (var m in reader.ReadAsync(CancellationToken.None))
        {
            if (m is Checkpoint c)
            {
                last = c;
                await reader.AcknowledgeAsync(c, CancellationToken.None);
            }

            (m as IDisposable)?.Dispose();
        }

        Assert.Same(last, ((SampleReader)reader).LastAcknowledged);
    }

    [Fact]
    public async Task Discover_returns_the_four_streams_with_keys_cursors_and_estimates()
    {
        var config = SmallConfig();
        var catalog = await new SampleConnector().DiscoverAsync(config, CancellationToken.None);
        var final = SampleExpectations.FinalState(SampleExpectations.ParseOptions(config), 0);

        Assert.Equal(AllStreams, catalog.Streams.Select(s => s.Name));
        Assert.Equal(["order_id", "line_no"], catalog.Find("order_lines")!.PrimaryKey);
        Assert.Equal(["id"], catalog.Find("customers")!.PrimaryKey);
        Assert.Equal(["updated_at"], catalog.Find("orders")!.CursorFields);
        Assert.Empty(catalog.Find("order_lines")!.CursorFields);
        Assert.All(catalog.Streams, s => Assert.Equal([SyncMode.Cdc, SyncMode.FullRefresh], s.SupportedSyncModes));
        Assert.All(catalog.Streams, s => Assert.Equal(final[s.Name].Count, s.EstimatedRows));
        Assert.Equal("decimal(12,2)", catalog.Find("orders")!.Schema["total"].Type.DisplayName);
        Assert.False(catalog.Find("orders")!.Schema["id"].Nullable);
        Assert.True(catalog.Find("orders")!.Schema["shipped_on"].Nullable);
    }
}
