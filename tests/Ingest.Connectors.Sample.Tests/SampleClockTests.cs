using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using static Ingest.Connectors.Sample.Tests.SampleReads;

namespace Ingest.Connectors.Sample.Tests;

/// <summary>The source timestamps, which the engine's lag is computed from: real with the wall clock, fixed with the synthetic one.</summary>
public class SampleClockTests
{
    private const long Second = 1_000_000;

    [Fact]
    public async Task Wall_clock_stamps_the_backlog_in_the_recent_past_up_to_the_read_start_and_the_snapshot_before_it()
    {
        // 400 backlog events at 100/s: they accumulated over the 4 s before the read started.
        var before = NowMicros();
        var read = await ReadUntilAsync(Context(SmallConfig(changes: 400, rate: 100)), (m, _) => m.Kind == "caughtup");
        var firstMessage = read[0].At;
        var caughtUp = read[^1].At;
        var rows = read.SelectMany(r => r.Message.Rows).ToList();
        var snapshot = rows.Where(r => r.Op == ChangeOp.Read).ToList();
        var changes = rows.Where(r => r.Op != ChangeOp.Read).OrderBy(r => r.Position).ToList();

        // The snapshot shows the data as of the backlog's first event, 4 s before the read.
        var snapshotAt = Assert.Single(snapshot.Select(r => r.SourceTimestampMicros).Distinct());
        Assert.InRange(snapshotAt, before - (4 * Second), firstMessage - (4 * Second));

        // Each event is one source transaction with its own time, 10 ms apart, in sequence order, the last at the read start.
        var times = changes.Select(r => r.SourceTimestampMicros).ToList();
        Assert.Equal(times.Order(), times);
        Assert.Equal(400, times.Distinct().Count());
        Assert.InRange(times[0] - snapshotAt, 9_999, 10_001);
        Assert.InRange(times[^1], before, firstMessage);

        // Caught up, the newest change is only as old as the read took: seconds, not the synthetic 2025 dates.
        Assert.InRange(caughtUp - times[^1], 0, 10 * Second);
    }

    [Fact]
    public async Task Wall_clock_live_changes_carry_the_time_the_source_made_them_so_the_lag_is_milliseconds()
    {
        long caughtUpAt = 0;
        var read = await ReadUntilAsync(
            Context(SmallConfig(changes: 10, rate: 200, batchSize: 1000)),
            (m, at) =>
            {
                if (m.Kind == "caughtup")
                {
                    caughtUpAt = at;
                }

                // Up to a checkpoint, so that no event is cut between its streams' batches.
                return caughtUpAt > 0 && at - caughtUpAt > Second / 2 && m.Kind == "checkpoint";
            });

        var live = read.SkipWhile(r => r.Message.Kind != "caughtup").Where(r => r.Message.Kind == "batch").ToList();
        Assert.NotEmpty(live);
        foreach (var (message, receivedAt) in live)
        {
            // Made after the read caught up, and no later than when the batch arrived (1 ms for the two clocks' rounding); a
            // live batch is as old as the flush is late: milliseconds, a few seconds on a very busy machine.
            Assert.All(message.Rows, r => Assert.InRange(r.SourceTimestampMicros, caughtUpAt - 1000, receivedAt + 1000));
            Assert.InRange(receivedAt - message.Rows.Max(r => r.SourceTimestampMicros), -1000, 5 * Second);
        }

        // Events come at the configured rate: 5 ms apart at 200/s.
        var times = live.SelectMany(r => r.Message.Rows).OrderBy(r => r.Position).Select(r => r.SourceTimestampMicros).Distinct().ToList();
        Assert.True(times.Count > 10, $"only {times.Count} live events in 0.5 s at 200/s");
        Assert.All(times.Zip(times.Skip(1)), p => Assert.InRange(p.Second - p.First, 4_999, 5_001));
    }

    [Fact]
    public async Task Wall_clock_without_a_rate_stamps_snapshot_and_backlog_with_the_read_start()
    {
        var before = NowMicros();
        var messages = await ReadAllAsync(Context(SmallConfig(changes: 200)));
        var after = NowMicros();

        var times = messages.SelectMany(m => m.Rows).Select(r => r.SourceTimestampMicros).Distinct().ToList();
        var at = Assert.Single(times);
        Assert.InRange(at, before, after);
    }

