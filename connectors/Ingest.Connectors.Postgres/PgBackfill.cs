using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Ingest.Sdk.Connectors;
using Npgsql;
using NpgsqlTypes;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// One chunk of a backfill between its watermarks (Netflix DBLog): the rows selected, and the keys the log changed
/// between the low and the high watermark, which the stream loop drops from the chunk before emitting it.
/// </summary>
internal sealed class BackfillChunk(string backfillId, string stream, bool final)
{
    private List<ChunkRow>? _rows;

    public string BackfillId { get; } = backfillId;
    public string Stream { get; } = stream;

    /// <summary>The last chunk of its backfill (fewer rows than chunkSize).</summary>
    public bool Final { get; set; } = final;

    /// <summary>Keys (text forms joined by NUL) of rows the log changed between the watermarks (recorded by the stream loop from the low watermark on).</summary>
    public HashSet<string> Changed { get; } = new(StringComparer.Ordinal);

    /// <summary>A truncate between the watermarks: every chunk row may predate it, none is emitted.</summary>
    public bool Truncated { get; set; }

    /// <summary>The column names of <see cref="ChunkRow.Values"/>.</summary>
    public string[] Columns { get; set; } = [];

    /// <summary>The last key selected (text forms), or null when the chunk was empty.</summary>
    public IReadOnlyList<string>? LastKey { get; set; }

    /// <summary>The backfill's estimated rows in all, for progress.</summary>
    public long? Total { get; init; }

    /// <summary>Rows selected (before dropping).</summary>
    public int Count { get; set; }

    /// <summary>The rows, published by the driver before it writes the high watermark.</summary>
    public List<ChunkRow> Rows
    {
        get => Volatile.Read(ref _rows) ?? throw new InvalidOperationException("The chunk's high watermark arrived before its rows were selected.");
        set => Volatile.Write(ref _rows, value);
    }

    /// <summary>Completed by the stream loop once the chunk is emitted and checkpointed.</summary>
    public TaskCompletionSource Emitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The WAL position of the chunk's high watermark, once written (0 before).</summary>
    public ulong HighLsn { get; set; }

    /// <summary>When the high watermark was written.</summary>
    public DateTime HighWrittenUtc { get; set; }
}

/// <summary>A selected row: its key (text forms joined by NUL) and every column's text form (null for SQL NULL).</summary>
internal sealed record ChunkRow(string Key, string?[] Values);

/// <summary>What a control message written by the driver means to the stream loop.</summary>
internal enum MarkKind
{
    Low,
    High,
    Cancel,
}

/// <summary>A control message: a chunk's low or high watermark, or the end of a cancelled backfill.</summary>
internal sealed record BackfillMark(MarkKind Kind, BackfillChunk? Chunk, string BackfillId, string Stream);

/// <summary>A backfill the driver works on: where its next chunk starts.</summary>
internal sealed class ActiveBackfill(BackfillRequest request, PgTable table, IReadOnlyList<string>? key, long? total)
{
    public BackfillRequest Request { get; } = request;
    public PgTable Table { get; set; } = table;
    public IReadOnlyList<string>? Key { get; set; } = key;
    public long? Total { get; } = total;
}

/// <summary>
/// Runs backfills while the stream goes on (DBLog): per chunk, on its own connection, a low watermark
/// (<c>pg_logical_emit_message(false, ...)</c>, written to the WAL at once, outside any transaction), the chunk
/// selected by primary key, a high watermark. The stream loop sees both watermarks in WAL order and emits the chunk
/// rows whose keys the log did not touch in between, positioned at the high watermark, so a merge keeps any newer
/// change. Before selecting, the driver waits until every transaction still running when the low watermark was
/// written has ended (its xid left the snapshot's in-progress list): a transaction whose commit record precedes the
/// low watermark but which was not yet visible would otherwise be missing from the chunk and never replayed.
/// </summary>
internal sealed class BackfillDriver(PostgresOptions options, IConnectorLog log)
{
    /// <summary>The prefix of the driver's logical messages.</summary>
    public const string Prefix = "ingest-backfill";

    private readonly Channel<Func<NpgsqlConnection, List<ActiveBackfill>, CancellationToken, Task>> _commands =
        Channel.CreateUnbounded<Func<NpgsqlConnection, List<ActiveBackfill>, CancellationToken, Task>>();

    private readonly ConcurrentDictionary<long, BackfillMark> _marks = new();
    private long _seq;

    /// <summary>Distinguishes this read's messages from those of earlier reads (replayed after a restart) and other slots' readers.</summary>
    public string Token { get; } = Guid.NewGuid().ToString("N")[..16];

