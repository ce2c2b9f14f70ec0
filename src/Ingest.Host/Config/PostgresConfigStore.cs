using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Npgsql;

namespace Ingest.Host.Config;

/// <summary>
/// The config store in PostgreSQL, for nodes on several machines (<c>--config-store postgresql://user:password@host:port/database</c>).
/// Same tables as the SQLite store; secrets encrypted the same way; schema migrations recorded in <c>ingest_schema</c>
/// and run under an advisory lock, so nodes starting together migrate once.
/// </summary>
internal sealed class PostgresConfigStore : IConfigStore
{
    private readonly NpgsqlDataSource _db;
    private readonly ISecretProtector _protector;

    private PostgresConfigStore(NpgsqlDataSource db, ISecretProtector protector)
    {
        _db = db;
        _protector = protector;
    }

    // Schema migrations in order; ingest_schema records how many ran.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE connections(
            name TEXT PRIMARY KEY, connector TEXT NOT NULL, config TEXT NOT NULL, streams TEXT, lake TEXT NOT NULL,
            enabled BOOLEAN NOT NULL, paused BOOLEAN NOT NULL DEFAULT FALSE, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE audit(
            id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, connection TEXT NOT NULL,
            action TEXT NOT NULL, changes TEXT NOT NULL);
        CREATE INDEX audit_connection ON audit(connection, id);
        CREATE TABLE usage(
            connection TEXT NOT NULL, run_started_at TIMESTAMPTZ NOT NULL, stream TEXT NOT NULL, rows BIGINT NOT NULL,
            bytes BIGINT NOT NULL, commits INTEGER NOT NULL, first_at TIMESTAMPTZ NOT NULL, last_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY(connection, run_started_at, stream));
        CREATE TABLE leases(connection TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL);
        """,
    ];

    /// <summary>Opens (and creates or migrates) the store.</summary>
    public static async Task<PostgresConfigStore> OpenAsync(string connectionString, ISecretProtector protector, CancellationToken cancellationToken)
    {
        var db = NpgsqlDataSource.Create(connectionString);
        var store = new PostgresConfigStore(db, protector);
        try
        {
            await store.MigrateAsync(cancellationToken);
        }
        catch
        {
            await db.DisposeAsync();
            throw;
        }

        return store;
    }

    /// <summary>An Npgsql connection string from <c>postgresql://user:password@host:port/database</c>.</summary>
    /// <exception cref="FormatException">Not such a URI.</exception>
    public static string ConnectionString(string uri, string option)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Scheme is not ("postgresql" or "postgres") || u.AbsolutePath.Trim('/').Length == 0)
        {
            throw new FormatException($"{option}: expected postgresql://user:password@host:port/database, got '{uri}'");
        }

        var user = Uri.UnescapeDataString(u.UserInfo.Split(':')[0]);
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = u.Host,
            Port = u.IsDefaultPort || u.Port <= 0 ? 5432 : u.Port,
            Database = Uri.UnescapeDataString(u.AbsolutePath.Trim('/')),
            Username = user.Length > 0 ? user : null,
        };
        if (u.UserInfo.IndexOf(':', StringComparison.Ordinal) is var i and >= 0)
        {
            b.Password = Uri.UnescapeDataString(u.UserInfo[(i + 1)..]);
        }

        return b.ConnectionString;
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var conn = await _db.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        await Exec(conn, tx, "SELECT pg_advisory_xact_lock(4817001)", [], cancellationToken);
        await Exec(conn, tx, "CREATE TABLE IF NOT EXISTS ingest_schema(version INTEGER NOT NULL)", [], cancellationToken);
        await using (var cmd = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM ingest_schema", conn, tx))
        {
            var version = Convert.ToInt32(await cmd.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
            for (var v = version; v < Migrations.Length; v++)
            {
                await Exec(conn, tx, Migrations[v], [], cancellationToken);
                await Exec(conn, tx, "DELETE FROM ingest_schema; INSERT INTO ingest_schema(version) VALUES(@v)", [("v", v + 1)], cancellationToken);
            }
        }

        await tx.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<StoredConnection>> ListAsync(CancellationToken cancellationToken) =>
        await QueryAsync("SELECT name, connector, config, streams, lake, enabled, created_at, updated_at, paused FROM connections ORDER BY name COLLATE \"C\"", [], Read, cancellationToken);

    public async Task<StoredConnection?> GetAsync(string name, CancellationToken cancellationToken) =>
        await FirstAsync("SELECT name, connector, config, streams, lake, enabled, created_at, updated_at, paused FROM connections WHERE name = @n", [("n", name)], Read, cancellationToken);

    public async Task<bool> CreateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return await ExecAsync(
            """
            INSERT INTO connections(name, connector, config, streams, lake, enabled, created_at, updated_at)
            VALUES(@n, @c, @cfg, @s, @l, @e, now(), now()) ON CONFLICT(name) DO NOTHING
            """,
            [("n", connection.Name), ("c", connection.Connector), ("cfg", Encrypt(connection.Config, secretPaths)), ("s", Streams(connection.Streams)), ("l", connection.LakePath), ("e", connection.Enabled)],
            cancellationToken) > 0;
    }

    public async Task<bool> UpdateAsync(StoredConnection connection, IReadOnlyList<string> secretPaths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return await ExecAsync(
            "UPDATE connections SET connector = @c, config = @cfg, streams = @s, lake = @l, updated_at = now() WHERE name = @n",
            [("n", connection.Name), ("c", connection.Connector), ("cfg", Encrypt(connection.Config, secretPaths)), ("s", Streams(connection.Streams)), ("l", connection.LakePath)],
            cancellationToken) > 0;
    }

    public async Task<bool> SetEnabledAsync(string name, bool enabled, CancellationToken cancellationToken) =>
        await ExecAsync("UPDATE connections SET enabled = @e WHERE name = @n", [("n", name), ("e", enabled)], cancellationToken) > 0;

    public async Task<bool> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken) =>
        await ExecAsync("UPDATE connections SET paused = @p WHERE name = @n", [("n", name), ("p", paused)], cancellationToken) > 0;

    public async Task<bool> TryAcquireLeaseAsync(string connection, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        return await ExecAsync(
            """
            INSERT INTO leases(connection, owner, expires_at) VALUES(@c, @o, @e)
            ON CONFLICT(connection) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
            WHERE leases.owner = excluded.owner OR leases.expires_at < @now
            """,
            [("c", connection), ("o", owner), ("e", now + (long)ttl.TotalMilliseconds), ("now", now)],
            cancellationToken) > 0;
    }

    public async Task<string?> LeaseOwnerAsync(string connection, CancellationToken cancellationToken) =>
        await FirstAsync("SELECT owner FROM leases WHERE connection = @c AND expires_at >= @now", [("c", connection), ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())], r => r.GetString(0), cancellationToken);

    public Task ReleaseLeaseAsync(string connection, string owner, CancellationToken cancellationToken) =>
        ExecAsync("DELETE FROM leases WHERE connection = @c AND owner = @o", [("c", connection), ("o", owner)], cancellationToken);

    public Task AddAuditAsync(AuditEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return ExecAsync(
            "INSERT INTO audit(at, actor, connection, action, changes) VALUES(@at, @u, @c, @a, @ch)",
            [("at", entry.At.ToUniversalTime()), ("u", entry.Actor), ("c", entry.Connection), ("a", entry.Action), ("ch", JsonSerializer.Serialize(entry.Changes, JsonOptions))],
            cancellationToken);
    }

    public Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? connection, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            "SELECT id, at, actor, connection, action, changes FROM audit WHERE @c::text IS NULL OR connection = @c ORDER BY id DESC LIMIT @l",
            [("c", connection), ("l", limit)],
            r => new AuditEntry(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetString(2), r.GetString(3), r.GetString(4),
                JsonSerializer.Deserialize<List<ConfigChange>>(r.GetString(5), JsonOptions) ?? []),
            cancellationToken);

    public Task AddUsageAsync(string connection, DateTimeOffset runStartedAt, string stream, long rows, long bytes, int commits, DateTimeOffset at, CancellationToken cancellationToken) =>
        ExecAsync(
            """
            INSERT INTO usage(connection, run_started_at, stream, rows, bytes, commits, first_at, last_at) VALUES(@c, @r, @s, @rows, @b, @n, @t, @t)
            ON CONFLICT(connection, run_started_at, stream) DO UPDATE SET rows = usage.rows + excluded.rows, bytes = usage.bytes + excluded.bytes,
                commits = usage.commits + excluded.commits, last_at = excluded.last_at
            """,
            [("c", connection), ("r", runStartedAt.ToUniversalTime()), ("s", stream), ("rows", rows), ("b", bytes), ("n", commits), ("t", at.ToUniversalTime())],
            cancellationToken);

    public Task<IReadOnlyList<UsageEntry>> ListUsageAsync(string connection, int limit, CancellationToken cancellationToken) =>
        QueryAsync(
            "SELECT connection, run_started_at, stream, rows, bytes, commits, first_at, last_at FROM usage WHERE connection = @c ORDER BY run_started_at DESC, stream COLLATE \"C\" LIMIT @l",
            [("c", connection), ("l", limit)],
            r => new UsageEntry(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4), r.GetInt32(5), r.GetFieldValue<DateTimeOffset>(6), r.GetFieldValue<DateTimeOffset>(7)),
            cancellationToken);

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) =>
        await ExecAsync("DELETE FROM connections WHERE name = @n", [("n", name)], cancellationToken) > 0;

    public async Task<string?> GetSettingAsync(string key, CancellationToken cancellationToken) =>
        await FirstAsync("SELECT value FROM settings WHERE key = @k", [("k", key)], r => r.GetString(0), cancellationToken);

    public Task SetSettingAsync(string key, string value, CancellationToken cancellationToken) =>
        ExecAsync("INSERT INTO settings(key, value) VALUES(@k, @v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [("k", key), ("v", value)], cancellationToken);

    public async Task<bool> TryAddSettingAsync(string key, string value, CancellationToken cancellationToken) =>
        await ExecAsync("INSERT INTO settings(key, value) VALUES(@k, @v) ON CONFLICT(key) DO NOTHING", [("k", key), ("v", value)], cancellationToken) > 0;

    public ValueTask DisposeAsync() => _db.DisposeAsync();

    private StoredConnection Read(NpgsqlDataReader r)
    {
        var config = ConnectionSecrets.Unprotected(JsonNode.Parse(r.GetString(2)) as JsonObject ?? [], _protector);
        var streams = r.IsDBNull(3) ? null : JsonSerializer.Deserialize<List<StreamChoice>>(r.GetString(3), JsonOptions);
        return new StoredConnection(r.GetString(0), r.GetString(1), config, streams, r.GetString(4), r.GetBoolean(5), r.GetFieldValue<DateTimeOffset>(6), r.GetFieldValue<DateTimeOffset>(7))
        {
            Paused = r.GetBoolean(8),
        };
    }

    // The same JSON as the SQLite store keeps, so a store can move between the two by export and import.
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static string? Streams(IReadOnlyList<StreamChoice>? streams) => streams is null ? null : JsonSerializer.Serialize(streams, JsonOptions);

    private string Encrypt(JsonObject config, IReadOnlyList<string> secretPaths) => ConnectionSecrets.Protected(config, secretPaths, _protector).ToJsonString();

    private async Task<int> ExecAsync(string sql, (string Name, object? Value)[] args, CancellationToken cancellationToken)
    {
        await using var conn = await _db.OpenConnectionAsync(cancellationToken);
        return await Exec(conn, null, sql, args, cancellationToken);
    }

    private static async Task<int> Exec(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, (string Name, object? Value)[] args, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        Bind(cmd, args);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<T?> FirstAsync<T>(string sql, (string Name, object? Value)[] args, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        var list = await QueryAsync(sql, args, read, cancellationToken);
        return list.Count > 0 ? list[0] : default;
    }

    private async Task<IReadOnlyList<T>> QueryAsync<T>(string sql, (string Name, object? Value)[] args, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        await using var conn = await _db.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(sql, conn);
        Bind(cmd, args);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        var list = new List<T>();
        while (await r.ReadAsync(cancellationToken))
        {
            list.Add(read(r));
        }

        return list;
    }

    private static void Bind(NpgsqlCommand cmd, (string Name, object? Value)[] args)
    {
        foreach (var (name, value) in args)
        {
            cmd.Parameters.Add(value is null ? new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Text) { Value = DBNull.Value } : new NpgsqlParameter(name, value));
        }
    }
}
