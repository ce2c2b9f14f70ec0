using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Running;

/// <summary>Where a backfill is.</summary>
public enum BackfillState
{
    /// <summary>Requested; waits for the connection's read to start it.</summary>
    Pending,
    /// <summary>The connector is re-reading.</summary>
    Running,
    /// <summary>Every row it read is committed.</summary>
    Completed,
    /// <summary>Cancelled; the rows it read before are committed.</summary>
    Cancelled,
    /// <summary>The connector refused or could not do it; see the error.</summary>
    Failed,
}

/// <summary>A backfill as the UI, the API and the bus see it.</summary>
/// <param name="Id">Stable id (the connector keys its progress by it, so requesting the same id again resumes).</param>
/// <param name="Stream">The stream re-read.</param>
/// <param name="Filter">The connector-specific filter, or null for the whole stream.</param>
/// <param name="State">pending, running, completed, cancelled or failed.</param>
/// <param name="RowsDone">Rows re-read so far (as the connector reports).</param>
/// <param name="RowsTotal">Rows expected, where the connector estimates it.</param>
/// <param name="Error">Why it failed.</param>
/// <param name="RequestedAt">When it was requested.</param>
/// <param name="FinishedAt">When it completed, was cancelled or failed.</param>
public sealed record BackfillSnapshot(
    string Id,
    string Stream,
    string? Filter,
    string State,
    long RowsDone,
    long? RowsTotal,
    string? Error,
    DateTimeOffset RequestedAt,
    DateTimeOffset? FinishedAt)
{
    /// <summary>True once it completed, was cancelled or failed.</summary>
    public bool Finished => State is "completed" or "cancelled" or "failed";
}

