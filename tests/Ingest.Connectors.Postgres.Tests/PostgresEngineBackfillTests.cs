using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Engine.Control;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>
/// Backfills through the engine (its connection supervisor, the Delta merge sink) on a real PostgreSQL: the merge
/// table ends equal to the source while a workload writes, and a backfill stopped mid-way resumes.
/// </summary>
[Collection("postgres")]
public sealed class PostgresEngineBackfillTests(PgServer pg) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ConnectionSupervisor NewSupervisor() => new(
        () => new Dictionary<string, ISourceConnector>(StringComparer.Ordinal) { ["postgres"] = new PostgresConnector() },
        null,
        NullLoggerFactory.Instance,
        new RunOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(50) },
        new Engine.Pipelines.CommitPolicy(TimeSpan.FromMilliseconds(200), 5000));

    private StoredConnection Connection(string db, string slot) => new(
        "pg",
        "postgres",
        JsonNode.Parse("{" + pg.Config(db, slot, ", \"snapshotMode\": \"never\", \"chunkSize\": 300") + "}")!.AsObject(),
        [new StreamChoice("public.bf", Engine.Pipelines.SinkMode.Merge, "bf")],
        _dir.Combine("lake"),
        true,
        DateTimeOffset.UtcNow,
        DateTimeOffset.UtcNow);

    private static async Task WaitAsync(Func<bool> condition, string what, Func<string> context)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}: {context()}");
            await Task.Delay(100);
        }
    }

    private static async Task<int> WorkloadAsync(string connectionString, CancellationToken stop)
    {
        var random = new Random(17);
        var commits = 0;
        var next = 900_000L;
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(CancellationToken.None);
        while (!stop.IsCancellationRequested)
        {
            var id = random.Next(1, 5000);
            var sql = random.Next(5) switch
            {
                0 => $"INSERT INTO bf VALUES ({next++}, 1, 'ins')",
                1 => $"DELETE FROM bf WHERE id = {id}",
                2 => $"UPDATE bf SET id = {next++} WHERE id = {id}",
                _ => $"UPDATE bf SET n = n + 1, t = 'upd' WHERE id BETWEEN {id} AND {id + random.Next(40)}",
            };
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            commits++;
            await Task.Delay(2, CancellationToken.None);
        }

        return commits;
    }

    [Fact]
    public async Task Backfill_through_the_engine_during_a_workload_leaves_the_merge_table_equal_to_the_source_and_resumes_after_a_stop()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, g, 'row ' || g FROM generate_series(1, 5000) g", "ingest");
        var lake = _dir.Combine("lake", "bf");
        var progress = new List<BackfillSnapshot>();
        await using var supervisor = NewSupervisor();
        supervisor.BackfillChanged += (_, b) =>
        {
            lock (progress)
            {
                progress.Add(b);
            }
        };
        var connection = Connection(db, "s_engine_bf");
        string State() => System.Text.Json.JsonSerializer.Serialize(supervisor.Snapshot("pg")) + " " + System.Text.Json.JsonSerializer.Serialize(supervisor.Backfills("pg"));
        Assert.Empty(await supervisor.StartAsync(connection, CancellationToken.None));
        await WaitAsync(() => supervisor.Snapshot("pg") is { CaughtUp: true }, "the connection catches up", State);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WorkloadAsync(pg.User(db), stop.Token));
        var bad = await supervisor.RequestBackfillAsync("pg", "public.bf", "no_such_column > 0", "bad", CancellationToken.None);
        await supervisor.RequestBackfillAsync("pg", "public.bf", null, "all", CancellationToken.None);
        await WaitAsync(() => supervisor.Backfills("pg").Single(b => b.Id == "all").RowsDone >= 1200, "the backfill is under way", State);

        // Stopped mid-backfill, started again: the backfill resumes from its last durable chunk.
        Assert.True(await supervisor.StopAsync("pg", CancellationToken.None));
        var before = supervisor.Backfills("pg").Single(b => b.Id == "all");
        Assert.Equal("running", before.State);
        lock (progress)
        {
            progress.Clear();
        }

        Assert.Empty(await supervisor.StartAsync(connection, CancellationToken.None));
        await WaitAsync(() => supervisor.Backfills("pg").Single(b => b.Id == "all").Finished, "the backfill finishes", State);
        await stop.CancelAsync();
        var commits = await writer;

        Assert.True(commits > 100, $"the workload should have run during the backfill ({commits} commits)");
        var refused = supervisor.Backfills("pg").Single(b => b.Id == bad.Id);
        Assert.Equal("failed", refused.State);
        Assert.Contains("no_such_column", refused.Error, StringComparison.Ordinal);
        Assert.Contains("filter", refused.Error, StringComparison.Ordinal);
        var done = supervisor.Backfills("pg").Single(b => b.Id == "all");
        Assert.Equal("completed", done.State);
        BackfillSnapshot first;
        lock (progress)
        {
            first = progress.First(p => p.Id == "all" && p.RowsDone > 0);
        }

        Assert.True(first.RowsDone > 300, $"after the restart the backfill continued from its checkpoint (first progress {first.RowsDone} rows, before the stop {before.RowsDone})");
        await Mirror.WaitEqualAsync(pg.Admin(db), "bf", lake, TimeSpan.FromSeconds(60), State);
        Assert.True(await supervisor.StopAsync("pg", CancellationToken.None));
    }
}
