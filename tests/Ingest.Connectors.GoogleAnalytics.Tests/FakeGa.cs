using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Testing;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

/// <summary>
/// A stateful in-process fake of Google's OAuth token endpoint and the GA4 Data API v1beta on a loopback port.
/// <c>POST /token</c> takes a service-account JWT assertion and checks its RS256 signature with the key's public key, its
/// issuer, audience, scope and expiry; tokens can be expired at will (the API then answers 401
/// UNAUTHENTICATED). <c>GET /v1beta/properties/{id}/metadata</c> lists dimensions and typed metrics;
/// <c>POST /v1beta/properties/{id}:runReport</c> aggregates the stored rows by the requested dimensions over the date
/// range, applies a string or in-list dimension filter, orders by dimensions, pages with limit/offset and rowCount, and
/// returns propertyQuota when asked. Unknown fields are 400 INVALID_ARGUMENT, other properties 403 PERMISSION_DENIED.
/// 429 RESOURCE_EXHAUSTED (with or without Retry-After) and 500s on a schedule; every request logged on the fake's clock.
/// </summary>
internal sealed class FakeGa : IDisposable
{
    public const string PropertyId = "123456789";
    public const string ClientEmail = "ingest-reader@test-project.iam.gserviceaccount.com";
    public const string Scope = "https://www.googleapis.com/auth/analytics.readonly";

    /// <summary>The audience Google's token endpoint expects in assertions (Google.Apis.Auth sends it whatever the token_uri).</summary>
    public const string GoogleAudience = "https://oauth2.googleapis.com/token";

    private static readonly string[] AllDimensions = ["date", "country", "deviceCategory", "city"];

    private static readonly Dictionary<string, string> MetricTypes = new(StringComparer.Ordinal)
    {
        ["activeUsers"] = "TYPE_INTEGER",
        ["sessions"] = "TYPE_INTEGER",
        ["totalRevenue"] = "TYPE_CURRENCY",
        ["userEngagementDuration"] = "TYPE_SECONDS",
        ["bounceRate"] = "TYPE_FLOAT",
    };

    private static readonly Lazy<RSA> SharedKey = new(() => RSA.Create(2048));
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly HashSet<string> _validTokens = new(StringComparer.Ordinal);
    private readonly List<Row> _rows = [];
    private int _requests;
    private int _tokenSeq;

