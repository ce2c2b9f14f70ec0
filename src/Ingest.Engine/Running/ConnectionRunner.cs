using System.Diagnostics;
using System.Net.Http;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Sink;
using Ingest.Engine.State;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Running;

/// <summary>
/// Runs one connection: a reader task feeding a bounded channel and a sink that commits to the lake with
/// exactly-once progress (DESIGN.md section 4). Transient failures restart the read from the lake's progress.
/// </summary>
internal sealed partial class ConnectionRunner(
    BoundConnection connection,
    CommitPolicy commit,
    RunOptions options,
    StateStore? store,
    long runId,
    ILogger logger,
    ConnectionStatus status)
{
    private readonly string _name = connection.Name;

    // Source time of the newest row read, and of the newest row a checkpoint covers, per stream (for the lag).
    private readonly Dictionary<string, long> _readSourceMicros = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _coveredSourceMicros = new(StringComparer.Ordinal);
    private bool _checked;

    private RunOptions Options => options;

    private ConnectionStatus Status => status;

    private ILogger Logger => logger;

    private StateStore? Store => store;

    public async Task<ConnectionState> RunAsync(CancellationToken stop)
    {
        if (connection.Failure is { } failure)
        {
            return await FailAsync(failure, Classify(failure));
        }

        return await RestartLoop.RunAsync(
            RunAttemptAsync,
            options,
            status,
            Classify,
            Describe,
            async (restart, delay, e, kind) =>
            {
                LogRetry(logger, _name, restart, options.MaxAttempts, delay.TotalSeconds, Describe(e));
                await RecordErrorAsync(kind, e);
            },
            FailAsync,
            stop);
    }

    private async Task<ConnectionState> FailAsync(Exception e, ErrorKind kind)
    {
        status.State = ConnectionState.Failed;
        status.Error = Describe(e);
        LogFailed(logger, e is ConnectorException ? null : e, _name, kind.ToString().ToLowerInvariant(), Describe(e));
        await RecordErrorAsync(kind, e);
        return ConnectionState.Failed;
    }

    private async Task RecordErrorAsync(ErrorKind kind, Exception e)
    {
        if (store is not null)
        {
            try
            {
                await store.AddErrorAsync(runId, _name, kind.ToString().ToLowerInvariant(), Describe(e), CancellationToken.None);
            }
            catch (Exception se) when (se is Microsoft.Data.Sqlite.SqliteException or IOException)
            {
                LogStoreFailed(logger, _name, se.Message);
            }
        }
    }

    internal static string Describe(Exception e) => e switch
    {
        ConnectorException { Field: { } f } ce => $"{ce.Message} (field {f})",
        ConnectorException ce => ce.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    internal static ErrorKind Classify(Exception e) => e switch
    {
        ConnectorException ce => ce.Kind,
        IOException or TimeoutException or HttpRequestException or Delta.DeltaConcurrencyException => ErrorKind.Transient,
        AggregateException { InnerExceptions.Count: 1 } ae => Classify(ae.InnerExceptions[0]),
        _ => ErrorKind.Fatal,
    };

    private async Task<ConnectionState> RunAttemptAsync(StrongBox<bool> progressed, CancellationToken stop)
    {
        status.State = ConnectionState.Starting;
        var connector = connection.Connector;
        var config = connection.Definition.Config;
        // Check once per run: after a transient failure the source may still hold resources of the failed read (a
        // replication slot stays "active" until the server notices), and the read itself reports that as transient.
        if (!_checked)
        {
            var check = await connector.CheckAsync(config, stop);
            if (!check.Succeeded)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"check failed: {check.Message}", check.Field);
            }

            _checked = true;
        }

        var tables = new List<TableSink>();
        foreach (var target in connection.Targets)
        {
            tables.Add(await TableSink.OpenAsync(_name, target, logger, stop));
        }

        if (tables.Count == 0)
        {
            return ConnectionState.Completed;
        }

        var byStream = tables.GroupBy(t => t.Target.Stream.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        var schemas = connection.Targets.GroupBy(t => t.Stream.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Stream.Schema, StringComparer.Ordinal);

        // Progress lives in the lake: resume from the earliest checkpoint any table recorded; a table without one means a full read.
        JsonElement? resumeState = null;
        var fresh = tables.Where(t => t.Progress is null).ToList();
        if (fresh.Count == 0)
        {
            var earliest = tables.MinBy(t => t.Progress!.Sequence)!;
            resumeState = earliest.Progress!.Checkpoint;
            LogResume(logger, _name, earliest.Progress.Sequence, earliest.Target.Stream.Name);
        }
        else if (fresh.Count < tables.Count && fresh.All(t => t.Target.Stream.JoinsRunningRead))
        {
            // Streams added to the connection since: the connector reads them from the start within the resumed read
            // (their tables take every row), so the other streams need not be read again.
            var earliest = tables.Where(t => t.Progress is not null).MinBy(t => t.Progress!.Sequence)!;
            resumeState = earliest.Progress!.Checkpoint;
            LogResumeWithNew(logger, _name, earliest.Progress.Sequence, string.Join(", ", fresh.Select(t => t.Target.Stream.Name).Distinct(StringComparer.Ordinal)));
        }
        else
        {
            LogFullRead(logger, _name, string.Join(", ", tables.Where(t => t.Progress is null).Select(t => t.Target.Stream.Name).Distinct(StringComparer.Ordinal)));
        }

        var sequence = Math.Max(0, tables.Max(t => t.TxnVersion));
        var selections = byStream.Keys.Select(n => new StreamSelection(n, PickSyncMode(connection.Targets.First(t => t.Stream.Name == n).Stream))).ToList();
        foreach (var n in byStream.Keys)
        {
            status.Stream(n);
        }

        var backfills = status.Backfills.BeginRead(byStream.Keys.ToHashSet(StringComparer.Ordinal));
        var reader = connector.OpenReader(new ReadContext(_name, config, selections, resumeState, new ConnectorLogAdapter(logger, _name)) { Backfills = backfills });
        if (backfills.Count > 0 && reader is not IBackfillReader)
        {
            foreach (var b in backfills)
            {
                status.Backfills.Fail(b.Id, $"connector '{connection.Definition.Connector}' does not support backfills");
            }
        }

        using var readCts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var channel = Channel.CreateBounded<SourceMessage>(new BoundedChannelOptions(Math.Max(1, options.ChannelCapacity))
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        var readAhead = new ReadAhead(options.ReadAheadBytes);
        var readerTask = Task.Run(() => PumpAsync(reader, channel.Writer, readAhead, readCts.Token), CancellationToken.None);
        var sink = new Flusher(this, tables, reader, sequence, progressed);
        try
        {
            status.State = ConnectionState.Running;
            var result = await ConsumeAsync(channel.Reader, readAhead, readerTask, byStream, schemas, sink, reader, stop);
            return result;
        }
        finally
        {
            await readCts.CancelAsync();
            try
            {
                await readerTask;
            }
            catch (Exception)
            {
                // The read's own failure was reported by ConsumeAsync; here the read is only wound down.
            }

            sink.DisposeBatches();
            while (channel.Reader.TryRead(out var left))
            {
                (left as ChangeBatch)?.Dispose();
            }

            foreach (var t in tables)
            {
                t.Discard();
            }

            try
            {
                await reader.DisposeAsync();
            }
            catch (Exception e)
            {
                // Do not hide the outcome of the read behind a failure to close it.
                LogDisposeFailed(logger, _name, Describe(e));
            }
        }
    }

    private static SyncMode PickSyncMode(StreamDescriptor s) =>
        s.SupportedSyncModes.Contains(SyncMode.Cdc) ? SyncMode.Cdc
        : s.SupportedSyncModes.Contains(SyncMode.Incremental) ? SyncMode.Incremental
        : s.SupportedSyncModes.Count > 0 ? s.SupportedSyncModes[0] : SyncMode.FullRefresh;

    private static async Task PumpAsync(ISourceReader reader, ChannelWriter<SourceMessage> writer, ReadAhead readAhead, CancellationToken ct)
    {
        try
        {
            await foreach (var m in reader.ReadAsync(ct).WithCancellation(ct))
            {
                if (m is ChangeBatch batch)
                {
                    await readAhead.TakeAsync(LakeColumns.BufferBytes(batch.Data), ct);
                }

                await writer.WriteAsync(m, ct);
            }

            writer.TryComplete();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    private async Task DispatchBackfillsAsync(ISourceReader reader, CancellationToken stop)
    {
        var (start, cancel) = status.Backfills.TakeCommands();
        foreach (var request in start)
        {
            if (reader is not IBackfillReader backfills)
            {
                status.Backfills.Fail(request.Id, $"connector '{connection.Definition.Connector}' does not support backfills");
                continue;
            }

            try
            {
                await backfills.StartBackfillAsync(request, stop);
                status.Backfills.Started(request.Id);
                LogBackfillStarted(logger, _name, request.Stream, request.Id, request.Filter ?? "(all rows)");
            }
            catch (ConnectorException e)
            {
                status.Backfills.Fail(request.Id, Describe(e));
                LogBackfillRefused(logger, _name, request.Stream, request.Id, Describe(e));
            }
        }

        foreach (var id in cancel)
        {
            if (reader is IBackfillReader backfills)
            {
                await backfills.CancelBackfillAsync(id, stop);
            }
        }
    }

    private async Task<ConnectionState> ConsumeAsync(
        ChannelReader<SourceMessage> messages,
        ReadAhead readAhead,
        Task readerTask,
        Dictionary<string, TableSink[]> byStream,
        Dictionary<string, StreamSchema> schemas,
        Flusher sink,
        ISourceReader reader,
        CancellationToken stop)
    {
        var lastPositions = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
        var lastLog = Stopwatch.StartNew();
        Task<bool>? wait = null;
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(commit.Interval.TotalMilliseconds / 2, 50, 1000));
        while (true)
        {
            await DispatchBackfillsAsync(reader, stop);
            if (messages.TryRead(out var message))
            {
                switch (message)
                {
                    case ChangeBatch batch:
                        readAhead.Release(LakeColumns.BufferBytes(batch.Data));
                        if (!byStream.TryGetValue(batch.Stream, out var targets))
                        {
                            batch.Dispose();
                            throw new ConnectorException(ErrorKind.Fatal, $"connector '{connection.Definition.Connector}' sent rows of stream '{batch.Stream}', which was not selected (selected: {string.Join(", ", byStream.Keys)})");
                        }

                        if (targets[0].Target.Columns is { } selected)
                        {
                            // The stream's column selection: only these reach the tables (the binder made every table of the stream agree).
                            batch = ColumnProjection.Project(batch, selected);
                        }

                        sink.Track(batch);
                        if (batch.Length > 0 && batch.SourceTimestampsMicros[batch.Length - 1] > 0)
                        {
                            _readSourceMicros[batch.Stream] = batch.SourceTimestampsMicros[batch.Length - 1];
                        }

                        if (Validate(batch, schemas[batch.Stream], lastPositions) is { } changed)
                        {
                            // The source changed the stream's shape mid-read: each table applies its schema policy first.
                            foreach (var t in targets)
                            {
                                await t.ChangeSchemaAsync(changed, CancellationToken.None);
                            }

                            schemas[batch.Stream] = changed;
                        }

                        if (batch.Unchanged is { Count: > 0 })
                        {
                            // Append tables record which columns the source did not send: their column comes first.
                            foreach (var t in targets)
                            {
                                await t.EnsureUnchangedColumnAsync(CancellationToken.None);
                            }
                        }

                        var now = DateTimeOffset.UtcNow;
                        var micros = (now - DateTimeOffset.UnixEpoch).Ticks / 10;
                        foreach (var t in targets)
                        {
                            t.Accept(batch, micros, copy: targets.Length > 1 && t != targets[^1]);
                        }

                        status.Stream(batch.Stream).AddRead(batch.Length);
                        break;
                    case Checkpoint checkpoint:
                        status.Backfills.Cover();
                        foreach (var (stream, readMicros) in _readSourceMicros)
                        {
                            _coveredSourceMicros[stream] = readMicros;
                        }

                        sink.Cover(checkpoint);
                        if (sink.Due(commit))
                        {
                            await sink.FlushAsync(force: false, CancellationToken.None);
                        }

                        break;
                    case StreamProgress { BackfillId: { } backfillId } bp:
                        status.Backfills.Progress(backfillId, bp.RowsDone, bp.RowsTotal);
                        status.Stream(bp.Stream).Message = bp.Message;
                        break;
                    case BackfillDone backfillDone:
                        status.Backfills.ReadDone(backfillDone.Id, backfillDone.Rows, backfillDone.Cancelled);
                        LogBackfillRead(logger, _name, backfillDone.Stream, backfillDone.Id, backfillDone.Rows, backfillDone.Cancelled ? "cancelled" : "read");
                        break;
                    case StreamProgress p:
                        var ss = status.Stream(p.Stream);
                        ss.Phase = p.Phase;
                        ss.PhaseRowsDone = p.RowsDone;
                        ss.PhaseRowsTotal = p.RowsTotal;
                        if (ss.Message != p.Message && p.Message is not null)
                        {
                            LogStreamNote(logger, _name, p.Stream, p.Message);
                        }

                        ss.Message = p.Message;
                        break;
                    case SourceFigures figures:
                        status.Report(figures);
                        break;
                    case CaughtUp:
                        await sink.FlushAsync(force: true, CancellationToken.None);
                        if (!status.CaughtUp)
                        {
                            LogCaughtUp(logger, _name, sink.Sequence);
                        }

                        status.CaughtUp = true;
                        if (options.Once)
                        {
                            return ConnectionState.Completed;
                        }

                        break;
                }

                if (lastLog.Elapsed >= TimeSpan.FromSeconds(5))
                {
                    LogStreams();
                    lastLog.Restart();
                }

                continue;
            }

            wait ??= messages.WaitToReadAsync(CancellationToken.None).AsTask();
            var done = await Task.WhenAny(wait, Task.Delay(tick, CancellationToken.None));
            if (done != wait)
            {
                if (sink.Due(commit))
                {
                    await sink.FlushAsync(force: false, CancellationToken.None);
                }

                continue;
            }

            bool more;
            try
            {
                more = await wait;
            }
            catch (Exception)
            {
                more = false;
            }

            wait = null;
            if (more)
            {
                continue;
            }

            // The read ended: on request, by itself, or with a failure (the pump completes the channel just before it faults).
            Exception? error = null;
            try
            {
                await readerTask;
            }
            catch (Exception e)
            {
                error = e;
            }

            if (error is not null)
            {
                try
                {
                    await sink.FlushAsync(force: false, CancellationToken.None);
                }
                catch (Exception flushError)
                {
                    LogFlushAfterFailure(logger, _name, flushError.Message);
                }

                throw error;
            }

            // A read stopped on request is not a whole read: overwrite tables keep their staged rows uncommitted.
            var stopped = stop.IsCancellationRequested;
            await sink.FlushAsync(force: true, final: !stopped, CancellationToken.None);
            LogStreams();
            LogEnded(logger, _name, stopped ? "stopped on request" : "the read ended", sink.Sequence);
            return stopped ? ConnectionState.Stopped : ConnectionState.Completed;
        }
    }

    /// <summary>
    /// Checks a batch against the SDK contract (positions strictly increase within a stream). Returns the stream's new
    /// schema when the batch's columns differ from <paramref name="schema"/> (the source changed shape), else null.
    /// </summary>
    private StreamSchema? Validate(ChangeBatch batch, StreamSchema schema, Dictionary<string, SourcePosition> lastPositions)
    {
        var data = batch.Data;
        StreamSchema? changed = null;
        if (!SchemaChange.Matches(data.Schema, schema))
        {
            try
            {
                changed = StreamSchema.FromArrow(data.Schema);
            }
            catch (Exception e) when (e is NotSupportedException or ArgumentException)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"stream '{batch.Stream}': a batch has columns the SDK cannot describe ({e.Message})");
            }
        }

        if (batch.Length == 0)
        {
            return changed;
        }

        var positions = batch.Positions;
        var previous = lastPositions.TryGetValue(batch.Stream, out var p) ? p : (SourcePosition?)null;
        for (var i = 0; i < batch.Length; i++)
        {
            if (previous is { } prev && positions[i] <= prev)
            {
                throw new ConnectorException(ErrorKind.Fatal,
                    $"connector '{connection.Definition.Connector}' broke the SDK contract: positions of stream '{batch.Stream}' must strictly increase, but {positions[i]} follows {prev}");
            }

            previous = positions[i];
        }

        lastPositions[batch.Stream] = previous!.Value;
        return changed;
    }

    private void LogStreams()
    {
        foreach (var s in status.Streams.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            LogStream(logger, _name, s.Name, s.Phase?.ToString().ToLowerInvariant() ?? "-", s.RowsRead, s.RowsCommitted, s.LastCommitVersion ?? -1);
        }
    }

    /// <summary>The commit side of a read: covered rows, the checkpoint sequence, acknowledgements.</summary>
    private sealed class Flusher(ConnectionRunner runner, List<TableSink> tables, ISourceReader reader, long sequence, StrongBox<bool> progressed)
    {
        private readonly List<ChangeBatch> _pending = [];
        private readonly List<ChangeBatch> _covered = [];
        private readonly Dictionary<long, Checkpoint> _checkpoints = [];
        private readonly long _startSequence = sequence;
        private Checkpoint? _latest;
        private bool _flushedOnce;
        private long _acknowledged = -1;
        private DateTimeOffset _lastFlush = DateTimeOffset.UtcNow;

        public long Sequence { get; private set; } = sequence;

        public void Track(ChangeBatch batch) => _pending.Add(batch);

        public void Cover(Checkpoint checkpoint)
        {
            _latest = checkpoint;
            _covered.AddRange(_pending);
            _pending.Clear();
            foreach (var t in tables)
            {
                t.Cover();
            }
        }

        public bool Due(CommitPolicy policy)
        {
            if (_latest is null)
            {
                return false;
            }

            var now = DateTimeOffset.UtcNow;
            long covered = 0;
            long coveredBytes = 0;
            var idle = false;
            foreach (var t in tables)
            {
                covered += t.CoveredRows;
                coveredBytes += t.CoveredBytes;
                idle |= now - t.LastCommitAt >= runner.Options.IdleCommitAge && t.LastCommitAt != DateTimeOffset.MinValue;
            }

            return covered >= policy.MaxRows
                || coveredBytes >= runner.Options.CommitBytes
                || (now - _lastFlush >= policy.Interval && (covered > 0 || !_flushedOnce))
                || idle;
        }

        public Task FlushAsync(bool force, CancellationToken ct) => FlushAsync(force, force, ct);

        public async Task FlushAsync(bool force, bool final, CancellationToken ct)
        {
            if (_latest is null)
            {
                return;
            }

            var now = DateTimeOffset.UtcNow;
            var due = tables.Where(t => force || !_flushedOnce || t.CoveredRows > 0 || now - t.LastCommitAt >= runner.Options.IdleCommitAge).ToList();
            if (due.Count == 0)
            {
                return;
            }

            if (!_flushedOnce)
            {
                // The first flush of a read commits to every table, those the read resumed from last: until it completes, the
                // earliest recorded checkpoint stays the one this read started from, so a crash mid-flush still resumes safely.
                due = due.OrderByDescending(t => t.RecordedSequence ?? -1).ToList();
            }

            var seq = ++Sequence;
            var checkpoint = _latest;
            _checkpoints[seq] = checkpoint;
            foreach (var t in due)
            {
                var before = t.RowsCommitted;
                var result = await t.CommitAsync(seq, checkpoint, final, ct);
                var ss = runner.Status.Stream(t.Target.Stream.Name);
                ss.AddCommitted(t.RowsCommitted - before);
                ss.LastCommitVersion = result.Version;
                ss.LastCommitAt = DateTimeOffset.UtcNow;
                if (runner._coveredSourceMicros.TryGetValue(t.Target.Stream.Name, out var sourceMicros))
                {
                    ss.Lag = ss.LastCommitAt.Value - DateTimeOffset.UnixEpoch.AddTicks(sourceMicros * 10);
                }
                LogCommit(runner.Logger, runner._name, t.Target.Stream.Name, result.Version, t.RowsCommitted - before, seq);
            }

            _flushedOnce = true;
            _lastFlush = DateTimeOffset.UtcNow;
            progressed.Value = true;
            runner.Status.CheckpointSequence = seq;
            runner.Status.Backfills.Committed();
            DisposeCovered();
            NativeHeap.Trim();

            // Acknowledge what the lake can resume from: the earliest checkpoint any table records.
            var earliest = tables.Min(t => t.RecordedSequence ?? -1);
            if (earliest > _startSequence && earliest > _acknowledged && _checkpoints.TryGetValue(earliest, out var ack))
            {
                await reader.AcknowledgeAsync(ack, ct);
                _acknowledged = earliest;
                foreach (var k in _checkpoints.Keys.Where(k => k < earliest).ToList())
                {
                    _checkpoints.Remove(k);
                }

                if (runner.Store is not null)
                {
                    await runner.Store.SaveCheckpointAsync(runner._name, earliest, ack.State, ct);
                }
            }
        }

        private void DisposeCovered()
        {
            foreach (var b in _covered)
            {
                b.Dispose();
            }

            _covered.Clear();
        }

        public void DisposeBatches()
        {
            DisposeCovered();
            foreach (var b in _pending)
            {
                b.Dispose();
            }

            _pending.Clear();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream}: {Note}")]
    private static partial void LogStreamNote(ILogger logger, string connection, string stream, string note);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream}: backfill {Id} started: {Filter}")]
    private static partial void LogBackfillStarted(ILogger logger, string connection, string stream, string id, string filter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}.{Stream}: backfill {Id} refused: {Error}")]
    private static partial void LogBackfillRefused(ILogger logger, string connection, string stream, string id, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream}: backfill {Id} {How} ({Rows} rows); completes with the next commit")]
    private static partial void LogBackfillRead(ILogger logger, string connection, string stream, string id, long rows, string how);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}: restart {Attempt}/{Max} in {Seconds:0.0} s after a transient failure: {Error}")]
    private static partial void LogRetry(ILogger logger, string connection, int attempt, int max, double seconds, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Connection}: failed ({Kind}): {Error}")]
    private static partial void LogFailed(ILogger logger, Exception? exception, string connection, string kind, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}: could not record an error in the state store: {Error}")]
    private static partial void LogStoreFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: resuming from checkpoint #{Sequence} recorded in table of stream {Stream}")]
    private static partial void LogResume(ILogger logger, string connection, long sequence, string stream);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: resuming from checkpoint #{Sequence}; new stream(s) {Streams} are read from the start within the same read")]
    private static partial void LogResumeWithNew(ILogger logger, string connection, long sequence, string streams);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: reading from the start (no progress recorded in the table(s) of: {Streams})")]
    private static partial void LogFullRead(ILogger logger, string connection, string streams);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: {How}; everything up to checkpoint #{Sequence} is committed")]
    private static partial void LogEnded(ILogger logger, string connection, string how, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}: closing the connector's reader failed: {Error}")]
    private static partial void LogDisposeFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: caught up (checkpoint #{Sequence} committed)")]
    private static partial void LogCaughtUp(ILogger logger, string connection, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}: could not commit after the read failed: {Error}")]
    private static partial void LogFlushAfterFailure(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream}: phase {Phase}, read {Read} rows, committed {Committed} rows, table version {Version}")]
    private static partial void LogStream(ILogger logger, string connection, string stream, string phase, long read, long committed, long version);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Connection}.{Stream}: committed version {Version} ({Rows} rows, checkpoint #{Sequence})")]
    private static partial void LogCommit(ILogger logger, string connection, string stream, long version, long rows, long sequence);

}
