namespace Ingest.Sdk.Connectors;

/// <summary>
/// A request to re-read part of a stream while the read goes on (journey 3: a column added upstream, rows
/// corrupted by a bad deploy, a table added to the selection). The rows it yields are upserts
/// (<see cref="Records.ChangeOp.Read"/>) positioned so that a merge keeps any newer change: CDC sources
/// interleave chunks with the live stream through watermarks (Netflix DBLog, Debezium incremental snapshots).
/// </summary>
/// <param name="Id">Unique per connection and stable across restarts; the connector keeps its progress in its checkpoint under this id.</param>
/// <param name="Stream">The stream to re-read.</param>
/// <param name="Filter">
/// Which part to re-read, in the syntax the stream's <see cref="BackfillSupport.FilterHelp"/> describes (a SQL
/// condition, a date range, a path prefix), or null for all of it.
/// </param>
public sealed record BackfillRequest(string Id, string Stream, string? Filter = null);

/// <summary>How a stream supports backfills (see <see cref="StreamDescriptor.Backfill"/>).</summary>
/// <param name="FilterHelp">What a filter looks like, for the UI's help text; null when the stream takes no filter.</param>
/// <param name="FilterExample">An example filter, shown as the input's placeholder.</param>
public sealed record BackfillSupport(string? FilterHelp = null, string? FilterExample = null);

/// <summary>
/// Optional capability of a reader: start and cancel backfills while it reads. Readers of streams whose
/// <see cref="StreamDescriptor.Backfill"/> is set implement it. Backfills pending when a read opens (new, or
/// interrupted by a restart) arrive in <see cref="ReadContext.Backfills"/> instead.
/// </summary>
public interface IBackfillReader
{
    /// <summary>
    /// Starts a backfill. Returns at once; the read yields its rows, <see cref="Records.StreamProgress"/> with
    /// <see cref="Records.StreamPhase.Backfill"/> and the request's id, and finally a <see cref="Records.BackfillDone"/>
    /// followed by a checkpoint that covers it. Throw <see cref="ConnectorException"/> of kind
    /// <see cref="ErrorKind.Configuration"/> naming <c>filter</c> when the filter cannot be used.
    /// </summary>
    ValueTask StartBackfillAsync(BackfillRequest request, CancellationToken cancellationToken);

    /// <summary>Stops a backfill; rows already yielded stay. The read yields a <see cref="Records.BackfillDone"/> with <c>Cancelled</c> set.</summary>
    ValueTask CancelBackfillAsync(string id, CancellationToken cancellationToken);
}
