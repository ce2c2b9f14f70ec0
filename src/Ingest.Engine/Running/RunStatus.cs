using System.Collections.Concurrent;
using Ingest.Sdk.Records;

namespace Ingest.Engine.Running;

/// <summary>Where a connection is.</summary>
public enum ConnectionState
{
    /// <summary>Checking, opening tables, resuming.</summary>
    Starting,
    /// <summary>Reading and committing.</summary>
    Running,
    /// <summary>Waiting to restart after a transient failure.</summary>
    Retrying,
    /// <summary>Caught up (under --once) or the read ended; everything committed.</summary>
    Completed,
    /// <summary>Stopped on request after committing.</summary>
    Stopped,
    /// <summary>Failed; see the error.</summary>
    Failed,
}

/// <summary>Live counters of one run, read by the terminal view and the logs.</summary>
public sealed class RunStatus
{
    /// <summary>The connections by name.</summary>
    public ConcurrentDictionary<string, ConnectionStatus> Connections { get; } = new(StringComparer.Ordinal);

    /// <summary>The status of a connection (created on first use).</summary>
    public ConnectionStatus Connection(string name) => Connections.GetOrAdd(name, n => new ConnectionStatus(n));
}

/// <summary>Live counters of one connection.</summary>
public sealed class ConnectionStatus(string name)
{
    /// <summary>The connection's name.</summary>
    public string Name { get; } = name;

    /// <summary>Its state.</summary>
    public ConnectionState State { get; set; } = ConnectionState.Starting;

    /// <summary>The last error, where one happened.</summary>
    public string? Error { get; set; }

    /// <summary>Restarts after transient failures.</summary>
    public int Restarts { get; set; }

    /// <summary>Whether the connector said it caught up.</summary>
    public bool CaughtUp { get; set; }

    /// <summary>The engine's checkpoint sequence of the last flush.</summary>
    public long CheckpointSequence { get; set; }

    /// <summary>The connection's backfills (the supervisor shares one board across the connection's runs).</summary>
    public BackfillBoard Backfills { get; set; } = new();

    /// <summary>The streams by name.</summary>
    public ConcurrentDictionary<string, StreamStatus> Streams { get; } = new(StringComparer.Ordinal);

    // Replaced whole on each report (copy on write), so readers on other threads always see a complete set.
    private volatile IReadOnlyDictionary<string, ConnectorFigure> _figures = new Dictionary<string, ConnectorFigure>(StringComparer.Ordinal);

    /// <summary>
    /// The connector's latest figures about the connection (see <see cref="SourceFigures"/>) by name, in the order first
    /// reported; empty until it sends any. They outlive the run that reported them: a stopped slot still retains its WAL.
    /// </summary>
    public IReadOnlyDictionary<string, ConnectorFigure> Figures => _figures;

    /// <summary>When the connector last reported figures.</summary>
    public DateTimeOffset? FiguresAt { get; private set; }

    /// <summary>Keeps the figures of <paramref name="message"/>, each replacing the previous value of its name.</summary>
    public void Report(SourceFigures message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var next = new Dictionary<string, ConnectorFigure>(_figures, StringComparer.Ordinal);
        foreach (var f in message.Figures)
        {
            next[f.Name] = f;
        }

        _figures = next;
        FiguresAt = DateTimeOffset.UtcNow;
    }

    /// <summary>The status of a stream (created on first use).</summary>
    public StreamStatus Stream(string name) => Streams.GetOrAdd(name, n => new StreamStatus(n));
}

/// <summary>Live counters of one stream.</summary>
public sealed class StreamStatus(string name)
{
    private long _rowsRead;
    private long _rowsCommitted;

    /// <summary>The stream's name.</summary>
    public string Name { get; } = name;

    /// <summary>The phase the connector reported last.</summary>
    public StreamPhase? Phase { get; set; }

    /// <summary>Rows done in the phase, as the connector reported.</summary>
    public long PhaseRowsDone { get; set; }

    /// <summary>Rows expected in the phase, where known.</summary>
    public long? PhaseRowsTotal { get; set; }

    /// <summary>The connector's latest note about the stream (a quota wait, a fallback), or null.</summary>
    public string? Message { get; set; }

    /// <summary>Rows received from the connector in this run.</summary>
    public long RowsRead => Interlocked.Read(ref _rowsRead);

    /// <summary>Rows committed to the table(s) in this run.</summary>
    public long RowsCommitted => Interlocked.Read(ref _rowsCommitted);

    /// <summary>The table version of the last commit.</summary>
    public long? LastCommitVersion { get; set; }

    /// <summary>When the last commit happened.</summary>
    public DateTimeOffset? LastCommitAt { get; set; }

    /// <summary>
    /// Lag at the last commit: how long after the source committed its newest change the lake committed it (the
    /// source timestamp of the last committed row to the commit time); null until a commit covers a row with a source time.
    /// </summary>
    public TimeSpan? Lag { get; set; }

    internal void AddRead(long n) => Interlocked.Add(ref _rowsRead, n);

    internal void AddCommitted(long n) => Interlocked.Add(ref _rowsCommitted, n);
}
