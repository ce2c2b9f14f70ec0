using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Sample;

/// <summary>
/// One read: the snapshot (unless the state is past it), the change backlog, <see cref="CaughtUp"/>, then
/// new change events at the configured rate until cancelled. Everything up to the rate-driven part is a
/// function of the options and the starting state, so a resumed read continues exactly where the
/// checkpoint left off. Backfills re-read the current rows of an id range between change batches, positioned
/// right after the last change event, one batch and checkpoint per chunk. With the wall clock (the default) the rows'
/// source timestamps come from <see cref="SampleTimeline"/>; with the synthetic one, from the sequence numbers.
/// </summary>
internal sealed class SampleReader : ISourceReader, IBackfillReader
{
    private const int MaxFinishedKept = 32;

    // Backfill ids of streams that joined a resumed read.
    private const string JoinPrefix = "join:";
    private readonly SampleOptions _options;
    private readonly SampleState? _start;
    private readonly bool[] _snapshotStreams = new bool[SampleStreams.Count];
    private readonly bool[] _changeStreams = new bool[SampleStreams.Count];
    private readonly IConnectorLog _log;
    private readonly string _fingerprint;
    private readonly List<(string Id, SampleBackfill Progress)> _backfills = [];
    private readonly Dictionary<string, long> _finished = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(BackfillRequest? Start, string? Cancel)> _commands = new();
    private readonly List<string> _covered;
    private readonly bool _wall;

    // With the wall clock: the source time of the state the generator holds (the last event's, or the snapshot's).
    private long _stateMicros;
    private ulong _subBase;
    private ulong _sub;
    private int _started;

    public SampleReader(SampleOptions options, IReadOnlyList<StreamSelection> streams, SampleState? start, IConnectorLog log)
        : this(options, streams, start, log, [])
    {
    }

    public SampleReader(SampleOptions options, IReadOnlyList<StreamSelection> streams, SampleState? start, IConnectorLog log, IReadOnlyList<BackfillRequest> backfills)
    {
        _options = options;
        _start = start;
        _log = log;
        _fingerprint = options.Fingerprint();
        _wall = options.Clock == SampleClock.Wall;
        foreach (var selection in streams)
        {
            var s = SampleStreams.IndexOf(selection.Name);
            if (s < 0)
            {
                throw new ConnectorException(
                    ErrorKind.Configuration,
                    $"The sample source has no stream '{selection.Name}'; it has {string.Join(", ", SampleStreams.Names)}.");
            }

            if (selection.SyncMode == SyncMode.Incremental)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Stream '{selection.Name}' supports the cdc and full_refresh sync modes, not incremental.");
            }

            // A full refresh reads the snapshot only; cdc also follows the changes.
            _snapshotStreams[s] = true;
            _changeStreams[s] = selection.SyncMode == SyncMode.Cdc;
        }

        _covered = streams.Select(x => x.Name).Order(StringComparer.Ordinal).ToList();
        if (start?.Backfills is { } running)
        {
            _backfills.AddRange(running.Select(kv => (kv.Key, kv.Value)));
        }

        if (start?.BackfillsDone is { } finished)
        {
            foreach (var (id, rows) in finished)
            {
                _finished[id] = rows;
            }
        }

        if (start?.Streams is { } covered)
        {
            // Streams selected since the checkpoint: their current rows, read like a backfill of everything. A stream
            // the interrupted snapshot has not reached yet is left to the snapshot.
            var snapshotAt = start.Phase == SampleState.SnapshotPhase ? SampleStreams.IndexOf(start.Stream!) : SampleStreams.Count;
            foreach (var selection in streams)
            {
                var s = SampleStreams.IndexOf(selection.Name);
                if (!covered.Contains(selection.Name) && s < snapshotAt && !_backfills.Any(b => b.Id == JoinPrefix + selection.Name))
                {
                    _commands.Enqueue((new BackfillRequest(JoinPrefix + selection.Name, selection.Name), null));
                    _log.Write(ConnectorLogLevel.Information, $"Stream {selection.Name} is new to this connection: reading its current rows.");
                }
            }
        }

