using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.MailChimp;

/// <summary>
/// The connector's configuration:
/// <code>
/// { "apiKey": "0123456789abcdef0123456789abcdef-us6", "apiBase": "https://us6.api.mailchimp.com/3.0",
///   "startDate": "2024-01-01T00:00:00Z", "requestsPerSecond": 10, "maxConcurrency": 10, "pageSize": 1000,
///   "pollIntervalSeconds": 300 }
/// </code>
/// </summary>
internal sealed partial record MailChimpOptions(
    string ApiKey,
    string DataCenter,
    Uri ApiBase,
    DateTimeOffset? StartDate,
    double RequestsPerSecond,
    int MaxConcurrency,
    int PageSize,
    TimeSpan PollInterval)
{
    /// <summary>MailChimp allows each user at most 10 simultaneous connections.</summary>
    public const int ConnectionLimit = 10;

    public const string SpecJson = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "MailChimp",
          "type": "object",
          "required": ["apiKey"],
          "properties": {
            "apiKey": { "type": "string", "title": "API key", "description": "A Marketing API key (Account > Extras > API keys). Its suffix after '-' is the data center, e.g. ...-us6.", "secret": true, "minLength": 1 },
            "apiBase": { "type": "string", "title": "API base URL", "description": "Only for proxies and tests. Default: https://<dc>.api.mailchimp.com/3.0 from the key's data center." },
            "startDate": { "type": "string", "title": "Start date", "description": "Members changed and campaigns created before this instant are not read (ISO 8601). Default: everything.", "format": "date-time" },
            "requestsPerSecond": { "type": "number", "title": "Requests per second", "description": "Client-side limit on all requests of the connection.", "default": 10, "exclusiveMinimum": 0, "maximum": 100 },
            "maxConcurrency": { "type": "integer", "title": "Concurrent requests", "description": "Requests in flight at once. MailChimp allows 10 simultaneous connections per user.", "default": 10, "minimum": 1, "maximum": 10 },
            "pageSize": { "type": "integer", "title": "Page size", "description": "Records per request (count; MailChimp's maximum is 1000).", "default": 1000, "minimum": 1, "maximum": 1000 },
            "pollIntervalSeconds": { "type": "integer", "title": "Poll interval (seconds)", "description": "Time between passes once caught up.", "default": 300, "minimum": 1 }
          }
        }
        """;

    /// <summary>Basic auth header value: MailChimp takes any user name with the key as password.</summary>
    public string BasicAuth => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("ingest:" + ApiKey));

    public static MailChimpOptions Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The MailChimp configuration must be a JSON object.");
        }

        var apiKey = String(config, "apiKey")?.Trim();
        if (string.IsNullOrEmpty(apiKey))
        {
            throw new ConnectorException(ErrorKind.Configuration, "apiKey is required: a MailChimp Marketing API key such as 0123...cdef-us6.", "/apiKey");
        }

        var dash = apiKey.LastIndexOf('-');
        var dc = dash > 0 ? apiKey[(dash + 1)..] : "";
        if (!DataCenterPattern().IsMatch(dc))
        {
            // Never echo the key: only its shape.
            throw new ConnectorException(ErrorKind.Configuration, "apiKey has no data center suffix: a MailChimp API key ends in '-<dc>' such as '-us6' (copy the whole key from Account > Extras > API keys).", "/apiKey");
        }

        var apiBase = Ingest.Sdk.Http.ApiBase.Resolve(String(config, "apiBase"), $"https://{dc}.api.mailchimp.com/3.0");
        DateTimeOffset? start = null;
        if (String(config, "startDate") is { Length: > 0 } s)
        {
            if (!DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"startDate '{s}' is not an ISO 8601 date or date-time.", "/startDate");
            }

            start = d.ToUniversalTime();
        }

        var rps = Number(config, "requestsPerSecond") ?? 10;
        if (rps is <= 0 or > 100)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"requestsPerSecond must be above 0 and at most 100 (got {rps.ToString(CultureInfo.InvariantCulture)}).", "/requestsPerSecond");
        }

        var concurrency = Number(config, "maxConcurrency") ?? ConnectionLimit;
        if (concurrency is < 1 or > ConnectionLimit || concurrency != Math.Floor(concurrency))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"maxConcurrency must be a whole number from 1 to {ConnectionLimit} (MailChimp's limit of simultaneous connections).", "/maxConcurrency");
        }

        var pageSize = Number(config, "pageSize") ?? 1000;
        if (pageSize is < 1 or > 1000 || pageSize != Math.Floor(pageSize))
        {
            throw new ConnectorException(ErrorKind.Configuration, "pageSize must be a whole number from 1 to 1000.", "/pageSize");
        }

        var poll = Number(config, "pollIntervalSeconds") ?? 300;
        if (poll < 1)
        {
            throw new ConnectorException(ErrorKind.Configuration, "pollIntervalSeconds must be at least 1.", "/pollIntervalSeconds");
        }

        return new MailChimpOptions(apiKey, dc, apiBase, start, rps, (int)concurrency, (int)pageSize, TimeSpan.FromSeconds(poll));
    }

    [GeneratedRegex("^[a-z]{2,}[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex DataCenterPattern();

    private static string? String(JsonElement config, string name) =>
        config.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ConnectorException(ErrorKind.Configuration, $"{name} must be a string.", "/" + name)
            : null;

    private static double? Number(JsonElement config, string name)
    {
        if (!config.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind == JsonValueKind.Number)
        {
            return v.GetDouble();
        }

        if (v.ValueKind == JsonValueKind.String && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return d;
        }

        throw new ConnectorException(ErrorKind.Configuration, $"{name} must be a number.", "/" + name);
    }
}
