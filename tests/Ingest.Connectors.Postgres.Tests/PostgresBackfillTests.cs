using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>
/// Backfills while streaming (DBLog watermarks), driven at the reader as the engine drives it: batches applied to a
/// merge mirror (newest position wins; positions must strictly increase), checkpoints kept as durable state.
/// </summary>
[Collection("postgres")]
public sealed class PostgresBackfillTests(PgServer pg)
{
    /// <summary>A merge table in memory: rows by key (the first column), as text; checks positions strictly increase.</summary>
    private sealed class MergeMirror
    {
        public SortedDictionary<long, string> Rows { get; } = [];
        public SourcePosition Last { get; private set; }
        public List<long> ReadKeys { get; } = [];

        public void Apply(ChangeBatch b)
        {
            var rows = Ingest.Testing.Rows.Of(b.Data);
            for (var i = 0; i < b.Length; i++)
            {
                Assert.True(b.Positions[i] > Last, $"position {b.Positions[i]} ({b.Ops[i]}) does not follow {Last}");
                Last = b.Positions[i];
                var key = Convert.ToInt64(rows[i]["id"], CultureInfo.InvariantCulture);
                switch (b.Ops[i])
                {
                    case ChangeOp.Truncate: Rows.Clear(); break;
                    case ChangeOp.Delete: Rows.Remove(key); break;
                    default:
                        if (b.Ops[i] == ChangeOp.Read)
                        {
                            ReadKeys.Add(key);
                        }

                        Rows[key] = string.Join("|", rows[i].Values.Select(Lake.Show));
                        break;
                }
            }
        }
    }

    private sealed class Session(ISourceReader reader) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts = new(TimeSpan.FromMinutes(2));
        private IAsyncEnumerator<SourceMessage>? _messages;

        public ISourceReader Reader { get; } = reader;
        public IBackfillReader Backfills => (IBackfillReader)Reader;
        public List<SourceMessage> Seen { get; } = [];

        /// <summary>Reads until <paramref name="stop"/> holds for a message; returns that message.</summary>
        public async Task<SourceMessage> ReadUntilAsync(Func<SourceMessage, bool> stop, Action<SourceMessage>? each = null)
        {
            _messages ??= Reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
            while (await _messages.MoveNextAsync())
            {
                var m = _messages.Current;
                Seen.Add(m);
                each?.Invoke(m);
                if (stop(m))
                {
                    return m;
                }
            }

            throw new InvalidOperationException("the read ended");
        }

