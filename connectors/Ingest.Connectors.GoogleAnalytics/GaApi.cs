using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Apis.Auth.OAuth2;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>What tests substitute: the network under the pipeline, the quota reset clock, retry pacing, the date.</summary>
internal sealed record GaHooks
{
    public HttpMessageHandler? Inner { get; init; }

    public Func<DateTimeOffset, QuotaWindow, DateTimeOffset>? ResetAt { get; init; }

    public Func<HttpResilienceOptions, HttpResilienceOptions>? Tune { get; init; }

    public Func<DateOnly>? Today { get; init; }
}

/// <summary>The columns GA knows for a property: dimension names, and each metric's type (TYPE_INTEGER, TYPE_CURRENCY...).</summary>
internal sealed record GaMetadata(IReadOnlySet<string> Dimensions, IReadOnlyDictionary<string, string> MetricTypes);

/// <summary>One page of a runReport answer: rows as (dimension values, metric values), in the request's column order.</summary>
internal sealed record GaReportPage(IReadOnlyList<(string[] Dimensions, string?[] Metrics)> Rows, long RowCount, IReadOnlyList<(string Name, string Type)> MetricHeaders, string? TimeZone);

/// <summary>
/// The two Data API v1beta calls the connector makes over the shared <see cref="HttpPipeline"/>: <c>runReport</c> and
/// <c>getMetadata</c>, authenticated with the service account's bearer token (refreshed on 401), pacing and retries
/// from Ingest.Sdk.Http, and GA's property quotas (<see cref="GaQuotaGate"/>).
/// </summary>
internal sealed class GaApi : IDisposable
{
    /// <summary>Longest 429 quota wait taken in place (an hourly quota); a longer one (a daily quota) ends the read as transient.</summary>
    private static readonly TimeSpan LongestQuotaWait = TimeSpan.FromMinutes(65);
    private readonly GaOptions _options;
    private readonly HttpPipeline _pipeline;
    private readonly GoogleAuthHandler _auth;
    private readonly HttpClient _http;