    public FakeGa()
    {
        BaseUrl = Loopback.Start(_listener);
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>One stored row: its dimension values (all of <see cref="AllDimensions"/>) and metric values.</summary>
    public sealed record Row(DateOnly Date, string Country, string Device, string City, Dictionary<string, double> Metrics);

    public string BaseUrl { get; }

    public string TokenUri => BaseUrl + "/token";

    /// <summary>The service account's key pair (one for all fakes: generating one takes a while); assertions are verified with its public half.</summary>
    public RSA Key => SharedKey.Value;

    /// <summary>API requests numbered (1-based) here get 429 RESOURCE_EXHAUSTED.</summary>
    public HashSet<int> ThrottleAt { get; } = [];

    /// <summary>Retry-After of the 429s; null sends none (GA's usual: the client waits for the quota window).</summary>
    public int? RetryAfterSeconds { get; set; } = 1;

    /// <summary>API requests numbered here get a 500.</summary>
    public HashSet<int> FailAt { get; } = [];

    /// <summary>API requests numbered here first invalidate every token issued so far (it "expired").</summary>
    public HashSet<int> ExpireTokensAt { get; } = [];

    /// <summary>Tokens left in the hour, reported in propertyQuota (each request costs <see cref="TokenCost"/>).</summary>
    public long TokensPerHour { get; set; } = 40_000;

    public int TokenCost { get; set; } = 10;

    public TimeSpan Latency { get; set; }

    public int TokenRequests { get; private set; }

    public int Unauthorized { get; private set; }

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>API requests (not token ones): when, path, status, and the date of a single-date runReport.</summary>
    public List<(TimeSpan At, string Path, int Status, DateOnly? Date, long Offset)> Log { get; } = [];

    public string ServiceAccountJson(RSA? signWith = null, string? tokenUri = null) => new JsonObject
    {
        ["type"] = "service_account",
        ["project_id"] = "test-project",
        ["private_key_id"] = "0123456789abcdef",
        ["private_key"] = (signWith ?? Key).ExportPkcs8PrivateKeyPem(),
        ["client_email"] = ClientEmail,
        ["client_id"] = "100000000000000000001",
        ["token_uri"] = tokenUri ?? TokenUri,
    }.ToJsonString();

    public void Add(DateOnly date, string country, string device, string city, long users, double revenue)
    {
        lock (_gate)
        {
            _rows.Add(new Row(date, country, device, city, new Dictionary<string, double>(StringComparer.Ordinal)
            {
                ["activeUsers"] = users,
                ["sessions"] = users + 3,
                ["totalRevenue"] = revenue,
                ["userEngagementDuration"] = users * 12.5,
                ["bounceRate"] = 0.25,
            }));
        }
    }

    /// <summary>Seeds <paramref name="perDate"/> rows (country × device) for each date from..to.</summary>
    public void Seed(DateOnly from, DateOnly to, int perDate)
    {
        string[] devices = ["desktop", "mobile", "tablet"];
        for (var d = from; d <= to; d = d.AddDays(1))
        {
            for (var i = 0; i < perDate; i++)
            {
                Add(d, "C" + (i / devices.Length).ToString("D3", CultureInfo.InvariantCulture), devices[i % devices.Length], "Paris", 10 + i + d.Day, (i * 1.5) + 0.25);
            }
        }
    }

    public void Update(Func<Row, bool> which, Action<Row> change)
    {
        lock (_gate)
        {
            foreach (var r in _rows.Where(which))
            {
                change(r);
            }
        }
    }

    public int Remove(Func<Row, bool> which)
    {
        lock (_gate)
        {
            return _rows.RemoveAll(r => which(r));
        }
    }

    /// <summary>What a report of (date, country, deviceCategory) with activeUsers should hold: key → activeUsers.</summary>
    public Dictionary<string, long> Expected(string metric = "activeUsers")
    {
        lock (_gate)
        {
            return _rows.GroupBy(r => Key3(r.Date, r.Country, r.Device))
                .ToDictionary(g => g.Key, g => (long)g.Sum(r => r.Metrics[metric]), StringComparer.Ordinal);
        }
    }

    public static string Key3(DateOnly date, string country, string device) => $"{date:yyyy-MM-dd}|{country}|{device}";

    public int RequestsFor(DateOnly date)
    {
        lock (_gate)
        {
            return Log.Count(l => l.Date == date && l.Offset == 0 && l.Status != 429 && l.Status != 500);
        }
    }

    /// <summary>The most API requests that arrived within any one second of the fake's clock.</summary>
    public int MaxRequestsPerSecond()
    {
        lock (_gate)
        {
            var times = Log.Select(l => l.At).Order().ToList();
            var max = 0;
            for (int i = 0, j = 0; i < times.Count; i++)
            {
                while (times[i] - times[j] >= TimeSpan.FromSeconds(1))
                {
                    j++;
                }

                max = Math.Max(max, i - j + 1);
            }

            return max;
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        try
        {
            string body;
            using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }

            var path = ctx.Request.Url!.AbsolutePath;
            if (path == "/token")
            {
                var (status, json) = Token(body);
                await WriteAsync(ctx, status, json);
                return;
            }

            if (Latency > TimeSpan.Zero)
            {
                await Task.Delay(Latency);
            }

            var (code, answer, retryAfter) = Api(ctx.Request.HttpMethod, path, ctx.Request.Headers["Authorization"], body);
            if (retryAfter is { } ra)
            {
                ctx.Response.AddHeader("Retry-After", ra.ToString(CultureInfo.InvariantCulture));
            }

            await WriteAsync(ctx, code, answer);
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException)
        {
        }
    }

    private static async Task WriteAsync(HttpListenerContext ctx, int status, string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=UTF-8";
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes);
        ctx.Response.Close();
    }

