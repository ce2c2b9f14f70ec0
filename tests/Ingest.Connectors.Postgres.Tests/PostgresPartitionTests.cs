using System.Text.Json;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>Partitioned tables arrive as their root; connection failures are classified for the engine's retries.</summary>
[Collection("postgres")]
public sealed class PostgresPartitionTests(PgServer pg)
{
    [Fact]
    public async Task Partitioned_table_is_discovered_snapshotted_and_streamed_as_its_root()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE events (id bigint, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
            CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            INSERT INTO events SELECT g, DATE '2024-06-01' + (g * 2), 'e' || g FROM generate_series(1, 200) g;
            """, "ingest");
        using var config = JsonDocument.Parse("{" + pg.Config(db, "s_part") + "}");

        var catalog = await new PostgresConnector().DiscoverAsync(config.RootElement, CancellationToken.None);
        var stream = Assert.Single(catalog.Streams);
        Assert.Equal("public.events", stream.Name);
        Assert.Equal(["id", "day"], stream.PrimaryKey);

        using var dir = new TempDir();
        await Cli.RunOnceAsync(dir, pg.Config(db, "s_part", ", \"chunkSize\": 50"), "events");
        var (expected, actual) = await Mirror.RowsAsync(pg.Admin(db), "events", dir.Combine("lake", "events"));
        Assert.Equal(200, actual.Count);
        Assert.Equal(expected, actual);

        // Changes in either partition, and a row moving between partitions, stream under the root's name.
        await pg.ExecAsync(db, """
            INSERT INTO events VALUES (1000, '2025-03-01', 'new');
            UPDATE events SET v = 'changed' WHERE id = 10;
            UPDATE events SET day = '2025-02-02' WHERE id = 20;
            DELETE FROM events WHERE id = 30;
            """, "ingest");
        await Cli.RunOnceAsync(dir, pg.Config(db, "s_part", ", \"chunkSize\": 50"), "events");
        (expected, actual) = await Mirror.RowsAsync(pg.Admin(db), "events", dir.Combine("lake", "events"));
        Assert.Equal(expected, actual);
        Assert.Contains(actual, r => r.StartsWith("20|2025-02-02", StringComparison.Ordinal));
        Assert.True(await pg.ScalarAsync<bool>(db, "SELECT pubviaroot FROM pg_publication WHERE pubname = 'pub_s_part'"), "the publication should publish via the partition root");
    }

    [Theory]
    [InlineData("55006", "replication slot \"s\" is active for PID 4242", true)]
    [InlineData("57P01", "terminating connection due to administrator command", true)]
    [InlineData("42P01", "relation \"x\" does not exist", false)]
    public void Server_errors_about_availability_are_transient_and_others_fatal(string sqlState, string message, bool transient)
    {
        var e = PostgresReader.Classify(new PostgresException(message, "ERROR", "ERROR", sqlState));
        Assert.Equal(transient ? Ingest.Sdk.Connectors.ErrorKind.Transient : Ingest.Sdk.Connectors.ErrorKind.Fatal, e.Kind);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Replication_stream_cut_short_by_a_shutting_down_server_is_transient()
    {
        var e = PostgresReader.Classify(new NpgsqlException("Received backend message CommandComplete while expecting CopyDataMessage. Please file a bug."));
        Assert.Equal(Ingest.Sdk.Connectors.ErrorKind.Transient, e.Kind);
        Assert.True(PostgresReader.SlotStillActive(new PostgresException("replication slot \"s\" is active for PID 17", "ERROR", "ERROR", "55006")));
    }
}
