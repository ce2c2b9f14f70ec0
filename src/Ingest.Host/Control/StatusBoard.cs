using System.Collections.Concurrent;
using Ingest.Engine.Control;
using MassTransit;

namespace Ingest.Host.Control;

/// <summary>A point of a connection's throughput chart.</summary>
/// <param name="At">When.</param>
/// <param name="RowsPerSecond">Rows read per second since the previous point.</param>
public sealed record RatePoint(DateTimeOffset At, double RowsPerSecond);

/// <summary>An error a connection reported.</summary>
/// <param name="At">When it was first seen.</param>
/// <param name="Message">The error.</param>
public sealed record ErrorEntry(DateTimeOffset At, string Message);

/// <summary>What the web role knows about a connection, built from the workers' events only.</summary>
/// <param name="Snapshot">The latest snapshot.</param>
/// <param name="RowsPerSecond">The current read rate.</param>
/// <param name="Rates">The recent rates, oldest first (about two minutes).</param>
/// <param name="Errors">Recent errors, newest first.</param>
/// <param name="LastCommit">The last commit event.</param>
public sealed record ConnectionLiveStatus(ConnectionSnapshot Snapshot, double RowsPerSecond, IReadOnlyList<RatePoint> Rates, IReadOnlyList<ErrorEntry> Errors, BatchCommitted? LastCommit);

/// <summary>The web role's view of every connection, fed by <see cref="ConnectionStatusChanged"/> and <see cref="BatchCommitted"/>.</summary>
public sealed class StatusBoard
{
    private const int MaxRates = 120;
    private const int MaxErrors = 20;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed class Entry
    {
        public required ConnectionSnapshot Snapshot { get; set; }
        public DateTimeOffset At { get; set; }
        public double Rate { get; set; }
        public List<RatePoint> Rates { get; } = [];
        public List<ErrorEntry> Errors { get; } = [];
        public BatchCommitted? LastCommit { get; set; }
    }

    /// <summary>Fires after any change (the UI re-renders on it).</summary>
    public event Action<string>? Changed;

    /// <summary>The live status of a connection, or null when no worker reported it.</summary>
    public ConnectionLiveStatus? Get(string name)
    {
        if (!_entries.TryGetValue(name, out var e))
        {
            return null;
        }

        lock (e)
        {
            return new ConnectionLiveStatus(e.Snapshot, e.Rate, e.Rates.ToList(), e.Errors.AsEnumerable().Reverse().ToList(), e.LastCommit);
        }
    }

    /// <summary>Applies a status event.</summary>
    public void Apply(ConnectionStatusChanged m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var s = m.Snapshot;
        var e = _entries.GetOrAdd(s.Name, _ => new Entry { Snapshot = s, At = m.At });
        lock (e)
        {
            var rows = s.Streams.Sum(x => x.RowsRead);
            var before = e.Snapshot.Streams.Sum(x => x.RowsRead);
            var seconds = (m.At - e.At).TotalSeconds;
            if (!ReferenceEquals(e.Snapshot, s) && seconds > 0 && e.Snapshot.StartedAt == s.StartedAt)
            {
                e.Rate = Math.Max(0, rows - before) / seconds;
                e.Rates.Add(new RatePoint(m.At, e.Rate));
                if (e.Rates.Count > MaxRates)
                {
                    e.Rates.RemoveAt(0);
                }
            }

            // A connection that is not reading (paused, stopped, completed, failed) reads nothing per second.
            if (s.State is not ("running" or "starting" or "retrying"))
            {
                e.Rate = 0;
            }

            if (s.Error is { Length: > 0 } error && (e.Errors.Count == 0 || e.Errors[^1].Message != error))
            {
                e.Errors.Add(new ErrorEntry(m.At, error));
                if (e.Errors.Count > MaxErrors)
                {
                    e.Errors.RemoveAt(0);
                }
            }

            e.Snapshot = s;
            e.At = m.At;
        }

        Changed?.Invoke(s.Name);
    }

    /// <summary>Applies a commit event.</summary>
    public void Apply(BatchCommitted m)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (_entries.TryGetValue(m.Connection, out var e))
        {
            lock (e)
            {
                e.LastCommit = m;
            }

            Changed?.Invoke(m.Connection);
        }
    }
}

/// <summary>Feeds the <see cref="StatusBoard"/> from the bus.</summary>
internal sealed class StatusBoardConsumer(StatusBoard board) : IConsumer<ConnectionStatusChanged>, IConsumer<BatchCommitted>
{
    public Task Consume(ConsumeContext<ConnectionStatusChanged> context)
    {
        board.Apply(context.Message);
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<BatchCommitted> context)
    {
        board.Apply(context.Message);
        return Task.CompletedTask;
    }
}