    private (int, string) Token(string body)
    {
        lock (_gate)
        {
            TokenRequests++;
        }

        var form = body.Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => Uri.UnescapeDataString(p[0]), p => Uri.UnescapeDataString(p.Length > 1 ? p[1].Replace('+', ' ') : ""), StringComparer.Ordinal);
        if (form.GetValueOrDefault("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || form.GetValueOrDefault("assertion") is not { } jwt)
        {
            return (400, """{"error":"unsupported_grant_type","error_description":"Invalid grant_type."}""");
        }

        var parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            return (400, """{"error":"invalid_grant","error_description":"Invalid JWT."}""");
        }

        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        if (!Key.VerifyData(signed, Base64Url(parts[2]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
        {
            return (400, """{"error":"invalid_grant","error_description":"Invalid JWT Signature."}""");
        }

        var header = JsonNode.Parse(Base64Url(parts[0]))!;
        var claims = JsonNode.Parse(Base64Url(parts[1]))!;
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if ((string?)header["alg"] != "RS256" || (string?)claims["iss"] != ClientEmail || (string?)claims["aud"] != GoogleAudience
            || !((string?)claims["scope"] ?? "").Split(' ').Contains(Scope)
            || (long?)claims["exp"] is not { } exp || exp < now || (long?)claims["iat"] is not { } iat || iat > now + 60 || exp - iat > 3600)
        {
            return (400, new JsonObject { ["error"] = "invalid_grant", ["error_description"] = "Invalid JWT: issuer, audience, scope or times are wrong: " + claims.ToJsonString() }.ToJsonString());
        }

        var token = "ya29.fake-" + Interlocked.Increment(ref _tokenSeq).ToString(CultureInfo.InvariantCulture);
        lock (_gate)
        {
            _validTokens.Add(token);
        }

        return (200, new JsonObject { ["access_token"] = token, ["expires_in"] = 3599, ["token_type"] = "Bearer" }.ToJsonString());
    }

    private static byte[] Base64Url(string s)
    {
        var b = s.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(b.PadRight(b.Length + ((4 - (b.Length % 4)) % 4), '='));
    }

    private (int, string, int?) Api(string method, string path, string? authorization, string body)
    {
        var n = Interlocked.Increment(ref _requests);
        var at = _clock.Elapsed;
        DateOnly? date = null;
        long offset = 0;
        JsonNode? request = null;
        if (method == "POST" && body.Length > 0)
        {
            request = JsonNode.Parse(body);
            var range = request?["dateRanges"]?[0];
            if (range is not null && (string?)range["startDate"] == (string?)range["endDate"] && DateOnly.TryParse((string?)range["startDate"], CultureInfo.InvariantCulture, out var d))
            {
                date = d;
            }

            offset = Long(request?["offset"]);
        }

        var (status, json, retryAfter) = Answer(n, method, path, authorization, request);
        lock (_gate)
        {
            Log.Add((at, path, status, date, offset));
        }

        return (status, json, retryAfter);
    }

    private (int, string, int?) Answer(int n, string method, string path, string? authorization, JsonNode? request)
    {
        lock (_gate)
        {
            if (ExpireTokensAt.Contains(n))
            {
                _validTokens.Clear();
            }

            var token = authorization is { } a && a.StartsWith("Bearer ", StringComparison.Ordinal) ? a[7..] : null;
            if (token is null || !_validTokens.Contains(token))
            {
                Unauthorized++;
                return (401, Error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "UNAUTHENTICATED"), null);
            }
        }

        if (ThrottleAt.Contains(n))
        {
            return (429, Error(429, "Exhausted property tokens per hour. Wait until the next hour to make more requests with this property.", "RESOURCE_EXHAUSTED"), RetryAfterSeconds);
        }

        if (FailAt.Contains(n))
        {
            return (500, Error(500, "Internal error encountered.", "INTERNAL"), null);
        }

        var prefix = "/v1beta/properties/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return (404, Error(404, "Not found.", "NOT_FOUND"), null);
        }

        var rest = path[prefix.Length..];
        var id = rest.Split('/', ':')[0];
        if (id != PropertyId)
        {
            return (403, Error(403, "User does not have sufficient permissions for this property. To learn more about Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.", "PERMISSION_DENIED"), null);
        }

        if (method == "GET" && rest == id + "/metadata")
        {
            return (200, Metadata(), null);
        }

        if (method == "POST" && rest == id + ":runReport" && request is not null)
        {
            return RunReport(request);
        }

        return (404, Error(404, "Method not found.", "NOT_FOUND"), null);
    }

    private static string Metadata() => new JsonObject
    {
        ["name"] = $"properties/{PropertyId}/metadata",
        ["dimensions"] = new JsonArray(AllDimensions.Select(d => (JsonNode)new JsonObject { ["apiName"] = d, ["uiName"] = d, ["description"] = "The " + d + ".", ["category"] = "General" }).ToArray()),
        ["metrics"] = new JsonArray(MetricTypes.Select(m => (JsonNode)new JsonObject { ["apiName"] = m.Key, ["uiName"] = m.Key, ["description"] = "The " + m.Key + ".", ["type"] = m.Value, ["category"] = "General" }).ToArray()),
    }.ToJsonString();

    private (int, string, int?) RunReport(JsonNode request)
    {
        var dims = request["dimensions"]?.AsArray().Select(d => (string)d!["name"]!).ToList() ?? [];
        var metrics = request["metrics"]?.AsArray().Select(m => (string)m!["name"]!).ToList() ?? [];
        if (dims.FirstOrDefault(d => !AllDimensions.Contains(d)) is { } badDim)
        {
            return (400, Error(400, $"Field {badDim} is not a valid dimension. For a list of valid dimensions and metrics, see https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema", "INVALID_ARGUMENT"), null);
        }

        if (metrics.Count == 0 || metrics.FirstOrDefault(m => !MetricTypes.ContainsKey(m)) is { } badMetric)
        {
            return (400, Error(400, $"Field {metrics.FirstOrDefault(m => !MetricTypes.ContainsKey(m)) ?? "metrics"} is not a valid metric.", "INVALID_ARGUMENT"), null);
        }

        var range = request["dateRanges"]![0]!;
        var from = DateOnly.Parse((string)range["startDate"]!, CultureInfo.InvariantCulture);
        var to = DateOnly.Parse((string)range["endDate"]!, CultureInfo.InvariantCulture);
        var offset = Long(request["offset"]);
        var limit = request["limit"] is null ? 10_000 : Long(request["limit"]);
        List<(string[] Dims, double[] Values)> all;
        lock (_gate)
        {
            all = _rows.Where(r => r.Date >= from && r.Date <= to && Matches(request["dimensionFilter"], r))
                .GroupBy(r => string.Join('\u0001', dims.Select(d => Dim(r, d))))
                .Select(g => (dims.Select(d => Dim(g.First(), d)).ToArray(), metrics.Select(m => g.Sum(r => r.Metrics[m])).ToArray()))
                .OrderBy(x => string.Join('\u0001', x.Item1), StringComparer.Ordinal)
                .ToList();
        }

        var page = all.Skip((int)offset).Take((int)limit).ToList();
        var answer = new JsonObject
        {
            ["dimensionHeaders"] = new JsonArray(dims.Select(d => (JsonNode)new JsonObject { ["name"] = d }).ToArray()),
            ["metricHeaders"] = new JsonArray(metrics.Select(m => (JsonNode)new JsonObject { ["name"] = m, ["type"] = MetricTypes[m] }).ToArray()),
        };
        if (page.Count > 0)
        {
            answer["rows"] = new JsonArray(page.Select(r => (JsonNode)new JsonObject
            {
                ["dimensionValues"] = new JsonArray(r.Dims.Select(v => (JsonNode)new JsonObject { ["value"] = v }).ToArray()),
                ["metricValues"] = new JsonArray(r.Values.Select((v, i) => (JsonNode)new JsonObject { ["value"] = Format(v, MetricTypes[metrics[i]]) }).ToArray()),
            }).ToArray());
        }

        if (all.Count > 0)
        {
            answer["rowCount"] = all.Count;
        }

        answer["metadata"] = new JsonObject { ["currencyCode"] = "USD", ["timeZone"] = "Etc/UTC" };
        if ((bool?)request["returnPropertyQuota"] == true)
        {
            long remaining;
            lock (_gate)
            {
                TokensPerHour = Math.Max(0, TokensPerHour - TokenCost);
                remaining = TokensPerHour;
            }

            answer["propertyQuota"] = new JsonObject
            {
                ["tokensPerDay"] = Quota(TokenCost, 200_000),
                ["tokensPerHour"] = Quota(TokenCost, remaining),
                ["concurrentRequests"] = Quota(0, 10),
                ["serverErrorsPerProjectPerHour"] = Quota(0, 10),
                ["potentiallyThresholdedRequestsPerHour"] = Quota(0, 120),
                ["tokensPerProjectPerHour"] = Quota(TokenCost, 14_000),
            };
        }

        answer["kind"] = "analyticsData#runReport";
        return (200, answer.ToJsonString(), null);
    }

    private static JsonObject Quota(long consumed, long remaining) => new() { ["consumed"] = consumed, ["remaining"] = remaining };

    private static string Format(double v, string type) =>
        type == "TYPE_INTEGER" ? ((long)v).ToString(CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture);

    private static string Dim(Row r, string d) => d switch
    {
        "date" => r.Date.ToString("yyyyMMdd", CultureInfo.InvariantCulture),
        "country" => r.Country,
        "deviceCategory" => r.Device,
        "city" => r.City,
        _ => throw new InvalidOperationException(d),
    };

    private static bool Matches(JsonNode? filter, Row r)
    {
        if (filter?["filter"] is not { } f)
        {
            return true;
        }

        var value = Dim(r, (string)f["fieldName"]!);
        if (f["stringFilter"] is { } s)
        {
            return value == (string?)s["value"];
        }

        return f["inListFilter"] is not { } list || list["values"]!.AsArray().Any(v => (string?)v == value);
    }

    private static long Long(JsonNode? n) => n switch
    {
        null => 0,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<string>(out var s) => long.Parse(s, CultureInfo.InvariantCulture),
        _ => 0,
    };

    private static string Error(int code, string message, string status) =>
        new JsonObject { ["error"] = new JsonObject { ["code"] = code, ["message"] = message, ["status"] = status } }.ToJsonString();

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }
}