        public async ValueTask DisposeAsync()
        {
            await _cts.CancelAsync();
            if (_messages is not null)
            {
                await _messages.DisposeAsync();
            }

            await Reader.DisposeAsync();
            _cts.Dispose();
        }
    }

    private Session Open(string db, string slot, string extra, JsonElement? state, params BackfillRequest[] backfills) =>
        new(new PostgresConnector().OpenReader(new ReadContext("test", PostgresStreamingTests.Json(pg.Config(db, slot, extra)), [new StreamSelection("public.bf", SyncMode.Cdc)], state, NullConnectorLog.Instance)
        {
            Backfills = backfills,
        }));

    private async Task<SortedDictionary<long, string>> SourceAsync(string db, string where = "true")
    {
        var rows = new SortedDictionary<long, string>();
        await using var conn = new NpgsqlConnection(pg.Admin(db));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT * FROM bf WHERE {where} ORDER BY 1", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            var values = new object?[r.FieldCount];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = r.IsDBNull(i) ? null : r.GetValue(i);
            }

            rows[Convert.ToInt64(values[0], CultureInfo.InvariantCulture)] = string.Join("|", values.Select(Lake.Show));
        }

        return rows;
    }

    /// <summary>Commits a marker row and reads until it arrives: every change before it has been read.</summary>
    private static async Task DrainAsync(PgServer pg, string db, Session session, MergeMirror mirror)
    {
        await pg.ExecAsync(db, "INSERT INTO bf (id, n, t) VALUES (999999, 0, 'marker') ON CONFLICT (id) DO UPDATE SET n = bf.n + 1", "ingest");
        await session.ReadUntilAsync(m => m is ChangeBatch && mirror.Rows.ContainsKey(999999), m =>
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
            }
        });
    }

    private static async Task<int> WorkloadAsync(string connectionString, int seed, int maxId, CancellationToken stop)
    {
        var random = new Random(seed);
        var commits = 0;
        var next = 500_000L;
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(CancellationToken.None);
        while (!stop.IsCancellationRequested)
        {
            await using var tx = await conn.BeginTransactionAsync(CancellationToken.None);
            for (var s = random.Next(1, 4); s > 0; s--)
            {
                var id = random.Next(1, maxId);
                var sql = random.Next(6) switch
                {
                    0 => $"INSERT INTO bf VALUES ({next++}, {random.Next(1000)}, 'ins')",
                    1 => $"DELETE FROM bf WHERE id = {id}",
                    2 => $"UPDATE bf SET id = {next++} WHERE id = {id}",
                    3 => $"INSERT INTO bf VALUES ({id}, -1, 'back') ON CONFLICT (id) DO NOTHING",
                    _ => $"UPDATE bf SET n = n + 1, t = 'upd {commits}' WHERE id BETWEEN {id} AND {id + random.Next(30)}",
                };
                await using var cmd = new NpgsqlCommand(sql, conn, tx);
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }

            await tx.CommitAsync(CancellationToken.None);
            commits++;

            // A busy application, not a flood: an unthrottled loop on an idle machine writes WAL faster than one
            // decoder reads it, and the backfill's high watermark would then wait behind an ever-growing backlog.
            await Task.Delay(3, CancellationToken.None);
        }

        return commits;
    }

    [Fact]
    public async Task Backfill_while_a_workload_updates_and_deletes_the_same_rows_ends_equal_to_the_source()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, g, 'row ' || g FROM generate_series(1, 6000) g", "ingest");
        // No snapshot: the mirror starts empty, so every row it ends with came from the backfill or the stream.
        await using var session = Open(db, "s_bf_conc", ", \"snapshotMode\": \"never\", \"chunkSize\": 250", null);
        var mirror = new MergeMirror();
        void Apply(SourceMessage m)
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
            }
        }

        await session.ReadUntilAsync(m => m is CaughtUp, Apply);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WorkloadAsync(pg.User(db), 5, 6000, stop.Token));
        await Task.Delay(300);
        await session.Backfills.StartBackfillAsync(new BackfillRequest("b1", "public.bf"), CancellationToken.None);
        var done = (BackfillDone)await session.ReadUntilAsync(m => m is BackfillDone, Apply);
        await stop.CancelAsync();
        var commits = await writer;
        await DrainAsync(pg, db, session, mirror);

        Assert.True(commits > 30, $"the workload should have run during the backfill ({commits} commits)");
        Assert.Equal("b1", done.Id);
        Assert.False(done.Cancelled);
        Assert.True(done.Rows > 5000, $"the backfill should have emitted most rows ({done.Rows})");
        var progress = session.Seen.OfType<StreamProgress>().Where(p => p.Phase == StreamPhase.Backfill).ToList();
        Assert.True(progress.Count >= 20, $"one progress per chunk ({progress.Count})");
        Assert.All(progress, p => Assert.Equal("b1", p.BackfillId));
        Assert.Equal(progress.Select(p => p.RowsDone).Order(), progress.Select(p => p.RowsDone));
        Assert.NotNull(progress[0].RowsTotal);
        Assert.IsType<Checkpoint>(session.Seen[session.Seen.IndexOf(done) + 1]);
        Assert.Equal(await SourceAsync(db), mirror.Rows);
    }

    [Fact]
    public async Task Backfill_waiting_behind_a_backlog_of_changes_says_so_in_the_stream_status_and_still_ends_equal()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, 0, 'row ' || g FROM generate_series(1, 2000) g; ANALYZE bf", "ingest");
        var options = PostgresOptions.Parse(PostgresStreamingTests.Json(pg.Config(db, "s_bf_stall", ", \"snapshotMode\": \"never\", \"chunkSize\": 500")));
        await using var session = new Session(new PostgresReader(options, [new StreamSelection("public.bf", SyncMode.Cdc)], null, NullConnectorLog.Instance)
        {
            StallNoteEvery = TimeSpan.FromMilliseconds(300),
        });
        var mirror = new MergeMirror();
        await session.ReadUntilAsync(m => m is CaughtUp, m =>
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
            }
        });

        // A backlog the stream must read before it reaches the backfill's first high watermark, read by a slow consumer.
        for (var i = 0; i < 30; i++)
        {
            await pg.ExecAsync(db, $"UPDATE bf SET n = n + 1, t = 'pass {i}'", "ingest");
        }

        await session.Backfills.StartBackfillAsync(new BackfillRequest("behind", "public.bf", null), CancellationToken.None);
        var done = (BackfillDone)await session.ReadUntilAsync(m => m is BackfillDone, m =>
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
                Thread.Sleep(50);
            }
        });

        Assert.Equal("behind", done.Id);
        var notes = session.Seen.OfType<StreamProgress>().Where(p => p.BackfillId == "behind" && p.Message is not null).ToList();
        Assert.NotEmpty(notes);
        var note = notes[0];
        Assert.Equal("public.bf", note.Stream);
        Assert.Contains("backfill behind waits for the change stream to reach its chunk", note.Message, StringComparison.Ordinal);
        Assert.Contains("MB of WAL ahead of the stream", note.Message, StringComparison.Ordinal);
        // Progress after the wait clears the note; the table still ends equal to the source.
        Assert.Null(session.Seen.OfType<StreamProgress>().Last(p => p.BackfillId == "behind").Message);
        await DrainAsync(pg, db, session, mirror);
        mirror.Rows.Remove(999999);
        Assert.Equal(await SourceAsync(db, "id <> 999999"), mirror.Rows);
    }

    [Fact]
    public async Task Backfill_with_a_filter_reads_only_the_matching_rows()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, g % 10, 'row ' || g FROM generate_series(1, 1000) g; ANALYZE bf", "ingest");
        await using var session = Open(db, "s_bf_filter", ", \"snapshotMode\": \"never\", \"chunkSize\": 40", null);
        var mirror = new MergeMirror();
        void Apply(SourceMessage m)
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
            }
        }

        await session.ReadUntilAsync(m => m is CaughtUp, Apply);
        await session.Backfills.StartBackfillAsync(new BackfillRequest("even", "public.bf", "n IN (2, 4) AND t LIKE 'row %'"), CancellationToken.None);
        var done = (BackfillDone)await session.ReadUntilAsync(m => m is BackfillDone, Apply);

        Assert.Equal(200, done.Rows);
        Assert.Equal(await SourceAsync(db, "n IN (2, 4)"), mirror.Rows);
        var progress = session.Seen.OfType<StreamProgress>().Where(p => p.BackfillId == "even").ToList();
        Assert.Equal(200, progress[^1].RowsDone);
        Assert.InRange(progress[^1].RowsTotal!.Value, 100, 400);
    }

    [Fact]
    public async Task Backfill_interrupted_by_a_crash_resumes_after_its_last_checkpointed_chunk()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, g, 'row ' || g FROM generate_series(1, 1000) g", "ingest");
        var request = new BackfillRequest("b-crash", "public.bf");
        var mirror = new MergeMirror();
        Checkpoint? durable = null;
        var pending = new List<ChangeBatch>();
        await using (var first = Open(db, "s_bf_crash", ", \"snapshotMode\": \"never\", \"chunkSize\": 100", null, request))
        {
            var chunks = 0;
            await first.ReadUntilAsync(m =>
            {
                switch (m)
                {
                    case ChangeBatch b: pending.Add(b); break;
                    case StreamProgress { Phase: StreamPhase.Backfill }: chunks++; break;
                    case Checkpoint c:
                        // What a checkpoint covers is durable; what follows the third chunk's is lost with the crash.
                        pending.ForEach(mirror.Apply);
                        pending.Clear();
                        durable = c;
                        return chunks == 3;
                }

                return false;
            });
        }

        Assert.Equal(300, mirror.ReadKeys.Count);
        Assert.Contains("\"backfills\":[{\"id\":\"b-crash\"", durable!.ToString(), StringComparison.Ordinal);

        // Meanwhile (no reader runs): a row already backfilled changes, one not yet backfilled is deleted.
        await pg.ExecAsync(db, "UPDATE bf SET t = 'changed' WHERE id = 50; DELETE FROM bf WHERE id = 700; UPDATE bf SET n = -1 WHERE id = 800", "ingest");

        await using var second = Open(db, "s_bf_crash", ", \"snapshotMode\": \"never\", \"chunkSize\": 100", durable.State, request);
        var readBefore = mirror.ReadKeys.Count;
        var done = (BackfillDone)await second.ReadUntilAsync(m => m is BackfillDone, m =>
        {
            if (m is ChangeBatch b)
            {
                mirror.Apply(b);
            }
        });
        await DrainAsync(pg, db, second, mirror);

        var resumed = mirror.ReadKeys.Skip(readBefore).ToList();
        Assert.True(resumed.Min() > 300, $"the resumed backfill should start after the last checkpointed key 300 (first key {resumed.Min()})");
        Assert.Equal(699, resumed.Count);
        var progress = second.Seen.OfType<StreamProgress>().Where(p => p.BackfillId == "b-crash").ToList();
        Assert.Equal(400, progress[0].RowsDone);
        Assert.Equal(999, progress[^1].RowsDone);
        Assert.Equal(999, done.Rows);
        Assert.Equal(await SourceAsync(db), mirror.Rows);
    }

    [Fact]
    public async Task Cancelled_backfill_ends_with_a_cancelled_done_and_leaves_the_checkpoint()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf SELECT g, g, 'row ' || g FROM generate_series(1, 3000) g", "ingest");
        await using var session = Open(db, "s_bf_cancel", ", \"snapshotMode\": \"never\", \"chunkSize\": 50", null);
        await session.ReadUntilAsync(m => m is CaughtUp);
        await session.Backfills.StartBackfillAsync(new BackfillRequest("c1", "public.bf"), CancellationToken.None);
        await session.ReadUntilAsync(m => m is StreamProgress { BackfillId: "c1" });

        await session.Backfills.CancelBackfillAsync("c1", CancellationToken.None);
        var done = (BackfillDone)await session.ReadUntilAsync(m => m is BackfillDone);
        var checkpoint = (Checkpoint)await session.ReadUntilAsync(m => m is Checkpoint);

        Assert.Equal("c1", done.Id);
        Assert.True(done.Cancelled);
        Assert.InRange(done.Rows, 50, 2999);
        Assert.DoesNotContain("backfills", checkpoint.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("no_such_column > 1", "column \"no_such_column\" does not exist")]
    [InlineData("n >", "syntax error")]
    [InlineData("true) LIMIT 1; DROP TABLE bf; SELECT (1", "cannot insert multiple commands")]
    public async Task Backfill_with_a_bad_filter_is_refused_naming_the_filter_and_the_servers_message(string filter, string serverMessage)
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, "CREATE TABLE bf (id bigint PRIMARY KEY, n int NOT NULL, t text); INSERT INTO bf VALUES (1, 1, 'a')", "ingest");
        await using var session = Open(db, "s_bf_bad", ", \"snapshotMode\": \"never\"", null);
        await session.ReadUntilAsync(m => m is CaughtUp);

        var e = await Assert.ThrowsAsync<ConnectorException>(async () => await session.Backfills.StartBackfillAsync(new BackfillRequest("bad", "public.bf", filter), CancellationToken.None));

        Assert.Equal(ErrorKind.Configuration, e.Kind);
        Assert.Equal("filter", e.Field);
        Assert.Contains("filter '" + filter + "' cannot be used", e.Message, StringComparison.Ordinal);
        Assert.Contains(serverMessage, e.Message, StringComparison.Ordinal);
        Assert.Equal(1L, await pg.ScalarAsync<long>(db, "SELECT count(*) FROM bf"));
    }
}
