using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>One configured report: a stream keyed by its dimensions (<c>date</c> always among them).</summary>
/// <param name="Name">The stream's name.</param>
/// <param name="Dimensions">Dimension API names, <c>date</c> first when it was not listed.</param>
/// <param name="Metrics">Metric API names.</param>
/// <param name="DimensionFilter">A GA <c>FilterExpression</c> as JSON, passed through unchanged; null for none.</param>
/// <param name="Index">Its position in <c>reports</c>, for error messages that name the field.</param>
internal sealed record GaReport(string Name, IReadOnlyList<string> Dimensions, IReadOnlyList<string> Metrics, JsonElement? DimensionFilter, int Index)
{
    public string Field => string.Create(CultureInfo.InvariantCulture, $"/reports/{Index}");
}

/// <summary>
/// The connector's configuration:
/// <code>
/// { "propertyId": "123456789", "credentialsJson": "{ \"type\": \"service_account\", ... }",
///   "apiBase": "https://analyticsdata.googleapis.com", "startDate": "2024-01-01", "lookbackDays": 3,
///   "reports": [ { "name": "daily_traffic", "dimensions": ["date", "country"], "metrics": ["activeUsers", "sessions"],
///                  "dimensionFilter": { "filter": { "fieldName": "country", "stringFilter": { "value": "France" } } } } ],
///   "requestsPerSecond": 5, "concurrency": 4, "pageSize": 10000, "pollIntervalSeconds": 3600 }
/// </code>
/// </summary>
internal sealed record GaOptions(
    string PropertyId,
    string CredentialsJson,
    Uri ApiBase,
    IReadOnlyList<GaReport> Reports,
    DateOnly StartDate,
    int LookbackDays,
    double RequestsPerSecond,
    int Concurrency,
    int PageSize,
    TimeSpan PollInterval)
{
    public const string DefaultApiBase = "https://analyticsdata.googleapis.com";

    /// <summary>GA4's Data API returns at most this many rows per request.</summary>
    public const int MaxPageSize = 250_000;

    public const string SpecJson = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Google Analytics 4",
          "type": "object",
          "required": ["propertyId", "credentialsJson", "reports"],
          "properties": {
            "propertyId": { "type": "string", "title": "Property ID", "description": "The numeric GA4 property ID (Admin > Property settings), e.g. 123456789.", "pattern": "^[0-9]+$" },
            "credentialsJson": { "type": "string", "title": "Service account key (JSON)", "description": "The JSON key of a service account that has Viewer access to the property (Admin > Property access management).", "secret": true, "minLength": 1 },
            "apiBase": { "type": "string", "title": "API base URL", "description": "Only for proxies and tests.", "default": "https://analyticsdata.googleapis.com" },
            "startDate": { "type": "string", "title": "Start date", "description": "The first date read (yyyy-MM-dd). Default: 2 years ago.", "format": "date" },
            "lookbackDays": { "type": "integer", "title": "Lookback days", "description": "Every run re-reads this many days before the last one read and replaces them: GA revises recent days.", "default": 3, "minimum": 0, "maximum": 90 },
            "reports": {
              "type": "array",
              "title": "Reports",
              "description": "Each report is a stream keyed by its dimensions (date is always one).",
              "minItems": 1,
              "items": {
                "type": "object",
                "required": ["name", "metrics"],
                "properties": {
                  "name": { "type": "string", "title": "Stream name", "minLength": 1 },
                  "dimensions": { "type": "array", "title": "Dimensions", "items": { "type": "string" }, "maxItems": 9 },
                  "metrics": { "type": "array", "title": "Metrics", "items": { "type": "string" }, "minItems": 1, "maxItems": 10 },
                  "dimensionFilter": { "type": "object", "title": "Dimension filter", "description": "A GA4 FilterExpression, as in the Data API's runReport." }
                }
              }
            },
            "requestsPerSecond": { "type": "number", "title": "Requests per second", "description": "Client-side limit on all requests of the connection.", "default": 5, "exclusiveMinimum": 0, "maximum": 50 },
            "concurrency": { "type": "integer", "title": "Dates read in parallel", "description": "GA allows 10 concurrent requests per property.", "default": 4, "minimum": 1, "maximum": 10 },
            "pageSize": { "type": "integer", "title": "Rows per request", "default": 10000, "minimum": 1, "maximum": 250000 },
            "pollIntervalSeconds": { "type": "integer", "title": "Poll interval (seconds)", "description": "How long to wait between runs over the lookback window.", "default": 3600, "minimum": 1 }
          }
        }
        """;

    public static GaOptions Parse(JsonElement config, DateOnly? today = null)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The Google Analytics configuration must be a JSON object.");
        }

        // YAML pipeline files may give the numeric ID unquoted.
        var property = config.TryGetProperty("propertyId", out var pid) && pid.ValueKind == JsonValueKind.Number ? pid.GetRawText() : String(config, "propertyId")?.Trim();
        if (property is { Length: > 11 } && property.StartsWith("properties/", StringComparison.Ordinal))
        {
            property = property["properties/".Length..];
        }

        if (string.IsNullOrEmpty(property) || !property.All(char.IsAsciiDigit))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"propertyId must be the numeric GA4 property ID (Admin > Property settings), not '{property}'.", "/propertyId");
        }

        var credentials = String(config, "credentialsJson");
        if (string.IsNullOrWhiteSpace(credentials))
        {
            throw new ConnectorException(ErrorKind.Configuration, "credentialsJson is required: the JSON key of a service account with Viewer access to the property.", "/credentialsJson");
        }

        var apiBase = Ingest.Sdk.Http.ApiBase.Resolve(String(config, "apiBase"), DefaultApiBase);
        var now = today ?? DateOnly.FromDateTime(DateTime.UtcNow);
        var start = now.AddYears(-2);
        if (String(config, "startDate") is { Length: > 0 } s && !DateOnly.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out start))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"startDate '{s}' is not a date (yyyy-MM-dd).", "/startDate");
        }

        var lookback = Whole(config, "lookbackDays", 3, 0, 90);
        var rps = Number(config, "requestsPerSecond") ?? 5;
        if (rps is <= 0 or > 50)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"requestsPerSecond must be above 0 and at most 50 (got {rps.ToString(CultureInfo.InvariantCulture)}).", "/requestsPerSecond");
        }

        var concurrency = Whole(config, "concurrency", 4, 1, 10);
        var pageSize = Whole(config, "pageSize", 10_000, 1, MaxPageSize);
        var poll = Whole(config, "pollIntervalSeconds", 3600, 1, int.MaxValue);
        return new GaOptions(property, credentials, apiBase, ParseReports(config), start, lookback, rps, concurrency, pageSize, TimeSpan.FromSeconds(poll));
    }

    private static List<GaReport> ParseReports(JsonElement config)
    {
        if (!config.TryGetProperty("reports", out var reports) || reports.ValueKind != JsonValueKind.Array || reports.GetArrayLength() == 0)
        {
            throw new ConnectorException(ErrorKind.Configuration, "reports is required: a list of { name, dimensions, metrics }.", "/reports");
        }

        var list = new List<GaReport>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        foreach (var r in reports.EnumerateArray())
        {
            var field = string.Create(CultureInfo.InvariantCulture, $"/reports/{i}");
            if (r.ValueKind != JsonValueKind.Object)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')} must be an object with name, dimensions and metrics.", field);
            }

            var name = String(r, "name", field)?.Trim();
            if (string.IsNullOrEmpty(name))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')}/name is required (the stream's name).", field + "/name");
            }

            if (!names.Add(name))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Two reports are called '{name}'; report names are stream names and must be unique.", field + "/name");
            }

            var dims = Names(r, "dimensions", field, required: false);
            if (!dims.Contains("date"))
            {
                dims.Insert(0, "date");
            }

            if (dims.Count > 9)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Report '{name}' has {dims.Count} dimensions with date; GA allows 9.", field + "/dimensions");
            }

            var metrics = Names(r, "metrics", field, required: true);
            if (metrics.Count > 10)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Report '{name}' has {metrics.Count} metrics; GA allows 10.", field + "/metrics");
            }

            if (dims.Intersect(metrics, StringComparer.OrdinalIgnoreCase).FirstOrDefault() is { } both)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Report '{name}' names '{both}' as both a dimension and a metric.", field + "/metrics");
            }

            JsonElement? filter = null;
            if (r.TryGetProperty("dimensionFilter", out var f) && f.ValueKind != JsonValueKind.Null)
            {
                if (f.ValueKind != JsonValueKind.Object)
                {
                    throw new ConnectorException(ErrorKind.Configuration, $"Report '{name}': dimensionFilter must be a GA FilterExpression object.", field + "/dimensionFilter");
                }

                filter = f.Clone();
            }

            list.Add(new GaReport(name, dims, metrics, filter, i));
            i++;
        }

        return list;
    }

    private static List<string> Names(JsonElement report, string property, string field, bool required)
    {
        var list = new List<string>();
        if (report.TryGetProperty(property, out var a) && a.ValueKind != JsonValueKind.Null)
        {
            if (a.ValueKind != JsonValueKind.Array)
            {
                throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')}/{property} must be a list of API names.", $"{field}/{property}");
            }

            foreach (var e in a.EnumerateArray())
            {
                var n = e.ValueKind == JsonValueKind.String ? e.GetString()!.Trim() : "";
                if (n.Length == 0)
                {
                    throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')}/{property} must hold non-empty API names (e.g. activeUsers).", $"{field}/{property}");
                }

                if (list.Contains(n, StringComparer.OrdinalIgnoreCase))
                {
                    throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')}/{property} lists '{n}' twice.", $"{field}/{property}");
                }

                list.Add(n);
            }
        }

        if (required && list.Count == 0)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')}/{property} needs at least one API name (e.g. activeUsers).", $"{field}/{property}");
        }

        return list;
    }

    private static string? String(JsonElement config, string name, string prefix = "") =>
        config.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ConnectorException(ErrorKind.Configuration, $"{(prefix + "/" + name).TrimStart('/')} must be a string.", prefix + "/" + name)
            : null;

    private static int Whole(JsonElement config, string name, int fallback, int min, int max)
    {
        var v = Number(config, name) ?? fallback;
        if (v < min || v > max || v != Math.Floor(v))
        {
            throw new ConnectorException(ErrorKind.Configuration, string.Create(CultureInfo.InvariantCulture, $"{name} must be a whole number between {min} and {max}."), "/" + name);
        }

        return (int)v;
    }

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
