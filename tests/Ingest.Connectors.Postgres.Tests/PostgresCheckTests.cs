using System.Text.Json;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Postgres.Tests;

[Collection("postgres")]
public sealed class PostgresCheckTests(PgServer pg)
{
    private static JsonElement Config(string fields)
    {
        using var doc = JsonDocument.Parse("{" + fields + "}");
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task Check_succeeds_on_a_database_ready_for_logical_replication()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))", "ingest");

        var result = await new PostgresConnector().CheckAsync(Config(pg.Config(db, "s_ok")), CancellationToken.None);

        Assert.True(result.Succeeded, result.Message);
        Assert.Contains("public.orders", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_names_wal_level_and_the_fix_when_it_is_not_logical()
    {
        var replica = PgServer.WithWalLevel("replica");
        await replica.InitializeAsync();
        try
        {
            var result = await new PostgresConnector().CheckAsync(Config(replica.Config("postgres", "s_wal")), CancellationToken.None);

            Assert.False(result.Succeeded);
            Assert.Contains("wal_level is 'replica'", result.Message, StringComparison.Ordinal);
            Assert.Contains("ALTER SYSTEM SET wal_level = logical", result.Message, StringComparison.Ordinal);
        }
        finally
        {
            await replica.DisposeAsync();
        }
    }

    [Fact]
    public async Task Check_names_the_missing_replication_privilege_with_the_alter_role_to_run()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync("postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'plain') THEN CREATE ROLE plain LOGIN; END IF; END $$");
        await pg.ExecAsync(db, "CREATE TABLE t (id int PRIMARY KEY)", "ingest");
        var config = pg.Config(db, "s_priv").Replace("\"username\": \"ingest\"", "\"username\": \"plain\"", StringComparison.Ordinal);

        var result = await new PostgresConnector().CheckAsync(Config(config), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("REPLICATION", result.Message, StringComparison.Ordinal);
        Assert.Contains("ALTER ROLE \"plain\" WITH REPLICATION", result.Message, StringComparison.Ordinal);
        Assert.Equal("/username", result.Field);
    }

    [Fact]
    public async Task Check_names_a_table_without_primary_key_and_how_to_fix_it()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (a int, b text)", "ingest");

        var result = await new PostgresConnector().CheckAsync(Config(pg.Config(db, "s_key")), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("public.loose has no primary key", result.Message, StringComparison.Ordinal);
        Assert.Contains("REPLICA IDENTITY FULL", result.Message, StringComparison.Ordinal);

        // REPLICA IDENTITY FULL makes it capturable.
        await pg.ExecAsync(db, "ALTER TABLE loose REPLICA IDENTITY FULL", "ingest");
        var again = await new PostgresConnector().CheckAsync(Config(pg.Config(db, "s_key")), CancellationToken.None);
        Assert.True(again.Succeeded, again.Message);
    }

    [Fact]
    public async Task Check_names_a_publication_the_role_cannot_create()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE admin_owned (id int PRIMARY KEY); GRANT SELECT ON admin_owned TO ingest");

        var result = await new PostgresConnector().CheckAsync(Config(pg.Config(db, "s_pub")), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Contains("Publication pub_s_pub does not exist", result.Message, StringComparison.Ordinal);
        Assert.Contains("CREATE PUBLICATION \"pub_s_pub\" FOR TABLE \"public\".\"admin_owned\"", result.Message, StringComparison.Ordinal);
        Assert.Equal("/publicationName", result.Field);
    }

    [Fact]
    public async Task Discover_maps_postgres_types_keys_and_row_estimates()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TYPE mood AS ENUM ('sad', 'happy');
            CREATE TABLE everything (
              a boolean, b smallint, c integer NOT NULL, d bigint, e numeric(12,3), f numeric, g real, h double precision,
              i text, j varchar(20), k char(3), l bytea, m date, n timestamp, o timestamptz, p uuid, q json, r jsonb,
              s inet, t interval, u time, v mood, w integer[], x text[], y numeric(5,2)[], z regclass,
              PRIMARY KEY (c));
            INSERT INTO everything (c) SELECT g FROM generate_series(1, 500) g;
            ANALYZE everything;
            """, "ingest");

        var catalog = await new PostgresConnector().DiscoverAsync(Config(pg.Config(db, "s_disc")), CancellationToken.None);

        var s = Assert.Single(catalog.Streams);
        Assert.Equal("public.everything", s.Name);
        Assert.Equal(["c"], s.PrimaryKey);
        Assert.Equal(500, s.EstimatedRows);
        var types = s.Schema.Columns.ToDictionary(c => c.Name, c => c.Type.DisplayName);
        Assert.Equal("boolean", types["a"]);
        Assert.Equal("short", types["b"]);
        Assert.Equal("integer", types["c"]);
        Assert.False(s.Schema["c"].Nullable);
        Assert.Equal("long", types["d"]);
        Assert.Equal("decimal(12,3)", types["e"]);
        Assert.Equal("decimal(38,18)", types["f"]);
        Assert.Equal("float", types["g"]);
        Assert.Equal("double", types["h"]);
        Assert.Equal("string", types["i"]);
        Assert.Equal("string", types["j"]);
        Assert.Equal("string", types["k"]);
        Assert.Equal("binary", types["l"]);
        Assert.Equal("date", types["m"]);
        Assert.Equal("timestamp_ntz", types["n"]);
        Assert.Equal("timestamp", types["o"]);
        foreach (var c in new[] { "p", "q", "r", "s", "t", "u", "v" })
        {
            Assert.Equal("string", types[c]);
        }

        Assert.Equal("array<integer>", types["w"]);
        Assert.Equal("array<string>", types["x"]);
        Assert.Equal("array<decimal(5,2)>", types["y"]);
        Assert.Contains("z has type regclass", s.Description, StringComparison.Ordinal);

        var asString = await new PostgresConnector().DiscoverAsync(Config(pg.Config(db, "s_disc", ", \"numericMapping\": \"string\"")), CancellationToken.None);
        Assert.Equal(DataType.String, asString.Streams[0].Schema["f"].Type);
    }
}
