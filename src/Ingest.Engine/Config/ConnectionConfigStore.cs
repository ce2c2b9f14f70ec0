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
public sealed record StreamChoice(string Name, SinkMode Mode);

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
    DateTimeOffset UpdatedAt);

/// <summary>
/// The connections and host settings, in SQLite (<c>&lt;data&gt;/ingest.db</c>). Secret properties of a
/// configuration (those the connector's schema marks <c>"secret": true</c>) are stored encrypted.
/// </summary>
public sealed class ConnectionConfigStore : IAsyncDisposable
{
    private const string EncryptedPrefix = "enc:v1:";
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
            cmd.CommandText = "SELECT name, connector, config, streams, lake, enabled, created_at, updated_at FROM connections ORDER BY name";
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
            cmd.CommandText = "SELECT name, connector, config, streams, lake, enabled, created_at, updated_at FROM connections WHERE name = $n";
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
        var config = JsonNode.Parse(r.GetString(2)) as JsonObject ?? [];
        Decrypt(config);
        var streams = r.IsDBNull(3) ? null : JsonSerializer.Deserialize<List<StreamChoice>>(r.GetString(3), JsonOptions);
        return new StoredConnection(
            r.GetString(0), r.GetString(1), config, streams, r.GetString(4), r.GetInt64(5) != 0,
            DateTimeOffset.Parse(r.GetString(6), CultureInfo.InvariantCulture), DateTimeOffset.Parse(r.GetString(7), CultureInfo.InvariantCulture));
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static string? Streams(IReadOnlyList<StreamChoice>? streams) => streams is null ? null : JsonSerializer.Serialize(streams, JsonOptions);

    private string Encrypt(JsonObject config, IReadOnlyList<string> secretPaths)
    {
        var copy = (JsonObject)config.DeepClone();
        foreach (var pointer in secretPaths)
        {
            if (JsonPointers.Get(copy, pointer) is JsonValue v && v.TryGetValue<string>(out var secret))
            {
                JsonPointers.Set(copy, pointer, JsonValue.Create(EncryptedPrefix + _protector.Protect(secret)));
            }
        }

        return copy.ToJsonString();
    }

    // Walks the whole object: which properties were secret is recorded by the prefix, so a schema change cannot leave one encrypted.
    private void Decrypt(JsonNode node)
    {
        if (node is JsonObject o)
        {
            foreach (var (key, child) in o.ToList())
            {
                if (child is JsonValue v && v.TryGetValue<string>(out var s) && s.StartsWith(EncryptedPrefix, StringComparison.Ordinal))
                {
                    o[key] = JsonValue.Create(_protector.Unprotect(s[EncryptedPrefix.Length..]));
                }
                else if (child is not null)
                {
                    Decrypt(child);
                }
            }
        }
        else if (node is JsonArray a)
        {
            foreach (var child in a)
            {
                if (child is not null)
                {
                    Decrypt(child);
                }
            }
        }
    }

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
