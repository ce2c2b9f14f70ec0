using System.Text.Json;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>Streaming details seen at the reader: unchanged TOASTed values, schema changes mid-stream.</summary>
[Collection("postgres")]
public sealed class PostgresStreamingTests(PgServer pg)
{
    internal static JsonElement Json(string fields)
    {
        using var doc = JsonDocument.Parse("{" + fields + "}");
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task Update_leaving_a_toasted_value_alone_marks_the_column_unchanged_instead_of_stopping_the_read()
    {
        var db = await pg.CreateDatabaseAsync();
        // md5 hex text does not compress with pglz: 96 kB stays far above the 2 kB TOAST threshold and is stored out of line.
        await pg.ExecAsync(db, """
            CREATE TABLE notes (id int PRIMARY KEY, n int, body text);
            INSERT INTO notes SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 3000) g;
            """, "ingest");
        Assert.True(await pg.ScalarAsync<bool>(db, "SELECT pg_relation_size(reltoastrelid) > 90000 FROM pg_class WHERE relname = 'notes'"), "the body should be TOASTed");
        await using var read = new ReadSession(new PostgresConnector(), Json(pg.Config(db, "s_unchanged")), null, "public.notes");
        Assert.True(await read.CaughtUpAsync());
        read.Batches.Clear();

        await pg.ExecAsync(db, "UPDATE notes SET n = 1 WHERE id = 1; UPDATE notes SET body = 'short' WHERE id = 1", "ingest");
        Assert.True(await read.ReadUntilAsync(_ => read.Batches.Sum(b => b.Length) >= 2));

        var changes = read.Batches.SelectMany(b => Enumerable.Range(0, b.Length).Select(i => (Batch: b, Row: i))).ToList();
        var (first, row) = changes[0];
        Assert.Equal(ChangeOp.Update, first.Ops[row]);
        var body = first.Data.Schema.GetFieldIndex("body");
        Assert.True(first.IsUnchanged(row, body), "the untouched TOASTed body should be marked unchanged");
        Assert.False(first.IsUnchanged(row, first.Data.Schema.GetFieldIndex("n")));
        Assert.Equal(1, Rows.Of(first.Data)[row]["n"]);
        Assert.Null(Rows.Of(first.Data)[row]["body"]);

        // The next update sets the body: a real value, not marked.
        var (second, row2) = changes[1];
        Assert.False(second.IsUnchanged(row2, body));
        Assert.Equal("short", Rows.Of(second.Data)[row2]["body"]);
    }

    [Fact]
    public async Task Alter_table_mid_stream_gives_later_batches_the_new_schema_added_dropped_and_retyped_columns()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE sc (id int PRIMARY KEY, a text, b int)", "ingest");
        await using var read = new ReadSession(new PostgresConnector(), Json(pg.Config(db, "s_alter")), null, "public.sc");
        Assert.True(await read.CaughtUpAsync());

        await pg.ExecAsync(db, "INSERT INTO sc VALUES (1, 'one', 1)", "ingest");
        // One transaction with rows before and after the change: its batches split at the change.
        await pg.ExecAsync(db, "BEGIN; INSERT INTO sc VALUES (2, 'two', 2); ALTER TABLE sc ADD COLUMN c numeric(10,2); INSERT INTO sc VALUES (3, 'three', 3, 3.25); COMMIT", "ingest");
        await pg.ExecAsync(db, "ALTER TABLE sc DROP COLUMN a; UPDATE sc SET b = 20 WHERE id = 2", "ingest");
        await pg.ExecAsync(db, "ALTER TABLE sc ALTER COLUMN b TYPE bigint; INSERT INTO sc VALUES (4, 5000000000, 4.5)", "ingest");
        Assert.True(await read.ReadUntilAsync(_ => read.RowsOf("public.sc").Any(r => Equals(r["id"], 4))));

        var batches = read.Batches.Where(b => b.Length > 0).ToList();
        string Shape(ChangeBatch b) => string.Join(",", b.Data.Schema.FieldsList.Select(f => f.Name + ":" + f.DataType.Name));
        Assert.Equal(
            ["id:int32,a:utf8,b:int32", "id:int32,a:utf8,b:int32", "id:int32,a:utf8,b:int32,c:decimal128", "id:int32,b:int32,c:decimal128", "id:int32,b:int64,c:decimal128"],
            batches.Select(Shape));
        var rows = read.RowsOf("public.sc");
        Assert.Equal(3.25m, rows[2]["c"]);
        Assert.Equal(20, rows[3]["b"]);
        Assert.Equal(5_000_000_000L, rows[4]["b"]);
        Assert.Equal(4.5m, rows[4]["c"]);
        var positions = batches.SelectMany(b => b.Positions.Take(b.Length)).ToList();
        Assert.Equal(positions.Order(), positions);
    }