    public GaApi(GaOptions options, IConnectorLog log, GaHooks? hooks = null)
    {
        _options = options;
        Credential = GaAuth.Create(options.CredentialsJson);
        Quota = new GaQuotaGate(log, TimeProvider.System, hooks?.ResetAt);
        var resilience = new HttpResilienceOptions
        {
            RequestsPerSecond = options.RequestsPerSecond,
            Log = log,
            // An hourly quota resets within the hour: the retries of a 429 may wait that long.
            MaxFailureDuration = LongestQuotaWait + TimeSpan.FromMinutes(10),
        };
        if (hooks?.Tune is { } tune)
        {
            resilience = tune(resilience);
        }

        var network = hooks?.Inner ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AutomaticDecompression = DecompressionMethods.All };
        _pipeline = new HttpPipeline(resilience, new GaQuotaHandler(Quota, LongestQuotaWait) { InnerHandler = network });
        _auth = new GoogleAuthHandler(Credential, log) { InnerHandler = _pipeline.Handler };
        _http = new HttpClient(_auth, disposeHandler: false) { BaseAddress = options.ApiBase, Timeout = Timeout.InfiniteTimeSpan };
    }

    public ServiceAccountCredential Credential { get; }

    public GaQuotaGate Quota { get; }

    private string PropertyPath => "v1beta/properties/" + _options.PropertyId;

    /// <summary>Gets a token now (Check uses it to tell a bad key from a bad property).</summary>
    public async Task AuthenticateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Credential.GetAccessTokenForRequestAsync(_options.ApiBase.AbsoluteUri, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Google.Apis.Auth.OAuth2.Responses.TokenResponseException or HttpRequestException)
        {
            throw GaAuth.Translate(e, Credential.Id);
        }
    }

    /// <summary>GET properties/{id}/metadata: every dimension and metric of the property, custom ones included.</summary>
    public async Task<GaMetadata> MetadataAsync(CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, PropertyPath + "/metadata");
        using var doc = await SendAsync(request, null, cancellationToken).ConfigureAwait(false);
        var dims = new HashSet<string>(StringComparer.Ordinal);
        var metrics = new Dictionary<string, string>(StringComparer.Ordinal);
        if (doc.RootElement.TryGetProperty("dimensions", out var d) && d.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in d.EnumerateArray())
            {
                if (x.TryGetProperty("apiName", out var n) && n.GetString() is { } name)
                {
                    dims.Add(name);
                }
            }
        }

        if (doc.RootElement.TryGetProperty("metrics", out var m) && m.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in m.EnumerateArray())
            {
                if (x.TryGetProperty("apiName", out var n) && n.GetString() is { } name)
                {
                    metrics[name] = x.TryGetProperty("type", out var t) && t.GetString() is { } type ? type : "TYPE_FLOAT";
                }
            }
        }

        return new GaMetadata(dims, metrics);
    }

    /// <summary>POST properties/{id}:runReport for [from, to], rows <paramref name="offset"/>.. (at most <paramref name="limit"/>), ordered by every dimension so pages are stable.</summary>
    public async Task<GaReportPage> RunReportAsync(GaReport report, DateOnly from, DateOnly to, long offset, int limit, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["dateRanges"] = new JsonArray(new JsonObject { ["startDate"] = Iso(from), ["endDate"] = Iso(to) }),
            ["dimensions"] = new JsonArray(report.Dimensions.Select(n => (JsonNode)new JsonObject { ["name"] = n }).ToArray()),
            ["metrics"] = new JsonArray(report.Metrics.Select(n => (JsonNode)new JsonObject { ["name"] = n }).ToArray()),
            ["offset"] = offset.ToString(CultureInfo.InvariantCulture),
            ["limit"] = limit.ToString(CultureInfo.InvariantCulture),
            ["orderBys"] = new JsonArray(report.Dimensions.Select(n => (JsonNode)new JsonObject { ["dimension"] = new JsonObject { ["dimensionName"] = n } }).ToArray()),
            ["returnPropertyQuota"] = true,
        };
        if (report.DimensionFilter is { } filter)
        {
            body["dimensionFilter"] = JsonNode.Parse(filter.GetRawText());
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, PropertyPath + ":runReport")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        using var doc = await SendAsync(request, report, cancellationToken).ConfigureAwait(false);
        var root = doc.RootElement;
        if (root.TryGetProperty("propertyQuota", out var quota))
        {
            Quota.Observe(quota);
        }

        var headers = new List<(string, string)>();
        if (root.TryGetProperty("metricHeaders", out var mh) && mh.ValueKind == JsonValueKind.Array)
        {
            foreach (var h in mh.EnumerateArray())
            {
                headers.Add((h.GetProperty("name").GetString()!, h.TryGetProperty("type", out var t) ? t.GetString() ?? "" : ""));
            }
        }

        var rows = new List<(string[], string?[])>();
        if (root.TryGetProperty("rows", out var rs) && rs.ValueKind == JsonValueKind.Array)
        {
            foreach (var r in rs.EnumerateArray())
            {
                rows.Add((Values(r, "dimensionValues", report.Dimensions.Count, report).Select(v => v ?? "").ToArray(), Values(r, "metricValues", report.Metrics.Count, report)));
            }
        }

        var rowCount = root.TryGetProperty("rowCount", out var rc) && rc.ValueKind == JsonValueKind.Number ? rc.GetInt64() : 0;
        var tz = root.TryGetProperty("metadata", out var md) && md.TryGetProperty("timeZone", out var tzv) ? tzv.GetString() : null;
        return new GaReportPage(rows, rowCount, headers, tz);
    }

    private static string?[] Values(JsonElement row, string property, int expected, GaReport report)
    {
        var values = new string?[expected];
        if (!row.TryGetProperty(property, out var a) || a.ValueKind != JsonValueKind.Array || a.GetArrayLength() != expected)
        {
            throw new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"Google Analytics answered report '{report.Name}' with a row whose {property} do not match the {expected} requested."));
        }

        var i = 0;
        foreach (var v in a.EnumerateArray())
        {
            values[i++] = v.TryGetProperty("value", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        }

        return values;
    }

    public static string Iso(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private async Task<JsonDocument> SendAsync(HttpRequestMessage request, GaReport? report, CancellationToken cancellationToken)
    {
        // Before the pipeline, so requests held by a quota pause still go out at the configured rate afterwards.
        await Quota.WaitAsync(cancellationToken).ConfigureAwait(false);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw Translate(response.StatusCode, text, request, report);
        }

        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new ConnectorException(ErrorKind.Transient, $"Google Analytics answered {request.RequestUri?.AbsolutePath} with malformed JSON: {e.Message}", null, e);
        }
    }

    /// <summary>GA's error body: <c>{"error": {"code", "message", "status"}}</c>.</summary>
    public static (string Status, string Message) ErrorOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object)
            {
                return (e.TryGetProperty("status", out var s) ? s.GetString() ?? "" : "", e.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "");
            }
        }
        catch (JsonException)
        {
        }

        return ("", body.Length > 200 ? body[..200] : body);
    }

    private ConnectorException Translate(HttpStatusCode code, string body, HttpRequestMessage request, GaReport? report)
    {
        var (status, message) = ErrorOf(body);
        var what = string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)code} {status}: {message}");
        var property = _options.PropertyId;
        if (status == "SERVICE_DISABLED" || message.Contains("has not been used in project", StringComparison.Ordinal))
        {
            return new ConnectorException(ErrorKind.Configuration, $"The Google Analytics Data API is not enabled in the project of the key in credentialsJson ({what}). Enable it in the Cloud console.", "/credentialsJson");
        }

        return code switch
        {
            HttpStatusCode.Unauthorized => new ConnectorException(ErrorKind.Configuration, $"Google Analytics refused the access token of {Credential.Id} even after a refresh ({what}). Check credentialsJson.", "/credentialsJson"),
            HttpStatusCode.Forbidden => new ConnectorException(ErrorKind.Configuration, $"The service account {Credential.Id} may not read property {property} ({what}). Check propertyId, and add the account as a Viewer under Admin > Property access management.", "/propertyId"),
            HttpStatusCode.NotFound => new ConnectorException(ErrorKind.Configuration, $"Google Analytics has no property {property} ({what}). Check propertyId.", "/propertyId"),
            HttpStatusCode.BadRequest when report is not null => new ConnectorException(ErrorKind.Configuration, $"Google Analytics rejected report '{report.Name}' ({what}). Check its dimensions, metrics and dimensionFilter.", report.Field),
            HttpStatusCode.BadRequest => new ConnectorException(ErrorKind.Configuration, $"Google Analytics rejected {request.Method} {request.RequestUri?.AbsolutePath} ({what}). Check propertyId.", "/propertyId"),
            _ => new ConnectorException(ErrorKind.Fatal, $"Google Analytics {request.Method} {request.RequestUri?.AbsolutePath} failed: {what}"),
        };
    }

    public void Dispose()
    {
        _http.Dispose();
        _auth.Dispose();
        _pipeline.Dispose();
    }
}