    private BackfillChunk? _waiting;

    /// <summary>The chunk whose high watermark the driver waits for the stream loop to reach, or null.</summary>
    public BackfillChunk? Waiting
    {
        get => Volatile.Read(ref _waiting);
        private set => Volatile.Write(ref _waiting, value);
    }

    /// <summary>
    /// A note for the user when the stream loop has not reached a chunk's high watermark within
    /// <paramref name="after"/>: the source writes faster than the pipeline reads, and the backfill advances only as
    /// fast as the stream does. Null when nothing waits that long.
    /// </summary>
    public (BackfillChunk Chunk, string Message)? StallNote(ulong streamLsn, TimeSpan after)
    {
        if (Waiting is not { HighLsn: > 0 } chunk || DateTime.UtcNow - chunk.HighWrittenUtc < after)
        {
            return null;
        }

        var behind = chunk.HighLsn > streamLsn ? (chunk.HighLsn - streamLsn) / (1024.0 * 1024.0) : 0;
        return (chunk, string.Create(CultureInfo.InvariantCulture,
            $"backfill {chunk.BackfillId} waits for the change stream to reach its chunk (written {(DateTime.UtcNow - chunk.HighWrittenUtc).TotalSeconds:0} s ago, {behind:0.0} MB of WAL ahead of the stream): the source writes faster than the pipeline reads, so the backfill advances only as the stream catches up"));
    }

    /// <summary>The mark a message of this read stands for, removed; null for messages of others.</summary>
    public BackfillMark? Take(ReadOnlySpan<byte> content)
    {
        var text = Encoding.UTF8.GetString(content);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && text.AsSpan(0, colon).SequenceEqual(Token)
            && long.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
            && _marks.TryRemove(seq, out var mark) ? mark : null;
    }

    /// <summary>Queues a backfill; <paramref name="key"/> is where an interrupted one resumes.</summary>
    public void Start(ActiveBackfill backfill) =>
        _commands.Writer.TryWrite((_, active, _) =>
        {
            if (!active.Any(a => a.Request.Id == backfill.Request.Id))
            {
                active.Add(backfill);
            }

            return Task.CompletedTask;
        });

    /// <summary>Ends a backfill: the stream loop yields its BackfillDone (cancelled) when the message arrives.</summary>
    public void Cancel(string id, string stream) =>
        _commands.Writer.TryWrite(async (conn, active, ct) =>
        {
            active.RemoveAll(a => a.Request.Id == id);
            await EmitAsync(conn, new BackfillMark(MarkKind.Cancel, null, id, stream), ct);
        });

    /// <summary>Works until cancelled: one chunk at a time, round robin over the active backfills.</summary>
    public async Task RunAsync(Func<string, PgTable?> currentTable, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(options.ConnectionString("ingest-backfill"));
        await conn.OpenAsync(ct);
        var active = new List<ActiveBackfill>();
        var next = 0;
        while (!ct.IsCancellationRequested)
        {
            while (_commands.Reader.TryRead(out var command))
            {
                await command(conn, active, ct);
            }

            if (active.Count == 0)
            {
                await _commands.Reader.WaitToReadAsync(ct);
                continue;
            }

            var backfill = active[next++ % active.Count];
            backfill.Table = currentTable(backfill.Request.Stream) ?? backfill.Table;
            BackfillChunk chunk;
            try
            {
                chunk = await SelectChunkAsync(conn, backfill, ct);
            }
            catch (ConnectorException e) when (e.Field == "filter")
            {
                // The filter fails on some rows only (a cast, a division): this backfill ends, the stream goes on.
                log.Write(ConnectorLogLevel.Error, e.Message, e);
                active.Remove(backfill);
                await EmitAsync(conn, new BackfillMark(MarkKind.Cancel, null, backfill.Request.Id, backfill.Request.Stream), ct);
                continue;
            }

            Waiting = chunk;
            await chunk.Emitted.Task.WaitAsync(ct);
            Waiting = null;
            backfill.Key = chunk.LastKey ?? backfill.Key;
            if (chunk.Final)
            {
                active.Remove(backfill);
            }
        }
    }

