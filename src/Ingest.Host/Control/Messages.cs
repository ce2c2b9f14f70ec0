using Ingest.Engine.Control;

namespace Ingest.Host.Control;

// Commands and events of the control plane (DESIGN.md section 6). They carry plain data so that any
// MassTransit transport (in-memory now, RabbitMQ later) can serialize them.

/// <summary>Start a stored connection on a worker.</summary>
/// <param name="Name">The connection.</param>
public sealed record StartConnection(string Name);

/// <summary>Stop a connection after it committed what its last checkpoint covers.</summary>
/// <param name="Name">The connection.</param>
public sealed record StopConnection(string Name);

/// <summary>Run the connector's Check on a configuration (saved or not).</summary>
/// <param name="Connector">The connector's name.</param>
/// <param name="ConfigJson">The configuration as JSON text, its secrets encrypted with the nodes' shared key ring.</param>
public sealed record CheckConnection(string Connector, string ConfigJson);

/// <summary>Run the connector's Discover on a configuration.</summary>
/// <param name="Connector">The connector's name.</param>
/// <param name="ConfigJson">The configuration as JSON text, its secrets encrypted with the nodes' shared key ring.</param>
public sealed record DiscoverConnection(string Connector, string ConfigJson);

/// <summary>The answer to a start or stop.</summary>
/// <param name="Accepted">Whether it happened.</param>
/// <param name="Problems">Why not (field and message).</param>
public sealed record CommandResult(bool Accepted, IReadOnlyList<StartProblem> Problems);

/// <summary>The answer to <see cref="CheckConnection"/>.</summary>
/// <param name="Succeeded">Whether the connector can read.</param>
/// <param name="Message">What it found or what to do.</param>
/// <param name="Field">The configuration field at fault (e.g. <c>config.host</c>), or null.</param>
public sealed record CheckConnectionResult(bool Succeeded, string Message, string? Field);

/// <summary>A discovered column.</summary>
public sealed record DiscoveredColumn(string Name, string Type, bool Nullable);

/// <summary>A discovered stream.</summary>
/// <param name="Name">The stream.</param>
/// <param name="Description">What it holds.</param>
/// <param name="PrimaryKey">Its key columns.</param>
/// <param name="Columns">Its columns.</param>
/// <param name="SyncModes">How the connector can read it.</param>
/// <param name="Modes">How it can land, the default first.</param>
/// <param name="EstimatedRows">Rows, where the connector estimates them.</param>
/// <param name="Backfill">Whether it can be backfilled while the connection runs.</param>
/// <param name="BackfillFilterHelp">What a backfill filter looks like; null when a backfill takes no filter.</param>
/// <param name="BackfillFilterExample">An example filter.</param>
public sealed record DiscoveredStream(
    string Name,
    string? Description,
    IReadOnlyList<string> PrimaryKey,
    IReadOnlyList<DiscoveredColumn> Columns,
    IReadOnlyList<string> SyncModes,
    IReadOnlyList<string> Modes,
    long? EstimatedRows,
    bool Backfill = false,
    string? BackfillFilterHelp = null,
    string? BackfillFilterExample = null);

/// <summary>The answer to <see cref="DiscoverConnection"/>.</summary>
/// <param name="Succeeded">Whether discovery worked.</param>
/// <param name="Message">The error, when it did not.</param>
/// <param name="Field">The configuration field at fault, or null.</param>
/// <param name="Streams">The streams.</param>
public sealed record DiscoverConnectionResult(bool Succeeded, string? Message, string? Field, IReadOnlyList<DiscoveredStream> Streams);

/// <summary>A worker's view of a connection changed (state, counters, error); published at most about once a second.</summary>
/// <param name="Snapshot">The connection's state and per-stream counters.</param>
/// <param name="At">When.</param>
public sealed record ConnectionStatusChanged(ConnectionSnapshot Snapshot, DateTimeOffset At);

/// <summary>A table of a connection got a new version.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Stream">The stream.</param>
/// <param name="TablePath">The table.</param>
/// <param name="Version">The new table version.</param>
/// <param name="RowsCommitted">Rows committed to it in this run so far.</param>
/// <param name="At">When it committed.</param>
public sealed record BatchCommitted(string Connection, string Stream, string TablePath, long Version, long RowsCommitted, DateTimeOffset At);

/// <summary>Pause a running connection: it stops reading after a commit and shows as paused until it starts again.</summary>
/// <param name="Name">The connection.</param>
public sealed record PauseConnection(string Name);
