using Ingest.Engine.Config;
using Ingest.Host.Config;

namespace Ingest.Host.Control;

/// <summary>
/// This worker's leases in the shared config store: a connection runs on the one worker that holds its lease, which it
/// renews while it has the connection; a worker that dies lets its leases expire and another takes the connections over.
/// </summary>
internal sealed class WorkerLeases(IConfigStore store)
{
    /// <summary>How long a lease lasts without renewal.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(15);

    /// <summary>This worker, unique per process.</summary>
    public string Id { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Takes or renews the lease; true when this worker holds it.</summary>
    public Task<bool> TryAcquireAsync(string connection, CancellationToken cancellationToken) =>
        store.TryAcquireLeaseAsync(connection, Id, Ttl, cancellationToken);

    /// <summary>Gives the lease up.</summary>
    public Task ReleaseAsync(string connection, CancellationToken cancellationToken) => store.ReleaseLeaseAsync(connection, Id, cancellationToken);

    /// <summary>Whether another live worker holds the lease (then that worker answers for the connection).</summary>
    public async Task<bool> HeldElsewhereAsync(string connection, CancellationToken cancellationToken) =>
        await store.LeaseOwnerAsync(connection, cancellationToken) is { } owner && owner != Id;
}
