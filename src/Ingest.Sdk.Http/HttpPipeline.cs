using System.Threading.RateLimiting;

namespace Ingest.Sdk.Http;

/// <summary>
/// The HTTP stack of one connection: retry (outermost) → shared rate limiter → the network. Every attempt,
/// retries included, takes a rate-limit token. Use <see cref="CreateClient"/> for plain <see cref="HttpClient"/>
/// connectors, or hand <see cref="Handler"/> to a vendor SDK that accepts an <see cref="HttpClient"/>
/// (for example Stripe.net's <c>SystemNetHttpClient</c>). Dispose the pipeline when the connection ends.
/// </summary>
public sealed class HttpPipeline : IDisposable
{
    private readonly RateLimiter _limiter;
    private readonly HttpMessageHandler _handler;

    /// <summary>Builds the pipeline over <paramref name="inner"/> (default: a <see cref="SocketsHttpHandler"/>).</summary>
    public HttpPipeline(HttpResilienceOptions options, HttpMessageHandler? inner = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _limiter = RateLimitingHandler.CreateTokenBucket(options.RequestsPerSecond, options.Burst, options.TimeProvider);
        _handler = new RetryHandler(options)
        {
            InnerHandler = new RateLimitingHandler(_limiter, options.RequestsPerSecond >= 1 ? (int)Math.Floor(options.RequestsPerSecond) : null, options.TimeProvider)
            {
                InnerHandler = inner ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AutomaticDecompression = System.Net.DecompressionMethods.All },
            },
        };
    }

    /// <summary>The options it was built with.</summary>
    public HttpResilienceOptions Options { get; }

    /// <summary>The outermost handler: give it to every <see cref="HttpClient"/> of the connection (with <c>disposeHandler: false</c>).</summary>
    public HttpMessageHandler Handler => _handler;

    /// <summary>A client over the pipeline with <paramref name="baseAddress"/>; the pipeline outlives it. The client's own timeout is off: attempts time out in the pipeline.</summary>
    public HttpClient CreateClient(Uri? baseAddress = null) =>
        new(_handler, disposeHandler: false) { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };

    /// <inheritdoc />
    public void Dispose()
    {
        _handler.Dispose();
        _limiter.Dispose();
    }
}
