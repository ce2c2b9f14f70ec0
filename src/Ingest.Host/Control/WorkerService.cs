using Ingest.Engine.Config;
using Ingest.Delta;
using Ingest.Engine.Control;
using MassTransit;
using Ingest.Host.Config;

namespace Ingest.Host.Control;

/// <summary>
/// The worker role: starts the enabled connections when the node starts, and publishes what the
/// supervisor sees (<see cref="ConnectionStatusChanged"/>, <see cref="BatchCommitted"/>) on the bus.
/// </summary>
internal sealed partial class WorkerService(IConfigStore store, ConnectionSupervisor supervisor, WorkerLeases leases, ConnectionLogCapture logs, BackfillStore backfills, IBus bus, ILogger<WorkerService> logger) : BackgroundService
{
    // The newest view of each changed backfill since the last tick (the supervisor raises changes on its own threads).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Connection, string Id), Ingest.Engine.Running.BackfillSnapshot> _backfillChanges = new();

    private void OnBackfillChanged(string connection, Ingest.Engine.Running.BackfillSnapshot b) => _backfillChanges[(connection, b.Id)] = b;

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    private static readonly TimeSpan LeaseInterval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        supervisor.BackfillChanged += OnBackfillChanged;
        try
        {
            await RunAsync(stoppingToken);
        }
        finally
        {
            supervisor.BackfillChanged -= OnBackfillChanged;
            // A node that stops hands its connections back at once rather than when the leases expire.
            foreach (var s in supervisor.Snapshot())
            {
                await leases.ReleaseAsync(s.Name, CancellationToken.None);
            }
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        await ClaimAsync(stoppingToken);
        var lastLeaseCheck = DateTimeOffset.UtcNow;
        var last = new Dictionary<string, ConnectionSnapshot>(StringComparer.Ordinal);
        var commits = new Dictionary<(string Connection, string Stream), (DateTimeOffset? Run, long Version, long Rows)>();
        var lastPublished = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(Interval);
        do
        {
            var now = DateTimeOffset.UtcNow;
            if (now - lastLeaseCheck >= LeaseInterval)
            {
                lastLeaseCheck = now;
                await RenewAsync(stoppingToken);
                await ClaimAsync(stoppingToken);
            }

            foreach (var s in supervisor.Snapshot())
            {
                last.TryGetValue(s.Name, out var before);
                foreach (var st in s.Streams)
                {
                    var seen = commits.TryGetValue((s.Name, st.Name), out var p) && p.Run == s.StartedAt ? p : ((DateTimeOffset?)null, -1L, 0L);
                    if (st.LastCommitVersion is { } v && v != seen.Item2)
                    {
                        commits[(s.Name, st.Name)] = (s.StartedAt, v, st.RowsCommitted);
                        await RecordUsageAsync(s, st, seen.Item2, st.RowsCommitted - seen.Item3, stoppingToken);
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

            foreach (var logged in logs.Drain())
            {
                await bus.Publish(logged, stoppingToken);
            }

            foreach (var key in _backfillChanges.Keys.ToList())
            {
                if (_backfillChanges.TryRemove(key, out var b))
                {
                    await bus.Publish(new BackfillProgress(key.Connection, b, now), stoppingToken);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    // Enabled connections no live worker holds: at start-up, and later those of a worker that died (its leases expired).
    private async Task ClaimAsync(CancellationToken cancellationToken)
    {
        foreach (var c in await store.ListAsync(cancellationToken))
        {
            if (!c.Enabled || supervisor.Snapshot(c.Name) is { State: not "stopped" } || !await leases.TryAcquireAsync(c.Name, cancellationToken))
            {
                continue;
            }

            if (c.Paused)
            {
                supervisor.MarkPaused(c);
                continue;
            }

            var problems = await supervisor.StartAsync(c, cancellationToken);
            if (problems.Count > 0)
            {
                LogStartFailed(logger, c.Name, string.Join("; ", problems.Select(p => $"{p.Field}: {p.Message}")));
            }
            else
            {
                await BackfillResume.ResumeAsync(backfills, supervisor, c.Name, logger, cancellationToken);
            }
        }
    }

    // Keeps the leases of what this worker has; one lost to another worker (this node stalled past the lease) stops here.
    private async Task RenewAsync(CancellationToken cancellationToken)
    {
        foreach (var s in supervisor.Snapshot())
        {
            if (s.State == "stopped")
            {
                continue;
            }

            if (!await leases.TryAcquireAsync(s.Name, cancellationToken))
            {
                LogLeaseLost(logger, s.Name);
                await supervisor.StopAsync(s.Name, cancellationToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection {Connection}: another worker took its lease; stopping it here")]
    private static partial void LogLeaseLost(ILogger logger, string connection);

    // Usage per run and stream: rows from the run's counters, bytes from the commits' metrics in the table's log
    // (Delta's numOutputBytes for writes, numTargetBytesAdded for merges).
    private async Task RecordUsageAsync(ConnectionSnapshot s, StreamSnapshot st, long previousVersion, long rows, CancellationToken cancellationToken)
    {
        var run = s.StartedAt ?? DateTimeOffset.UtcNow;
        long bytes = 0;
        var count = 0;
        try
        {
            if (await DeltaTable.TryOpenAsync(st.TablePath, cancellationToken) is { } table)
            {
                var limit = previousVersion >= 0 ? (int)Math.Min(1000, st.LastCommitVersion!.Value - previousVersion) : 1000;
                foreach (var h in await table.HistoryAsync(limit, cancellationToken))
                {
                    if (h.Version > st.LastCommitVersion || h.Version <= previousVersion || (previousVersion < 0 && h.Timestamp < run))
                    {
                        continue;
                    }

                    count++;
                    bytes += Metric(h.OperationMetrics, "numOutputBytes") ?? Metric(h.OperationMetrics, "numTargetBytesAdded") ?? 0;
                }
            }
        }
        catch (IOException e)
        {
            LogUsageFailed(logger, s.Name, st.Name, e.Message);
        }

        await store.AddUsageAsync(s.Name, run, st.Name, Math.Max(0, rows), bytes, Math.Max(1, count), st.LastCommitAt ?? DateTimeOffset.UtcNow, cancellationToken);
    }

    private static long? Metric(System.Text.Json.Nodes.JsonObject? metrics, string name) =>
        metrics?[name] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var text) && long.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage of {Connection}/{Stream}: could not read the table's log: {Error}")]
    private static partial void LogUsageFailed(ILogger logger, string connection, string stream, string error);

    private static bool Same(ConnectionSnapshot a, ConnectionSnapshot b) =>
        a.Restarts == b.Restarts && a.CaughtUp == b.CaughtUp && a.Streams.SequenceEqual(b.Streams) && a.Figures.SequenceEqual(b.Figures);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection {Connection} cannot start: {Problems}")]
    private static partial void LogStartFailed(ILogger logger, string connection, string problems);
}