    private async Task<BackfillChunk> SelectChunkAsync(NpgsqlConnection conn, ActiveBackfill backfill, CancellationToken ct)
    {
        var table = backfill.Table;
        var chunk = new BackfillChunk(backfill.Request.Id, table.StreamName, final: false) { Total = backfill.Total };
        await EmitAsync(conn, new BackfillMark(MarkKind.Low, chunk, chunk.BackfillId, chunk.Stream), ct);
        var running = await InProgressAsync(conn, ct);

        var rows = new List<ChunkRow>();
        var waited = 0;
        while (true)
        {
            await using (var begin = new NpgsqlCommand("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", conn))
            {
                await begin.ExecuteNonQueryAsync(ct);
            }

            try
            {
                var now = await InProgressAsync(conn, ct);
                if (now.Overlaps(running))
                {
                    await using (var rollback = new NpgsqlCommand("ROLLBACK", conn))
                    {
                        await rollback.ExecuteNonQueryAsync(ct);
                    }

                    if (++waited % 500 == 0)
                    {
                        log.Write(ConnectorLogLevel.Warning, $"backfill {chunk.BackfillId} of {chunk.Stream}: waiting for transaction(s) {string.Join(", ", now.Intersect(running))} to end before reading the next chunk");
                    }

                    await Task.Delay(10, ct);
                    continue;
                }

                await ReadChunkAsync(conn, backfill, chunk, rows, ct);
            }
            catch (PostgresException e) when (IsQueryError(e))
            {
                await using var rollback = new NpgsqlCommand("ROLLBACK", conn);
                await rollback.ExecuteNonQueryAsync(ct);
                throw FilterError(backfill.Request, e);
            }

            await using (var commit = new NpgsqlCommand("COMMIT", conn))
            {
                await commit.ExecuteNonQueryAsync(ct);
            }

            break;
        }

        chunk.Count = rows.Count;
        chunk.Final = rows.Count < options.ChunkSize;
        chunk.Rows = rows;
        chunk.HighLsn = await EmitAsync(conn, new BackfillMark(MarkKind.High, chunk, chunk.BackfillId, chunk.Stream), ct);
        chunk.HighWrittenUtc = DateTime.UtcNow;
        return chunk;
    }

