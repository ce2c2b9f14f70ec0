using System.Net;
using Ingest.Sdk.Connectors;

namespace Ingest.Sdk.Http.Tests;

public sealed class HttpPipelineTests
{
    /// <summary>Answers from a script of status codes (then 200), recording when each attempt arrived.</summary>
    private sealed class ScriptedHandler(params HttpStatusCode[] script) : HttpMessageHandler
    {
        private int _calls;

        public List<DateTime> Arrivals { get; } = [];

        public string? RetryAfter { get; init; }

        public int Calls => _calls;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Arrivals)
            {
                Arrivals.Add(DateTime.UtcNow);
            }

            var n = Interlocked.Increment(ref _calls) - 1;
            var status = n < script.Length ? script[n] : HttpStatusCode.OK;
            var response = new HttpResponseMessage(status) { Content = new StringContent("{}") };
            if (RetryAfter is not null && status == HttpStatusCode.TooManyRequests)
            {
                response.Headers.TryAddWithoutValidation("Retry-After", RetryAfter);
            }

            return Task.FromResult(response);
        }
    }

    private static HttpResilienceOptions Fast(int attempts = 5) => new()
    {
        RequestsPerSecond = 0,
        MaxAttempts = attempts,
        BaseDelay = TimeSpan.FromMilliseconds(5),
        MaxDelay = TimeSpan.FromMilliseconds(50),
    };

    [Fact]
    public async Task Retries_429_and_5xx_until_success()
    {
        var inner = new ScriptedHandler(HttpStatusCode.TooManyRequests, HttpStatusCode.InternalServerError, HttpStatusCode.BadGateway);
        using var pipeline = new HttpPipeline(Fast(), inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        using var response = await client.GetAsync("x", CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, inner.Calls);
    }

    [Theory]
    [InlineData(HttpStatusCode.BadRequest)]
    [InlineData(HttpStatusCode.Unauthorized)]
    [InlineData(HttpStatusCode.NotFound)]
    public async Task Does_not_retry_other_4xx(HttpStatusCode status)
    {
        var inner = new ScriptedHandler(status);
        using var pipeline = new HttpPipeline(Fast(), inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        using var response = await client.GetAsync("x", CancellationToken.None);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(1, inner.Calls);
    }

    [Fact]
    public async Task Honours_retry_after_before_retrying_a_429()
    {
        var inner = new ScriptedHandler(HttpStatusCode.TooManyRequests) { RetryAfter = "1" };
        using var pipeline = new HttpPipeline(Fast(), inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        using var response = await client.GetAsync("x", CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(inner.Arrivals[1] - inner.Arrivals[0] >= TimeSpan.FromMilliseconds(950), $"retried after {(inner.Arrivals[1] - inner.Arrivals[0]).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Stops_with_a_clear_error_after_sustained_failure()
    {
        var inner = new ScriptedHandler(Enumerable.Repeat(HttpStatusCode.ServiceUnavailable, 100).ToArray());
        using var pipeline = new HttpPipeline(Fast(attempts: 3), inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        var e = await Assert.ThrowsAsync<ConnectorException>(() => client.GetAsync("items", CancellationToken.None));
        Assert.Equal(3, inner.Calls);
        Assert.Contains("Stopped after sustained failure", e.Message, StringComparison.Ordinal);
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
        Assert.Contains("/items", e.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorKind.Fatal, e.Kind);
    }

    [Fact]
    public async Task Stops_when_retry_after_exceeds_the_failure_budget()
    {
        var inner = new ScriptedHandler(HttpStatusCode.TooManyRequests) { RetryAfter = "3600" };
        using var pipeline = new HttpPipeline(Fast() with { MaxFailureDuration = TimeSpan.FromSeconds(10) }, inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        var e = await Assert.ThrowsAsync<ConnectorException>(() => client.GetAsync("x", CancellationToken.None));
        Assert.Contains("failure budget", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, inner.Calls);
    }

    [Fact]
    public async Task Rate_limiter_shared_by_concurrent_requests_keeps_the_rate()
    {
        var inner = new ScriptedHandler();
        using var pipeline = new HttpPipeline(Fast() with { RequestsPerSecond = 40 }, inner);
        using var client = pipeline.CreateClient(new Uri("http://example.test/"));
        var start = DateTime.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, 60).Select(async _ =>
        {
            using var r = await client.GetAsync("x", CancellationToken.None);
        }));
        var elapsed = DateTime.UtcNow - start;
        Assert.True(elapsed >= TimeSpan.FromSeconds(1.2), $"60 requests at 40/s took {elapsed.TotalSeconds} s");
        var arrivals = inner.Arrivals.Order().ToList();
        for (var i = 0; i < arrivals.Count; i++)
        {
            var inWindow = arrivals.Count(a => a >= arrivals[i] && a < arrivals[i] + TimeSpan.FromSeconds(1));
            // Sends are granted at most 40 a second; the handler reads its clock a moment after the grant, which on a
            // busy machine can move one arrival into the next second's window.
            Assert.True(inWindow <= 41, $"{inWindow} requests within one second");
        }
    }

    [Theory]
    [InlineData("ftp://x")]
    [InlineData("not a url")]
    [InlineData("https://api.example.com/?q=1")]
    public void Api_base_refuses_bad_urls_naming_the_field(string value)
    {
        var e = Assert.Throws<ConnectorException>(() => ApiBase.Resolve(value, "https://api.example.com"));
        Assert.Equal("/apiBase", e.Field);
        Assert.Equal(ErrorKind.Configuration, e.Kind);
    }

    [Fact]
    public void Api_base_defaults_and_ends_with_a_slash()
    {
        Assert.Equal("https://api.example.com/", ApiBase.Resolve(null, "https://api.example.com").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:5000/proxy/", ApiBase.Resolve("http://127.0.0.1:5000/proxy", "https://x").AbsoluteUri);
    }
}