/// <summary>
/// The backfills of one connection: requests from the control plane on one side, the connection's read on the
/// other. A backfill completes only once the checkpoint after the connector's <see cref="Sdk.Records.BackfillDone"/>
/// is committed to the lake. Unfinished backfills are handed to every new read of the connection (after a
/// transient failure or a restart), so the connector resumes them from the progress its checkpoint holds.
/// </summary>
public sealed class BackfillBoard
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _toStart = [];
    private readonly List<string> _toCancel = [];

    /// <summary>Raised after any change of a backfill (outside the board's lock).</summary>
    public event Action<BackfillSnapshot>? Changed;

    /// <summary>Every backfill the board knows, oldest first.</summary>
    public IReadOnlyList<BackfillSnapshot> Snapshot()
    {
        lock (_lock)
        {
            return _entries.Values.OrderBy(e => e.RequestedAt).Select(e => e.ToSnapshot()).ToList();
        }
    }

    /// <summary>The backfill <paramref name="id"/>, or null.</summary>
    public BackfillSnapshot? Find(string id)
    {
        lock (_lock)
        {
            return _entries.TryGetValue(id, out var e) ? e.ToSnapshot() : null;
        }
    }

    /// <summary>Adds a request (or, for a known unfinished id, keeps the existing one). The running read starts it at its next message.</summary>
    public BackfillSnapshot Request(BackfillRequest request, DateTimeOffset? requestedAt = null) => Request(request, requestedAt, null);

    /// <summary>
    /// Takes a backfill handed back after a restart: its recorded progress stays what the board shows (rows done, total)
    /// until the connector, resuming from its checkpoint, reports again; it does not drop to 0 meanwhile.
    /// </summary>
    public BackfillSnapshot Resume(BackfillRequest request, BackfillSnapshot recorded)
    {
        ArgumentNullException.ThrowIfNull(recorded);
        return Request(request, recorded.RequestedAt, recorded);
    }

    private BackfillSnapshot Request(BackfillRequest request, DateTimeOffset? requestedAt, BackfillSnapshot? recorded)
    {
        ArgumentNullException.ThrowIfNull(request);
        BackfillSnapshot snapshot;
        lock (_lock)
        {
            if (_entries.TryGetValue(request.Id, out var existing) && existing.State is BackfillState.Pending or BackfillState.Running)
            {
                return existing.ToSnapshot();
            }

            var e = new Entry(request, requestedAt ?? DateTimeOffset.UtcNow);
            if (recorded is not null)
            {
                e.RowsDone = recorded.RowsDone;
                e.RowsTotal = recorded.RowsTotal;
            }

            _entries[request.Id] = e;
            _toStart.Add(request.Id);
            snapshot = e.ToSnapshot();
        }

        Changed?.Invoke(snapshot);
        return snapshot;
    }

    /// <summary>Asks the read to cancel a backfill; false when it is unknown or already finished.</summary>
    public bool Cancel(string id)
    {
        BackfillSnapshot snapshot;
        lock (_lock)
        {
            if (!_entries.TryGetValue(id, out var e) || e.State is not (BackfillState.Pending or BackfillState.Running))
            {
                return false;
            }

            if (e.State == BackfillState.Pending && _toStart.Remove(id))
            {
                // Never handed to a read: nothing to wind down.
                e.Finish(BackfillState.Cancelled, null);
                snapshot = e.ToSnapshot();
            }
            else
            {
                _toCancel.Add(id);
                return true;
            }
        }

        Changed?.Invoke(snapshot);
        return true;
    }

    /// <summary>A new read opens: every unfinished backfill, to pass in <see cref="ReadContext.Backfills"/>.</summary>
    internal IReadOnlyList<BackfillRequest> BeginRead(ISet<string> streams)
    {
        List<BackfillRequest> result;
        List<BackfillSnapshot> failed = [];
        lock (_lock)
        {
            _toStart.Clear();
            _toCancel.Clear();
            result = [];
            foreach (var e in _entries.Values.OrderBy(e => e.RequestedAt))
            {
                if (e.State is not (BackfillState.Pending or BackfillState.Running))
                {
                    continue;
                }

                if (!streams.Contains(e.Request.Stream))
                {
                    e.Finish(BackfillState.Failed, $"stream '{e.Request.Stream}' is not selected in this connection");
                    failed.Add(e.ToSnapshot());
                    continue;
                }

                e.DoneRead = false;
                e.Covered = false;
                result.Add(e.Request);
            }
        }

        foreach (var f in failed)
        {
            Changed?.Invoke(f);
        }

        return result;
    }

    /// <summary>Requests and cancellations that arrived since the read opened or since the last call.</summary>
    internal (IReadOnlyList<BackfillRequest> Start, IReadOnlyList<string> Cancel) TakeCommands()
    {
        lock (_lock)
        {
            if (_toStart.Count == 0 && _toCancel.Count == 0)
            {
                return ([], []);
            }

            var start = _toStart.Select(id => _entries[id].Request).ToList();
            var cancel = _toCancel.ToList();
            _toStart.Clear();
            _toCancel.Clear();
            return (start, cancel);
        }
    }

    /// <summary>The connector reported progress.</summary>
    internal void Progress(string id, long rowsDone, long? rowsTotal) => Update(id, e =>
    {
        if (e.State == BackfillState.Pending)
        {
            e.State = BackfillState.Running;
        }

        e.RowsDone = rowsDone;
        e.RowsTotal = rowsTotal ?? e.RowsTotal;
        return e.State == BackfillState.Running;
    });

    /// <summary>The connector started it (accepted the request).</summary>
    internal void Started(string id) => Update(id, e =>
    {
        if (e.State != BackfillState.Pending)
        {
            return false;
        }

        e.State = BackfillState.Running;
        return true;
    });

    /// <summary>The connector yielded <see cref="Sdk.Records.BackfillDone"/>: complete once the next checkpoint is committed.</summary>
    internal void ReadDone(string id, long rows, bool cancelled) => Update(id, e =>
    {
        e.DoneRead = true;
        e.Covered = false;
        e.CancelledByConnector = cancelled;
        e.RowsDone = Math.Max(e.RowsDone, rows);
        if (e.State == BackfillState.Pending)
        {
            e.State = BackfillState.Running;
        }

        return true;
    });

    /// <summary>A checkpoint arrived: backfills whose last rows came before it are covered by it.</summary>
    internal void Cover()
    {
        lock (_lock)
        {
            foreach (var e in _entries.Values)
            {
                if (e.DoneRead && e.State == BackfillState.Running)
                {
                    e.Covered = true;
                }
            }
        }
    }

    /// <summary>The checkpoint covering the latest <see cref="Cover"/> is committed: covered backfills are done.</summary>
    internal void Committed()
    {
        List<BackfillSnapshot> changed = [];
        lock (_lock)
        {
            foreach (var e in _entries.Values)
            {
                if (e.Covered && e.State == BackfillState.Running)
                {
                    e.Finish(e.CancelledByConnector ? BackfillState.Cancelled : BackfillState.Completed, null);
                    changed.Add(e.ToSnapshot());
                }
            }
        }

        foreach (var c in changed)
        {
            Changed?.Invoke(c);
        }
    }

    /// <summary>The backfill cannot run (the connector refused it).</summary>
    internal void Fail(string id, string error) => Update(id, e =>
    {
        e.Finish(BackfillState.Failed, error);
        return true;
    });

    private void Update(string id, Func<Entry, bool> change)
    {
        BackfillSnapshot? snapshot = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(id, out var e) && e.State is BackfillState.Pending or BackfillState.Running && change(e))
            {
                snapshot = e.ToSnapshot();
            }
        }

        if (snapshot is not null)
        {
            Changed?.Invoke(snapshot);
        }
    }

    private sealed class Entry(BackfillRequest request, DateTimeOffset requestedAt)
    {
        public BackfillRequest Request { get; } = request;
        public DateTimeOffset RequestedAt { get; } = requestedAt;
        public BackfillState State { get; set; } = BackfillState.Pending;
        public long RowsDone { get; set; }
        public long? RowsTotal { get; set; }
        public string? Error { get; private set; }
        public DateTimeOffset? FinishedAt { get; private set; }
        public bool DoneRead { get; set; }
        public bool Covered { get; set; }
        public bool CancelledByConnector { get; set; }

        public void Finish(BackfillState state, string? error)
        {
            State = state;
            Error = error;
            FinishedAt = DateTimeOffset.UtcNow;
            if (state == BackfillState.Completed && RowsTotal is null)
            {
                RowsTotal = RowsDone;
            }
        }

        public BackfillSnapshot ToSnapshot() => new(
            Request.Id, Request.Stream, Request.Filter, State.ToString().ToLowerInvariant(), RowsDone, RowsTotal, Error, RequestedAt, FinishedAt);
    }
}
