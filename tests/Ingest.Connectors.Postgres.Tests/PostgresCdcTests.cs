using System.Globalization;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

[Collection("postgres")]
public sealed class PostgresCdcTests(PgServer pg)
{
    private const string TypeColumns = "b, i2, i8, n, nu, r, d, t, vc, c, by, dt, ts, tz, u, j, ip, iv, tm, e, ai, at, an";

    private static readonly string[] ExpectedRow =
    [
        "true", "-32768", "9223372036854775807", "123456789.123", "12345678901234567890.123456789012345678", "1.5", "0.1",
        "héllo \"quoted\" \\ back", "abc", "ab ", "0x00FF10", "2024-02-29", "2024-02-29T13:14:15.1234560", "2024-02-29T11:14:15.5000000Z",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{\"a\": [1, 2]}", "192.168.0.1/24", "1 day 02:03:04", "12:34:56.789", "happy",
        "[1,null,3]", "[a b,c,d,null,e\"f]", "[1.5,2.25]",
    ];

    [Fact]
    public async Task Every_type_family_round_trips_value_for_value_through_snapshot_and_streaming()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TYPE mood AS ENUM ('sad', 'happy');
            CREATE TABLE types (id int PRIMARY KEY, b boolean, i2 smallint, i8 bigint, n numeric(12,3), nu numeric, r real, d double precision,
              t text, vc varchar(10), c char(3), by bytea, dt date, ts timestamp, tz timestamptz, u uuid, j jsonb, ip inet, iv interval,
              tm time, e mood, ai int[], at text[], an numeric(5,2)[]);
            INSERT INTO types VALUES (1, true, -32768, 9223372036854775807, 123456789.123, 12345678901234567890.123456789012345678, 1.5, 0.1,
              'héllo "quoted" \ back', 'abc', 'ab', '\x00ff10', '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.5+02',
              'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '192.168.0.1/24', '1 day 02:03:04', '12:34:56.789', 'happy',
              '{1,NULL,3}', '{"a b","c,d",NULL,"e\"f"}', '{1.50,2.25}');
            INSERT INTO types (id) VALUES (3);
            """, "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_types", ", \"chunkSize\": 1");

        await Cli.RunOnceAsync(dir, config, "types");
        await pg.ExecAsync(db, $"INSERT INTO types SELECT 2, {TypeColumns} FROM types WHERE id = 1; INSERT INTO types (id) VALUES (4); UPDATE types SET t = 'changed' WHERE id = 3", "ingest");
        await Cli.RunOnceAsync(dir, config, "types");

        var rows = (await Lake.ReadAsync(dir.Combine("lake", "types"))).ToDictionary(r => (int)r["id"]!);
        Assert.Equal([1, 2, 3, 4], rows.Keys.Order());
        var columns = TypeColumns.Split(", ");
        foreach (var id in new[] { 1, 2 })
        {
            var actual = columns.Select(c => Lake.Show(rows[id][c])).ToArray();
            Assert.Equal(ExpectedRow, actual);
        }

        Assert.Equal("changed", rows[3]["t"]);
        Assert.All(columns.Where(c => c != "t"), c => Assert.Null(rows[3][c]));
        Assert.All(columns, c => Assert.Null(rows[4][c]));
    }

    [Fact]
    public async Task Snapshot_under_concurrent_writes_then_streaming_ends_equal_to_the_source()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, t text);
            INSERT INTO items SELECT g, g % 97, 'row ' || g FROM generate_series(1, 5000) g;
            """, "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_conc", ", \"chunkSize\": 400");

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteRandomlyAsync(pg.User(db), stop.Token));
        await Cli.RunOnceAsync(dir, config, "items");
        await stop.CancelAsync();
        var written = await writer;
        Assert.True(written > 10, $"the writer should have committed while the snapshot ran (it committed {written})");

        await Cli.RunOnceAsync(dir, config, "items");

        await AssertMirrorsAsync(db, "items", dir.Combine("lake", "items"));
    }

    [Fact]
    public async Task Updates_deletes_key_changes_and_truncate_stream_into_the_merge_table_and_the_slot_advances()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE k (id int PRIMARY KEY, v text); INSERT INTO k SELECT g, 'v' || g FROM generate_series(1, 10) g", "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_ops");

        await Cli.RunOnceAsync(dir, config, "k");
        await AssertMirrorsAsync(db, "k", dir.Combine("lake", "k"));

        await pg.ExecAsync(db, "UPDATE k SET v = 'updated' WHERE id = 1; DELETE FROM k WHERE id = 2; UPDATE k SET id = 103 WHERE id = 3; INSERT INTO k VALUES (11, 'new')", "ingest");
        var afterChanges = await pg.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(db, "SELECT pg_current_wal_lsn()");
        await Cli.RunOnceAsync(dir, config, "k");
        await AssertMirrorsAsync(db, "k", dir.Combine("lake", "k"));
        var confirmed = await pg.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(db, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_ops'");
        Assert.True(confirmed >= afterChanges, $"the slot's confirmed_flush_lsn {confirmed} should have passed {afterChanges}");

        await pg.ExecAsync(db, "TRUNCATE k; INSERT INTO k SELECT g, 'again ' || g FROM generate_series(500, 520) g", "ingest");
        await Cli.RunOnceAsync(dir, config, "k");
        await AssertMirrorsAsync(db, "k", dir.Combine("lake", "k"));

        // A run with nothing new changes nothing and still moves the slot on (heartbeats).
        var before = await pg.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(db, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_ops'");
        await Cli.RunOnceAsync(dir, config, "k");
        await AssertMirrorsAsync(db, "k", dir.Combine("lake", "k"));
        var after = await pg.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(db, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_ops'");
        Assert.True(after > before, $"confirmed_flush_lsn should advance on an idle database ({before} -> {after})");
    }

    [Fact]
    public async Task Large_toasted_value_survives_an_update_of_another_column_with_replica_identity_full()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
            ALTER TABLE docs REPLICA IDENTITY FULL;
            INSERT INTO docs SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 3000) g;
            """, "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_toast");
        await Cli.RunOnceAsync(dir, config, "docs");

        await pg.ExecAsync(db, "UPDATE docs SET n = 1; INSERT INTO docs SELECT 2, 5, string_agg(md5((g * 7)::text), '') FROM generate_series(1, 3000) g", "ingest");
        await pg.ExecAsync(db, "UPDATE docs SET n = n + 10", "ingest");
        await Cli.RunOnceAsync(dir, config, "docs");

        await AssertMirrorsAsync(db, "docs", dir.Combine("lake", "docs"));
        var rows = await Lake.ReadAsync(dir.Combine("lake", "docs"));
        Assert.All(rows, r => Assert.Equal(96_000, ((string)r["body"]!).Length));
    }

    [Fact]
    public async Task Large_toasted_value_survives_an_update_of_another_column_without_replica_identity_full()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE notes (id int PRIMARY KEY, n int, body text);
            INSERT INTO notes SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 3000) g;
            """, "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_toast_default");
        await Cli.RunOnceAsync(dir, config, "notes");

        // Both updates leave the body alone: pgoutput marks it unchanged and the merge keeps the lake's value.
        await pg.ExecAsync(db, "UPDATE notes SET n = 1; INSERT INTO notes SELECT 2, 5, string_agg(md5((g * 7)::text), '') FROM generate_series(1, 3000) g", "ingest");
        await pg.ExecAsync(db, "UPDATE notes SET n = n + 10", "ingest");
        await Cli.RunOnceAsync(dir, config, "notes");

        await AssertMirrorsAsync(db, "notes", dir.Combine("lake", "notes"));
        var rows = await Lake.ReadAsync(dir.Combine("lake", "notes"));
        Assert.All(rows, r => Assert.Equal(96_000, ((string)r["body"]!).Length));
    }

    [Fact]
    public async Task Columns_added_and_dropped_mid_stream_flow_into_the_merge_table()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE shapes (id int PRIMARY KEY, a text, b int); INSERT INTO shapes VALUES (1, 'one', 1)", "ingest");
        using var dir = new TempDir();
        var config = pg.Config(db, "s_shapes");
        await Cli.RunOnceAsync(dir, config, "shapes");

        await pg.ExecAsync(db, """
            INSERT INTO shapes VALUES (2, 'two', 2);
            ALTER TABLE shapes ADD COLUMN c numeric(10,2);
            INSERT INTO shapes VALUES (3, 'three', 3, 3.25);
            UPDATE shapes SET c = 1.5 WHERE id = 1;
            ALTER TABLE shapes DROP COLUMN a;
            INSERT INTO shapes VALUES (4, 4, 4.75);
            """, "ingest");
        var run = await Cli.RunOnceAsync(dir, config, "shapes");

        var rows = (await Lake.ReadAsync(dir.Combine("lake", "shapes"))).ToDictionary(r => (int)r["id"]!);
        Assert.Equal([1, 2, 3, 4], rows.Keys.Order());
        Assert.Equal(1.5m, rows[1]["c"]);
        Assert.Null(rows[2]["c"]);
        Assert.Equal(3.25m, rows[3]["c"]);
        Assert.Equal(4.75m, rows[4]["c"]);
        Assert.Equal(4, rows[4]["b"]);
        // The evolve policy keeps the dropped column: rows written before the drop keep their value, later ones read null.
        Assert.Equal("three", rows[3]["a"]);
        Assert.Null(rows[4]["a"]);
        Assert.Contains("the table changed shape", run.Out + run.Error, StringComparison.Ordinal);
    }

    private static async Task<int> WriteRandomlyAsync(string connectionString, CancellationToken stop)
    {
        var random = new Random(11);
        var commits = 0;
        var next = 100_000L;
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(CancellationToken.None);
        while (!stop.IsCancellationRequested)
        {
            var sql = random.Next(4) switch
            {
                0 => $"INSERT INTO items VALUES ({next++}, {random.Next(1000)}, 'ins')",
                1 => $"DELETE FROM items WHERE id = {random.Next(1, 5000)}",
                2 => $"UPDATE items SET n = n + 1, t = 'upd' WHERE id BETWEEN {random.Next(1, 5000)} AND {random.Next(1, 5000)}",
                _ => $"UPDATE items SET id = {next++} WHERE id = {random.Next(1, 5000)}",
            };
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            commits++;
            await Task.Delay(2, CancellationToken.None);
        }

        return commits;
    }

    /// <summary>The merge table holds exactly the source's rows: each key once, every value equal.</summary>
    private async Task AssertMirrorsAsync(string db, string table, string tablePath)
    {
        var (expected, actual) = await Mirror.RowsAsync(pg.Admin(db), table, tablePath);
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected, actual);
    }
}
