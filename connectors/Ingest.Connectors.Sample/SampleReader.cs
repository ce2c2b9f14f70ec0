using System.Diagnostics;
using System.Runtime.CompilerServices;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Sample;

/// <summary>
/// One read: the snapshot (unless the state is past it), the change backlog, <see cref="CaughtUp"/>, then
/// new change events at the configured rate until cancelled. Everything up to the rate-driven part is a
/// function of the options and the starting state, so a resumed read continues exactly where the
/// checkpoint left off.
/// </summary>
internal sealed class SampleReader : ISourceReader
{
    private readonly SampleOptions _options;
    private readonly SampleState? _start;
    private readonly bool[] _snapshotStreams = new bool[SampleStreams.Count];
    private readonly bool[] _changeStreams = new bool[SampleStreams.Count];
    private readonly IConnectorLog _log;
    private readonly string _fingerprint;
    private int _started;

    public SampleReader(SampleOptions options, IReadOnlyList<StreamSelection> streams, SampleState? start, IConnectorLog log)
    {
        _options = options;
        _start = start;
        _log = log;
        _fingerprint = options.Fingerprint();
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
        var checkpoints = 0;

        if (_start is null || _start.Phase == SampleState.SnapshotPhase)
        {
            sink.Enabled = _snapshotStreams;
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
                    yield return new SampleState(SampleState.SnapshotPhase, SampleStreams.Names[s], offset, 0, generator.SnapshotStart(s) + offset, _fingerprint).ToCheckpoint();
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
        }

        sink.Enabled = _changeStreams;
        while (generator.EventsApplied < _options.Changes)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }

            generator.ApplyNextEvent(sink);
            if (sink.PendingRows >= _options.BatchSize || generator.EventsApplied == _options.Changes)
            {
                foreach (var m in Flush(generator, sink))
                {
                    yield return m;
                }

                checkpoints++;
            }
        }

        if (checkpoints == 0 && _start is null)
        {
            // Nothing was read: still give the engine a checkpoint to stand on before saying so.
            yield return new SampleState(SampleState.ChangesPhase, null, 0, generator.EventsApplied, generator.NextSequence, _fingerprint).ToCheckpoint();
        }

        yield return CaughtUp.Instance;
        if (_options.ChangesPerSecond <= 0)
        {
            yield break;
        }

        var rate = _options.ChangesPerSecond;
        var clock = Stopwatch.StartNew();
        long emitted = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var due = (long)(clock.Elapsed.TotalSeconds * rate);
            if (due <= emitted)
            {
                var wait = TimeSpan.FromSeconds((emitted + 1) / rate) - clock.Elapsed;
                wait = TimeSpan.FromTicks(Math.Clamp(wait.Ticks, TimeSpan.TicksPerMillisecond, TimeSpan.TicksPerSecond));
                if (!await DelayAsync(wait, cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }

                continue;
            }

            while (emitted < due && sink.PendingRows < _options.BatchSize)
            {
                generator.ApplyNextEvent(sink);
                emitted++;
            }

            foreach (var m in Flush(generator, sink))
            {
                yield return m;
            }
        }
    }

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

        messages.Add(new SampleState(SampleState.ChangesPhase, null, 0, generator.EventsApplied, generator.NextSequence, _fingerprint).ToCheckpoint());
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
