using Ingest.Sdk.Types;

namespace Ingest.Sdk.Connectors;

/// <summary>The streams a source offers.</summary>
public sealed record SourceCatalog(IReadOnlyList<StreamDescriptor> Streams)
{
    /// <summary>The stream called <paramref name="name"/>, or null.</summary>
    public StreamDescriptor? Find(string name) => Streams.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal));
}

/// <summary>One stream: a table, an API object type, a file pattern.</summary>
/// <param name="Name">Unique within the connector (e.g. <c>public.orders</c>, <c>customers</c>).</param>
/// <param name="Schema">Its columns.</param>
/// <param name="PrimaryKey">The key columns (empty when the stream has no key: only <c>append</c> is possible).</param>
/// <param name="CursorFields">Columns usable as an incremental cursor (may be empty).</param>
/// <param name="SupportedSyncModes">How it can be read.</param>
/// <param name="Description">Help text for the UI.</param>
/// <param name="EstimatedRows">Rows at the source, where cheaply known.</param>
/// <param name="Backfill">Whether and how the stream can be re-read while the read goes on (null: it cannot).</param>
public sealed record StreamDescriptor(
    string Name,
    StreamSchema Schema,
    IReadOnlyList<string> PrimaryKey,
    IReadOnlyList<string> CursorFields,
    IReadOnlyList<SyncMode> SupportedSyncModes,
    string? Description = null,
    long? EstimatedRows = null,
    BackfillSupport? Backfill = null)
{
    /// <summary>
    /// True when the connector, resuming from a checkpoint taken before this stream was selected, reads the stream
    /// from its start within that read (its state lists the streams it covers and snapshots the others). The engine
    /// then resumes a connection with a newly added stream from its other tables' progress instead of re-reading
    /// every stream. Leave false when a resumed read would skip the stream's history.
    /// </summary>
    public bool JoinsRunningRead { get; init; }
}
