using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>A transaction larger than a batch: bounded batches as it decodes, one checkpoint at its commit.</summary>
[Collection("postgres")]
public sealed class PostgresLargeTransactionTests(PgServer pg)
{
    [Fact]
    public async Task Large_transaction_goes_out_in_bounded_batches_with_increasing_positions_and_one_checkpoint_after_the_last()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE big (id bigint PRIMARY KEY, n numeric(12,2), t text, ts timestamptz, f boolean)", "ingest");
        var config = PostgresStreamingTests.Json(pg.Config(db, "s_bigtx", ", \"snapshotMode\": \"never\", \"chunkSize\": 1000"));
        await using var reader = new PostgresConnector().OpenReader(new ReadContext("test", config, [new StreamSelection("public.big", SyncMode.Cdc)], null, NullConnectorLog.Instance));
        await using var messages = reader.ReadAsync(CancellationToken.None).GetAsyncEnumerator();
        while (await messages.MoveNextAsync() && messages.Current is not CaughtUp)
        {
        }

        await pg.ExecAsync(db, """
            INSERT INTO big SELECT g, g * 1.25 - 100, 'row ' || g, '2024-05-01 12:00:00.123456+00'::timestamptz + g * interval '1 minute', g % 2 = 0
              FROM generate_series(1, 2500) g
            """, "ingest");

        // Messages until the transaction's checkpoint: batches only, none above the chunk size.
        var batches = new List<ChangeBatch>();
        while (await messages.MoveNextAsync())
        {
            if (messages.Current is ChangeBatch b)
            {
                batches.Add(b);
            }
            else if (messages.Current is Checkpoint && batches.Sum(x => x.Length) > 0)
            {
                break;
            }
        }

        Assert.Equal(2500, batches.Sum(b => b.Length));
        Assert.True(batches.Count >= 3, $"expected the 2,500 rows in batches of at most 1,000, got {batches.Count} batch(es)");
        Assert.All(batches, b => Assert.InRange(b.Length, 1, 1000));
        var last = default(SourcePosition);
        var id = 0L;
        foreach (var b in batches)
        {
            var ids = (Int64Array)b.Data.Column(0);
            var n = (Decimal128Array)b.Data.Column(1);
            var t = (StringArray)b.Data.Column(2);
            var ts = (TimestampArray)b.Data.Column(3);
            var f = (BooleanArray)b.Data.Column(4);
            for (var i = 0; i < b.Length; i++)
            {
                Assert.True(b.Positions[i] > last, $"position {b.Positions[i]} does not follow {last}");
                last = b.Positions[i];
                id++;
                Assert.Equal(ChangeOp.Insert, b.Ops[i]);
                Assert.Equal(id, ids.GetValue(i));
                Assert.Equal((id * 1.25m) - 100, n.GetValue(i));
                Assert.Equal("row " + id, t.GetString(i));
                Assert.Equal(new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_560).AddMinutes(id).UtcTicks, (ts.Values[i] * 10) + DateTime.UnixEpoch.Ticks);
                Assert.Equal(id % 2 == 0, f.GetValue(i));
            }

            b.Dispose();
        }
    }
}
