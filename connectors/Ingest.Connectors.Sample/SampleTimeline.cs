using System.Diagnostics;

namespace Ingest.Connectors.Sample;

/// <summary>
/// One read's clock: it paces the live events and, with the wall clock, says when the sample source made each change.
/// The backlog is what accumulated at <see cref="SampleOptions.ChangesPerSecond"/> before the read started: backlog event
/// k of n happened at start − (n − k) / rate, and the snapshot shows the data as of event 0 (all at the start when the
/// rate is 0). Live event j happens at the live phase's start + j / rate. Times never decrease along the sequence, so a
/// history table's versions stay in order, and a reader that falls behind shows it as lag.
/// </summary>
internal sealed class SampleTimeline
{
    private readonly long _originMicros;
    private readonly Stopwatch _watch;
    private readonly long _backlog;
    private readonly double _backlogSpacingMicros;
    private readonly double _liveSpacingMicros;

    /// <summary>Starts the clock at the read's start.</summary>
    /// <param name="backlog">Change events that exist when the read starts.</param>
    /// <param name="rate">Change events per second (0: the backlog has no age and there is no live phase).</param>
    public SampleTimeline(long backlog, double rate)
    {
        _originMicros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        _watch = Stopwatch.StartNew();
        _backlog = backlog;
        _liveSpacingMicros = rate > 0 ? 1e6 / rate : 0;

        // A very old backlog (a huge backlog at a tiny rate) is squeezed so that its first event stays after 1970.
        _backlogSpacingMicros = Math.Min(_liveSpacingMicros, (_originMicros - 1) / (double)Math.Max(1, backlog));
    }

    /// <summary>Time since the read started (monotonic).</summary>
    public TimeSpan Elapsed => _watch.Elapsed;

    /// <summary>The wall time, in microseconds since 1970, at <paramref name="elapsed"/> into the read.</summary>
    public long MicrosAt(TimeSpan elapsed) => _originMicros + (elapsed.Ticks / 10);

    /// <summary>When the source made backlog event <paramref name="events"/> (0: the state the snapshot shows; past the backlog: the read's start).</summary>
    public long BacklogMicros(long events) => _originMicros - (long)((_backlog - Math.Clamp(events, 0, _backlog)) * _backlogSpacingMicros);

    /// <summary>When the source made live event <paramref name="n"/> (1-based) of a live phase that started at <paramref name="liveStart"/>.</summary>
    public long LiveMicros(TimeSpan liveStart, long n) => MicrosAt(liveStart) + (long)(n * _liveSpacingMicros);
}
