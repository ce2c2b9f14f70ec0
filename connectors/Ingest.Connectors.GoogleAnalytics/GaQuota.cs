using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>Which GA quota window a limit belongs to.</summary>
internal enum QuotaWindow
{
    Hour,
    Day,
}

/// <summary>
/// Keeps a connection inside GA4's property quotas (https://developers.google.com/analytics/devguides/reporting/data/v1/quotas):
/// every runReport asks for <c>returnPropertyQuota</c>; when the tokens left in an hour or a day would last fewer than
/// <see cref="SlowBelowRequests"/> more requests, requests are spaced out to last until the window resets, and with
/// fewer than <see cref="StopBelowRequests"/> left they wait for the reset. A 429 <c>RESOURCE_EXHAUSTED</c> pauses every
/// request until the reset too (see <see cref="GaQuotaHandler"/>). Waits are logged; <see cref="WaitingUntil"/> tells the status.
/// </summary>
internal sealed class GaQuotaGate(IConnectorLog log, TimeProvider time, Func<DateTimeOffset, QuotaWindow, DateTimeOffset>? resetAt = null)
{
    public const int SlowBelowRequests = 50;
    public const int StopBelowRequests = 3;

    private static readonly TimeZoneInfo Pacific = FindPacific();
    private readonly object _gate = new();
    private readonly Func<DateTimeOffset, QuotaWindow, DateTimeOffset> _resetAt = resetAt ?? DefaultResetAt;
    private DateTimeOffset _pausedUntil;
    private TimeSpan _spacing;
    private DateTimeOffset _next;
    private string? _slowReason;
    private TimeSpan _waited;

    /// <summary>When requests are paused for a quota, the instant they resume; else null.</summary>
    public DateTimeOffset? WaitingUntil
    {
        get
        {
            lock (_gate)
            {
                return _pausedUntil > time.GetUtcNow() ? _pausedUntil : null;
            }
        }
    }

    /// <summary>What the status should say about the quota now (a pause until its reset, or a slow-down), or null.</summary>
    public string? Note
    {
        get
        {
            lock (_gate)
            {
                if (_pausedUntil > time.GetUtcNow())
                {
                    return string.Create(CultureInfo.InvariantCulture, $"waiting for the Google Analytics quota to reset at {_pausedUntil.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC");
                }

                return _spacing > TimeSpan.Zero && _slowReason is { } why ? $"slowed down by the Google Analytics quota: {why}" : null;
            }
        }
    }

    /// <summary>Total time requests waited for quotas (for the log and the tests).</summary>
    public TimeSpan Waited
    {
        get
        {
            lock (_gate)
            {
                return _waited;
            }
        }
    }

    /// <summary>
    /// GA's defaults: hourly quotas refill at the top of the hour (we wait for it rather than model a rolling window),
    /// daily ones at midnight Pacific time.
    /// </summary>
    public static DateTimeOffset DefaultResetAt(DateTimeOffset now, QuotaWindow window)
    {
        if (window == QuotaWindow.Hour)
        {
            var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
            return hour.AddHours(1);
        }

        var local = TimeZoneInfo.ConvertTime(now, Pacific);
        var midnight = new DateTime(local.Year, local.Month, local.Day, 0, 0, 0, DateTimeKind.Unspecified).AddDays(1);
        return new DateTimeOffset(midnight, Pacific.GetUtcOffset(midnight));
    }

    public DateTimeOffset Now => time.GetUtcNow();

    public DateTimeOffset ResetAt(QuotaWindow window) => _resetAt(time.GetUtcNow(), window);

