using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Ingest.Engine.Running;
using MassTransit;
using Microsoft.Data.Sqlite;

namespace Ingest.Host.Control;

/// <summary>Start (or, with a known id, resume) a backfill of a running connection's stream.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Stream">The stream.</param>
/// <param name="Filter">The connector-specific filter, or null for the whole stream.</param>
/// <param name="Id">The backfill's id (null: a new one).</param>
public sealed record RunBackfill(string Connection, string Stream, string? Filter, string? Id);

/// <summary>Cancel a backfill.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Id">The backfill.</param>
public sealed record CancelBackfill(string Connection, string Id);

/// <summary>The answer to <see cref="RunBackfill"/>: the backfill, or why it was refused.</summary>
/// <param name="Backfill">The backfill as the worker took it, or null when refused.</param>
/// <param name="Problems">Why not (field and message).</param>
public sealed record RunBackfillResult(BackfillSnapshot? Backfill, IReadOnlyList<Ingest.Engine.Control.StartProblem> Problems);

/// <summary>A backfill changed on the worker that runs its connection (requested, progressed, finished).</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Backfill">Where it is.</param>
/// <param name="At">When.</param>
public sealed record BackfillProgress(string Connection, BackfillSnapshot Backfill, DateTimeOffset At);

/// <summary>A persisted backfill loaded when a web node starts: it seeds the saga with the state it had.</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Backfill">Its last known state.</param>
public sealed record BackfillRestored(string Connection, BackfillSnapshot Backfill);

/// <summary>The saga of one backfill: its state, persisted on every change (see <see cref="BackfillStore"/>).</summary>
public sealed class BackfillSaga : SagaStateMachineInstance
{
    /// <inheritdoc />
    public Guid CorrelationId { get; set; }

    /// <summary>The state machine's state.</summary>
    public string CurrentState { get; set; } = "";

    /// <summary>The connection.</summary>
    public string Connection { get; set; } = "";

    /// <summary>The backfill as last reported.</summary>
    public BackfillSnapshot? Backfill { get; set; }
}

/// <summary>
/// A backfill's lifecycle on the bus: <c>Pending</c> → <c>Running</c> → <c>Completed</c>, <c>Cancelled</c> or
/// <c>Failed</c>, driven by the workers' <see cref="BackfillProgress"/>. Every transition writes the backfill's row to
/// the config store's database, so a page reload and a host restart show it (the row is what a restarted node
/// restores the saga from, and what workers re-request unfinished backfills from when they start the connection).
/// Requesting a finished id again starts it anew: the saga goes back to <c>Pending</c>.
/// </summary>
internal sealed class BackfillStateMachine : MassTransitStateMachine<BackfillSaga>
{
    private readonly BackfillStore _store;

    public BackfillStateMachine(BackfillStore store)
    {
        _store = store;
        InstanceState(x => x.CurrentState);
        Event(() => Progressed, e => e.CorrelateById(m => BackfillStore.Correlation(m.Message.Connection, m.Message.Backfill.Id)));
        Event(() => Restored, e => e.CorrelateById(m => BackfillStore.Correlation(m.Message.Connection, m.Message.Backfill.Id)));

        Initially(
            Track(When(Progressed), c => (c.Message.Connection, c.Message.Backfill), persist: true),
            Track(When(Restored), c => (c.Message.Connection, c.Message.Backfill), persist: false));
        During(
            [Pending, Running, Completed, Cancelled, Failed],
            Track(When(Progressed), c => (c.Message.Connection, c.Message.Backfill), persist: true),
            Ignore(Restored));
    }

    public State Pending { get; private set; } = null!;

    public State Running { get; private set; } = null!;

    public State Completed { get; private set; } = null!;

    public State Cancelled { get; private set; } = null!;

    public State Failed { get; private set; } = null!;

    public Event<BackfillProgress> Progressed { get; private set; } = null!;

    public Event<BackfillRestored> Restored { get; private set; } = null!;

