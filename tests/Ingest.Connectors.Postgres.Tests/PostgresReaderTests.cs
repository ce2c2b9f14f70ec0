using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>The reader driven directly, as the engine drives it, to stop and resume it at chosen points.</summary>
[Collection("postgres")]
public sealed class PostgresReaderTests(PgServer pg)
{
    private static JsonElement Json(string fields)
    {
        using var doc = JsonDocument.Parse("{" + fields + "}");
        return doc.RootElement.Clone();
    }

    private static ISourceReader Open(JsonElement config, JsonElement? state, params string[] streams) =>
        new PostgresConnector().OpenReader(new ReadContext("test", config, streams.Select(s => new StreamSelection(s, SyncMode.Cdc)).ToList(), state, NullConnectorLog.Instance));

    /// <summary>Applies rows as a merge table does (newest position wins), checking positions strictly increase.</summary>
    private sealed class Mirror
    {
        public SortedDictionary<int, string?> Rows { get; } = [];
        public SourcePosition Last { get; private set; }
        public List<ChangeOp> Ops { get; } = [];

        public void Apply(ChangeBatch b)
        {
            var ids = (Int32Array)b.Data.Column(0);
            var values = (StringArray)b.Data.Column(1);
            for (var i = 0; i < b.Length; i++)
            {
                Assert.True(b.Positions[i] > Last, $"position {b.Positions[i]} does not follow {Last}");
                Last = b.Positions[i];
                Ops.Add(b.Ops[i]);
                switch (b.Ops[i])
                {
                    case ChangeOp.Truncate: Rows.Clear(); break;
                    case ChangeOp.Delete: Rows.Remove(ids.GetValue(i)!.Value); break;
                    default: Rows[ids.GetValue(i)!.Value] = values.GetString(i); break;
                }
            }
        }
    }

    private async Task<SortedDictionary<int, string?>> SourceAsync(string db, string table)
    {
        var rows = new SortedDictionary<int, string?>();
        await using var conn = new Npgsql.NpgsqlConnection(pg.Admin(db));
        await conn.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand($"SELECT id, v FROM {table}", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows[r.GetInt32(0)] = r.IsDBNull(1) ? null : r.GetString(1);
        }

        return rows;
    }

    [Fact]
    public async Task Snapshot_resumes_from_a_chunk_checkpoint_and_streaming_replays_what_changed_meanwhile()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r SELECT g, 'v' || g FROM generate_series(1, 1000) g", "ingest");
        var config = Json(pg.Config(db, "s_resume", ", \"chunkSize\": 100"));
        var mirror = new Mirror();

