using Npgsql;
using NpgsqlTypes;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>Faults: the server restarted under a running pipeline, the pipeline killed at random moments.</summary>
[Collection("postgres")]
public sealed class PostgresFaultTests(PgServer pg)
{
    [Fact]
    public async Task Running_pipeline_recovers_by_itself_when_PostgreSQL_restarts_mid_stream()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO items SELECT g, g, 'row ' || g FROM generate_series(1, 1000) g", "ingest");
        using var dir = new TempDir();
        await Cli.WritePipelineAsync(dir, pg.Config(db, "s_restart"), "items");
        var lake = dir.Combine("lake", "items");

        using var run = Cli.Start(dir);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => Workload.RunAsync(pg.User(db), "items", 7, stop.Token));
        await WaitForRowsAsync(lake, 1000, run);
        await Task.Delay(1000);
        var clean = await pg.RestartAsync();
        await Task.Delay(2500);
        await stop.CancelAsync();
        var commits = await writer;
        Assert.True(commits > 20, $"the writer should have committed around the restart (it committed {commits})");

        await Mirror.WaitEqualAsync(pg.Admin(db), "items", lake, TimeSpan.FromSeconds(60), () => run.Output);
        Assert.False(run.Process.HasExited, $"the pipeline should still run after the restart:\n{run.Output}");
        Assert.True(run.Output.Contains("after a transient failure", StringComparison.Ordinal), $"the engine should have restarted the read (fast shutdown: {clean}):\n{run.Output}");
        await run.KillAsync();
    }

    [Fact]
    public async Task Pipeline_killed_at_random_moments_during_a_mixed_workload_ends_equal_to_the_source_and_the_slot_advances()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO items SELECT g, g, 'row ' || g FROM generate_series(1, 20000) g", "ingest");
        using var dir = new TempDir();
        await Cli.WritePipelineAsync(dir, pg.Config(db, "s_kill", ", \"chunkSize\": 2000"), "items");
        var random = new Random(20261125);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => Workload.RunAsync(pg.User(db), "items", 11, stop.Token));
        NpgsqlLogSequenceNumber? first = null;
        var log = new System.Text.StringBuilder();
        for (var kill = 0; kill < 6; kill++)
        {
            using var run = Cli.Start(dir);
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(800, 3500)));
            Assert.False(run.Process.HasExited, $"the pipeline stopped by itself before kill {kill}:\n{run.Output}");
            await run.KillAsync();
            log.Append("--- run ").Append(kill).AppendLine(" (killed)").Append(run.Output);
            first ??= await ConfirmedAsync(db, "s_kill");
        }

        await stop.CancelAsync();
        var commits = await writer;
        Assert.True(commits > 50, $"the writer should have committed during the runs (it committed {commits})");

        await Cli.RunOnceAsync(dir, pg.Config(db, "s_kill", ", \"chunkSize\": 2000"), "items");
        var (expected, actual) = await Mirror.RowsAsync(pg.Admin(db), "items", dir.Combine("lake", "items"));
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected, actual);
        var last = await ConfirmedAsync(db, "s_kill");
        Assert.NotNull(first);
        Assert.NotNull(last);
        Assert.True(last > first, $"confirmed_flush_lsn should advance ({first} -> {last})");
    }

    [Fact]
    public async Task Slot_retaining_more_wal_than_slotLagWarningBytes_is_logged_as_a_warning()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE lag (id int PRIMARY KEY, t text); INSERT INTO lag VALUES (1, 'a')", "ingest");
        using var dir = new TempDir();
        var quiet = await Cli.RunOnceAsync(dir, pg.Config(db, "s_lag"), "lag");
        Assert.DoesNotContain("bytes of WAL (above slotLagWarningBytes", quiet.Out + quiet.Error, StringComparison.Ordinal);

        // WAL written while no pipeline runs is retained by the slot: above a 1 kB threshold the next run warns.
        await pg.ExecAsync(db, "INSERT INTO lag SELECT g, repeat('x', 200) FROM generate_series(2, 2000) g", "ingest");
        var run = await Cli.RunOnceAsync(dir, pg.Config(db, "s_lag", ", \"slotLagWarningBytes\": 1024"), "lag");
        Assert.Matches("replication slot s_lag retains [0-9]+ bytes of WAL \\(above slotLagWarningBytes 1024\\)", run.Out + run.Error);
    }

    private async Task<NpgsqlLogSequenceNumber?> ConfirmedAsync(string db, string slot)
    {
        await using var conn = new NpgsqlConnection(pg.Admin(db));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = @s", conn);
        cmd.Parameters.AddWithValue("s", slot);
        return await cmd.ExecuteScalarAsync() is NpgsqlLogSequenceNumber lsn ? lsn : null;
    }

    private static async Task WaitForRowsAsync(string lake, int rows, Cli.Running run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                if ((await Lake.ReadAsync(lake)).Count >= rows)
                {
                    return;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                // Not created yet.
            }

            Assert.False(run.Process.HasExited, $"the pipeline exited:\n{run.Output}");
            Assert.True(DateTime.UtcNow < deadline, $"the snapshot did not reach the lake in 30 s:\n{run.Output}");
            await Task.Delay(200);
        }
    }
}

/// <summary>A seeded mixed workload: transactions of inserts, updates (some changing the key) and deletes, surviving server restarts.</summary>
internal static class Workload
{
    public static async Task<int> RunAsync(string connectionString, string table, int seed, CancellationToken stop)
    {
        var random = new Random(seed);
        var commits = 0;
        var next = 1_000_000L;
        NpgsqlConnection? conn = null;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (conn is null)
                    {
                        conn = new NpgsqlConnection(connectionString);
                        await conn.OpenAsync(CancellationToken.None);
                    }

                    await using var tx = await conn.BeginTransactionAsync(CancellationToken.None);
                    var statements = random.Next(1, 5);
                    for (var s = 0; s < statements; s++)
                    {
                        var id = random.Next(1, 20_000);
                        var sql = random.Next(5) switch
                        {
                            0 or 1 => $"INSERT INTO {table} VALUES ({next++}, {random.Next(1000)}, 'ins {next}')",
                            2 => $"UPDATE {table} SET n = n + 1, t = 'upd' WHERE id BETWEEN {id} AND {id + random.Next(20)}",
                            3 => $"DELETE FROM {table} WHERE id BETWEEN {id} AND {id + random.Next(5)}",
                            _ => $"UPDATE {table} SET id = {next++} WHERE id = {id}",
                        };
                        await using var cmd = new NpgsqlCommand(sql, conn, tx);
                        await cmd.ExecuteNonQueryAsync(CancellationToken.None);
                    }

                    if (random.Next(10) == 0)
                    {
                        await tx.RollbackAsync(CancellationToken.None);
                    }
                    else
                    {
                        await tx.CommitAsync(CancellationToken.None);
                        commits++;
                    }
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    // The server is restarting: reconnect.
                    if (conn is not null)
                    {
                        await conn.DisposeAsync();
                        conn = null;
                    }

                    await Task.Delay(100, CancellationToken.None);
                }

                await Task.Delay(5, CancellationToken.None);
            }
        }
        finally
        {
            if (conn is not null)
            {
                await conn.DisposeAsync();
            }
        }

        return commits;
    }
}
