using System.Collections.Concurrent;
using System.Text.Json;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Engine.State;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Control;

/// <summary>Why a start did not happen.</summary>
/// <param name="Field">The field at fault (e.g. <c>config.seed</c>, <c>streams[0].mode</c>), or empty.</param>
/// <param name="Message">What is wrong.</param>
public sealed record StartProblem(string Field, string Message);

/// <summary>One stream of a connection as a worker sees it.</summary>
/// <param name="Name">The stream.</param>
/// <param name="Mode">How it lands.</param>
/// <param name="TablePath">Its table.</param>
/// <param name="Phase">The connector's last phase (snapshot, streaming...).</param>
/// <param name="RowsRead">Rows read in this run.</param>
/// <param name="RowsCommitted">Rows committed in this run.</param>
/// <param name="LastCommitVersion">The table version of the last commit.</param>
/// <param name="LastCommitAt">When it happened.</param>
public sealed record StreamSnapshot(string Name, string Mode, string TablePath, string? Phase, long RowsRead, long RowsCommitted, long? LastCommitVersion, DateTimeOffset? LastCommitAt)
{
    /// <summary>The connector's latest note about the stream (a quota wait, a fallback), or null.</summary>
    public string? Message { get; init; }

    /// <summary>Milliseconds from the source's commit of the newest committed change to its lake commit, or null.</summary>
    public long? LagMilliseconds { get; init; }
}

/// <summary>A connection's state as a worker sees it.</summary>
/// <param name="Name">The connection.</param>
/// <param name="State">starting, running, retrying, completed, stopped, failed, or idle (never started here).</param>
/// <param name="Error">The last error.</param>
/// <param name="Restarts">Restarts after transient failures.</param>
/// <param name="CaughtUp">Whether the connector said it caught up.</param>
/// <param name="StartedAt">When the current (or last) run started.</param>
/// <param name="Streams">Per stream.</param>
public sealed record ConnectionSnapshot(string Name, string State, string? Error, int Restarts, bool CaughtUp, DateTimeOffset? StartedAt, IReadOnlyList<StreamSnapshot> Streams)
{
    /// <summary>The connector's latest figures about the connection (e.g. a slot's retained WAL), in the order first reported.</summary>
    public IReadOnlyList<Sdk.Records.ConnectorFigure> Figures { get; init; } = [];
}

/// <summary>A backfill request that cannot be taken.</summary>
/// <param name="field">What is at fault: <c>connection</c>, <c>stream</c> or <c>filter</c>.</param>
/// <param name="message">Why.</param>
public sealed class BackfillRejectedException(string field, string message) : Exception(message)
{
    /// <summary>What is at fault: <c>connection</c>, <c>stream</c> or <c>filter</c>.</summary>
    public string Field { get; } = field;
}

/// <summary>
/// Runs stored connections on this node: each one is a one-connection pipeline bound and run by the engine's
/// <see cref="PipelineRunner"/>, stoppable on its own.
/// </summary>
public sealed class ConnectionSupervisor : IAsyncDisposable
{
    private readonly Func<IReadOnlyDictionary<string, ISourceConnector>> _connectors;
    private readonly StateStore? _store;
    private readonly ILoggerFactory _loggerFactory;
    private readonly RunOptions _options;
    private readonly CommitPolicy _commit;
    private readonly ConcurrentDictionary<string, Run> _runs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentDictionary<string, BackfillBoard> _backfills = new(StringComparer.Ordinal);

    /// <summary>Raised when a backfill of a connection changed (requested, progressed, finished); the first argument is the connection.</summary>
    public event Action<string, BackfillSnapshot>? BackfillChanged;

    /// <summary>Creates a supervisor.</summary>
    /// <param name="connectors">The loaded connectors by name.</param>
    /// <param name="store">The state store (progress cache, runs, errors), or null.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    /// <param name="options">Run options.</param>
    /// <param name="commit">How often sinks commit.</param>
    public ConnectionSupervisor(Func<IReadOnlyDictionary<string, ISourceConnector>> connectors, StateStore? store, ILoggerFactory loggerFactory, RunOptions? options = null, CommitPolicy? commit = null)
    {
        _connectors = connectors;
        _store = store;
        _loggerFactory = loggerFactory;
        _options = options ?? new RunOptions();
        _commit = commit ?? CommitPolicy.Default;
    }

    private sealed class Run(StoredConnection connection, IReadOnlyList<SinkTarget> targets, RunStatus status, CancellationTokenSource stop, DateTimeOffset startedAt)
    {
        public StoredConnection Connection { get; } = connection;
        public IReadOnlyList<SinkTarget> Targets { get; } = targets;
        public RunStatus Status { get; } = status;
        public CancellationTokenSource Stop { get; } = stop;
        public DateTimeOffset StartedAt { get; } = startedAt;
        public Task<RunResult>? Task { get; set; }
        public string? BindError { get; init; }
        public bool Paused { get; set; }
    }

