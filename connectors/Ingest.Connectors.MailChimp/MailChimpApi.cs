using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;

namespace Ingest.Connectors.MailChimp;

/// <summary>One page of a MailChimp collection, with the server's clock when it answered.</summary>
internal sealed record MailChimpPage(Page<JsonElement> Page, DateTimeOffset? ServerDate);

/// <summary>
/// The Marketing API 3.0 calls the connector makes, over the shared <see cref="HttpPipeline"/> (rate limit and retries):
/// below it, throttling 403s become 429s (so the pipeline retries them) and a semaphore keeps at most
/// <see cref="MailChimpOptions.MaxConcurrency"/> requests in flight (MailChimp's limit is 10 connections).
/// </summary>
internal sealed class MailChimpApi : IDisposable
{
    private readonly HttpPipeline _pipeline;
    private readonly HttpClient _http;

    public MailChimpApi(MailChimpOptions options, IConnectorLog log, HttpMessageHandler? inner = null, Func<HttpResilienceOptions, HttpResilienceOptions>? tune = null)
    {
        var resilience = new HttpResilienceOptions { RequestsPerSecond = options.RequestsPerSecond, Log = log };
        var network = inner ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.All,
            MaxConnectionsPerServer = options.MaxConcurrency,
        };
        var below = new ThrottleAsTooManyRequestsHandler { InnerHandler = new ConcurrencyLimitHandler(options.MaxConcurrency) { InnerHandler = network } };
        _pipeline = new HttpPipeline(tune is null ? resilience : tune(resilience), below);
        _http = _pipeline.CreateClient(options.ApiBase);
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", options.BasicAuth);
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    /// <summary>GET <c>ping</c>: the key is valid and the data center right.</summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        using var doc = await GetAsync("ping", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One page of a collection: <paramref name="path"/> (e.g. <c>lists</c>) with <c>count</c>/<c>offset</c> and
    /// <paramref name="query"/> (already escaped, without a leading '&amp;'); items are the <paramref name="arrayName"/> array.
    /// </summary>
    public async Task<MailChimpPage> ListAsync(string path, string arrayName, long offset, int count, string? query, CancellationToken cancellationToken)
    {
        var url = new StringBuilder(path)
            .Append("?count=").Append(count.ToString(CultureInfo.InvariantCulture))
            .Append("&offset=").Append(offset.ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(query))
        {
            url.Append('&').Append(query);
        }

        using var response = await SendAsync(url.ToString(), cancellationToken).ConfigureAwait(false);
        using var doc = await ParseAsync(response, path, cancellationToken).ConfigureAwait(false);
        var root = doc.RootElement;
        if (!root.TryGetProperty(arrayName, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"MailChimp's answer to GET {path} has no '{arrayName}' array.");
        }

        var items = new List<JsonElement>(array.GetArrayLength());
        foreach (var e in array.EnumerateArray())
        {
            items.Add(e.Clone());
        }

        long? total = root.TryGetProperty("total_items", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetInt64() : null;
        var hasMore = items.Count > 0 && (total is null ? items.Count >= count : offset + items.Count < total);
        return new MailChimpPage(new Page<JsonElement>(items, hasMore, null, total), response.Headers.Date);
    }

    private async Task<JsonDocument> GetAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(pathAndQuery, cancellationToken).ConfigureAwait(false);
        return await ParseAsync(response, pathAndQuery.Split('?')[0], cancellationToken).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        var response = await _http.GetAsync(pathAndQuery, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw Translate(response.StatusCode, Problem(body), pathAndQuery.Split('?')[0]);
        }
    }

    private static async Task<JsonDocument> ParseAsync(HttpResponseMessage response, string path, CancellationToken cancellationToken)
    {
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                return await JsonDocument.ParseAsync(stream, default, cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"MailChimp's answer to GET {path} is not JSON: {e.Message}", null, e);
            }
        }
    }

    /// <summary>The title and detail of MailChimp's problem+json error body, when it is one.</summary>
    internal static (string? Title, string? Detail) Problem(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var r = doc.RootElement;
            return r.ValueKind != JsonValueKind.Object
                ? (null, null)
                : (r.TryGetProperty("title", out var t) ? t.ToString() : null, r.TryGetProperty("detail", out var d) ? d.ToString() : null);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }

    private static ConnectorException Translate(HttpStatusCode status, (string? Title, string? Detail) problem, string path)
    {
        var detail = string.Join(": ", new[] { problem.Title, problem.Detail }.Where(s => !string.IsNullOrEmpty(s)));
        return status switch
        {
            HttpStatusCode.Unauthorized => new ConnectorException(ErrorKind.Configuration, $"MailChimp refused the API key (401): {detail} Check apiKey (and that its data center suffix is right).", "/apiKey"),
            HttpStatusCode.Forbidden => new ConnectorException(ErrorKind.Configuration, $"The API key may not read {path} (403): {detail} Use a key of a user with access to it.", "/apiKey"),
            _ => new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"MailChimp GET {path} failed with HTTP {(int)status}: {detail}")),
        };
    }

    public void Dispose()
    {
        _http.Dispose();
        _pipeline.Dispose();
    }
}

/// <summary>
/// MailChimp answers throttling with 429 and, on some endpoints, with a 403 whose title or detail speaks of too many
/// requests or connections: such a 403 is handed up as a 429 (same headers and body) so the retry policy backs off
/// instead of failing the connection. Every other 403 passes through unchanged.
/// </summary>
internal sealed class ThrottleAsTooManyRequestsHandler : DelegatingHandler
{
    private static readonly string[] Markers = ["too many", "throttl", "rate limit", "simultaneous connections"];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Forbidden)
        {
            return response;
        }

        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var (title, detail) = MailChimpApi.Problem(body);
        var text = (title + " " + detail).ToUpperInvariant();
        var throttled = Markers.Any(m => text.Contains(m.ToUpperInvariant(), StringComparison.Ordinal));
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? "application/json";
        var copy = new StringContent(body, Encoding.UTF8, mediaType);
        response.Content.Dispose();
        response.Content = copy;
        if (throttled)
        {
            response.StatusCode = HttpStatusCode.TooManyRequests;
        }

        return response;
    }
}

/// <summary>At most a fixed number of requests in flight (MailChimp closes connections beyond 10 per user).</summary>
internal sealed class ConcurrencyLimitHandler(int limit) : DelegatingHandler
{
    private readonly SemaphoreSlim _slots = new(limit, limit);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.Content is { } content)
            {
                // The slot covers the body too: the connection stays busy until it is read.
                await content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
            }

            return response;
        }
        finally
        {
            _slots.Release();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _slots.Dispose();
        }

        base.Dispose(disposing);
    }
}