    /// <summary>Waits while the quota says so: until a pause ends, and for the spacing of a slowed-down connection.</summary>
    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_gate)
        {
            var now = time.GetUtcNow();
            var until = _pausedUntil;
            if (_spacing > TimeSpan.Zero)
            {
                var slot = _next > now ? _next : now;
                _next = slot + _spacing;
                until = until > slot ? until : slot;
            }

            wait = until - now;
            if (wait > TimeSpan.Zero)
            {
                _waited += wait;
            }
        }

        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Pauses every request until <paramref name="until"/> (a 429 or an exhausted quota), logging why once.</summary>
    public void PauseUntil(DateTimeOffset until, string why)
    {
        lock (_gate)
        {
            if (until <= _pausedUntil)
            {
                return;
            }

            _pausedUntil = until;
        }

        log.Write(ConnectorLogLevel.Warning, string.Create(CultureInfo.InvariantCulture, $"Google Analytics quota: {why}; waiting until {until.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC ({(until - time.GetUtcNow()).TotalSeconds:0.#} s)."));
    }

    /// <summary>Reads a runReport answer's <c>propertyQuota</c> and decides how the next requests go.</summary>
    public void Observe(JsonElement propertyQuota)
    {
        if (propertyQuota.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var now = time.GetUtcNow();
        TimeSpan spacing = default;
        string? slowReason = null;
        foreach (var (name, window) in new[] { ("tokensPerHour", QuotaWindow.Hour), ("tokensPerProjectPerHour", QuotaWindow.Hour), ("tokensPerDay", QuotaWindow.Day) })
        {
            if (!propertyQuota.TryGetProperty(name, out var q) || !q.TryGetProperty("remaining", out var r) || !r.TryGetInt64(out var remaining))
            {
                continue;
            }

            var cost = q.TryGetProperty("consumed", out var c) && c.TryGetInt64(out var consumed) ? Math.Max(1, consumed) : 1;
            var left = remaining / (double)cost;
            var reset = _resetAt(now, window);
            if (left < StopBelowRequests)
            {
                PauseUntil(reset, string.Create(CultureInfo.InvariantCulture, $"{name} has {remaining} tokens left (the last request cost {cost})"));
            }
            else if (left < SlowBelowRequests)
            {
                // Spread what is left over the rest of the window, keeping the last few requests in reserve.
                var s = (reset - now) / (left - StopBelowRequests + 1);
                if (s > spacing)
                {
                    spacing = s;
                    slowReason = string.Create(CultureInfo.InvariantCulture, $"{name} has {remaining} tokens left");
                }
            }
        }

        bool changed;
        lock (_gate)
        {
            changed = (_spacing > TimeSpan.Zero) != (spacing > TimeSpan.Zero);
            _spacing = spacing;
            _slowReason = slowReason;
        }

        if (changed)
        {
            log.Write(
                spacing > TimeSpan.Zero ? ConnectorLogLevel.Warning : ConnectorLogLevel.Information,
                spacing > TimeSpan.Zero
                    ? string.Create(CultureInfo.InvariantCulture, $"Google Analytics quota: {_slowReason}; slowing down to one request every {spacing.TotalSeconds:0.###} s until it resets.")
                    : "Google Analytics quota: tokens are plentiful again; back to the configured request rate.");
        }
    }

    private static TimeZoneInfo FindPacific()
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById("America/Los_Angeles");
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return TimeZoneInfo.CreateCustomTimeZone("PST", TimeSpan.FromHours(-8), "PST", "PST");
        }
    }
}

/// <summary>
/// Sits under the rate limiter (it sees every attempt) and turns a 429 <c>RESOURCE_EXHAUSTED</c> into a pause of the whole connection until the quota resets: the server's Retry-After
/// when it sends one, else the end of the exhausted window (hour or day, from GA's message). It sets that as the
/// response's Retry-After so the shared <see cref="Ingest.Sdk.Http.RetryHandler"/> waits as long before its retry.
/// A wait beyond <paramref name="longestWait"/> (a spent daily quota) stops the read with a transient error instead.
/// </summary>
internal sealed class GaQuotaHandler(GaQuotaGate gate, TimeSpan longestWait) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.TooManyRequests)
        {
            return response;
        }

        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var (status, message) = GaApi.ErrorOf(body);
        var retryAfter = response.Headers.RetryAfter?.Delta
            ?? (response.Headers.RetryAfter?.Date is { } date ? date - gate.Now : null);
        TimeSpan wait;
        if (retryAfter is { } ra)
        {
            wait = ra;
        }
        else if (message.Contains("per day", StringComparison.OrdinalIgnoreCase) || message.Contains("daily", StringComparison.OrdinalIgnoreCase))
        {
            wait = gate.ResetAt(QuotaWindow.Day) - gate.Now;
        }
        else if (message.Contains("per hour", StringComparison.OrdinalIgnoreCase) || message.Contains("hourly", StringComparison.OrdinalIgnoreCase))
        {
            wait = gate.ResetAt(QuotaWindow.Hour) - gate.Now;
        }
        else
        {
            // Concurrent requests or an unnamed limit: the retry handler's backoff decides.
            gate.PauseUntil(gate.Now.AddSeconds(1), $"429 {status} ({message})");
            return Buffered(response, body, null);
        }

        wait = wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        var until = gate.Now + wait;
        if (wait > longestWait)
        {
            response.Dispose();
            throw new ConnectorException(ErrorKind.Transient, string.Create(CultureInfo.InvariantCulture, $"Google Analytics quota exhausted (429 {status}: {message}); it resets at {until.UtcDateTime:yyyy-MM-dd HH:mm} UTC. The connection retries then."));
        }

        gate.PauseUntil(until, $"429 {status} ({message})");
        return Buffered(response, body, wait);
    }

    /// <summary>The response with its body readable again (it was read here) and, when known, the wait as Retry-After.</summary>
    private static HttpResponseMessage Buffered(HttpResponseMessage response, string body, TimeSpan? wait)
    {
        var copy = new HttpResponseMessage(response.StatusCode)
        {
            RequestMessage = response.RequestMessage,
            ReasonPhrase = response.ReasonPhrase,
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        foreach (var h in response.Headers)
        {
            copy.Headers.TryAddWithoutValidation(h.Key, h.Value);
        }

        if (wait is { } w && copy.Headers.RetryAfter is null)
        {
            copy.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(Math.Ceiling(w.TotalSeconds)));
        }

        response.Dispose();
        return copy;
    }
}
