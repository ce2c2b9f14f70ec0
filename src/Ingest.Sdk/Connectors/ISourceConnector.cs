using System.Text.Json;

namespace Ingest.Sdk.Connectors;

/// <summary>
/// A source connector: the contract every plugin implements (Airbyte's spec/check/discover/read,
/// with Kafka Connect's commit-after-acknowledge). Mark the implementing class with
/// <see cref="IngestConnectorAttribute"/>; the host creates it with its public parameterless constructor.
/// </summary>
/// <remarks>
/// One connector instance serves many connections at once: keep per-connection state in the
/// <see cref="ISourceReader"/>, not in fields of the connector. Configuration arrives already
/// validated against <see cref="Spec"/>; still throw <see cref="ConnectorException"/> of kind
/// <see cref="ErrorKind.Configuration"/> naming the field when a value cannot be used.
/// </remarks>
public interface ISourceConnector
{
    /// <summary>The JSON Schema of the configuration; secrets are marked (see <see cref="ConnectorSpec"/>).</summary>
    ConnectorSpec Spec { get; }

    /// <summary>Can the connector reach its source with this configuration and the permissions it needs? Actionable messages.</summary>
    Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken);

    /// <summary>The catalog: streams, their columns and types, primary keys, cursor fields, supported sync modes.</summary>
    Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken);

    /// <summary>Opens a read of the selected streams, resuming from <see cref="ReadContext.State"/> when given.</summary>
    ISourceReader OpenReader(ReadContext context);
}

/// <summary>
/// One read of one connection: yields batches and checkpoints, and is told which checkpoints are durable.
/// </summary>
public interface ISourceReader : IAsyncDisposable
{
    /// <summary>
    /// The change stream: <see cref="Records.ChangeBatch"/>es interleaved with <see cref="Records.Checkpoint"/>s.
    /// A checkpoint covers every batch yielded before it. Called once per reader. Ends when the source is
    /// exhausted (a finite read) or when <paramref name="cancellationToken"/> fires.
    /// </summary>
    IAsyncEnumerable<Records.SourceMessage> ReadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Called, in order, for checkpoints whose batches are all durable in the lake (or in Kafka). Only
    /// now may a source forget what came before (confirm an LSN, delete a file, advance a server cursor).
    /// Acknowledging a checkpoint implies all earlier ones; some may be skipped. Must not block for long.
    /// </summary>
    ValueTask AcknowledgeAsync(Records.Checkpoint checkpoint, CancellationToken cancellationToken);
}

/// <summary>Everything a read needs.</summary>
/// <param name="ConnectionName">The connection's name, for logs and server-side identifiers (slot names).</param>
/// <param name="Config">The validated configuration.</param>
/// <param name="Streams">The selected streams.</param>
/// <param name="State">The last durable checkpoint's state, or null for a first read.</param>
/// <param name="Log">Where the connector writes its log lines.</param>
public sealed record ReadContext(
    string ConnectionName,
    JsonElement Config,
    IReadOnlyList<StreamSelection> Streams,
    JsonElement? State,
    IConnectorLog Log)
{
    /// <summary>
    /// Backfills requested and not yet done when this read opens: start (or, where the state holds their
    /// progress, resume) each as <see cref="IBackfillReader.StartBackfillAsync"/> would.
    /// </summary>
    public IReadOnlyList<BackfillRequest> Backfills { get; init; } = [];
}

/// <summary>A stream chosen for reading.</summary>
/// <param name="Name">The stream's name as discovered.</param>
/// <param name="SyncMode">How to read it.</param>
public sealed record StreamSelection(string Name, SyncMode SyncMode);

/// <summary>How a stream is read.</summary>
public enum SyncMode
{
    /// <summary>Read everything every time.</summary>
    FullRefresh,
    /// <summary>Read what changed since the last cursor value.</summary>
    Incremental,
    /// <summary>A snapshot, then every insert, update and delete as it happens (change data capture).</summary>
    Cdc,
}

/// <summary>Severity of a connector's log line.</summary>
public enum ConnectorLogLevel
{
    /// <summary>Detail for troubleshooting.</summary>
    Debug,
    /// <summary>Normal operation.</summary>
    Information,
    /// <summary>Something the user may need to look at.</summary>
    Warning,
    /// <summary>Something failed.</summary>
    Error,
}

/// <summary>The connector's log. Never write a secret into it.</summary>
public interface IConnectorLog
{
    /// <summary>Writes a line.</summary>
    void Write(ConnectorLogLevel level, string message, Exception? exception = null);
}

/// <summary>A log that drops everything (for tests and tools).</summary>
public sealed class NullConnectorLog : IConnectorLog
{
    /// <summary>The single instance.</summary>
    public static NullConnectorLog Instance { get; } = new();

    /// <inheritdoc />
    public void Write(ConnectorLogLevel level, string message, Exception? exception = null)
    {
    }
}
