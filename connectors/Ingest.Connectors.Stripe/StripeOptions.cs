using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;

namespace Ingest.Connectors.Stripe;

/// <summary>
/// The connector's configuration:
/// <code>
/// { "apiKey": "sk_live_...", "apiBase": "https://api.stripe.com", "startDate": "2024-01-01T00:00:00Z",
///   "requestsPerSecond": 20, "windowDays": 30, "parallelWindows": 4, "pollIntervalSeconds": 60, "pageSize": 100 }
/// </code>
/// </summary>
internal sealed record StripeOptions(
    string ApiKey,
    Uri ApiBase,
    DateTimeOffset StartDate,
    double RequestsPerSecond,
    int WindowDays,
    TimeSpan PollInterval,
    int PageSize,
    int ParallelWindows)
{
    public const string DefaultApiBase = "https://api.stripe.com";

    public const string SpecJson = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Stripe",
          "type": "object",
          "required": ["apiKey"],
          "properties": {
            "apiKey": { "type": "string", "title": "Secret API key", "description": "A secret (sk_...) or restricted (rk_...) key with read access to the selected objects and to events.", "secret": true, "minLength": 1 },
            "apiBase": { "type": "string", "title": "API base URL", "description": "Only for proxies and tests.", "default": "https://api.stripe.com" },
            "startDate": { "type": "string", "title": "Start date", "description": "Objects created before this instant are not read (ISO 8601). Default: 2011-01-01, before Stripe existed.", "format": "date-time" },
            "requestsPerSecond": { "type": "number", "title": "Requests per second", "description": "Client-side limit on all requests of the connection. Stripe allows 25/s in test mode and 100/s live.", "default": 20, "exclusiveMinimum": 0, "maximum": 100 },
            "windowDays": { "type": "integer", "title": "Snapshot window (days)", "description": "The snapshot lists objects by created windows of this many days.", "default": 30, "minimum": 1 },
            "pollIntervalSeconds": { "type": "integer", "title": "Events poll interval (seconds)", "default": 60, "minimum": 1 },
            "parallelWindows": { "type": "integer", "title": "Windows read in parallel", "description": "Created windows listed at once during a snapshot, all within requestsPerSecond.", "default": 4, "minimum": 1, "maximum": 16 },
            "pageSize": { "type": "integer", "title": "Page size", "description": "Objects per list request (Stripe's limit).", "default": 100, "minimum": 1, "maximum": 100 }
          }
        }
        """;

    public static StripeOptions Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The Stripe configuration must be a JSON object.");
        }

        var apiKey = String(config, "apiKey");
        if (string.IsNullOrWhiteSpace(apiKey))
        {
            throw new ConnectorException(ErrorKind.Configuration, "apiKey is required: a secret (sk_...) or restricted (rk_...) Stripe API key.", "/apiKey");
        }

        var apiBase = Ingest.Sdk.Http.ApiBase.Resolve(String(config, "apiBase"), DefaultApiBase);
        var start = new DateTimeOffset(2011, 1, 1, 0, 0, 0, TimeSpan.Zero);
        if (String(config, "startDate") is { Length: > 0 } s)
        {
            if (!DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out start))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"startDate '{s}' is not an ISO 8601 date or date-time.", "/startDate");
            }
        }

        var rps = Number(config, "requestsPerSecond") ?? 20;
        if (rps is <= 0 or > 100)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"requestsPerSecond must be above 0 and at most 100 (got {rps.ToString(CultureInfo.InvariantCulture)}).", "/requestsPerSecond");
        }

        var window = Number(config, "windowDays") ?? 30;
        if (window < 1 || window != Math.Floor(window))
        {
            throw new ConnectorException(ErrorKind.Configuration, "windowDays must be a whole number of days, at least 1.", "/windowDays");
        }

        var poll = Number(config, "pollIntervalSeconds") ?? 60;
        if (poll < 1)
        {
            throw new ConnectorException(ErrorKind.Configuration, "pollIntervalSeconds must be at least 1.", "/pollIntervalSeconds");
        }

        var pageSize = (int)(Number(config, "pageSize") ?? 100);
        if (pageSize is < 1 or > 100)
        {
            throw new ConnectorException(ErrorKind.Configuration, "pageSize must be between 1 and 100.", "/pageSize");
        }

        var parallel = Number(config, "parallelWindows") ?? 4;
        if (parallel is < 1 or > 16 || parallel != Math.Floor(parallel))
        {
            throw new ConnectorException(ErrorKind.Configuration, "parallelWindows must be a whole number between 1 and 16.", "/parallelWindows");
        }

        return new StripeOptions(apiKey, apiBase, start.ToUniversalTime(), rps, (int)window, TimeSpan.FromSeconds(poll), pageSize, (int)parallel);
    }

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