    // The message carries the worker's whole view of the backfill, never a delta: it decides the state.
    private EventActivityBinder<BackfillSaga, T> Track<T>(EventActivityBinder<BackfillSaga, T> binder, Func<BehaviorContext<BackfillSaga, T>, (string Connection, BackfillSnapshot Backfill)> read, bool persist)
        where T : class
    {
        binder = binder.Then(c =>
        {
            var (connection, backfill) = read(c);
            Apply(c.Saga, connection, backfill);
        });
        if (persist)
        {
            binder = binder.ThenAsync(c => _store.SaveAsync(c.Saga.Connection, c.Saga.Backfill!, c.CancellationToken));
        }

        return binder
            .If(c => c.Saga.Backfill!.State == "pending", x => x.TransitionTo(Pending))
            .If(c => c.Saga.Backfill!.State == "running", x => x.TransitionTo(Running))
            .If(c => c.Saga.Backfill!.State == "completed", x => x.TransitionTo(Completed))
            .If(c => c.Saga.Backfill!.State == "cancelled", x => x.TransitionTo(Cancelled))
            .If(c => c.Saga.Backfill!.State == "failed", x => x.TransitionTo(Failed));
    }

    // Rows only grow within one run of a backfill (a resumed read may first report fewer than it had).
    private static void Apply(BackfillSaga saga, string connection, BackfillSnapshot next)
    {
        saga.Connection = connection;
        var before = saga.Backfill;
        saga.Backfill = before is { Finished: false } && !next.Finished && next.RowsDone < before.RowsDone
            ? next with { RowsDone = before.RowsDone, RowsTotal = next.RowsTotal ?? before.RowsTotal }
            : next;
    }
}

/// <summary>
/// The backfills' rows in the config store's database (table <c>host_backfills</c> in <c>&lt;data&gt;/ingest.db</c>, or in
/// the PostgreSQL config store): the persisted state of the backfill sagas, shared by every node of the store.
/// </summary>
public sealed class BackfillStore : IAsyncDisposable
{
    private readonly DbConnection _db;
    private readonly SemaphoreSlim _lock = new(1, 1);

    private BackfillStore(DbConnection db) => _db = db;

