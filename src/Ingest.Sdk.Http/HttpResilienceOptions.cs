namespace Ingest.Sdk.Http;

/// <summary>
/// How an HTTP connector paces and retries its requests. One instance per connection: the pipeline built
/// from it shares one rate limiter among all the connection's requests.
/// </summary>
public sealed record HttpResilienceOptions
{
    /// <summary>Requests per second the connection may send (token bucket refill rate). 0 or less: unlimited.</summary>
    public double RequestsPerSecond { get; init; } = 10;

    /// <summary>Requests that may go out back to back before the rate applies (bucket size). Default: about 50 ms' worth, at least 1, so no one-second window sees much more than the rate.</summary>
    public int? Burst { get; init; }

    /// <summary>Attempts per request (the first one included) before the connection stops. Default 8.</summary>
    public int MaxAttempts { get; init; } = 8;

    /// <summary>Longest time one request may keep failing before the connection stops. Default 5 minutes.</summary>
    public TimeSpan MaxFailureDuration { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>First backoff delay when the server gives no Retry-After; it doubles per attempt, with jitter. Default 1 s.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest backoff delay (a Retry-After beyond <see cref="MaxFailureDuration"/> stops the connection instead). Default 60 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Timeout of one attempt. Default 100 s.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>The clock used for delays and the failure budget (tests substitute one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where retries are logged (never with secrets: only method, path and status).</summary>
    public Connectors.IConnectorLog? Log { get; init; }

    internal void Validate()
    {
        if (MaxAttempts < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAttempts), MaxAttempts, "At least one attempt is needed.");
        }

        if (Burst is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Burst), Burst, "The burst must be at least 1.");
        }
    }
}