        foreach (var request in backfills)
        {
            if (_backfills.Any(b => b.Id == request.Id))
            {
                continue;
            }

            // Validated when first requested; a request that no longer fits (the selection changed) ends at once.
            _commands.Enqueue((request, null));
        }
    }

    /// <inheritdoc />
    public ValueTask StartBackfillAsync(BackfillRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ParseRange(request, out _);
        _commands.Enqueue((request, null));
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask CancelBackfillAsync(string id, CancellationToken cancellationToken)
    {
        _commands.Enqueue((null, id));
        return ValueTask.CompletedTask;
    }

    /// <summary>The stream and id range of a request.</summary>
    /// <exception cref="ConnectorException">The stream is not selected or the filter is not <c>first..last</c>.</exception>
    private int ParseRange(BackfillRequest request, out (int First, int Last) range)
    {
        var s = SampleStreams.IndexOf(request.Stream);
        if (s < 0 || !_snapshotStreams[s])
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Stream '{request.Stream}' is not read by this connection; backfill one of the selected streams.", "stream");
        }

        range = (1, int.MaxValue);
        if (string.IsNullOrWhiteSpace(request.Filter))
        {
            return s;
        }

        var text = request.Filter.Trim();
        var dots = text.IndexOf("..", StringComparison.Ordinal);
        var firstText = dots < 0 ? text : text[..dots];
        var lastText = dots < 0 ? text : text[(dots + 2)..];
        if (!int.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out var first)
            || !int.TryParse(lastText, NumberStyles.None, CultureInfo.InvariantCulture, out var last)
            || first < 1 || last < first)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Backfill filter '{request.Filter}' is not an id range such as 1..1000 (or a single id).", "filter");
        }

        range = (first, last);
        return s;
    }

    /// <summary>The last checkpoint the engine acknowledged (nothing else to release for a synthetic source).</summary>
    public Checkpoint? LastAcknowledged { get; private set; }

    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("ReadAsync may be called once per reader.");
        }

        var generator = new SampleGenerator(_options);
        var sink = new SampleBatchSink(generator, Math.Min(_options.BatchSize, 65_536));
        var timeline = new SampleTimeline(_options.Changes, _options.ChangesPerSecond);
        var checkpoints = 0;

        if (_start is null || _start.Phase == SampleState.SnapshotPhase)
        {
            sink.Enabled = _snapshotStreams;
            _stateMicros = timeline.BacklogMicros(0);
            sink.SourceMicros = _wall ? _stateMicros : null;
            var first = _start is null ? 0 : SampleStreams.IndexOf(_start.Stream!);
            for (var s = first; s < SampleStreams.Count; s++)
            {
                if (!_snapshotStreams[s])
                {
                    continue;
                }

                var total = generator.SnapshotRows(s);
                var offset = _start is not null && s == first ? Math.Min(_start.Offset, total) : 0;
                while (offset < total)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        yield break;
                    }

                    var n = (int)Math.Min(_options.BatchSize, total - offset);
                    generator.EmitSnapshot(s, offset, n, sink);
                    offset += n;
                    yield return sink.Build(s);
                    yield return new StreamProgress(SampleStreams.Names[s], StreamPhase.Snapshot, offset, total);
                    yield return State(generator, new SampleState(SampleState.SnapshotPhase, SampleStreams.Names[s], offset, 0, generator.SnapshotStart(s) + offset, _fingerprint));
                    checkpoints++;
                }
            }

            _log.Write(ConnectorLogLevel.Information, "Sample snapshot done.");
        }
        else
        {
            // Replay the change events before the checkpoint without materialising rows.
            var sw = Stopwatch.StartNew();
            while (generator.EventsApplied < _start.Event)
            {
                generator.ApplyNextEvent(null);
            }

            if (generator.NextSequence != _start.Sequence)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"Replaying {_start.Event} change events gave sequence {generator.NextSequence}, but the checkpoint says {_start.Sequence}: the state does not belong to this data.");
            }

            _log.Write(ConnectorLogLevel.Debug, $"Replayed {_start.Event} change events in {sw.ElapsedMilliseconds} ms.");
            _stateMicros = timeline.BacklogMicros(_start.Event);
            _subBase = (ulong)(generator.NextSequence - 1);
            _sub = _start.Sub;
        }

        sink.Enabled = _changeStreams;
        while (generator.EventsApplied < _options.Changes)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }

            if (_wall)
            {
                sink.SourceMicros = _stateMicros = timeline.BacklogMicros(generator.EventsApplied + 1);
            }

            generator.ApplyNextEvent(sink);
            if (sink.PendingRows >= _options.BatchSize || generator.EventsApplied == _options.Changes)
            {
                foreach (var m in Flush(generator, sink))
                {
                    yield return m;
                }

                checkpoints++;
                foreach (var m in BackfillStep(generator, sink))
                {
                    yield return m;
                }
            }
        }

        if (checkpoints == 0 && _start is null)
        {
            // Nothing was read: still give the engine a checkpoint to stand on before saying so.
            yield return State(generator, new SampleState(SampleState.ChangesPhase, null, 0, generator.EventsApplied, generator.NextSequence, _fingerprint));
        }

        if (_options.ChangesPerSecond <= 0)
        {
            // A finite read finishes its backfills before it ends.
            while (HasBackfillWork)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    yield break;
                }

                foreach (var m in BackfillStep(generator, sink))
                {
                    yield return m;
                }
            }
        }

        yield return CaughtUp.Instance;
        if (_options.ChangesPerSecond <= 0)
        {
            yield break;
        }

        var rate = _options.ChangesPerSecond;
        var liveStart = timeline.Elapsed;
        long emitted = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = timeline.Elapsed;
            var due = (long)((now - liveStart).TotalSeconds * rate);
            if (due <= emitted)
            {
                // Nothing happened at the source since the last event: the state is as of now (and before the next event).
                _stateMicros = Math.Max(_stateMicros, timeline.MicrosAt(now));
            }

            if (due <= emitted && HasBackfillWork)
            {
                foreach (var m in BackfillStep(generator, sink))
                {
                    yield return m;
                }

                continue;
            }

            if (due <= emitted)
            {
                var wait = TimeSpan.FromSeconds((emitted + 1) / rate) - (timeline.Elapsed - liveStart);
                wait = TimeSpan.FromTicks(Math.Clamp(wait.Ticks, TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond));
                if (!await DelayAsync(wait, cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }

                continue;
            }

            while (emitted < due && sink.PendingRows < _options.BatchSize)
            {
                emitted++;
                if (_wall)
                {
                    // The time the source made the event, not when it was read: a reader that falls behind shows as lag.
                    sink.SourceMicros = _stateMicros = timeline.LiveMicros(liveStart, emitted);
                }

                generator.ApplyNextEvent(sink);
            }

            foreach (var m in Flush(generator, sink))
            {
                yield return m;
            }

            foreach (var m in BackfillStep(generator, sink))
            {
                yield return m;
            }
        }
    }

    private bool HasBackfillWork => _backfills.Count > 0 || !_commands.IsEmpty;

    /// <summary>Takes new requests and cancellations, then reads one chunk of the oldest backfill; ends with a checkpoint when anything happened.</summary>
    private List<SourceMessage> BackfillStep(SampleGenerator generator, SampleBatchSink sink)
    {
        var messages = new List<SourceMessage>(4);
        while (_commands.TryDequeue(out var command))
        {
            if (command.Cancel is { } cancelId)
            {
                var i = _backfills.FindIndex(b => b.Id == cancelId);
                if (i >= 0)
                {
                    var (id, p) = _backfills[i];
                    _backfills.RemoveAt(i);
                    Finish(id, p.Rows);
                    messages.Add(new BackfillDone(id, p.Stream, p.Rows, cancelled: true));
                }

                continue;
            }

            var request = command.Start!;
            if (_backfills.Any(b => b.Id == request.Id))
            {
                continue;
            }

            if (_finished.TryGetValue(request.Id, out var doneRows))
            {
                messages.Add(new BackfillDone(request.Id, request.Stream, doneRows));
                continue;
            }

            int stream;
            (int First, int Last) range;
            try
            {
                stream = ParseRange(request, out range);
            }
            catch (ConnectorException e)
            {
                _log.Write(ConnectorLogLevel.Error, $"Backfill {request.Id} of {request.Stream} cannot run: {e.Message}");
                messages.Add(new BackfillDone(request.Id, request.Stream, 0, cancelled: true));
                continue;
            }

            var last = Math.Min(range.Last, generator.MaxId(stream));
            _backfills.Add((request.Id, new SampleBackfill(request.Stream, request.Filter, range.First, last, 0)));
            _log.Write(ConnectorLogLevel.Information, $"Backfill {request.Id} of {request.Stream}: ids {range.First}..{last}.");
        }

        if (_backfills.Count > 0)
        {
            var (id, p) = _backfills[0];
            var s = SampleStreams.IndexOf(p.Stream);
            var position = (ulong)(generator.NextSequence - 1);
            if (position != _subBase)
            {
                _subBase = position;
                _sub = 0;
            }

            // The rows are as of the last change event.
            var timestamp = _wall ? _stateMicros : SampleGenerator.TimestampOf(generator.NextSequence - 1);
            var enabled = sink.Enabled;
            var only = new bool[SampleStreams.Count];
            only[s] = true;
            sink.Enabled = only;
            var next = p.Next;
            var rows = 0;
            while (next <= p.Last && rows < _options.BatchSize)
            {
                if (generator.Exists(s, next))
                {
                    var lines = s == SampleStreams.OrderLines ? generator.LineCount(next) : 1;
                    for (var line = 1; line <= lines; line++)
                    {
                        sink.RowAt(s, ChangeOp.Read, new SourcePosition(position, ++_sub), timestamp, next, s == SampleStreams.OrderLines ? line : 0);
                        rows++;
                    }
                }

                next++;
            }

            sink.Enabled = enabled;
            p = p with { Next = next, Rows = p.Rows + rows };
            if (rows > 0)
            {
                messages.Add(sink.Build(s));
            }
            else
            {
                sink.Build(s).Dispose();
            }

            var remaining = Math.Max(0, p.Last - p.Next + 1);
            var perId = s == SampleStreams.OrderLines ? 3 : 1;
            messages.Add(new StreamProgress(p.Stream, StreamPhase.Backfill, p.Rows, p.Rows + ((long)remaining * perId), id));
            if (p.Next > p.Last)
            {
                _backfills.RemoveAt(0);
                Finish(id, p.Rows);
                messages.Add(new BackfillDone(id, p.Stream, p.Rows));
                _log.Write(ConnectorLogLevel.Information, $"Backfill {id} of {p.Stream} read {p.Rows} rows.");
            }
            else
            {
                _backfills[0] = (id, p);
            }
        }

        if (messages.Count > 0)
        {
            messages.Add(State(generator, new SampleState(SampleState.ChangesPhase, null, 0, generator.EventsApplied, generator.NextSequence, _fingerprint)));
        }

        return messages;
    }

    private void Finish(string id, long rows)
    {
        _finished[id] = rows;
        if (_finished.Count > MaxFinishedKept)
        {
            _finished.Remove(_finished.Keys.First());
        }
    }

    /// <summary>The checkpoint of <paramref name="state"/> with the backfills' progress.</summary>
    private Checkpoint State(SampleGenerator generator, SampleState state) => (state with
    {
        Streams = _covered,
        Backfills = _backfills.Count == 0 ? null : _backfills.ToDictionary(b => b.Id, b => b.Progress, StringComparer.Ordinal),
        BackfillsDone = _finished.Count == 0 ? null : new Dictionary<string, long>(_finished, StringComparer.Ordinal),
        Sub = _subBase == (ulong)(generator.NextSequence - 1) ? _sub : 0,
    }).ToCheckpoint();

    private List<SourceMessage> Flush(SampleGenerator generator, SampleBatchSink sink)
    {
        var messages = new List<SourceMessage>(9);
        Span<bool> had = stackalloc bool[SampleStreams.Count];
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            if (sink.Count(s) > 0)
            {
                had[s] = true;
                messages.Add(sink.Build(s));
            }
        }

        for (var s = 0; s < SampleStreams.Count; s++)
        {
            if (had[s])
            {
                messages.Add(new StreamProgress(SampleStreams.Names[s], StreamPhase.Streaming, generator.ChangeRows[s], null));
            }
        }

        messages.Add(State(generator, new SampleState(SampleState.ChangesPhase, null, 0, generator.EventsApplied, generator.NextSequence, _fingerprint)));
        return messages;
    }

    private static async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        LastAcknowledged = checkpoint;
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
