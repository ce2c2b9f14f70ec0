using Ingest.Engine.Config;
using Ingest.Engine.Control;
using MassTransit;

namespace Ingest.Host.Control;

/// <summary>
/// The worker role: starts the enabled connections when the node starts, and publishes what the
/// supervisor sees (<see cref="ConnectionStatusChanged"/>, <see cref="BatchCommitted"/>) on the bus.
/// </summary>
internal sealed partial class WorkerService(ConnectionConfigStore store, ConnectionSupervisor supervisor, IBus bus, ILogger<WorkerService> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var c in await store.ListAsync(stoppingToken))
        {
            if (c.Enabled)
            {
                var problems = await supervisor.StartAsync(c, stoppingToken);
                if (problems.Count > 0)
                {
                    LogStartFailed(logger, c.Name, string.Join("; ", problems.Select(p => $"{p.Field}: {p.Message}")));
                }
            }
        }

        var last = new Dictionary<string, ConnectionSnapshot>(StringComparer.Ordinal);
        var lastPublished = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(Interval);
        do
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var s in supervisor.Snapshot())
            {
                last.TryGetValue(s.Name, out var before);
                foreach (var st in s.Streams)
                {
                    var prev = before?.Streams.FirstOrDefault(x => x.Name == st.Name);
                    if (st.LastCommitVersion is { } v && v != prev?.LastCommitVersion)
                    {
                        await bus.Publish(new BatchCommitted(s.Name, st.Name, st.TablePath, v, st.RowsCommitted, st.LastCommitAt ?? now), stoppingToken);
                    }
                }

                // Every change of state or error goes out at once; counters at most once a second.
                var stateChanged = before is null || before.State != s.State || before.Error != s.Error;
                var countersChanged = before is not null && !Same(before, s);
                if (stateChanged || (countersChanged && (!lastPublished.TryGetValue(s.Name, out var at) || now - at >= TimeSpan.FromSeconds(1))))
                {
                    await bus.Publish(new ConnectionStatusChanged(s, now), stoppingToken);
                    last[s.Name] = s;
                    lastPublished[s.Name] = now;
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static bool Same(ConnectionSnapshot a, ConnectionSnapshot b) =>
        a.Restarts == b.Restarts && a.CaughtUp == b.CaughtUp && a.Streams.SequenceEqual(b.Streams);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection {Connection} cannot start: {Problems}")]
    private static partial void LogStartFailed(ILogger logger, string connection, string problems);
}