    private async Task ReadChunkAsync(NpgsqlConnection conn, ActiveBackfill backfill, BackfillChunk chunk, List<ChunkRow> rows, CancellationToken ct)
    {
        var table = backfill.Table;
        var after = backfill.Key;
        var sql = ChunkSql(table, backfill.Request.Filter, after, "$" + ((after?.Count ?? 0) + 1).ToString(CultureInfo.InvariantCulture));
        await using var cmd = new NpgsqlCommand(sql, conn) { AllResultTypesAreUnknown = true };
        foreach (var k in after ?? [])
        {
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = k });
        }

        // Always at least one positional parameter: Npgsql then sends the text as one statement, unparsed.
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = options.ChunkSize });

        chunk.Columns = [.. table.Columns.Select(c => c.Name)];
        var keys = table.KeyOrdinals.Length;
        await using var r = await cmd.ExecuteReaderAsync(ct);
        string[]? last = null;
        while (await r.ReadAsync(ct))
        {
            // Every value in its text output form (AllResultTypesAreUnknown), exactly as pgoutput sends it.
            last = new string[keys];
            for (var k = 0; k < keys; k++)
            {
                last[k] = r.GetString(k);
            }

            var values = new string?[table.Columns.Count];
            for (var c = 0; c < values.Length; c++)
            {
                values[c] = r.IsDBNull(keys + c) ? null : r.GetString(keys + c);
            }

            rows.Add(new ChunkRow(string.Join('\0', last), values));
        }

        chunk.LastKey = last;
    }

    /// <summary>
    /// The chunk query, in positional-parameter form so that Npgsql sends it as one statement (a filter cannot
    /// smuggle in a second one): key columns, then every column, after the last key ($1..$k), matching the filter,
    /// by key, at most <paramref name="limit"/> rows (a literal or the next parameter).
    /// </summary>
    internal static string ChunkSql(PgTable table, string? filter, IReadOnlyList<string>? after, string limit)
    {
        var sb = new StringBuilder("SELECT ");
        sb.AppendJoin(", ", table.PrimaryKey.Select(k => "src." + PgTypes.Quote(k)));
        foreach (var c in table.Columns)
        {
            sb.Append(", src.").Append(PgTypes.Quote(c.Name));
        }

        sb.Append(table.Partitioned ? " FROM " : " FROM ONLY ").Append(table.QuotedName).Append(" AS src WHERE true");
        var keys = string.Join(", ", table.PrimaryKey.Select(k => "src." + PgTypes.Quote(k)));
        if (after is not null)
        {
            sb.Append(" AND (").Append(keys).Append(") > (");
            for (var k = 0; k < after.Count; k++)
            {
                var col = table.Columns[table.KeyOrdinals[k]];
                sb.Append(k > 0 ? ", " : "").Append('$').Append((k + 1).ToString(CultureInfo.InvariantCulture)).Append("::text::").Append(col.PgType);
            }

            sb.Append(')');
        }

        if (!string.IsNullOrWhiteSpace(filter))
        {
            sb.Append(" AND (").Append(filter).Append("\n)");
        }

        return sb.Append(" ORDER BY ").Append(keys).Append(" LIMIT ").Append(limit).ToString();
    }

    private static async Task<HashSet<string>> InProgressAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x", conn);
        var set = new HashSet<string>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            set.Add(r.GetString(0));
        }

        return set;
    }

    /// <summary>Writes a control message to the WAL; returns its position.</summary>
    private async Task<ulong> EmitAsync(NpgsqlConnection conn, BackfillMark mark, CancellationToken ct)
    {
        var seq = Interlocked.Increment(ref _seq);
        _marks[seq] = mark;
        await using var cmd = new NpgsqlCommand("SELECT pg_logical_emit_message(false, $1, $2)", conn);
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = Prefix });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = Token + ":" + seq.ToString(CultureInfo.InvariantCulture) });
        return await cmd.ExecuteScalarAsync(ct) is NpgsqlLogSequenceNumber lsn ? (ulong)lsn : 0;
    }

    /// <summary>
    /// Checks a request against the catalog and the server (the filter is planned, in a read-only transaction, with
    /// the chunk query's own shape) and estimates the rows it covers (the planner's estimate).
    /// </summary>
    /// <exception cref="ConnectorException">Configuration: the stream is not selected or has no key (field <c>stream</c>), or the filter is refused (field <c>filter</c>, with the server's message).</exception>
    public static async Task<(PgTable Table, long? Total)> ValidateAsync(NpgsqlConnection conn, PostgresOptions options, IReadOnlyList<string> streams, BackfillRequest request, CancellationToken ct)
    {
        if (!streams.Contains(request.Stream))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"backfill {request.Id}: stream '{request.Stream}' is not read by this connection (streams: {string.Join(", ", streams)})", "stream");
        }

        var tables = await PgCatalog.LoadAsync(conn, options, ct);
        var table = tables.Find(t => t.StreamName == request.Stream)
            ?? throw new ConnectorException(ErrorKind.Configuration, $"backfill {request.Id}: table {request.Stream} does not exist in database {options.Database}", "stream");
        if (table.PrimaryKey.Count == 0)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"backfill {request.Id}: table {request.Stream} has no primary key to read it in chunks by", "stream");
        }

        await using var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
        await using (var ro = new NpgsqlCommand("SET TRANSACTION READ ONLY", conn, tx))
        {
            await ro.ExecuteNonQueryAsync(ct);
        }

        long? total;
        try
        {
            var sql = "EXPLAIN (FORMAT JSON) " + ChunkSql(table, request.Filter, null, "$1");
            await using var cmd = new NpgsqlCommand(sql, conn, tx);
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = long.MaxValue });
            var plan = (string?)await cmd.ExecuteScalarAsync(ct);
            total = PlanRows(plan);
        }
        catch (PostgresException e) when (IsQueryError(e))
        {
            throw FilterError(request, e);
        }

        await tx.RollbackAsync(ct);
        return (table, total);
    }

    private static long? PlanRows(string? plan)
    {
        if (plan is null)
        {
            return null;
        }

        using var doc = JsonDocument.Parse(plan);
        var node = doc.RootElement[0].GetProperty("Plan");
        // The top node is the Limit (or Sort); its input's estimate is the filter's.
        while (node.TryGetProperty("Node Type", out var type) && type.GetString() is "Limit" or "Sort" && node.TryGetProperty("Plans", out var children))
        {
            node = children[0];
        }

        return node.TryGetProperty("Plan Rows", out var rows) ? (long)rows.GetDouble() : null;
    }

    /// <summary>Errors in the query itself (class 42: syntax, undefined names, types; class 22: data exceptions), not in the server or connection.</summary>
    private static bool IsQueryError(PostgresException e) => e.SqlState.StartsWith("42", StringComparison.Ordinal) || e.SqlState.StartsWith("22", StringComparison.Ordinal);

    private static ConnectorException FilterError(BackfillRequest request, PostgresException e) =>
        new(ErrorKind.Configuration,
            $"backfill {request.Id} of {request.Stream}: the filter {(request.Filter is null ? "(none)" : "'" + request.Filter + "'")} cannot be used: {e.MessageText} (SQL state {e.SqlState})",
            "filter",
            e);
}
