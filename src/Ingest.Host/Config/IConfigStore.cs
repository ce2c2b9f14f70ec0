using Ingest.Engine.Config;

namespace Ingest.Host.Config;

/// <summary>
/// The host's config store: connections (secrets encrypted), settings, workers' leases, the audit log and usage. SQLite in
/// the data folder by default (<see cref="SqliteConfigStore"/>), PostgreSQL when several machines share it
/// (<see cref="PostgresConfigStore"/>); both migrate their schema when they open.
/// </summary>
internal interface IConfigStore : IAsyncDisposable
{
    /// <summary>Every connection, by name.</summary>
    Task<IReadOnlyList<StoredConnection>> ListAsync(CancellationToken cancellationToken);

    /// <summary>The connection called <paramref name="name"/>, or null.</summary>
    Task<StoredConnection?> GetAsync(string name, CancellationToken cancellationToken);

    /// <summary>Creates a connection (the secrets at <paramref name="secretPaths"/> encrypted); false when the name is taken.</summary>
    Task<bool> CreateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken);

    /// <summary>Replaces a connection's connector, configuration and streams; false when it does not exist.</summary>
    Task<bool> UpdateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken);

    /// <summary>Records whether the connection should run; false when it does not exist.</summary>
    Task<bool> SetEnabledAsync(string name, bool enabled, CancellationToken cancellationToken);

    /// <summary>Records whether the connection is paused; false when it does not exist.</summary>
    Task<bool> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken);

    /// <summary>Takes or renews a worker's lease on a connection; true when <paramref name="owner"/> holds it now.</summary>
    Task<bool> TryAcquireLeaseAsync(string connection, string owner, TimeSpan ttl, CancellationToken cancellationToken);

    /// <summary>Who holds a live lease on the connection, or null.</summary>
    Task<string?> LeaseOwnerAsync(string connection, CancellationToken cancellationToken);

    /// <summary>Gives up a lease <paramref name="owner"/> holds.</summary>
    Task ReleaseLeaseAsync(string connection, string owner, CancellationToken cancellationToken);

    /// <summary>Appends an entry to the audit log.</summary>
    Task AddAuditAsync(AuditEntry entry, CancellationToken cancellationToken);

    /// <summary>The audit log, newest first, optionally of one connection.</summary>
    Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? connection, int limit, CancellationToken cancellationToken);

    /// <summary>Adds rows and bytes a run committed to one stream's table.</summary>
    Task AddUsageAsync(string connection, DateTimeOffset runStartedAt, string stream, long rows, long bytes, int commits, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>A connection's usage per run and stream, newest run first.</summary>
    Task<IReadOnlyList<UsageEntry>> ListUsageAsync(string connection, int limit, CancellationToken cancellationToken);

    /// <summary>Deletes a connection; false when it does not exist.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken);

    /// <summary>A host setting, or null.</summary>
    Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken);

    /// <summary>Sets a host setting.</summary>
    Task SetSettingAsync(string key, string value, CancellationToken cancellationToken);

    /// <summary>Sets a host setting unless it exists; true when this call set it.</summary>
    Task<bool> TryAddSettingAsync(string key, string value, CancellationToken cancellationToken);
}

/// <summary>The SQLite config store in the data folder (the engine's <see cref="ConnectionConfigStore"/>).</summary>
internal sealed class SqliteConfigStore(ConnectionConfigStore store) : IConfigStore
{
    public Task<IReadOnlyList<StoredConnection>> ListAsync(CancellationToken cancellationToken) => store.ListAsync(cancellationToken);

    public Task<StoredConnection?> GetAsync(string name, CancellationToken cancellationToken) => store.GetAsync(name, cancellationToken);

    public Task<bool> CreateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken) => store.CreateAsync(connection, secretPaths, cancellationToken);

    public Task<bool> UpdateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken) => store.UpdateAsync(connection, secretPaths, cancellationToken);

    public Task<bool> SetEnabledAsync(string name, bool enabled, CancellationToken cancellationToken) => store.SetEnabledAsync(name, enabled, cancellationToken);

    public Task<bool> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken) => store.SetPausedAsync(name, paused, cancellationToken);

    public Task<bool> TryAcquireLeaseAsync(string connection, string owner, TimeSpan ttl, CancellationToken cancellationToken) => store.TryAcquireLeaseAsync(connection, owner, ttl, cancellationToken);

    public Task<string?> LeaseOwnerAsync(string connection, CancellationToken cancellationToken) => store.LeaseOwnerAsync(connection, cancellationToken);

    public Task ReleaseLeaseAsync(string connection, string owner, CancellationToken cancellationToken) => store.ReleaseLeaseAsync(connection, owner, cancellationToken);

    public Task AddAuditAsync(AuditEntry entry, CancellationToken cancellationToken) => store.AddAuditAsync(entry, cancellationToken);

    public Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? connection, int limit, CancellationToken cancellationToken) => store.ListAuditAsync(connection, limit, cancellationToken);

    public Task AddUsageAsync(string connection, DateTimeOffset runStartedAt, string stream, long rows, long bytes, int commits, DateTimeOffset at, CancellationToken cancellationToken) =>
        store.AddUsageAsync(connection, runStartedAt, stream, rows, bytes, commits, at, cancellationToken);

    public Task<IReadOnlyList<UsageEntry>> ListUsageAsync(string connection, int limit, CancellationToken cancellationToken) => store.ListUsageAsync(connection, limit, cancellationToken);

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => store.DeleteAsync(name, cancellationToken);

    public Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) => store.GetSettingAsync(key, cancellationToken);

    public Task SetSettingAsync(string key, string value, CancellationToken cancellationToken) => store.SetSettingAsync(key, value, cancellationToken);

    public Task<bool> TryAddSettingAsync(string key, string value, CancellationToken cancellationToken) => store.TryAddSettingAsync(key, value, cancellationToken);

    public ValueTask DisposeAsync() => store.DisposeAsync();
}
