using System.Threading.RateLimiting;

namespace Ingest.Sdk.Http;

/// <summary>
/// A token bucket refilled from elapsed time rather than by a timer: a waiter reserves its token (the bucket may go
/// into debt) and sleeps until the moment the refill covers it, so waiters go in arrival order at exactly the rate,
/// and a late wake-up (a busy machine) never loses capacity, as a timer-driven bucket that misses ticks does.
/// </summary>
internal sealed class SteadyTokenBucket : RateLimiter
{
    private readonly double _rate;
    private readonly double _capacity;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private double _tokens;
    private long _stamp;
    private long _lastUse;

    public SteadyTokenBucket(double tokensPerSecond, int capacity, TimeProvider time)
    {
        _rate = tokensPerSecond;
        _capacity = capacity;
        _time = time;
        _tokens = capacity;
        _stamp = _lastUse = time.GetTimestamp();
    }

    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                return _tokens < 0 ? null : _time.GetElapsedTime(_lastUse);
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            Refill();
            return new RateLimiterStatistics { CurrentAvailablePermits = (long)Math.Max(0, _tokens) };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_gate)
        {
            Refill();
            if (_tokens >= permitCount)
            {
                _tokens -= permitCount;
                _lastUse = _time.GetTimestamp();
                return Lease.Acquired;
            }

            return Lease.Refused;
        }
    }

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_gate)
        {
            Refill();
            _tokens -= permitCount;
            _lastUse = _time.GetTimestamp();
            wait = _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _rate);
        }

        if (wait > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                lock (_gate)
                {
                    _tokens += permitCount;
                }

                throw;
            }
        }

        return Lease.Acquired;
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_capacity, _tokens + (_time.GetElapsedTime(_stamp, now).TotalSeconds * _rate));
        _stamp = now;
    }

    private sealed class Lease(bool acquired) : RateLimitLease
    {
        public static readonly Lease Acquired = new(true);
        public static readonly Lease Refused = new(false);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
