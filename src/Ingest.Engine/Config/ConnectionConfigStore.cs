using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Engine.Pipelines;
using Microsoft.Data.Sqlite;

namespace Ingest.Engine.Config;

/// <summary>Encrypts secrets before they reach the config store (the host uses ASP.NET Core Data Protection).</summary>
public interface ISecretProtector
{
    /// <summary>Encrypts a secret value.</summary>
    string Protect(string plaintext);

    /// <summary>Decrypts what <see cref="Protect"/> returned.</summary>
    string Unprotect(string protectedText);
}

/// <summary>A stream chosen for a stored connection.</summary>
/// <param name="Name">The stream's name as discovered.</param>
/// <param name="Mode">How it lands in its table.</param>
/// <param name="Table">The table's path inside the lake, or null for <c>&lt;connection&gt;/&lt;stream&gt;</c>.</param>
/// <param name="Columns">The columns written to the table, or null for every column (merge and history keep the key).</param>
public sealed record StreamChoice(string Name, SinkMode Mode, string? Table = null, IReadOnlyList<string>? Columns = null)
{
    /// <summary>Equal when name, mode, table and the column list (in order) are.</summary>
    public bool Equals(StreamChoice? other) =>
        other is not null && Name == other.Name && Mode == other.Mode && Table == other.Table
        && (Columns is null ? other.Columns is null : other.Columns is not null && Columns.SequenceEqual(other.Columns, StringComparer.Ordinal));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Name, Mode, Table, Columns?.Count ?? -1);
}

/// <summary>A connection as the config store keeps it (secrets in clear text in memory only).</summary>
/// <param name="Name">Unique name (<c>[a-z0-9_-]+</c>); its tables are <c>&lt;lake&gt;/&lt;name&gt;/&lt;stream&gt;</c>.</param>
/// <param name="Connector">The plugin's connector name.</param>
/// <param name="Config">The configuration (validated against the connector's schema before it is saved).</param>
/// <param name="Streams">The selected streams, or null for every stream (merge where a key exists, else append).</param>
/// <param name="LakePath">The lake folder (full path).</param>
/// <param name="Enabled">Whether the connection should be running (workers start it at start-up).</param>
/// <param name="CreatedAt">When it was created.</param>
/// <param name="UpdatedAt">When it was last changed.</param>
public sealed record StoredConnection(
    string Name,
    string Connector,
    JsonObject Config,
    IReadOnlyList<StreamChoice>? Streams,
    string LakePath,
    bool Enabled,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>Whether the connection is paused: enabled, but not reading until it resumes.</summary>
    public bool Paused { get; init; }
}

/// <summary>One change of a connection in the audit log.</summary>
/// <param name="Id">Its sequence number.</param>
/// <param name="At">When.</param>
/// <param name="Actor">Who (the user name).</param>
/// <param name="Connection">Which connection.</param>
/// <param name="Action">create, update, delete, start, stop, pause or resume.</param>
/// <param name="Changes">What changed (secrets only say that they changed).</param>
public sealed record AuditEntry(long Id, DateTimeOffset At, string Actor, string Connection, string Action, IReadOnlyList<ConfigChange> Changes);

/// <summary>Rows and bytes one run of a connection committed to one stream's table.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="RunStartedAt">When the run started (it names the run).</param>
/// <param name="Stream">The stream.</param>
/// <param name="Rows">Rows committed.</param>
/// <param name="Bytes">Bytes of data files written.</param>
/// <param name="Commits">Table commits.</param>
/// <param name="FirstAt">The first commit.</param>
/// <param name="LastAt">The last commit.</param>
public sealed record UsageEntry(string Connection, DateTimeOffset RunStartedAt, string Stream, long Rows, long Bytes, int Commits, DateTimeOffset FirstAt, DateTimeOffset LastAt);

