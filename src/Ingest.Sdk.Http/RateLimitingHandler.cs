using System.Threading.RateLimiting;

namespace Ingest.Sdk.Http;

/// <summary>
/// Waits for a token of a <see cref="RateLimiter"/> before every attempt, so that all requests of a
/// connection (and every retry of them) together stay under the configured rate.
/// </summary>
public sealed class RateLimitingHandler : DelegatingHandler
{
    private readonly RateLimiter _limiter;
    private readonly RequestWindow? _window;

    /// <summary>Creates the handler over a limiter the caller owns and shares.</summary>
    /// <param name="limiter">Paces requests (see <see cref="CreateTokenBucket"/>).</param>
    /// <param name="maxPerSecond">When set, also never lets more than this many requests go within any one second.</param>
    /// <param name="timeProvider">The clock of <paramref name="maxPerSecond"/>'s window.</param>
    public RateLimitingHandler(RateLimiter limiter, int? maxPerSecond = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        _limiter = limiter;
        _window = maxPerSecond is { } max ? new RequestWindow(max, timeProvider ?? TimeProvider.System) : null;
    }

    /// <summary>
    /// A token bucket of <paramref name="burst"/> tokens (default: about 50 ms' worth, at least 1) refilled at
    /// <paramref name="requestsPerSecond"/>, computed from elapsed time: waiters reserve tokens in arrival order and
    /// go at exactly the rate, however late the machine wakes them. Zero or less: unlimited.
    /// </summary>
    public static RateLimiter CreateTokenBucket(double requestsPerSecond, int? burst = null, TimeProvider? timeProvider = null)
    {
        if (requestsPerSecond <= 0 || double.IsInfinity(requestsPerSecond))
        {
            return new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = int.MaxValue, QueueLimit = 0 });
        }

        var size = Math.Max(1, burst ?? (int)Math.Round(requestsPerSecond / 20));
        return new SteadyTokenBucket(requestsPerSecond, size, timeProvider ?? TimeProvider.System);
    }

    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var lease = await _limiter.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        if (!lease.IsAcquired)
        {
            throw new InvalidOperationException("The request rate limiter refused a permit.");
        }

        if (_window is not null)
        {
            await _window.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}