    [Fact]
    public async Task Wall_and_synthetic_clocks_give_the_same_rows_and_differ_only_in_source_timestamps()
    {
        var wall = await ReadAllAsync(Context(SmallConfig(changes: 300, clock: "wall")));
        var synthetic = await ReadAllAsync(Context(SmallConfig(changes: 300, clock: "synthetic")));

        Assert.Equal(synthetic.Select(m => m.Content), wall.Select(m => m.Content));
        var syntheticRows = synthetic.SelectMany(m => m.Rows).ToList();
        Assert.All(syntheticRows, r => Assert.Equal(SampleGenerator.TimestampOf((long)r.Position.High), r.SourceTimestampMicros));
        var now = NowMicros();
        Assert.All(wall.SelectMany(m => m.Rows), r => Assert.InRange(r.SourceTimestampMicros, now - (60 * Second), now));
    }

    [Fact]
    public async Task A_resumed_wall_clock_read_stamps_the_remaining_backlog_from_its_own_start()
    {
        var config = SmallConfig(changes: 300, rate: 100, batchSize: 23);
        var first = await ReadUntilAsync(Context(config), (m, _) => m.Kind == "caughtup");
        var checkpoint = first.Select(r => r.Message).Where(m => m.Kind == "checkpoint" && m.Text.Contains("\"changes\"", StringComparison.Ordinal)).ElementAt(3);
        Assert.Equal("changes", checkpoint.State!.Value.GetProperty("phase").GetString());

        var before = NowMicros();
        var resumed = await ReadUntilAsync(Context(config, checkpoint.State), (m, _) => m.Kind == "caughtup");

        // The same changes as the first read from there on, made later: the backlog still ends at the read start.
        var original = first.SelectMany(r => r.Message.Rows).ToDictionary(r => r.Position);
        var again = resumed.SelectMany(r => r.Message.Rows).ToList();
        Assert.NotEmpty(again);
        Assert.All(again, r => Assert.True(r.SourceTimestampMicros >= original[r.Position].SourceTimestampMicros, $"{r.Position} went back in time"));
        Assert.InRange(again.Max(r => r.SourceTimestampMicros), before, resumed[0].At);
        var times = again.OrderBy(r => r.Position).Select(r => r.SourceTimestampMicros).ToList();
        Assert.Equal(times.Order(), times);
    }

    [Fact]
    public async Task Wall_clock_backfill_rows_carry_the_time_of_the_change_they_follow()
    {
        var context = Context(SmallConfig(changes: 200, rate: 50)) with { Backfills = [new BackfillRequest("b1", "customers")] };
        var read = await ReadUntilAsync(context, (m, _) => m.Kind == "backfilldone");
        var rows = read.SelectMany(r => r.Message.Rows).ToList();
        var changes = rows.Where(r => r.Position.Low == 0).OrderBy(r => r.Position).ToList();
        var backfill = rows.Where(r => r.Position.Low > 0).ToList();

        Assert.NotEmpty(backfill);
        Assert.True(backfill.Select(r => r.SourceTimestampMicros).Distinct().Count() > 1, "every backfill chunk got the same time");
        foreach (var b in backfill)
        {
            // The rows show the source as of the last change before them, and no later than the next change.
            var previous = changes.Last(c => c.Position.High <= b.Position.High);
            Assert.True(b.SourceTimestampMicros >= previous.SourceTimestampMicros, $"backfill row at {b.Position} is older than the change before it");
            if (changes.FirstOrDefault(c => c.Position.High > b.Position.High) is { } next)
            {
                Assert.True(b.SourceTimestampMicros <= next.SourceTimestampMicros, $"backfill row at {b.Position} is newer than the change after it");
            }
        }
    }

    /// <summary>Reads until <paramref name="stop"/> says so (given each message and when it arrived), keeping every message with its arrival time.</summary>
    private static async Task<List<(Message Message, long At)>> ReadUntilAsync(ReadContext context, Func<Message, long, bool> stop)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var reader = new SampleConnector().OpenReader(context);
        var result = new List<(Message, long)>();
        await foreach (var m in reader.ReadAsync(cts.Token))
        {
            var at = NowMicros();
            var message = Message.From(m);
            result.Add((message, at));
            if (stop(message, at))
            {
                return result;
            }
        }

        throw new InvalidOperationException("The read ended before the awaited message.");
    }
}