    [Fact]
    public async Task A_column_added_with_a_default_says_older_rows_need_a_backfill()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE dflt (id int PRIMARY KEY, a text); INSERT INTO dflt VALUES (1, 'old')", "ingest");
        await using var read = new ReadSession(new PostgresConnector(), Json(pg.Config(db, "s_default")), null, "public.dflt");
        Assert.True(await read.CaughtUpAsync());

        // One added without a default (nothing to say about older rows), one with: only the latter is named.
        await pg.ExecAsync(db, "ALTER TABLE dflt ADD COLUMN plain int, ADD COLUMN tier text NOT NULL DEFAULT 'basic'; INSERT INTO dflt VALUES (2, 'new', 5, 'gold')", "ingest");
        var notes = new List<StreamProgress>();
        Assert.True(await read.ReadUntilAsync(m =>
        {
            if (m is StreamProgress { Message: not null } p)
            {
                notes.Add(p);
            }

            return read.RowsOf("public.dflt").Any(r => Equals(r["id"], 2));
        }));

        var note = Assert.Single(notes);
        Assert.Equal("public.dflt", note.Stream);
        Assert.Equal(StreamPhase.Streaming, note.Phase);
        Assert.Contains("tier = 'basic'::text", note.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("plain", note.Message, StringComparison.Ordinal);
        Assert.Contains("backfill of public.dflt", note.Message, StringComparison.Ordinal);
        Assert.Equal("gold", read.RowsOf("public.dflt").Single(r => Equals(r["id"], 2))["tier"]);
    }

    [Fact]
    public async Task Slot_lag_is_an_observable_gauge_tagged_with_the_connection_and_the_slot()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE lagm (id int PRIMARY KEY, t text)", "ingest");
        var seen = new List<(long Value, string? Connection, string? Slot)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Ingest.Connectors.Postgres" && instrument.Name == "ingest.postgres.slot_lag_bytes")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? connection = null, slot = null;
            foreach (var tag in tags)
            {
                connection = tag.Key == "connection" ? (string?)tag.Value : connection;
                slot = tag.Key == "slot" ? (string?)tag.Value : slot;
            }

            lock (seen)
            {
                seen.Add((value, connection, slot));
            }
        });
        listener.Start();

        var reader = new PostgresConnector().OpenReader(new Sdk.Connectors.ReadContext("shop", Json(pg.Config(db, "s_lag_metric")), [new Sdk.Connectors.StreamSelection("public.lagm", Sdk.Connectors.SyncMode.Cdc)], null, Sdk.Connectors.NullConnectorLog.Instance));
        await using (reader)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await using var messages = reader.ReadAsync(cts.Token).GetAsyncEnumerator(cts.Token);
            while (await messages.MoveNextAsync() && messages.Current is not CaughtUp)
            {
            }

            // Nothing is acknowledged, so the slot retains every byte written from now on.
            await pg.ExecAsync(db, "INSERT INTO lagm SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g", "ingest");
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                listener.RecordObservableInstruments();
                lock (seen)
                {
                    if (seen.Any(m => m.Slot == "s_lag_metric" && m.Value > 500_000))
                    {
                        break;
                    }
                }

                // The lag is measured every heartbeat interval (1 s here); heartbeats keep messages coming.
                Assert.True(await messages.MoveNextAsync());
            }
        }

        lock (seen)
        {
            Assert.Contains(seen, m => m.Slot == "s_lag_metric" && m.Connection == "shop" && m.Value > 500_000);
        }

        // A disposed reader is no longer observed.
        seen.Clear();
        listener.RecordObservableInstruments();
        Assert.DoesNotContain(seen, m => m.Slot == "s_lag_metric");
    }
}
