using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.Internal;
using NpgsqlTypes;

namespace Ingest.Connectors.Postgres;

/// <summary>One read: publication and slot, the consistent snapshot, then pgoutput streaming with backfills interleaved.</summary>
internal sealed class PostgresReader : ISourceReader, IBackfillReader
{
    private readonly PostgresOptions _options;
    private readonly IReadOnlyList<StreamSelection> _streams;
    private readonly PgState? _resume;
    private readonly IConnectorLog _log;
    private readonly IReadOnlyList<BackfillRequest>? _backfills;
    private readonly Lock _gate = new();
    private readonly BackfillDriver _driver;
    private readonly ConcurrentDictionary<string, string> _started = new(StringComparer.Ordinal);

    public PostgresReader(PostgresOptions options, IReadOnlyList<StreamSelection> streams, PgState? resume, IConnectorLog log, IReadOnlyList<BackfillRequest>? backfills = null, string connection = "")
    {
        _options = options;
        _streams = streams;
        _resume = resume;
        _log = log;
        _backfills = backfills;
        _driver = new BackfillDriver(options, log);
        PgMetrics.Register(this, connection);
    }

    /// <summary>The replication slot (a metric tag).</summary>
    internal string SlotName => _resume?.Slot ?? _options.SlotName;
    private LogicalReplicationConnection? _replication;
    private NpgsqlLogSequenceNumber _acknowledged;
    private bool _streaming;
    private long _lastActivityTicks = DateTime.UtcNow.Ticks;

    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var messages = ReadCoreAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await messages.MoveNextAsync();
            }
            catch (NpgsqlException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw Classify(e);
            }
            catch (Exception e) when (e is IOException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                throw new ConnectorException(ErrorKind.Transient, $"PostgreSQL connection lost: {e.Message}", null, e);
            }

            if (!more)
            {
                yield break;
            }

            yield return messages.Current;
        }
    }

    /// <summary>Server and network failures that go away by themselves are transient (the engine retries from the last checkpoint).</summary>
    internal static ConnectorException Classify(NpgsqlException e)
    {
        // A failure below the SQL level (socket closed, or the protocol cut short as when a server shutting down ends
        // the replication stream with CommandComplete) is a lost connection: transient. Errors the server reports are
        // transient only when they are about availability.
        var transient = e.IsTransient || e is not PostgresException || SlotStillActive(e) || e is PostgresException
        {
            // object_in_use (a slot still held by a predecessor's walsender), admin/crash shutdown, cannot connect now,
            // too many connections, and connection exceptions (class 08).
            SqlState: "55006" or "57P01" or "57P02" or "57P03" or "53300" or "08000" or "08003" or "08006",
        };
        var message = e is PostgresException pe ? $"PostgreSQL error {pe.SqlState}: {pe.MessageText}" : $"PostgreSQL connection failed: {e.Message}";
        return new ConnectorException(transient ? ErrorKind.Transient : ErrorKind.Fatal, message, null, e);
    }

    /// <summary>
    /// "replication slot ... is active for PID ...": after a crash or a server restart the walsender of the previous
    /// read may hold the slot until the server notices the dead connection; the next attempt usually succeeds.
    /// </summary>
    internal static bool SlotStillActive(NpgsqlException e) =>
        e is PostgresException pe
        && pe.MessageText.StartsWith("replication slot ", StringComparison.Ordinal)
        && pe.MessageText.Contains(" is active for PID ", StringComparison.Ordinal);

    private async IAsyncEnumerable<SourceMessage> ReadCoreAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(_options.ConnectionString());
        await OpenAsync(conn, cancellationToken);
        var all = await PgCatalog.LoadAsync(conn, _options, cancellationToken);
        var tables = new List<PgTable>();
        foreach (var s in _streams)
        {
            var t = all.Find(x => x.StreamName == s.Name)
                ?? throw new ConnectorException(ErrorKind.Configuration, $"stream '{s.Name}' is not a table selected by 'tables'/'excludeTables' in database {_options.Database} (selected: {string.Join(", ", all.Select(x => x.StreamName))})", "/tables");
            if (!t.Identifiable)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"table {t.StreamName} has no primary key and REPLICA IDENTITY is not FULL: add a key or run ALTER TABLE {t.QuotedName} REPLICA IDENTITY FULL", "/tables");
            }

            foreach (var w in t.Warnings)
            {
                _log.Write(ConnectorLogLevel.Warning, $"{t.StreamName}: {w}");
            }

            tables.Add(t);
        }

        tables.Sort((a, b) => string.CompareOrdinal(a.StreamName, b.StreamName));
        var target = await PgChecks.ScalarAsync<NpgsqlLogSequenceNumber>(conn, "SELECT pg_current_wal_lsn()", cancellationToken);
        await EnsurePublicationAsync(conn, tables, cancellationToken);

        var replication = new LogicalReplicationConnection(_options.ConnectionString("ingest-replication"))
        {
            WalReceiverTimeout = TimeSpan.FromSeconds(60),
            WalReceiverStatusInterval = TimeSpan.FromSeconds(10),
        };
        lock (_gate)
        {
            _replication = replication;
        }

        try
        {
            await replication.Open(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            throw new ConnectorException(ErrorKind.Transient, $"cannot open a replication connection to {_options.Host}: {e.Message}", null, e);
        }

        PgState state;
        string? exported = null;
        if (_resume is null)
        {
            await DropIdleSlotAsync(conn, cancellationToken);
            var snapshot = _options.SnapshotMode != SnapshotMode.Never;
            var slot = await replication.CreatePgOutputReplicationSlot(
                _options.SlotName,
                slotSnapshotInitMode: snapshot ? LogicalSlotSnapshotInitMode.Export : LogicalSlotSnapshotInitMode.NoExport,
                cancellationToken: cancellationToken);
            exported = slot.SnapshotName;
            state = new PgState(_options.SlotName, slot.ConsistentPoint.ToString(), snapshot ? new PgSnapshotState([], null, null, 0) : null, [.. tables.Select(t => t.StreamName)]);
            _log.Write(ConnectorLogLevel.Information, $"created replication slot {_options.SlotName} at {slot.ConsistentPoint}");
        }
        else
        {
            var exists = await PgChecks.ScalarAsync<bool>(conn, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = @s)", cancellationToken, ("s", _resume.Slot));
            if (!exists)
            {
                throw new ConnectorException(ErrorKind.Fatal,
                    $"replication slot {_resume.Slot} no longer exists (dropped, or invalidated by max_slot_wal_keep_size): changes since {_resume.Lsn} are lost to it; write the connection into new tables to start over with a fresh snapshot");
            }

            state = AddNewStreams(_resume, tables);
        }

        if (state.Snapshot is { } progress)
        {
            var cursor = new SnapshotCursor(progress);
            await foreach (var m in SnapshotAsync(conn, tables, cursor, state, exported, cancellationToken))
            {
                yield return m;
            }

            state = state with { Snapshot = null };
            yield return new Checkpoint(state.ToJson());
        }

        if (_options.SnapshotMode == SnapshotMode.InitialOnly)
        {
            yield return CaughtUp.Instance;
            await using var cmd = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = @s AND active_pid IS NULL", conn);
            cmd.Parameters.AddWithValue("s", state.Slot);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
            yield break;
        }

        await foreach (var m in StreamAsync(conn, replication, tables, state, target, cancellationToken))
        {
            yield return m;
        }
    }

    /// <summary>
    /// Streams selected now but unknown to the checkpoint were added to the pipeline: they were just added to the
    /// publication, and are snapshotted (in a new transaction) before streaming resumes from the checkpoint's LSN.
    /// Their changes from the moment they joined the publication are replayed by the stream, so the merge converges.
    /// </summary>
    private PgState AddNewStreams(PgState resumed, List<PgTable> tables)
    {
        var selected = tables.Select(t => t.StreamName).ToList();
        if (resumed.Streams is null)
        {
            // A checkpoint from before the list existed covers the streams selected then: take the current selection.
            return resumed with { Streams = selected };
        }

        var added = selected.Where(n => !resumed.Streams.Contains(n)).ToList();
        if (added.Count == 0)
        {
            return resumed with { Streams = selected };
        }

        _log.Write(ConnectorLogLevel.Information, $"stream(s) {string.Join(", ", added)} added since the last checkpoint: snapshotting them before streaming resumes at {resumed.Lsn}");
        var snapshot = resumed.Snapshot is { } running
            ? running
            : new PgSnapshotState([.. selected.Except(added)], null, null, 0);
        return resumed with { Snapshot = snapshot, Streams = selected };
    }

    private async Task OpenAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        try
        {
            await conn.OpenAsync(ct);
        }
        catch (NpgsqlException e)
        {
            throw new ConnectorException(ErrorKind.Transient, $"cannot connect to {_options.Host}:{_options.Port.ToString(CultureInfo.InvariantCulture)} database {_options.Database}: {e.Message}", "/host", e);
        }
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection conn, List<PgTable> tables, CancellationToken ct)
    {
        var exists = await PgChecks.ScalarAsync<bool>(conn, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = @p)", ct, ("p", _options.PublicationName));
        var missing = new List<PgTable>();
        if (exists)
        {
            foreach (var t in tables)
            {
                var has = await PgChecks.ScalarAsync<bool>(conn,
                    "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = @p AND schemaname = @s AND tablename = @t)", ct,
                    ("p", _options.PublicationName), ("s", t.SchemaName), ("t", t.Name));
                if (!has)
                {
                    missing.Add(t);
                }
            }
        }

        // Partitioned tables are published as their root (one stream), not as each partition.
        var viaRoot = !exists || await PgChecks.ScalarAsync<bool>(conn, "SELECT pubviaroot FROM pg_publication WHERE pubname = @p", ct, ("p", _options.PublicationName));
        var needsRoot = !viaRoot && tables.Any(t => t.Partitioned);
        if (exists && missing.Count == 0 && !needsRoot)
        {
            return;
        }

        var publication = PgTypes.Quote(_options.PublicationName);
        var statements = new List<string>();
        if (!exists)
        {
            statements.Add($"CREATE PUBLICATION {publication} FOR TABLE {string.Join(", ", tables.Select(t => t.QuotedName))} WITH (publish_via_partition_root = true)");
        }
        else
        {
            if (needsRoot)
            {
                statements.Add($"ALTER PUBLICATION {publication} SET (publish_via_partition_root = true)");
            }

            if (missing.Count > 0)
            {
                statements.Add($"ALTER PUBLICATION {publication} ADD TABLE {string.Join(", ", missing.Select(t => t.QuotedName))}");
            }
        }

        var sql = string.Join("; ", statements);
        try
        {
            await using var cmd = new NpgsqlCommand(sql, conn);
            await cmd.ExecuteNonQueryAsync(ct);
            _log.Write(ConnectorLogLevel.Information, sql);
        }
        catch (PostgresException e)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"cannot prepare publication {_options.PublicationName} ({e.MessageText}): as the tables' owner run {sql};", "/publicationName", e);
        }
    }

    private async Task DropIdleSlotAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT active_pid FROM pg_replication_slots WHERE slot_name = @s", conn);
        cmd.Parameters.AddWithValue("s", _options.SlotName);
        var pid = await cmd.ExecuteScalarAsync(ct);
        if (pid is int p)
        {
            throw new ConnectorException(ErrorKind.Transient, $"replication slot {_options.SlotName} is in use by another process (pid {p.ToString(CultureInfo.InvariantCulture)})", "/slotName");
        }

        if (pid is DBNull)
        {
            // No checkpoint exists, so nothing depends on the old slot: a fresh slot gives a snapshot consistent with it.
            await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot(@s)", conn);
            drop.Parameters.AddWithValue("s", _options.SlotName);
            await drop.ExecuteNonQueryAsync(ct);
            _log.Write(ConnectorLogLevel.Warning, $"dropped replication slot {_options.SlotName} left without a checkpoint; starting over");
        }
    }

    private sealed class SnapshotCursor(PgSnapshotState s)
    {
        public List<string> Done { get; } = [.. s.Done];
        public string? Table { get; set; } = s.Table;
        public IReadOnlyList<string>? Key { get; set; } = s.Key;
        public ulong Rows { get; set; } = s.Rows;

        public PgSnapshotState ToState() => new([.. Done], Table, Key, Rows);
    }

    /// <summary>
    /// Copies each table chunk by chunk (keyset pagination on the primary key) with binary COPY, inside one
    /// REPEATABLE READ transaction on the slot's exported snapshot when there is one (a first read), so the
    /// copy is exactly the state at the slot's consistent point. A resumed snapshot reads a newer state;
    /// streaming from the consistent point then replays what changed, and the merge converges.
    /// </summary>
    private async IAsyncEnumerable<SourceMessage> SnapshotAsync(NpgsqlConnection conn, List<PgTable> tables, SnapshotCursor cursor, PgState state, string? exported, [EnumeratorCancellation] CancellationToken ct)
    {
        await using (var begin = new NpgsqlCommand("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", conn))
        {
            await begin.ExecuteNonQueryAsync(ct);
        }

        if (exported is not null)
        {
            await using var set = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT {PgTypes.Literal(exported)}", conn);
            await set.ExecuteNonQueryAsync(ct);
        }

        // Each table is read in key order by one COPY: through the key's index, so rows flow from the first moment rather
        // than after the server sorted the whole table (temporary files for a large one).
        await using (var noSort = new NpgsqlCommand("SET LOCAL enable_sort = off", conn))
        {
            await noSort.ExecuteNonQueryAsync(ct);
        }

        // The slot retains WAL from its consistent point for as long as the snapshot runs: measured before each table's
        // COPY (the connection is busy during one), so the status shows how much the copy costs the server.
        var figuresSeen = 0L;
        foreach (var table in tables)
        {
            if (cursor.Done.Contains(table.StreamName))
            {
                continue;
            }

            await CheckSlotLagAsync(conn, ct);
            if (NewSlotLagFigure(ref figuresSeen) is { } figures)
            {
                yield return figures;
            }

            if (cursor.Table != table.StreamName)
            {
                cursor.Table = table.StreamName;
                cursor.Key = null;
            }

            var builder = new ChangeBatchBuilder(table.StreamName, table.Schema, Math.Min(_options.ChunkSize, 65_536));
            using var decoder = new PgCopyDecoder(table);
            var rowsDone = 0L;

            // One COPY per table in key order, cut into batches of chunkSize rows; each batch is checkpointed with its
            // last key, so a restart resumes after the last committed batch (a new COPY from that key). A table without a
            // key is read whole (in batches) and checkpointed when done: a restart reads it again.
            var keyed = table.PrimaryKey.Count > 0;
            await foreach (var (batch, lastKey) in decoder.CopyAsync(conn, CopySql(table, keyed ? cursor.Key : null, keyed), builder, cursor.Rows, _options.ChunkSize, ct))
            {
                cursor.Rows += (ulong)batch.Length;
                rowsDone += batch.Length;
                yield return batch;
                yield return new StreamProgress(table.StreamName, StreamPhase.Snapshot, rowsDone, table.EstimatedRows);
                if (keyed)
                {
                    cursor.Key = lastKey;
                    yield return new Checkpoint((state with { Snapshot = cursor.ToState() }).ToJson());
                }
            }

            cursor.Done.Add(table.StreamName);
            cursor.Table = null;
            cursor.Key = null;
            yield return new StreamProgress(table.StreamName, StreamPhase.Snapshot, rowsDone, table.EstimatedRows);
            yield return new Checkpoint((state with { Snapshot = cursor.ToState() }).ToJson());
            _log.Write(ConnectorLogLevel.Information, $"snapshot of {table.StreamName} done: {rowsDone.ToString(CultureInfo.InvariantCulture)} rows");
        }

        await using var commit = new NpgsqlCommand("COMMIT", conn);
        await commit.ExecuteNonQueryAsync(ct);
    }

    private string CopySql(PgTable table, IReadOnlyList<string>? after, bool keyed)
    {
        var sb = new StringBuilder("COPY (SELECT ");
        for (var c = 0; c < table.Columns.Count; c++)
        {
            var col = table.Columns[c];
            sb.Append(c > 0 ? ", src." : "src.").Append(PgTypes.Quote(col.Name));
            if (col.ReadsAsText)
            {
                sb.Append("::text");
            }
        }

        // Key columns whose text form the decoder cannot derive from the value come once more as text (the cursor's literals).
        for (var k = 0; k < table.PrimaryKey.Count; k++)
        {
            if (!PgCopyDecoder.KeyFromValue(table.Columns[table.KeyOrdinals[k]]))
            {
                sb.Append(", src.").Append(PgTypes.Quote(table.PrimaryKey[k])).Append("::text");
            }
        }

        // A partitioned table is read through its root (all partitions); a plain table without its inheritance children.
        sb.Append(table.Partitioned ? " FROM " : " FROM ONLY ").Append(table.QuotedName).Append(" AS src");
        if (keyed)
        {
            var keys = string.Join(", ", table.PrimaryKey.Select(k => "src." + PgTypes.Quote(k)));
            if (after is not null)
            {
                sb.Append(" WHERE (").Append(keys).Append(") > (");
                for (var k = 0; k < after.Count; k++)
                {
                    var col = table.Columns[table.KeyOrdinals[k]];
                    sb.Append(k > 0 ? ", " : "").Append(PgTypes.Literal(after[k])).Append("::").Append(col.PgType);
                }

                sb.Append(')');
            }

            sb.Append(" ORDER BY ").Append(keys);
        }

        return sb.Append(") TO STDOUT (FORMAT BINARY)").ToString();
    }

    private sealed class Relation(PgTable? table, int[] map, string[] names)
    {
        public PgTable? Table { get; } = table;
        public int[] Map { get; } = map;
        public string[] Names { get; } = names;
    }

    private async IAsyncEnumerable<SourceMessage> StreamAsync(NpgsqlConnection conn, LogicalReplicationConnection replication, List<PgTable> tables, PgState state, NpgsqlLogSequenceNumber target, [EnumeratorCancellation] CancellationToken ct)
    {
        var byName = new ConcurrentDictionary<string, PgTable>(tables.ToDictionary(t => t.StreamName, StringComparer.Ordinal), StringComparer.Ordinal);
        var relations = new Dictionary<uint, Relation>();
        var builders = new Dictionary<string, ChangeBatchBuilder>(StringComparer.Ordinal);
        var resumeAt = state.LsnValue;
        var caughtUp = false;

        // Backfills pending when the read opened: resumed after their last chunk where the checkpoint has it.
        var progress = new Dictionary<string, PgBackfillState>(StringComparer.Ordinal);
        foreach (var request in _backfills ?? [])
        {
            var known = state.Backfills?.FirstOrDefault(b => b.Id == request.Id);
            if (known is not null)
            {
                progress[request.Id] = known;
            }

            try
            {
                var (table, total) = await BackfillDriver.ValidateAsync(conn, _options, StreamNames, request, ct);
                _driver.Start(new ActiveBackfill(request, table, known?.Key, total));
                _log.Write(ConnectorLogLevel.Information, known is null
                    ? $"backfill {request.Id} of {request.Stream} starts"
                    : string.Create(CultureInfo.InvariantCulture, $"backfill {request.Id} of {request.Stream} resumes after key ({string.Join(", ", known.Key ?? [])}), {known.Scanned} rows done"));
            }
            catch (ConnectorException e) when (e.Kind == ErrorKind.Configuration)
            {
                _log.Write(ConnectorLogLevel.Error, e.Message, e);
                _driver.Cancel(request.Id, request.Stream);
            }
        }

        state = state with { Backfills = progress.Count == 0 ? null : [.. progress.Values] };
        var open = new List<BackfillChunk>();
        var shapes = new Dictionary<uint, string>();
        using var heartbeatCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var heartbeat = Task.Run(() => HeartbeatLoopAsync(conn, heartbeatCts.Token), CancellationToken.None);
        var driver = Task.Run(() => _driver.RunAsync(name => byName.GetValueOrDefault(name), heartbeatCts.Token), CancellationToken.None);
        try
        {
            lock (_gate)
            {
                _streaming = true;
                if (_acknowledged > resumeAt)
                {
                    replication.SetReplicationStatus(_acknowledged);
                }
            }

            // pgoutput's own bytes, parsed in place (PgOutputMessage): one reused buffer, values as spans.
            KeyValuePair<string, string?>[] pgOptions = [new("proto_version", "1"), new("publication_names", PgTypes.Quote(_options.PublicationName)), new("messages", "true")];
            var slot = new PgOutputReplicationSlot(state.Slot);
            ulong commitLsn = 0;
            long commitMicros = 0;
            ulong index = 0;
            var skip = false;
            string?[] old = [];
            var message = new PgOutputMessage();
            var lastStallNote = DateTime.MinValue;
            var figuresSeen = 0L;
            var wal = replication.StartLogicalReplication(slot, ct, resumeAt, pgOptions);
            await foreach (var data in wal.WithCancellation(ct))
            {
                Interlocked.Exchange(ref _lastActivityTicks, DateTime.UtcNow.Ticks);
                await message.ReadAsync(data.Data, ct);
                switch (message.Kind)
                {
                    case PgOutputKind.Begin:
                        commitLsn = message.Lsn;
                        commitMicros = message.CommitMicros;
                        index = 0;
                        skip = message.Lsn < (ulong)resumeAt;
                        break;
                    case PgOutputKind.Relation:
                        var rel = message.Relation!;
                        var (relation, reshaped, shapeNote) = await TrackAsync(rel, byName, shapes, ct);
                        relations[rel.RelationId] = relation;
                        if (reshaped is not null && builders.Remove(reshaped.StreamName, out var stale) && stale.Count > 0)
                        {
                            // Rows of the old shape go out first; the rest of the transaction uses the new one.
                            yield return stale.Build();
                        }

                        if (shapeNote is not null)
                        {
                            yield return new StreamProgress(relation.Table!.StreamName, StreamPhase.Streaming, 0, null, message: shapeNote);
                        }

                        break;
                    case PgOutputKind.Insert when !skip && Tracked(relations, message.RelationId) is { } r:
                        Begin(builders, r, ChangeOp.Insert, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.NewTuple, null, Watched(open, r)));
                        break;
                    case PgOutputKind.Update when !skip && message.OldKind == (byte)'O' && Tracked(relations, message.RelationId) is { } r:
                        // REPLICA IDENTITY FULL: the whole old row (it holds the TOASTed values the new row leaves out).
                        old = Texts(message.OldTuple, r.Names.Length);
                        Touch(open, r, Watched(open, r) ? KeyOf(r, old) : null);
                        Begin(builders, r, ChangeOp.Update, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.NewTuple, old, Watched(open, r)));
                        break;
                    case PgOutputKind.Update when !skip && message.OldKind == (byte)'K' && Tracked(relations, message.RelationId) is { } r:
                        // The primary key changed: delete the old key, then write the new row.
                        Begin(builders, r, ChangeOp.Delete, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.OldTuple, null, Watched(open, r)));
                        Begin(builders, r, ChangeOp.Update, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.NewTuple, null, Watched(open, r)));
                        break;
                    case PgOutputKind.Update when !skip && Tracked(relations, message.RelationId) is { } r:
                        Begin(builders, r, ChangeOp.Update, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.NewTuple, null, Watched(open, r)));
                        break;
                    case PgOutputKind.Delete when !skip && Tracked(relations, message.RelationId) is { } r:
                        Begin(builders, r, ChangeOp.Delete, commitLsn, ref index, commitMicros);
                        Touch(open, r, SetRow(builders[r.Table!.StreamName], r, message.OldTuple, null, Watched(open, r)));
                        break;
                    case PgOutputKind.Truncate when !skip:
                        foreach (var truncated in message.Truncated)
                        {
                            if (Tracked(relations, truncated) is { } r)
                            {
                                Begin(builders, r, ChangeOp.Truncate, commitLsn, ref index, commitMicros);
                                builders[r.Table!.StreamName].EndRow();
                                foreach (var chunk in open.Where(c => c.Stream == r.Table.StreamName))
                                {
                                    chunk.Truncated = true;
                                }
                            }
                        }

                        break;
                    case PgOutputKind.Message when message.Prefix == BackfillDriver.Prefix && _driver.Take(message.Content) is { } mark:
                        var markLsn = new NpgsqlLogSequenceNumber(message.Lsn);
                        if (mark.Kind == MarkKind.Low)
                        {
                            open.Add(mark.Chunk!);
                            break;
                        }

                        if (markLsn > state.LsnValue)
                        {
                            // Every transaction that committed before the mark has been read: resuming here loses nothing.
                            state = state with { Lsn = markLsn.ToString() };
                        }

                        var current = progress.GetValueOrDefault(mark.BackfillId)
                            ?? state.Backfills?.FirstOrDefault(b => b.Id == mark.BackfillId)
                            ?? _resume?.Backfills?.FirstOrDefault(b => b.Id == mark.BackfillId)
                            ?? new PgBackfillState(mark.BackfillId, mark.Stream, null, 0, 0);
                        if (mark.Kind == MarkKind.Cancel)
                        {
                            open.RemoveAll(c => c.BackfillId == mark.BackfillId);
                            progress.Remove(mark.BackfillId);
                            state = state with { Backfills = progress.Count == 0 ? null : [.. progress.Values] };
                            yield return new BackfillDone(mark.BackfillId, mark.Stream, current.Rows, cancelled: true);
                            yield return new Checkpoint(state.ToJson());
                            break;
                        }

                        var high = mark.Chunk!;
                        open.Remove(high);
                        var emitted = 0L;
                        if (byName.TryGetValue(high.Stream, out var chunkTable))
                        {
                            foreach (var batch in EmitChunk(high, chunkTable, builders, (ulong)markLsn - 1))
                            {
                                emitted += batch.Length;
                                yield return batch;
                            }
                        }

                        current = current with { Key = high.LastKey ?? current.Key, Rows = current.Rows + emitted, Scanned = current.Scanned + high.Count };
                        if (high.Final)
                        {
                            progress.Remove(mark.BackfillId);
                        }
                        else
                        {
                            progress[mark.BackfillId] = current;
                        }

                        state = state with { Backfills = progress.Count == 0 ? null : [.. progress.Values] };
                        high.Emitted.TrySetResult();
                        yield return new StreamProgress(high.Stream, StreamPhase.Backfill, current.Scanned, high.Total is { } total ? Math.Max(total, current.Scanned) : null, mark.BackfillId);
                        if (high.Final)
                        {
                            _log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture, $"backfill {mark.BackfillId} of {high.Stream} done: {current.Rows} rows"));
                            yield return new BackfillDone(mark.BackfillId, high.Stream, current.Rows);
                        }

                        yield return new Checkpoint(state.ToJson());
                        break;
                    case PgOutputKind.Commit:
                        var commitEnd = new NpgsqlLogSequenceNumber(message.EndLsn);
                        foreach (var b in builders.Values)
                        {
                            if (b.Count > 0)
                            {
                                yield return b.Build();
                            }
                        }

                        if (!skip)
                        {
                            state = state with { Lsn = commitEnd.ToString() };
                            yield return new Checkpoint(state.ToJson());
                        }

                        if (!caughtUp && commitEnd >= target)
                        {
                            caughtUp = true;
                            yield return CaughtUp.Instance;
                        }

                        break;
                }

                if (driver.IsFaulted)
                {
                    await driver;
                }

                // A large transaction goes out in several batches; its checkpoint follows the commit.
                foreach (var b in builders.Values)
                {
                    if (b.Count >= _options.ChunkSize)
                    {
                        yield return b.Build();
                    }
                }

                // The heartbeat loop measured the slot's retained WAL again: the connection's status shows it.
                if (NewSlotLagFigure(ref figuresSeen) is { } figures)
                {
                    yield return figures;
                }

                // A backfill whose chunk waits behind a flood of changes says so (every few seconds while it lasts).
                if (DateTime.UtcNow - lastStallNote >= StallNoteEvery && _driver.StallNote((ulong)data.WalStart, StallNoteEvery) is var (stalled, note))
                {
                    lastStallNote = DateTime.UtcNow;
                    var done = progress.GetValueOrDefault(stalled.BackfillId)?.Scanned ?? 0;
                    yield return new StreamProgress(stalled.Stream, StreamPhase.Backfill, done, stalled.Total is { } total ? Math.Max(total, done) : null, stalled.BackfillId, note);
                }
            }
        }
        finally
        {
            await heartbeatCts.CancelAsync();
            try
            {
                await heartbeat;
            }
            catch (OperationCanceledException)
            {
            }

            try
            {
                await driver;
            }
            catch (Exception e) when (e is OperationCanceledException || heartbeatCts.IsCancellationRequested)
            {
                // Ended with the read (an error of its own already surfaced through the loop).
            }
        }
    }

    private IReadOnlyList<string> StreamNames => [.. _streams.Select(s => s.Name)];

    /// <summary>The chunk's rows that the log did not change between its watermarks, as reads at the high watermark.</summary>
    private IEnumerable<ChangeBatch> EmitChunk(BackfillChunk chunk, PgTable table, Dictionary<string, ChangeBatchBuilder> builders, ulong position)
    {
        if (chunk.Truncated)
        {
            yield break;
        }

        if (!builders.TryGetValue(table.StreamName, out var b) || !ReferenceEquals(b.Schema, table.Schema))
        {
            builders[table.StreamName] = b = new ChangeBatchBuilder(table.StreamName, table.Schema, 256);
        }

        // By name: the table's shape may have changed since the chunk was selected.
        var map = new int[chunk.Columns.Length];
        for (var c = 0; c < map.Length; c++)
        {
            map[c] = table.Schema.IndexOf(chunk.Columns[c]);
        }

        ulong n = 0;
        foreach (var row in chunk.Rows)
        {
            if (chunk.Changed.Contains(row.Key))
            {
                continue;
            }

            b.BeginRow(ChangeOp.Read, new SourcePosition(position, n++), 0);
            for (var c = 0; c < map.Length; c++)
            {
                if (map[c] >= 0 && row.Values[c] is { } text)
                {
                    PgText.Set(b, map[c], table.Columns[map[c]], text);
                }
            }

            b.EndRow();
            if (b.Count >= _options.ChunkSize)
            {
                yield return b.Build();
            }
        }

        if (b.Count > 0)
        {
            yield return b.Build();
        }
    }

    private static bool Watched(List<BackfillChunk> open, Relation r)
    {
        foreach (var c in open)
        {
            if (c.Stream == r.Table!.StreamName)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Records a key the log changed while chunks of its stream are between their watermarks.</summary>
    private static void Touch(List<BackfillChunk> open, Relation r, string? key)
    {
        if (key is null)
        {
            return;
        }

        foreach (var c in open)
        {
            if (c.Stream == r.Table!.StreamName)
            {
                c.Changed.Add(key);
            }
        }
    }

    private static string? KeyOf(Relation r, string?[] texts)
    {
        var t = r.Table!;
        var parts = new string[t.KeyOrdinals.Length];
        for (var k = 0; k < parts.Length; k++)
        {
            var wire = Array.IndexOf(r.Map, t.KeyOrdinals[k]);
            if (wire < 0 || wire >= texts.Length || texts[wire] is not { } text)
            {
                return null;
            }

            parts[k] = text;
        }

        return string.Join('\0', parts);
    }

    public async ValueTask StartBackfillAsync(BackfillRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        await using var conn = new NpgsqlConnection(_options.ConnectionString("ingest-backfill"));
        await OpenAsync(conn, cancellationToken);
        var (table, total) = await BackfillDriver.ValidateAsync(conn, _options, StreamNames, request, cancellationToken);
        var known = _resume?.Backfills?.FirstOrDefault(b => b.Id == request.Id);
        _driver.Start(new ActiveBackfill(request, table, known?.Key, total));
        _started[request.Id] = request.Stream;
        _log.Write(ConnectorLogLevel.Information, $"backfill {request.Id} of {request.Stream} starts{(request.Filter is null ? "" : " (filter: " + request.Filter + ")")}");
    }

    public ValueTask CancelBackfillAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        // Only backfills this read knows of end with a BackfillDone; an unknown id has nothing to cancel.
        var stream = _started.TryGetValue(id, out var started) ? started : (_backfills ?? []).FirstOrDefault(b => b.Id == id)?.Stream;
        if (stream is not null)
        {
            _driver.Cancel(id, stream);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Maps a Relation message (sent before the first change that uses a table shape: at the start, and after an
    /// <c>ALTER TABLE</c>) onto the stream. When the columns differ from the stream's current ones (added, dropped, a
    /// type changed), the stream takes the new shape and the table is returned: its later batches carry the new schema.
    /// </summary>
    /// <remarks>
    /// Rows that existed before an added column with a default hold that default at the source, but no change carries it
    /// (PostgreSQL stores it once for the old rows, or rewrites the table without logical changes): the lake's old rows
    /// read null there. The returned note says so and points at a backfill of the stream.
    /// </remarks>
    private async Task<(Relation Relation, PgTable? Reshaped, string? Note)> TrackAsync(PgRelationMessage rel, ConcurrentDictionary<string, PgTable> byName, Dictionary<uint, string> shapes, CancellationToken ct)
    {
        var names = new string[rel.Columns.Count];
        var shape = new StringBuilder();
        for (var i = 0; i < names.Length; i++)
        {
            var c = rel.Columns[i];
            names[i] = c.ColumnName;
            shape.Append(c.ColumnName).Append(' ').Append(c.DataTypeId).Append(' ').Append(c.TypeModifier).Append('\n');
        }

        var stream = rel.Namespace + "." + rel.RelationName;
        if (!byName.TryGetValue(stream, out var table))
        {
            return (new Relation(null, [], names), null, null);
        }

        PgTable? reshaped = null;
        string? note = null;
        var signature = shape.ToString();
        if (!shapes.TryGetValue(rel.RelationId, out var known) || known != signature)
        {
            shapes[rel.RelationId] = signature;
            var columns = await ColumnsAsync(rel, table, ct);
            if (!columns.Select(c => (c.Name, c.PgType)).SequenceEqual(table.Columns.Select(c => (c.Name, c.PgType))))
            {
                var added = columns.Where(c => table.Schema.IndexOf(c.Name) < 0).Select(c => $"{c.Name} {c.PgType}").ToList();
                var defaulted = await DefaultedAsync(rel.RelationId, [.. columns.Where(c => table.Schema.IndexOf(c.Name) < 0).Select(c => c.Name)], ct);
                if (defaulted.Count > 0)
                {
                    note = $"column(s) {string.Join(", ", defaulted)} added with a default: rows written before it hold that value in PostgreSQL but null in the lake (no change carried it) until a backfill of {stream}";
                    _log.Write(ConnectorLogLevel.Warning, $"{stream}: {note}");
                }

                var dropped = table.Columns.Where(c => !columns.Any(n => n.Name == c.Name)).Select(c => c.Name);
                var retyped = columns.Where(c => table.Columns.Any(o => o.Name == c.Name && o.PgType != c.PgType)).Select(c => $"{c.Name} {table.Columns.First(o => o.Name == c.Name).PgType} -> {c.PgType}");
                var key = table.PrimaryKey.All(k => columns.Any(c => c.Name == k))
                    ? table.PrimaryKey
                    : [.. rel.Columns.Where(c => c.PartOfKey).Select(c => c.ColumnName)];
                table = new PgTable(table.SchemaName, table.Name, table.Oid, table.ReplicaIdentity, table.EstimatedRows, columns, key, table.Warnings, table.Partitioned);
                byName[stream] = table;
                reshaped = table;
                _log.Write(ConnectorLogLevel.Information,
                    $"{stream}: the table changed shape (added: {Listed(added)}; dropped: {Listed(dropped)}; retyped: {Listed(retyped)}); later changes carry the new schema");
            }
        }

        var map = new int[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            map[i] = table.Schema.IndexOf(names[i]);
        }

        return (new Relation(table, map, names), reshaped, note);

        static string Listed(IEnumerable<string> items) => string.Join(", ", items) is { Length: > 0 } text ? text : "none";
    }

    /// <summary>Of the columns just added to a table, those with a default (as "name = default"): their value for older rows reached no change.</summary>
    private async Task<List<string>> DefaultedAsync(uint relationId, string[] added, CancellationToken ct)
    {
        if (added.Length == 0)
        {
            return [];
        }

        await using var conn = new NpgsqlConnection(_options.ConnectionString("ingest-types"));
        await OpenAsync(conn, ct);
        await using var cmd = new NpgsqlCommand(
            """
            SELECT a.attname, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = $1 AND a.attname = ANY($2) AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, conn);
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Oid, Value = relationId });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = added });
        var defaulted = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            defaulted.Add($"{r.GetString(0)} = {r.GetString(1)}");
        }

        return defaulted;
    }

    /// <summary>The columns a Relation message describes, typed as discovery types them; unchanged columns keep their nullability.</summary>
    private async Task<List<PgColumn>> ColumnsAsync(PgRelationMessage rel, PgTable table, CancellationToken ct)
    {
        // The main connection belongs to the heartbeat loop meanwhile: look the types up on a connection of our own.
        await using var conn = new NpgsqlConnection(_options.ConnectionString("ingest-types"));
        await OpenAsync(conn, ct);
        var columns = new List<PgColumn>(rel.Columns.Count);
        var warnings = new List<string>();
        foreach (var c in rel.Columns)
        {
            await using var cmd = new NpgsqlCommand(
                """
                SELECT format_type(t.oid, $2), b.typname, b.typtype, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE $2 END,
                       CASE WHEN b.typcategory = 'A' THEN e.typname END, COALESCE(e.typtype, 'b')
                FROM pg_type t
                JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
                LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
                WHERE t.oid = $1
                """, conn);
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Oid, Value = c.DataTypeId });
            cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Integer, Value = c.TypeModifier });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct))
            {
                throw new ConnectorException(ErrorKind.Fatal, $"{table.StreamName}: column {c.ColumnName} has type oid {c.DataTypeId}, which no longer exists");
            }

            var before = table.Columns.FirstOrDefault(o => o.Name == c.ColumnName);
            var column = PgTypes.Map(c.ColumnName, r.GetString(0), r.GetString(1), r.GetChar(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetString(4), r.GetChar(5), nullable: true, _options.NumericMapping, warnings);
            columns.Add(before is not null && before.PgType == column.PgType ? before : column);
        }

        foreach (var w in warnings)
        {
            _log.Write(ConnectorLogLevel.Warning, $"{table.StreamName}: {w}");
        }

        return columns;
    }

    private static Relation? Tracked(Dictionary<uint, Relation> relations, uint id) =>
        relations.TryGetValue(id, out var r) && r.Table is not null ? r : null;

    private void Begin(Dictionary<string, ChangeBatchBuilder> builders, Relation r, ChangeOp op, ulong commitLsn, ref ulong index, long micros)
    {
        var t = r.Table!;
        if (!builders.TryGetValue(t.StreamName, out var b))
        {
            builders[t.StreamName] = b = new ChangeBatchBuilder(t.StreamName, t.Schema, 256);
        }

        b.BeginRow(op, new SourcePosition(commitLsn, index++), micros);
    }

    /// <summary>Copies a row out of the (reused) message into the builder, and ends the row.</summary>
    /// <returns>With <paramref name="captureKey"/>: the row's key as the backfill compares keys (text forms joined by NUL).</returns>
    private static string? SetRow(ChangeBatchBuilder b, Relation r, ReadOnlySpan<byte> tuple, string?[]? old, bool captureKey)
    {
        var table = r.Table!;
        var keyOrdinals = table.KeyOrdinals;
        var key = captureKey ? new string?[keyOrdinals.Length] : null;
        var columns = PgOutputMessage.Columns(tuple);
        var pos = 2;
        for (var i = 0; i < columns; i++)
        {
            var kind = PgOutputMessage.Next(tuple, ref pos, out var value);
            var ordinal = i < r.Map.Length ? r.Map[i] : -1;
            if (ordinal < 0 || kind == (byte)'n')
            {
                continue;
            }

            var column = table.Columns[ordinal];
            if (kind == (byte)'u')
            {
                // pgoutput sends no value for a TOASTed column the update left alone (the 'u' tuple kind): with REPLICA
                // IDENTITY FULL the old row carries it; otherwise the batch says "unchanged" and the merge keeps the
                // value the table holds (never a placeholder).
                var before = old is not null && i < old.Length ? old[i] : null;
                if (before is null)
                {
                    b.SetUnchanged(ordinal);
                }
                else
                {
                    PgText.Set(b, ordinal, column, before);
                }
            }
            else if (key is not null && Array.IndexOf(keyOrdinals, ordinal) is var k and >= 0)
            {
                var text = Encoding.UTF8.GetString(value);
                PgText.Set(b, ordinal, column, text);
                key[k] = text;
            }
            else
            {
                // The value's UTF-8 text straight from the message: no string per column.
                PgText.SetUtf8(b, ordinal, column, value);
            }
        }

        b.EndRow();
        return key is null || Array.IndexOf(key, null) >= 0 ? null : string.Join('\0', key);
    }

    /// <summary>A tuple's values as text (null for SQL NULL and unchanged TOASTed values), by wire position.</summary>
    private static string?[] Texts(ReadOnlySpan<byte> tuple, int n)
    {
        var texts = new string?[n];
        var columns = PgOutputMessage.Columns(tuple);
        var pos = 2;
        for (var i = 0; i < columns; i++)
        {
            if (PgOutputMessage.Next(tuple, ref pos, out var value) is (byte)'t' or (byte)'b' && i < n)
            {
                texts[i] = Encoding.UTF8.GetString(value);
            }
        }

        return texts;
    }

    /// <summary>
    /// Writes a logical message when nothing arrived for a heartbeat interval, so that the slot of a quiet
    /// publication still advances (its commit yields a checkpoint that the engine acknowledges). The first one
    /// goes out at once: it is the change after the start position that a <c>--once</c> read waits for.
    /// </summary>
    private async Task HeartbeatLoopAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var first = true;
        var lagCheckedTicks = 0L;
        while (!ct.IsCancellationRequested)
        {
            if (DateTime.UtcNow.Ticks - lagCheckedTicks >= _options.HeartbeatInterval.Ticks)
            {
                lagCheckedTicks = DateTime.UtcNow.Ticks;
                await CheckSlotLagAsync(conn, ct);
            }

            var idle = TimeSpan.FromTicks(DateTime.UtcNow.Ticks - Interlocked.Read(ref _lastActivityTicks));
            if (first || idle >= _options.HeartbeatInterval)
            {
                try
                {
                    await using var cmd = new NpgsqlCommand("SELECT pg_logical_emit_message(true, 'ingest-heartbeat', '')", conn);
                    await cmd.ExecuteNonQueryAsync(ct);
                    first = false;
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
                {
                    _log.Write(ConnectorLogLevel.Warning, $"heartbeat failed: {e.Message}");
                }

                Interlocked.Exchange(ref _lastActivityTicks, DateTime.UtcNow.Ticks);
            }

            await Task.Delay(first ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromMilliseconds(Math.Max(100, _options.HeartbeatInterval.TotalMilliseconds / 4)), ct);
        }
    }

    /// <summary>
    /// The WAL the slot keeps on the server (<c>pg_current_wal_lsn() - restart_lsn</c>): logged at debug level every
    /// heartbeat interval, as a warning above <c>slotLagWarningBytes</c>, and yielded as the connection's
    /// <see cref="RetainedWalFigure"/> figure.
    /// </summary>
    private async Task CheckSlotLagAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        try
        {
            // Never an error on a standby (pg_current_wal_lsn() raises one there): inside the snapshot's transaction an
            // error would abort the copy.
            await using var cmd = new NpgsqlCommand("SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE (pg_current_wal_lsn() - restart_lsn)::bigint END FROM pg_replication_slots WHERE slot_name = @s", conn);
            cmd.Parameters.AddWithValue("s", _options.SlotName);
            if (await cmd.ExecuteScalarAsync(ct) is not long lag)
            {
                return;
            }

            SlotLagBytes = lag;
            Interlocked.Increment(ref _slotLagMeasurements);
            if (lag > _options.SlotLagWarningBytes)
            {
                _log.Write(ConnectorLogLevel.Warning, string.Create(CultureInfo.InvariantCulture,
                    $"replication slot {_options.SlotName} retains {lag} bytes of WAL (above slotLagWarningBytes {_options.SlotLagWarningBytes}): the pipeline is behind or stalled, and the server cannot recycle that WAL"));
            }
            else
            {
                _log.Write(ConnectorLogLevel.Debug, string.Create(CultureInfo.InvariantCulture, $"replication slot {_options.SlotName} retains {lag} bytes of WAL"));
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            _log.Write(ConnectorLogLevel.Warning, $"slot lag check failed: {e.Message}");
        }
    }

    /// <summary>How long a backfill chunk may wait behind the stream before the stream's status says so (and how often it repeats).</summary>
    internal TimeSpan StallNoteEvery { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The slot's retained WAL in bytes at the last check (-1 before the first): the <c>ingest.postgres.slot_lag_bytes</c> gauge.</summary>
    internal long SlotLagBytes
    {
        get => Interlocked.Read(ref _slotLagBytes);
        private set => Interlocked.Exchange(ref _slotLagBytes, value);
    }

    private long _slotLagBytes = -1;
    private long _slotLagMeasurements;

    /// <summary>The name under which the slot's retained WAL reaches the connection's status (<see cref="SourceFigures"/>).</summary>
    internal const string RetainedWalFigure = "retained_wal_bytes";

    /// <summary>
    /// The slot's retained WAL as a figure of the connection's status, when a measurement newer than
    /// <paramref name="seen"/> exists (<paramref name="seen"/> then moves to it); null otherwise.
    /// </summary>
    private SourceFigures? NewSlotLagFigure(ref long seen)
    {
        var measured = Interlocked.Read(ref _slotLagMeasurements);
        if (measured == seen || SlotLagBytes is not (>= 0 and var lag))
        {
            return null;
        }

        seen = measured;
        return new SourceFigures(new ConnectorFigure(RetainedWalFigure, "retained WAL", lag, FigureUnits.Bytes));
    }

    public async ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var s = PgState.Parse(checkpoint.State);
        if (s.Snapshot is not null)
        {
            return;
        }

        LogicalReplicationConnection? replication;
        var lsn = s.LsnValue;
        lock (_gate)
        {
            if (lsn <= _acknowledged)
            {
                return;
            }

            _acknowledged = lsn;
            replication = _streaming ? _replication : null;
            replication?.SetReplicationStatus(lsn);
        }

        if (replication is not null)
        {
            try
            {
                await replication.SendStatusUpdate(cancellationToken);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException)
            {
                // The next status update (every WalReceiverStatusInterval) or the next read confirms it.
                _log.Write(ConnectorLogLevel.Debug, $"status update failed: {e.Message}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        PgMetrics.Unregister(this);
        LogicalReplicationConnection? replication;
        lock (_gate)
        {
            replication = _replication;
            _replication = null;
        }

        if (replication is not null)
        {
            await replication.DisposeAsync();
        }
    }
}