    /// <summary>Opens the table in the SQLite file at <paramref name="path"/> (creating it when missing).</summary>
    public static Task<BackfillStore> OpenAsync(string path, CancellationToken cancellationToken) =>
        OpenAsync(new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = SqliteOpenMode.ReadWriteCreate }.ToString()), "PRAGMA busy_timeout=5000;", cancellationToken);

    /// <summary>Opens the table in the PostgreSQL config store (creating it when missing).</summary>
    public static Task<BackfillStore> OpenPostgresAsync(string connectionString, CancellationToken cancellationToken) =>
        OpenAsync(new Npgsql.NpgsqlConnection(connectionString), "", cancellationToken);

    private static async Task<BackfillStore> OpenAsync(DbConnection db, string prelude, CancellationToken cancellationToken)
    {
        await db.OpenAsync(cancellationToken);
        await using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = prelude + """
                CREATE TABLE IF NOT EXISTS host_backfills(
                    connection TEXT NOT NULL, id TEXT NOT NULL, stream TEXT NOT NULL, filter TEXT, state TEXT NOT NULL,
                    rows_done BIGINT NOT NULL, rows_total BIGINT, error TEXT, requested_at TEXT NOT NULL, finished_at TEXT,
                    updated_at TEXT NOT NULL, PRIMARY KEY(connection, id));
                """;
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        return new BackfillStore(db);
    }

    /// <summary>The saga's correlation id of a backfill (stable: derived from the connection and the backfill's id).</summary>
    public static Guid Correlation(string connection, string id) =>
        new(SHA256.HashData(Encoding.UTF8.GetBytes(connection + "\n" + id)).AsSpan(0, 16));

    /// <summary>Writes a backfill's state.</summary>
    public Task SaveAsync(string connection, BackfillSnapshot b, CancellationToken cancellationToken) =>
        ExecAsync(
            """
            INSERT INTO host_backfills(connection, id, stream, filter, state, rows_done, rows_total, error, requested_at, finished_at, updated_at)
            VALUES(@c, @id, @s, @f, @st, @rd, @rt, @e, @ra, @fa, @u)
            ON CONFLICT(connection, id) DO UPDATE SET stream = excluded.stream, filter = excluded.filter, state = excluded.state,
                rows_done = excluded.rows_done, rows_total = excluded.rows_total, error = excluded.error, requested_at = excluded.requested_at,
                finished_at = excluded.finished_at, updated_at = excluded.updated_at
            """,
            Args(connection, b),
            cancellationToken);

    /// <summary>Writes a backfill unless its row exists (a request answered before its first progress event arrived).</summary>
    public Task AddAsync(string connection, BackfillSnapshot b, CancellationToken cancellationToken) =>
        ExecAsync(
            """
            INSERT INTO host_backfills(connection, id, stream, filter, state, rows_done, rows_total, error, requested_at, finished_at, updated_at)
            VALUES(@c, @id, @s, @f, @st, @rd, @rt, @e, @ra, @fa, @u)
            ON CONFLICT(connection, id) DO NOTHING
            """,
            Args(connection, b),
            cancellationToken);

    /// <summary>A connection's backfills, newest first (<paramref name="connection"/> null: every connection's).</summary>
    public async Task<IReadOnlyList<(string Connection, BackfillSnapshot Backfill)>> ListAsync(string? connection, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = $"""
                SELECT connection, id, stream, filter, state, rows_done, rows_total, error, requested_at, finished_at
                FROM host_backfills {(connection is null ? "" : "WHERE connection = @c")} ORDER BY requested_at DESC, id
                """;
            if (connection is not null)
            {
                Add(cmd, "c", connection);
            }

            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            var list = new List<(string, BackfillSnapshot)>();
            while (await r.ReadAsync(cancellationToken))
            {
                list.Add((r.GetString(0), new BackfillSnapshot(
                    r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4), r.GetInt64(5),
                    r.IsDBNull(6) ? null : r.GetInt64(6), r.IsDBNull(7) ? null : r.GetString(7),
                    DateTimeOffset.Parse(r.GetString(8), CultureInfo.InvariantCulture), r.IsDBNull(9) ? null : DateTimeOffset.Parse(r.GetString(9), CultureInfo.InvariantCulture))));
            }

            return list;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>One backfill, or null.</summary>
    public async Task<BackfillSnapshot?> GetAsync(string connection, string id, CancellationToken cancellationToken) =>
        (await ListAsync(connection, cancellationToken)).Select(x => x.Backfill).FirstOrDefault(b => b.Id == id);

    /// <summary>Forgets a deleted connection's backfills.</summary>
    public Task DeleteAsync(string connection, CancellationToken cancellationToken) =>
        ExecAsync("DELETE FROM host_backfills WHERE connection = @c", [("c", connection)], cancellationToken);

    private static (string, object?)[] Args(string connection, BackfillSnapshot b) =>
    [
        ("c", connection), ("id", b.Id), ("s", b.Stream), ("f", b.Filter), ("st", b.State), ("rd", b.RowsDone), ("rt", b.RowsTotal), ("e", b.Error),
        ("ra", b.RequestedAt.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)),
        ("fa", b.FinishedAt?.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture)),
        ("u", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture)),
    ];

    // A null is typed by its column: text, except the row counts.
    private static void Add(DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        p.DbType = value switch
        {
            long => System.Data.DbType.Int64,
            null when name == "rt" => System.Data.DbType.Int64,
            _ => System.Data.DbType.String,
        };
        cmd.Parameters.Add(p);
    }

    private async Task ExecAsync(string sql, (string Name, object? Value)[] args, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            foreach (var (name, value) in args)
            {
                Add(cmd, name, value);
            }

            await cmd.ExecuteNonQueryAsync(cancellationToken);
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
}

/// <summary>When a web node starts: seeds the backfill sagas from their persisted rows.</summary>
internal sealed class BackfillRestorer(BackfillStore store, IBus bus) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var (connection, b) in await store.ListAsync(null, stoppingToken))
        {
            await bus.Publish(new BackfillRestored(connection, b), stoppingToken);
        }
    }
}