    /// <summary>Whether the connection is running (or starting) on this node.</summary>
    public bool IsRunning(string name) => _runs.TryGetValue(name, out var r) && r.Task is { IsCompleted: false };

    /// <summary>Binds and starts a connection; returns the problems when it cannot start (nothing runs then).</summary>
    public async Task<IReadOnlyList<StartProblem>> StartAsync(StoredConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (IsRunning(connection.Name))
            {
                return [];
            }

            var definition = Definition(connection);
            BoundPipeline bound;
            try
            {
                bound = await PipelineBinder.BindAsync(definition, _connectors(), cancellationToken);
            }
            catch (PipelineException e)
            {
                var problems = e.Errors.Select(x => new StartProblem(StripPrefix(x.Path), x.Message)).ToList();
                _runs[connection.Name] = new Run(connection, [], new RunStatus(), new CancellationTokenSource(), DateTimeOffset.UtcNow)
                {
                    BindError = string.Join("; ", problems.Select(p => p.Field.Length > 0 ? $"{p.Field}: {p.Message}" : p.Message)),
                };
                return problems;
            }

            var status = new RunStatus();
            var cs = status.Connection(connection.Name);
            cs.Backfills = Board(connection.Name);
            var targets = bound.Connections[0].Targets;
            foreach (var t in targets)
            {
                cs.Stream(t.Stream.Name);
            }

            if (_runs.TryGetValue(connection.Name, out var previous))
            {
                previous.Stop.Dispose();
            }

            var stop = new CancellationTokenSource();
            var run = new Run(connection, targets, status, stop, DateTimeOffset.UtcNow);
            run.Task = Task.Run(() => PipelineRunner.RunAsync(bound, _options, _store, _loggerFactory, status, stop.Token), CancellationToken.None);
            _runs[connection.Name] = run;
            return [];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Stops a running connection after it committed what its last checkpoint covers; false when it was not running.</summary>
    public async Task<bool> StopAsync(string name, CancellationToken cancellationToken)
    {
        if (_runs.TryGetValue(name, out var paused) && paused.Paused && paused.Task is null or { IsCompleted: true })
        {
            // A paused connection is not reading: stopping it only changes what it shows.
            paused.Paused = false;
            return true;
        }

        if (!_runs.TryGetValue(name, out var run) || run.Task is not { IsCompleted: false } task)
        {
            return false;
        }

        await run.Stop.CancelAsync();
        await task.WaitAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// Pauses a running connection: it stops after committing what its last checkpoint covers and shows as
    /// <c>paused</c> until it starts again (from the lake's progress); false when it was not running.
    /// </summary>
    public async Task<bool> PauseAsync(string name, CancellationToken cancellationToken)
    {
        if (!_runs.TryGetValue(name, out var run) || run.Task is not { IsCompleted: false } task)
        {
            return false;
        }

        run.Paused = true;
        await run.Stop.CancelAsync();
        await task.WaitAsync(cancellationToken);
        return true;
    }

    /// <summary>Shows a connection that was paused before this node started as <c>paused</c> (nothing runs).</summary>
    public void MarkPaused(StoredConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _runs.AddOrUpdate(
            connection.Name,
            _ => new Run(connection, [], new RunStatus(), new CancellationTokenSource(), DateTimeOffset.UtcNow) { Paused = true },
            (_, existing) =>
            {
                existing.Paused = true;
                return existing;
            });
    }

    /// <summary>
    /// Asks a running connection to re-read a stream (or the part <paramref name="filter"/> selects) while it goes on
    /// reading. Requesting an unfinished <paramref name="id"/> again returns it unchanged; requesting a finished one
    /// again starts it anew under the same id (the connector resumes from any progress its checkpoint holds).
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="stream">One of its streams whose connector supports backfills.</param>
    /// <param name="filter">The connector-specific filter, or null for every row.</param>
    /// <param name="id">A stable id, or null for a new one.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="BackfillRejectedException">The connection is not running here, or the stream is unknown or cannot be backfilled.</exception>
    public Task<BackfillSnapshot> RequestBackfillAsync(string connection, string stream, string? filter, string? id, CancellationToken cancellationToken) =>
        RequestBackfillAsync(connection, stream, filter, id, null, cancellationToken);

    /// <summary>Requests again a backfill recorded before a restart (same id), keeping its recorded progress on show until the connector reports.</summary>
    public Task<BackfillSnapshot> ResumeBackfillAsync(string connection, BackfillSnapshot recorded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        return RequestBackfillAsync(connection, recorded.Stream, recorded.Filter, recorded.Id, recorded, cancellationToken);
    }

    private Task<BackfillSnapshot> RequestBackfillAsync(string connection, string stream, string? filter, string? id, BackfillSnapshot? recorded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(stream);
        cancellationToken.ThrowIfCancellationRequested();
        if (!_runs.TryGetValue(connection, out var run) || run.Task is not { IsCompleted: false })
        {
            throw new BackfillRejectedException("connection", $"connection '{connection}' is not running on this node; start it, then request the backfill");
        }

        var target = run.Targets.FirstOrDefault(t => string.Equals(t.Stream.Name, stream, StringComparison.Ordinal))
            ?? throw new BackfillRejectedException("stream", $"connection '{connection}' has no stream '{stream}' (its streams: {string.Join(", ", run.Targets.Select(t => t.Stream.Name).Distinct(StringComparer.Ordinal))})");
        if (target.Stream.Backfill is not { } support)
        {
            throw new BackfillRejectedException("stream", $"connector '{run.Connection.Connector}' cannot backfill stream '{stream}'");
        }

        if (!string.IsNullOrWhiteSpace(filter) && support.FilterHelp is null)
        {
            throw new BackfillRejectedException("filter", $"stream '{stream}' takes no filter: a backfill re-reads all of it");
        }

        var request = new BackfillRequest(string.IsNullOrWhiteSpace(id) ? Guid.NewGuid().ToString("n") : id, stream, string.IsNullOrWhiteSpace(filter) ? null : filter.Trim());
        return Task.FromResult(recorded is null ? Board(connection).Request(request) : Board(connection).Resume(request, recorded));
    }

    /// <summary>Cancels a backfill; false when it is unknown or already finished.</summary>
    public Task<bool> CancelBackfillAsync(string connection, string id, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(_backfills.TryGetValue(connection, out var board) && board.Cancel(id));
    }

    /// <summary>The backfills of a connection this node knows, oldest first.</summary>
    public IReadOnlyList<BackfillSnapshot> Backfills(string connection) =>
        _backfills.TryGetValue(connection, out var board) ? board.Snapshot() : [];

    private BackfillBoard Board(string connection) => _backfills.GetOrAdd(connection, name =>
    {
        var board = new BackfillBoard();
        board.Changed += s => BackfillChanged?.Invoke(name, s);
        return board;
    });

    /// <summary>The connections this node ran since it started.</summary>
    public IReadOnlyList<ConnectionSnapshot> Snapshot() => _runs.Values.Select(Snapshot).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();

    /// <summary>One connection as this node sees it, or null when it never ran here.</summary>
    public ConnectionSnapshot? Snapshot(string name) => _runs.TryGetValue(name, out var r) ? Snapshot(r) : null;

    private static ConnectionSnapshot Snapshot(Run r)
    {
        if (r.BindError is { } bindError)
        {
            return new ConnectionSnapshot(r.Connection.Name, "failed", bindError, 0, false, r.StartedAt, []);
        }

        var cs = r.Status.Connection(r.Connection.Name);
        var state = r.Paused && r.Task is null or { IsCompleted: true } ? "paused"
            : r.Task is null ? "stopped"
            : cs.State.ToString().ToLowerInvariant();
        if (r.Task is { IsFaulted: true } faulted && !r.Paused)
        {
            return new ConnectionSnapshot(r.Connection.Name, "failed", faulted.Exception?.GetBaseException().Message, cs.Restarts, cs.CaughtUp, r.StartedAt, []) { Figures = [.. cs.Figures.Values] };
        }

        var streams = r.Targets.Select(t =>
        {
            var s = cs.Stream(t.Stream.Name);
            return new StreamSnapshot(s.Name, t.Mode.ToString().ToLowerInvariant(), t.TablePath, s.Phase?.ToString().ToLowerInvariant(), s.RowsRead, s.RowsCommitted, s.LastCommitVersion, s.LastCommitAt)
            {
                Message = s.Message,
                LagMilliseconds = s.Lag is { } lag ? (long)lag.TotalMilliseconds : null,
            };
        }).ToList();
        return new ConnectionSnapshot(r.Connection.Name, state, cs.Error, cs.Restarts, cs.CaughtUp, r.StartedAt, streams) { Figures = [.. cs.Figures.Values] };
    }

    /// <summary>The one-connection pipeline a stored connection runs as.</summary>
    public static PipelineDefinition Definition(StoredConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var config = JsonDocument.Parse(connection.Config.ToJsonString()).RootElement.Clone();
        var streams = connection.Streams?.Select((s, i) => new StreamDefinition(s.Name, s.Mode, s.Table, i, default, default, default, SchemaPolicy.Evolve, s.Columns)).ToList();
        var c = new ConnectionDefinition(connection.Name, connection.Connector, config, streams, 0, default, default, new Dictionary<string, TextLocation>());
        return new PipelineDefinition("connection " + connection.Name, connection.LakePath, CommitPolicy.Default, [c]);
    }

    /// <summary><c>connections[0].config.seed</c> as <c>config.seed</c>.</summary>
    public static string StripPrefix(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        const string prefix = "connections[0]";
        var p = path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : path;
        return p.TrimStart('.');
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var r in _runs.Values)
        {
            await r.Stop.CancelAsync();
        }

        foreach (var r in _runs.Values)
        {
            if (r.Task is { } t)
            {
                try
                {
                    await t;
                }
                catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
                {
                    // Stopping anyway.
                }
            }

            r.Stop.Dispose();
        }

        // _gate is not disposed: a start still in flight during shutdown releases it afterwards.
    }
}
