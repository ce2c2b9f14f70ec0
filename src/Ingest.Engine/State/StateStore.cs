using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Ingest.Engine.State;

/// <summary>A run as the state store recorded it.</summary>
/// <param name="Id">The run's id.</param>
/// <param name="Pipeline">The pipeline file.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="EndedAt">When it ended (null while running or after a crash).</param>
/// <param name="Status">running, succeeded, failed or stopped.</param>
/// <param name="Rows">Rows committed.</param>
public sealed record RunRecord(long Id, string Pipeline, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, string Status, long Rows);

/// <summary>The last checkpoint a connection's reader acknowledged.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Sequence">The engine's checkpoint sequence.</param>
/// <param name="State">The connector's state.</param>
/// <param name="UpdatedAt">When it was acknowledged.</param>
public sealed record CheckpointRecord(string Connection, long Sequence, JsonElement State, DateTimeOffset UpdatedAt);

/// <summary>An error a run hit.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Connection">The connection, where one is at fault.</param>
/// <param name="At">When.</param>
/// <param name="Kind">configuration, transient or fatal.</param>
/// <param name="Message">What happened.</param>
public sealed record ErrorRecord(long RunId, string? Connection, DateTimeOffset At, string Kind, string Message);

/// <summary>
/// Local SQLite store of runs, acknowledged checkpoints and recent errors. It is a cache for people and
/// tools: progress itself lives in the lake's commits (DESIGN.md section 4), so deleting this file loses nothing.
/// </summary>
public sealed class StateStore : IAsyncDisposable
{
    private const int KeptErrors = 1000;
    private readonly SqliteConnection _db;
    private readonly SemaphoreSlim _lock = new(1, 1);

    private StateStore(SqliteConnection db) => _db = db;

    /// <summary>The default file: <c>&lt;pipeline dir&gt;/.ingest/state.db</c>, or <c>$INGEST_DATA/state.db</c>.</summary>
    public static string DefaultPath(string pipelineFile, string? dataDir)
    {
        dataDir ??= Environment.GetEnvironmentVariable("INGEST_DATA") is { Length: > 0 } env ? env : null;
        var dir = dataDir ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(pipelineFile)) ?? ".", ".ingest");
        return Path.Combine(Path.GetFullPath(dir), "state.db");
    }

    /// <summary>Opens (and creates) the store at <paramref name="path"/>.</summary>
    public static async Task<StateStore> OpenAsync(string path, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var cs = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ToString();
        var db = new SqliteConnection(cs);
        await db.OpenAsync(cancellationToken);
        var store = new StateStore(db);
        await store.ExecAsync("""
            PRAGMA journal_mode=WAL;
            PRAGMA busy_timeout=5000;
            CREATE TABLE IF NOT EXISTS runs(
                id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, started_at TEXT NOT NULL,
                ended_at TEXT, status TEXT NOT NULL, rows INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS checkpoints(
                connection TEXT PRIMARY KEY, seq INTEGER NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS errors(
                id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, connection TEXT, at TEXT NOT NULL,
                kind TEXT NOT NULL, message TEXT NOT NULL);
            """, [], cancellationToken);
        return store;
    }

    /// <summary>Records the start of a run; returns its id.</summary>
    public async Task<long> StartRunAsync(string pipeline, CancellationToken cancellationToken)
    {
        var id = await ScalarAsync("INSERT INTO runs(pipeline, started_at, status) VALUES($p, $t, 'running'); SELECT last_insert_rowid();",
            [("$p", pipeline), ("$t", Now())], cancellationToken);
        return Convert.ToInt64(id, CultureInfo.InvariantCulture);
    }

    /// <summary>Records the end of a run.</summary>
    public Task EndRunAsync(long runId, string status, long rows, CancellationToken cancellationToken) =>
        ExecAsync("UPDATE runs SET ended_at=$t, status=$s, rows=$r WHERE id=$id", [("$t", Now()), ("$s", status), ("$r", rows), ("$id", runId)], cancellationToken);

    /// <summary>Caches the last acknowledged checkpoint of a connection.</summary>
    public Task SaveCheckpointAsync(string connection, long sequence, JsonElement state, CancellationToken cancellationToken) =>
        ExecAsync("""
            INSERT INTO checkpoints(connection, seq, state, updated_at) VALUES($c, $s, $st, $t)
            ON CONFLICT(connection) DO UPDATE SET seq=excluded.seq, state=excluded.state, updated_at=excluded.updated_at
            """, [("$c", connection), ("$s", sequence), ("$st", state.GetRawText()), ("$t", Now())], cancellationToken);

    /// <summary>The cached checkpoint of a connection, or null.</summary>
    public async Task<CheckpointRecord?> GetCheckpointAsync(string connection, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = Command("SELECT seq, state, updated_at FROM checkpoints WHERE connection=$c", [("$c", connection)]);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(r.GetString(1));
            return new CheckpointRecord(connection, r.GetInt64(0), doc.RootElement.Clone(), DateTimeOffset.Parse(r.GetString(2), CultureInfo.InvariantCulture));
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Records an error (the newest <c>1000</c> are kept).</summary>
    public Task AddErrorAsync(long runId, string? connection, string kind, string message, CancellationToken cancellationToken) =>
        ExecAsync($"INSERT INTO errors(run_id, connection, at, kind, message) VALUES($r, $c, $t, $k, $m); DELETE FROM errors WHERE id <= (SELECT max(id) FROM errors) - {KeptErrors};",
            [("$r", runId), ("$c", connection), ("$t", Now()), ("$k", kind), ("$m", message)], cancellationToken);

    /// <summary>The most recent runs, newest first.</summary>
    public async Task<IReadOnlyList<RunRecord>> RecentRunsAsync(int limit, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = Command("SELECT id, pipeline, started_at, ended_at, status, rows FROM runs ORDER BY id DESC LIMIT $l", [("$l", limit)]);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<RunRecord>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add(new RunRecord(r.GetInt64(0), r.GetString(1), DateTimeOffset.Parse(r.GetString(2), CultureInfo.InvariantCulture),
                    r.IsDBNull(3) ? null : DateTimeOffset.Parse(r.GetString(3), CultureInfo.InvariantCulture), r.GetString(4), r.GetInt64(5)));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The most recent errors, newest first.</summary>
    public async Task<IReadOnlyList<ErrorRecord>> RecentErrorsAsync(int limit, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = Command("SELECT run_id, connection, at, kind, message FROM errors ORDER BY id DESC LIMIT $l", [("$l", limit)]);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<ErrorRecord>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add(new ErrorRecord(r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1), DateTimeOffset.Parse(r.GetString(2), CultureInfo.InvariantCulture), r.GetString(3), r.GetString(4)));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _db.DisposeAsync();
        _lock.Dispose();
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);

    private SqliteCommand Command(string sql, IEnumerable<(string Name, object? Value)> parameters)
    {
        var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return cmd;
    }

    private async Task ExecAsync(string sql, IEnumerable<(string Name, object? Value)> parameters, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = Command(sql, parameters);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<object?> ScalarAsync(string sql, IEnumerable<(string Name, object? Value)> parameters, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = Command(sql, parameters);
            return await cmd.ExecuteScalarAsync(cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }
}
