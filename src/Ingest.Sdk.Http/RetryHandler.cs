using System.Globalization;
using System.Net;
using Ingest.Sdk.Connectors;
using Polly;
using Polly.Retry;

namespace Ingest.Sdk.Http;

/// <summary>
/// Retries a request on 429 and 5xx responses and on network failures, with exponential backoff and jitter,
/// waiting at least as long as the server's <c>Retry-After</c> says. Other 4xx responses pass through at once.
/// After <see cref="HttpResilienceOptions.MaxAttempts"/> attempts, or <see cref="HttpResilienceOptions.MaxFailureDuration"/>
/// of failing, it throws a <see cref="ConnectorException"/> saying the connection stopped after sustained failure.
/// </summary>
/// <remarks>Request bodies must be buffered (string or byte content) to be resent; the APIs connectors call send small JSON or form bodies.</remarks>
public sealed class RetryHandler : DelegatingHandler
{
    private static readonly ResiliencePropertyKey<HttpRequestMessage> RequestKey = new("Ingest.Request");
    private static readonly ResiliencePropertyKey<long> StartKey = new("Ingest.Start");
    private readonly HttpResilienceOptions _options;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    /// <summary>Creates the handler.</summary>
    public RetryHandler(HttpResilienceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = options.TimeProvider };
        if (options.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Constant,
                Delay = options.BaseDelay,
                ShouldHandle = args => ValueTask.FromResult(IsRetryable(args.Outcome, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(NextDelay(options, args.AttemptNumber, RetryAfter(args.Outcome.Result))),
                OnRetry = args =>
                {
                    var start = args.Context.Properties.GetValue(StartKey, 0L);
                    var elapsed = options.TimeProvider.GetElapsedTime(start);
                    if (elapsed + args.RetryDelay > options.MaxFailureDuration)
                    {
                        args.Outcome.Result?.Dispose();
                        throw Stopped(args.Context.Properties.GetValue(RequestKey, null!), args.AttemptNumber + 1, elapsed, args.Outcome, $"the next retry (in {args.RetryDelay.TotalSeconds:0.#} s) would pass the {options.MaxFailureDuration.TotalSeconds:0} s failure budget");
                    }

                    var what = args.Outcome.Result is { } r ? ((int)r.StatusCode).ToString(CultureInfo.InvariantCulture) : args.Outcome.Exception?.GetType().Name;
                    var req = args.Context.Properties.GetValue(RequestKey, null!);
                    options.Log?.Write(ConnectorLogLevel.Warning, string.Create(CultureInfo.InvariantCulture, $"{req.Method} {req.RequestUri?.AbsolutePath} got {what}; retry {args.AttemptNumber + 1} in {args.RetryDelay.TotalMilliseconds:0} ms."));
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            });
        }

        _pipeline = builder.Build();
    }

    /// <summary>Whether a status is worth retrying: 408, 429 and 5xx.</summary>
    public static bool IsRetryableStatus(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || (int)status >= 500;

    /// <inheritdoc />
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(RequestKey, request);
        context.Properties.Set(StartKey, _options.TimeProvider.GetTimestamp());
        var attempts = 0;
        try
        {
            var outcome = await _pipeline.ExecuteOutcomeAsync(
                async (ctx, state) =>
                {
                    attempts++;
                    try
                    {
                        using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ctx.CancellationToken);
                        attemptCts.CancelAfter(state._options.AttemptTimeout);
                        try
                        {
                            var response = await state.SendOnceAsync(request, attemptCts.Token).ConfigureAwait(false);
                            return Outcome.FromResult(response);
                        }
                        catch (OperationCanceledException e) when (!ctx.CancellationToken.IsCancellationRequested)
                        {
                            throw new TimeoutException($"{request.Method} {request.RequestUri?.AbsolutePath} timed out after {state._options.AttemptTimeout.TotalSeconds:0} s.", e);
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TimeoutException or IOException)
                    {
                        return Outcome.FromException<HttpResponseMessage>(e);
                    }
                },
                context,
                this).ConfigureAwait(false);

            var elapsed = _options.TimeProvider.GetElapsedTime(context.Properties.GetValue(StartKey, 0L));
            if (IsRetryable(outcome, cancellationToken))
            {
                outcome.Result?.Dispose();
                throw Stopped(request, attempts, elapsed, outcome, "no attempts are left");
            }

            outcome.ThrowIfException();
            return outcome.Result!;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        base.SendAsync(request, cancellationToken);

    private static bool IsRetryable(Outcome<HttpResponseMessage> outcome, CancellationToken cancellationToken) => outcome switch
    {
        { Result: { } r } => IsRetryableStatus(r.StatusCode),
        { Exception: HttpRequestException or TimeoutException or IOException } => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    /// <summary>
    /// The wait before retry <paramref name="attempt"/> (0-based): the server's Retry-After plus up to 10% jitter when it
    /// sent one (never less), else exponential backoff from <see cref="HttpResilienceOptions.BaseDelay"/> with full jitter
    /// in [50%, 150%), capped at <see cref="HttpResilienceOptions.MaxDelay"/>.
    /// </summary>
    internal static TimeSpan NextDelay(HttpResilienceOptions options, int attempt, TimeSpan? retryAfter)
    {
        if (retryAfter is { } after)
        {
            return after + TimeSpan.FromTicks((long)(after.Ticks * 0.1 * Random.Shared.NextDouble()));
        }

        var exponential = options.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30));
        var jittered = exponential * (0.5 + Random.Shared.NextDouble());
        return TimeSpan.FromMilliseconds(Math.Min(jittered, options.MaxDelay.TotalMilliseconds));
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage? response)
    {
        var retryAfter = response?.Headers.RetryAfter;
        if (retryAfter is null)
        {
            return null;
        }

        if (retryAfter.Delta is { } delta)
        {
            return delta;
        }

        if (retryAfter.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    private static ConnectorException Stopped(HttpRequestMessage request, int attempts, TimeSpan elapsed, Outcome<HttpResponseMessage> last, string why)
    {
        var lastFailure = last.Result is { } r
            ? string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)r.StatusCode} {r.ReasonPhrase}")
            : last.Exception?.Message ?? "unknown";
        var message = string.Create(CultureInfo.InvariantCulture,
            $"Stopped after sustained failure: {request.Method} {request.RequestUri?.GetLeftPart(UriPartial.Path)} failed {attempts} time(s) over {elapsed.TotalSeconds:0.#} s ({why}); last: {lastFailure}.");
        return new ConnectorException(ErrorKind.Fatal, message, null, last.Exception);
    }
}