        Checkpoint? third = null;
        var checkpoints = 0;
        await using (var first = Open(config, null, "public.r"))
        {
            var pending = new List<ChangeBatch>();
            await foreach (var m in first.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    pending.Add(b);
                }
                else if (m is Checkpoint c)
                {
                    // Only what a checkpoint covers is "durable"; what follows the third one is lost with the crash.
                    pending.ForEach(mirror.Apply);
                    pending.Clear();
                    if (++checkpoints == 3)
                    {
                        third = c;
                        break;
                    }
                }
            }
        }

        Assert.NotNull(third);
        Assert.Equal(300, mirror.Rows.Count);
        Assert.Contains("\"key\":[\"300\"]", third!.ToString(), StringComparison.Ordinal);

        // Meanwhile: a copied row is deleted, a row not yet copied is updated, a new row appears.
        await pg.ExecAsync(db, "DELETE FROM r WHERE id = 50; UPDATE r SET v = 'late' WHERE id = 950; INSERT INTO r VALUES (5000, 'new'); UPDATE r SET v = 'twice' WHERE id = 10", "ingest");

        await using (var second = Open(config, third.State, "public.r"))
        {
            await foreach (var m in second.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    mirror.Apply(b);
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        Assert.Equal(await SourceAsync(db, "r"), mirror.Rows);
        Assert.Contains(ChangeOp.Delete, mirror.Ops);
    }

    [Fact]
    public async Task Stream_added_after_the_first_read_joins_the_publication_is_snapshotted_and_then_streamed()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 300) g;
            CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 300) g;
            """, "ingest");
        var config = Json(pg.Config(db, "s_added", ", \"chunkSize\": 100"));
        var mirrors = new Dictionary<string, Mirror> { ["public.a"] = new(), ["public.b"] = new() };

        Checkpoint? last = null;
        await using (var first = Open(config, null, "public.a"))
        {
            await foreach (var m in first.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch batch)
                {
                    mirrors[batch.Stream].Apply(batch);
                }
                else if (m is Checkpoint c)
                {
                    last = c;
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        Assert.Empty(mirrors["public.b"].Rows);
        Assert.False(await pg.ScalarAsync<bool>(db, "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'pub_s_added' AND tablename = 'b')"));

        // Changes before b joins the publication reach the lake through b's snapshot; changes after it, through the stream.
        await pg.ExecAsync(db, "UPDATE a SET v = 'a-late' WHERE id = 5; UPDATE b SET v = 'b-before' WHERE id = 7; DELETE FROM b WHERE id = 8", "ingest");
        var snapshotted = false;
        await using (var second = Open(config, last!.State, "public.a", "public.b"))
        {
            var wroteAfter = false;
            await foreach (var m in second.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch batch)
                {
                    snapshotted |= batch.Stream == "public.b" && batch.Ops.Contains(ChangeOp.Read);
                    mirrors[batch.Stream].Apply(batch);
                    if (batch.Stream == "public.b" && mirrors["public.b"].Rows.ContainsKey(9999))
                    {
                        break;
                    }
                }
                else if (m is CaughtUp && !wroteAfter)
                {
                    wroteAfter = true;
                    await pg.ExecAsync(db, "UPDATE b SET v = 'b-after' WHERE id = 9; DELETE FROM b WHERE id = 10; INSERT INTO a VALUES (9999, 'a-new'); INSERT INTO b VALUES (9999, 'b-new')", "ingest");
                }
            }
        }

        Assert.True(snapshotted, "b should have been snapshotted");
        Assert.True(await pg.ScalarAsync<bool>(db, "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'pub_s_added' AND tablename = 'b')"));
        Assert.Equal(await SourceAsync(db, "a"), mirrors["public.a"].Rows);
        Assert.Equal(await SourceAsync(db, "b"), mirrors["public.b"].Rows);
    }

    [Fact]
    public async Task Check_names_a_slot_in_use_by_another_reader()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE u (id int PRIMARY KEY, v text)", "ingest");
        var config = Json(pg.Config(db, "s_busy"));
        await using var reader = Open(config, null, "public.u");
        await using var messages = reader.ReadAsync(CancellationToken.None).GetAsyncEnumerator();
        while (await messages.MoveNextAsync() && messages.Current is not CaughtUp)
        {
        }

        var result = await new PostgresConnector().CheckAsync(config, CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("Replication slot s_busy is in use by another process (pid", result.Message, StringComparison.Ordinal);
        Assert.Equal("/slotName", result.Field);
    }

    [Fact]
    public async Task Initial_only_copies_the_tables_then_ends_and_drops_its_slot()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE o (id int PRIMARY KEY, v text); INSERT INTO o SELECT g, 'v' || g FROM generate_series(1, 250) g", "ingest");
        var mirror = new Mirror();
        var caughtUp = false;
        await using (var reader = Open(Json(pg.Config(db, "s_once", ", \"snapshotMode\": \"initial_only\", \"chunkSize\": 100")), null, "public.o"))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    mirror.Apply(b);
                }

                caughtUp |= m is CaughtUp;
            }
        }

        Assert.True(caughtUp);
        Assert.Equal(await SourceAsync(db, "o"), mirror.Rows);
        Assert.All(mirror.Ops, op => Assert.Equal(ChangeOp.Read, op));
        Assert.Equal(0L, await pg.ScalarAsync<long>(db, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 's_once'"));
    }

    [Fact]
    public async Task Snapshot_mode_never_streams_only_changes_made_after_the_slot()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE n (id int PRIMARY KEY, v text); INSERT INTO n VALUES (1, 'old')", "ingest");
        var mirror = new Mirror();
        await using (var reader = Open(Json(pg.Config(db, "s_never", ", \"snapshotMode\": \"never\"")), null, "public.n"))
        {
            await using var messages = reader.ReadAsync(CancellationToken.None).GetAsyncEnumerator();
            var inserted = false;
            while (await messages.MoveNextAsync())
            {
                if (messages.Current is ChangeBatch b)
                {
                    mirror.Apply(b);
                    if (mirror.Rows.ContainsKey(2))
                    {
                        break;
                    }
                }
                else if (messages.Current is CaughtUp && !inserted)
                {
                    await pg.ExecAsync(db, "INSERT INTO n VALUES (2, 'new')", "ingest");
                    inserted = true;
                }
            }
        }

        Assert.Equal(new SortedDictionary<int, string?> { [2] = "new" }, mirror.Rows);
        Assert.Equal([ChangeOp.Insert], mirror.Ops);
    }
}
