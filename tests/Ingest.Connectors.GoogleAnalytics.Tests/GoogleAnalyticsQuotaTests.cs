using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using static Ingest.Connectors.GoogleAnalytics.Tests.GaTestKit;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

/// <summary>GA's property quotas: 429 RESOURCE_EXHAUSTED with and without Retry-After, and tokens running low.</summary>
public sealed class GoogleAnalyticsQuotaTests
{
    [Fact]
    public async Task Resource_exhausted_429_with_retry_after_pauses_and_the_run_finishes_within_the_rate()
    {
        using var fake = new FakeGa { RetryAfterSeconds = 1 };
        fake.Seed(Today.AddDays(-5), Today, perDate: 5);
        fake.ThrottleAt.Add(4);
        fake.ThrottleAt.Add(9);
        var model = new MergeModel();
        var log = new ListLog();
        var watch = Stopwatch.StartNew();
        await using (var session = Open(Config(fake, pageSize: 2, rps: 8, concurrency: 4, start: Today.AddDays(-5)), null, Hooks(), log))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        Assert.Equal(2, fake.Log.Count(l => l.Status == 429));
        // The limit is exact when sent; arrivals on the fake's clock may bunch by scheduling jitter: allow one (a burst after
        // the pause would show several more).
        Assert.InRange(fake.MaxRequestsPerSecond(), 1, 9);
        Assert.True(log.Has("RESOURCE_EXHAUSTED"), string.Join("\n", log.Lines));
        Assert.True(log.Has("waiting until"));
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2), $"took {watch.Elapsed}: the Retry-After was not honoured");
    }

    [Fact]
    public async Task Resource_exhausted_429_without_retry_after_waits_for_the_quota_window_to_reset()
    {
        using var fake = new FakeGa { RetryAfterSeconds = null };
        fake.Seed(Today.AddDays(-3), Today, perDate: 2);
        fake.ThrottleAt.Add(3);
        var model = new MergeModel();
        var log = new ListLog();
        var watch = Stopwatch.StartNew();
        await using (var session = Open(Config(fake, concurrency: 1, start: Today.AddDays(-3)), null, Hooks(quotaReset: TimeSpan.FromSeconds(1.5)), log))
        {
            await session.ReadAsync(model);
        }

        AssertEqualsFake(fake, model);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.4), $"took {watch.Elapsed}: the quota window was not waited for");
        Assert.True(log.Has("Google Analytics quota: 429 RESOURCE_EXHAUSTED"), string.Join("\n", log.Lines));
    }

    [Fact]
    public async Task Low_property_tokens_pause_requests_until_the_hour_resets()
    {
        using var fake = new FakeGa { TokensPerHour = 45, TokenCost = 10 };
        fake.Seed(Today.AddDays(-2), Today, perDate: 2);
        var model = new MergeModel();
        var log = new ListLog();
        await using (var session = Open(Config(fake, concurrency: 1, start: Today.AddDays(-2)), null, Hooks(quotaReset: TimeSpan.FromMilliseconds(400)), log))
        {
            var (_, seen) = await session.ReadAsync(model);
            Assert.True(session.Reader.Api.Quota.Waited >= TimeSpan.FromMilliseconds(300), $"waited {session.Reader.Api.Quota.Waited}");

            // The status says why the stream is slow, not only the log.
            Assert.Contains(seen.OfType<StreamProgress>(), p => p.Message?.Contains("Google Analytics quota", StringComparison.Ordinal) == true);
        }

        AssertEqualsFake(fake, model);
        Assert.True(log.Has("tokensPerHour has"), string.Join("\n", log.Lines));
        Assert.True(log.Has("slowing down") || log.Has("waiting until"));
    }

    private sealed class Answer429(string message, int? retryAfter) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests)
            {
                Content = new StringContent("{\"error\": {\"code\": 429, \"message\": \"" + message + "\", \"status\": \"RESOURCE_EXHAUSTED\"}}"),
            };
            if (retryAfter is { } s)
            {
                response.Headers.Add("Retry-After", s.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return Task.FromResult(response);
        }
    }

    [Fact]
    public async Task Exhausted_hourly_quota_without_retry_after_becomes_a_retry_after_until_the_reset()
    {
        var log = new ListLog();
        var gate = new GaQuotaGate(log, TimeProvider.System, (now, window) => now + (window == QuotaWindow.Hour ? TimeSpan.FromMinutes(20) : TimeSpan.FromHours(9)));
        using var handler = new GaQuotaHandler(gate, TimeSpan.FromMinutes(65)) { InnerHandler = new Answer429("Exhausted property tokens per hour.", null) };
        using var invoker = new HttpMessageInvoker(handler);
        using var response = await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Post, "http://ga.test/v1beta/properties/1:runReport"), CancellationToken.None);
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.InRange(response.Headers.RetryAfter!.Delta!.Value.TotalMinutes, 19.9, 20.1);
        Assert.Contains("RESOURCE_EXHAUSTED", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.NotNull(gate.WaitingUntil);
        Assert.True(log.Has("waiting until"));
    }

    [Fact]
    public async Task Exhausted_daily_quota_ends_the_read_as_transient_naming_the_reset()
    {
        var gate = new GaQuotaGate(new ListLog(), TimeProvider.System, (now, window) => now + (window == QuotaWindow.Hour ? TimeSpan.FromMinutes(20) : TimeSpan.FromHours(9)));
        using var handler = new GaQuotaHandler(gate, TimeSpan.FromMinutes(65)) { InnerHandler = new Answer429("Exhausted property tokens per day.", null) };
        using var invoker = new HttpMessageInvoker(handler);
        var e = await Assert.ThrowsAsync<ConnectorException>(() => invoker.SendAsync(new HttpRequestMessage(HttpMethod.Post, "http://ga.test/x"), CancellationToken.None));
        Assert.Equal(ErrorKind.Transient, e.Kind);
        Assert.Contains("resets at", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tokens_running_low_space_requests_out_over_the_rest_of_the_window()
    {
        var log = new ListLog();
        var gate = new GaQuotaGate(log, TimeProvider.System, (now, _) => now + TimeSpan.FromSeconds(100));
        gate.Observe(JsonDocument.Parse("""{"tokensPerHour": {"consumed": 10, "remaining": 39000}, "tokensPerDay": {"consumed": 10, "remaining": 190000}}""").RootElement);
        Assert.False(log.Has("slowing down"));
        // 200 tokens at 10 a request: 20 requests left, spread over the 100 s to the reset (one every ~5.6 s).
        gate.Observe(JsonDocument.Parse("""{"tokensPerHour": {"consumed": 10, "remaining": 200}}""").RootElement);
        Assert.True(log.Has("slowing down to one request every 5.5"), string.Join("\n", log.Lines));
        gate.Observe(JsonDocument.Parse("""{"tokensPerHour": {"consumed": 10, "remaining": 39000}}""").RootElement);
        Assert.True(log.Has("back to the configured request rate"));
        Assert.Null(gate.WaitingUntil);
    }
}