/// <summary>
/// The connections and host settings, in SQLite (<c>&lt;data&gt;/ingest.db</c>). Secret properties of a
/// configuration (those the connector's schema marks <c>"secret": true</c>) are stored encrypted.
/// </summary>
public sealed class ConnectionConfigStore : IAsyncDisposable
{
    private readonly SqliteConnection _db;
    private readonly ISecretProtector _protector;
    private readonly SemaphoreSlim _lock = new(1, 1);

    private ConnectionConfigStore(SqliteConnection db, ISecretProtector protector)
    {
        _db = db;
        _protector = protector;
    }

    /// <summary>Opens (and creates or migrates) the store at <paramref name="path"/>.</summary>
    public static async Task<ConnectionConfigStore> OpenAsync(string path, ISecretProtector protector, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(protector);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var cs = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ToString();
        var db = new SqliteConnection(cs);
        await db.OpenAsync(cancellationToken);
        var store = new ConnectionConfigStore(db, protector);
        await store.MigrateAsync(cancellationToken);
        return store;
    }

    // Schema migrations in order; user_version records how many ran.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE connections(
            name TEXT PRIMARY KEY, connector TEXT NOT NULL, config TEXT NOT NULL, streams TEXT,
            lake TEXT NOT NULL, enabled INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
        """
        CREATE TABLE audit(
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, connection TEXT NOT NULL,
            action TEXT NOT NULL, changes TEXT NOT NULL);
        CREATE INDEX audit_connection ON audit(connection, id);
        CREATE TABLE usage(
            connection TEXT NOT NULL, run_started_at TEXT NOT NULL, stream TEXT NOT NULL, rows INTEGER NOT NULL,
            bytes INTEGER NOT NULL, commits INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
            PRIMARY KEY(connection, run_started_at, stream));
        ALTER TABLE connections ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
        """,
        """
        CREATE TABLE leases(connection TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
        """,
    ];

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await ExecAsync("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;", [], cancellationToken);
        var version = Convert.ToInt32(await ScalarAsync("PRAGMA user_version;", [], cancellationToken), CultureInfo.InvariantCulture);
        for (var i = version; i < Migrations.Length; i++)
        {
            await ExecAsync(Migrations[i] + $"PRAGMA user_version={i + 1};", [], cancellationToken);
        }
    }

    /// <summary>Every connection, by name.</summary>
    public async Task<IReadOnlyList<StoredConnection>> ListAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT name, connector, config, streams, lake, enabled, created_at, updated_at, paused FROM connections ORDER BY name";
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<StoredConnection>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add(Read(r));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The connection called <paramref name="name"/>, or null.</summary>
    public async Task<StoredConnection?> GetAsync(string name, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT name, connector, config, streams, lake, enabled, created_at, updated_at, paused FROM connections WHERE name = $n";
            cmd.Parameters.AddWithValue("$n", name);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            return await r.ReadAsync(cancellationToken) ? Read(r) : null;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Creates a connection; false when the name is taken.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="secretPaths">JSON pointers of its secret properties (they are encrypted).</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    public async Task<bool> CreateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        try
        {
            await ExecAsync(
                "INSERT INTO connections(name, connector, config, streams, lake, enabled, created_at, updated_at) VALUES($n, $c, $cfg, $s, $l, $e, $t, $t)",
                [("$n", connection.Name), ("$c", connection.Connector), ("$cfg", Encrypt(connection.Config, secretPaths)), ("$s", Streams(connection.Streams)),
                 ("$l", connection.LakePath), ("$e", connection.Enabled ? 1 : 0), ("$t", Now())],
                cancellationToken);
            return true;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            return false;
        }
    }

    /// <summary>Replaces a connection's connector, configuration and streams; false when it does not exist.</summary>
    public async Task<bool> UpdateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var n = await ExecAsync(
            "UPDATE connections SET connector = $c, config = $cfg, streams = $s, lake = $l, updated_at = $t WHERE name = $n",
            [("$n", connection.Name), ("$c", connection.Connector), ("$cfg", Encrypt(connection.Config, secretPaths)), ("$s", Streams(connection.Streams)),
             ("$l", connection.LakePath), ("$t", Now())],
            cancellationToken);
        return n > 0;
    }

    /// <summary>Records whether the connection should run; false when it does not exist.</summary>
    public async Task<bool> SetEnabledAsync(string name, bool enabled, CancellationToken cancellationToken) =>
        await ExecAsync("UPDATE connections SET enabled = $e WHERE name = $n", [("$n", name), ("$e", enabled ? 1 : 0)], cancellationToken) > 0;

    /// <summary>Records whether the connection is paused (it stays enabled but does not read); false when it does not exist.</summary>
    public async Task<bool> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken) =>
        await ExecAsync("UPDATE connections SET paused = $p WHERE name = $n", [("$n", name), ("$p", paused ? 1 : 0)], cancellationToken) > 0;

    /// <summary>
    /// Takes or renews the lease that lets one worker run a connection: true when <paramref name="owner"/> holds it now
    /// (it was free, expired, or already its own). Nodes sharing the store never run a connection twice.
    /// </summary>
    public async Task<bool> TryAcquireLeaseAsync(string connection, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        return await ExecAsync(
            """
            INSERT INTO leases(connection, owner, expires_at) VALUES($c, $o, $e)
            ON CONFLICT(connection) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
            WHERE leases.owner = excluded.owner OR leases.expires_at < $now
            """,
            [("$c", connection), ("$o", owner), ("$e", now + (long)ttl.TotalMilliseconds), ("$now", now)],
            cancellationToken) > 0;
    }

    /// <summary>Who holds a live lease on the connection, or null.</summary>
    public async Task<string?> LeaseOwnerAsync(string connection, CancellationToken cancellationToken) =>
        await ScalarAsync("SELECT owner FROM leases WHERE connection = $c AND expires_at >= $now", [("$c", connection), ("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())], cancellationToken) as string;

    /// <summary>Gives up a lease <paramref name="owner"/> holds.</summary>
    public Task ReleaseLeaseAsync(string connection, string owner, CancellationToken cancellationToken) =>
        ExecAsync("DELETE FROM leases WHERE connection = $c AND owner = $o", [("$c", connection), ("$o", owner)], cancellationToken);

    /// <summary>Appends an entry to the audit log.</summary>
    public Task AddAuditAsync(AuditEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return ExecAsync(
            "INSERT INTO audit(at, actor, connection, action, changes) VALUES($at, $u, $c, $a, $ch)",
            [("$at", entry.At.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)), ("$u", entry.Actor), ("$c", entry.Connection), ("$a", entry.Action),
             ("$ch", JsonSerializer.Serialize(entry.Changes, JsonOptions))],
            cancellationToken);
    }

    /// <summary>The audit log, newest first, optionally of one connection.</summary>
    public async Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? connection, int limit, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT id, at, actor, connection, action, changes FROM audit WHERE $c IS NULL OR connection = $c ORDER BY id DESC LIMIT $l";
            cmd.Parameters.AddWithValue("$c", (object?)connection ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$l", limit);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<AuditEntry>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add(new AuditEntry(
                    r.GetInt64(0), DateTimeOffset.Parse(r.GetString(1), CultureInfo.InvariantCulture), r.GetString(2), r.GetString(3), r.GetString(4),
                    JsonSerializer.Deserialize<List<ConfigChange>>(r.GetString(5), JsonOptions) ?? []));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Adds rows and bytes a run committed to one stream's table (one row per connection, run and stream).</summary>
    public Task AddUsageAsync(string connection, DateTimeOffset runStartedAt, string stream, long rows, long bytes, int commits, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var t = at.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
        return ExecAsync(
            """
            INSERT INTO usage(connection, run_started_at, stream, rows, bytes, commits, first_at, last_at) VALUES($c, $r, $s, $rows, $b, $n, $t, $t)
            ON CONFLICT(connection, run_started_at, stream) DO UPDATE SET rows = rows + excluded.rows, bytes = bytes + excluded.bytes,
                commits = commits + excluded.commits, last_at = excluded.last_at
            """,
            [("$c", connection), ("$r", runStartedAt.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)), ("$s", stream), ("$rows", rows), ("$b", bytes), ("$n", commits), ("$t", t)],
            cancellationToken);
    }

    /// <summary>A connection's usage per run and stream, newest run first.</summary>
    public async Task<IReadOnlyList<UsageEntry>> ListUsageAsync(string connection, int limit, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT connection, run_started_at, stream, rows, bytes, commits, first_at, last_at FROM usage WHERE connection = $c ORDER BY run_started_at DESC, stream LIMIT $l";
            cmd.Parameters.AddWithValue("$c", connection);
            cmd.Parameters.AddWithValue("$l", limit);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<UsageEntry>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add(new UsageEntry(
                    r.GetString(0), DateTimeOffset.Parse(r.GetString(1), CultureInfo.InvariantCulture), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt32(5),
                    DateTimeOffset.Parse(r.GetString(6), CultureInfo.InvariantCulture), DateTimeOffset.Parse(r.GetString(7), CultureInfo.InvariantCulture)));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Deletes a connection (its tables stay in the lake); false when it does not exist.</summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) =>
        await ExecAsync("DELETE FROM connections WHERE name = $n", [("$n", name)], cancellationToken) > 0;

    /// <summary>A host setting, or null.</summary>
    public async Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) =>
        await ScalarAsync("SELECT value FROM settings WHERE key = $k", [("$k", key)], cancellationToken) as string;

    /// <summary>Sets a host setting.</summary>
    public Task SetSettingAsync(string key, string value, CancellationToken cancellationToken) =>
        ExecAsync("INSERT INTO settings(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [("$k", key), ("$v", value)], cancellationToken);

    /// <summary>Sets a host setting unless it exists; true when this call set it.</summary>
    public async Task<bool> TryAddSettingAsync(string key, string value, CancellationToken cancellationToken) =>
        await ExecAsync("INSERT OR IGNORE INTO settings(key, value) VALUES($k, $v)", [("$k", key), ("$v", value)], cancellationToken) > 0;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _db.DisposeAsync();
        _lock.Dispose();
    }

    private StoredConnection Read(SqliteDataReader r)
    {
        var config = ConnectionSecrets.Unprotected(JsonNode.Parse(r.GetString(2)) as JsonObject ?? [], _protector);
        var streams = r.IsDBNull(3) ? null : JsonSerializer.Deserialize<List<StreamChoice>>(r.GetString(3), JsonOptions);
        return new StoredConnection(
            r.GetString(0), r.GetString(1), config, streams, r.GetString(4), r.GetInt64(5) != 0,
            DateTimeOffset.Parse(r.GetString(6), CultureInfo.InvariantCulture), DateTimeOffset.Parse(r.GetString(7), CultureInfo.InvariantCulture))
        {
            Paused = r.GetInt64(8) != 0,
        };
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static string? Streams(IReadOnlyList<StreamChoice>? streams) => streams is null ? null : JsonSerializer.Serialize(streams, JsonOptions);

    private string Encrypt(JsonObject config, IReadOnlyList<string> secretPaths) =>
        ConnectionSecrets.Protected(config, secretPaths, _protector).ToJsonString();

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    private async Task<int> ExecAsync(string sql, (string Name, object? Value)[] args, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            foreach (var (name, value) in args)
            {
                cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            return await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<object?> ScalarAsync(string sql, (string Name, object? Value)[] args, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            foreach (var (name, value) in args)
            {
                cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            return await cmd.ExecuteScalarAsync(cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }
}
