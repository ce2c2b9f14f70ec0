using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>The slot's retained WAL, yielded as a figure of the connection's status.</summary>
[Collection("postgres")]
public sealed class PostgresFiguresTests(PgServer pg)
{
    [Fact]
    public async Task Streaming_read_yields_the_slots_retained_WAL_as_a_figure_that_grows_while_nothing_is_acknowledged()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE walf (id int PRIMARY KEY, t text); INSERT INTO walf SELECT g, 'x' FROM generate_series(1, 10) g", "ingest");
        var figures = new List<(ConnectorFigure Figure, bool BeforeRows)>();
        var rows = false;
        await using var read = new ReadSession(new PostgresConnector(), PostgresStreamingTests.Json(pg.Config(db, "s_walf")), null, "public.walf");
        bool Collect(SourceMessage m)
        {
            if (m is SourceFigures f)
            {
                figures.AddRange(f.Figures.Select(x => (x, !rows)));
            }

            rows |= m is ChangeBatch;
            return m is CaughtUp;
        }

        Assert.True(await read.ReadUntilAsync(Collect));

        // Measured before the table's copy (the snapshot's first rows), so the status shows it during the snapshot too.
        Assert.True(figures.Count > 0 && figures[0].BeforeRows, "a figure should come before the snapshot's rows");
        var first = figures[0].Figure;
        Assert.Equal(("retained_wal_bytes", "retained WAL", FigureUnits.Bytes), (first.Name, first.Label, first.Unit));
        Assert.InRange(first.Value, 0, 16 * 1024 * 1024);

        // Nothing is acknowledged, so the slot keeps every byte written from now on (5000 rows of 100 bytes: > 500 kB).
        await pg.ExecAsync(db, "INSERT INTO walf SELECT g, repeat('y', 100) FROM generate_series(11, 5010) g", "ingest");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.True(await read.ReadUntilAsync(m =>
        {
            Collect(m);
            timeout.Token.ThrowIfCancellationRequested();
            return figures.Count > 0 && figures[^1].Figure.Value > 500_000;
        }));

        var grown = figures[^1].Figure;
        Assert.Equal("retained_wal_bytes", grown.Name);
        var server = await pg.ScalarAsync<long>(db, "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 's_walf'");
        Assert.InRange(grown.Value, 500_000, server);
        Assert.True(grown.Value > first.Value, $"retained WAL should grow from {first.Value} bytes, is {grown.Value}");
    }
}
