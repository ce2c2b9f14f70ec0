using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using global::Stripe;

namespace Ingest.Connectors.Stripe;

/// <summary>
/// The list calls the connector makes, through Stripe.net's raw requests (auth, API version and error parsing are
/// Stripe.net's) over the shared <see cref="HttpPipeline"/> (rate limit and retries are ours: Stripe.net's own
/// network retries are off so that every attempt takes a rate-limit token).
/// </summary>
internal sealed class StripeApi : IDisposable
{
    private readonly HttpPipeline _pipeline;
    private readonly HttpClient _http;
    private readonly StripeClient _client;

    public StripeApi(StripeOptions options, IConnectorLog log, HttpMessageHandler? inner = null, Func<HttpResilienceOptions, HttpResilienceOptions>? tune = null)
    {
        var resilience = new HttpResilienceOptions { RequestsPerSecond = options.RequestsPerSecond, Log = log };
        _pipeline = new HttpPipeline(tune is null ? resilience : tune(resilience), inner);
        _http = _pipeline.CreateClient();
        _client = new StripeClient(new StripeClientOptions
        {
            ApiKey = options.ApiKey,
            ApiBase = options.ApiBase.AbsoluteUri.TrimEnd('/'),
            HttpClient = new SystemNetHttpClient(_http, maxNetworkRetries: 0, appInfo: null, enableTelemetry: false),
        });
    }

    /// <summary>One page of <paramref name="path"/> (e.g. <c>v1/customers</c>), newest first, within [gte, lt) by created.</summary>
    public async Task<Page<JsonElement>> ListAsync(string path, long? createdGte, long? createdLt, string? startingAfter, int limit, CancellationToken cancellationToken)
    {
        var q = new StringBuilder("/").Append(path).Append("?limit=").Append(limit.ToString(CultureInfo.InvariantCulture));
        if (createdGte is { } gte)
        {
            q.Append("&created%5Bgte%5D=").Append(gte.ToString(CultureInfo.InvariantCulture));
        }

        if (createdLt is { } lt)
        {
            q.Append("&created%5Blt%5D=").Append(lt.ToString(CultureInfo.InvariantCulture));
        }

        if (startingAfter is not null)
        {
            q.Append("&starting_after=").Append(Uri.EscapeDataString(startingAfter));
        }

        using var doc = await GetAsync(q.ToString(), cancellationToken).ConfigureAwait(false);
        var root = doc.RootElement;
        if (!root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"Stripe's answer to GET /{path} is not a list (no data array).");
        }

        var items = new List<JsonElement>(data.GetArrayLength());
        foreach (var e in data.EnumerateArray())
        {
            items.Add(e.Clone());
        }

        var hasMore = root.TryGetProperty("has_more", out var hm) && hm.ValueKind == JsonValueKind.True;
        return new Page<JsonElement>(items, hasMore);
    }

    private async Task<JsonDocument> GetAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        StripeResponse response;
        try
        {
            response = await _client.RawRequestAsync(HttpMethod.Get, pathAndQuery, null, null, cancellationToken).ConfigureAwait(false);
        }
        catch (StripeException e)
        {
            throw Translate(e, pathAndQuery);
        }

        return JsonDocument.Parse(response.Content);
    }

    private static ConnectorException Translate(StripeException e, string pathAndQuery)
    {
        var path = pathAndQuery.Split('?')[0];
        var detail = e.StripeError?.Message ?? e.Message;
        return e.HttpStatusCode switch
        {
            HttpStatusCode.Unauthorized => new ConnectorException(ErrorKind.Configuration, $"Stripe refused the API key (401): {detail} Check apiKey.", "/apiKey", e),
            HttpStatusCode.Forbidden => new ConnectorException(ErrorKind.Configuration, $"The API key may not read {path} (403): {detail} Give the restricted key read access to it.", "/apiKey", e),
            _ => new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"Stripe GET {path} failed with HTTP {(int)e.HttpStatusCode}: {detail}"), null, e),
        };
    }

    public void Dispose()
    {
        _http.Dispose();
        _pipeline.Dispose();
    }
}
