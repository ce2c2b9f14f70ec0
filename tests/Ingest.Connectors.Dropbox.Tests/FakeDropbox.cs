using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Testing;

namespace Ingest.Connectors.Dropbox.Tests;

/// <summary>
/// A stateful in-process fake of the Dropbox API v2 routes the connector uses, on a loopback port:
/// <c>oauth2/token</c> (refresh-token grant), <c>files/list_folder</c> and <c>/continue</c> (paged, recursive,
/// deleted entries, cursors over a change log, <c>reset</c> when cursors are invalidated), and
/// <c>files/download</c> by path or <c>rev:</c>. Tokens expire on demand; routes can be throttled with 429.
/// </summary>
internal sealed class FakeDropbox : IDisposable
{
    public const string RefreshToken = "refresh-abc";
    public const string AppKey = "key";
    public const string AppSecret = "secret";

    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly Dictionary<string, (string Display, string Rev, DateTime Modified)> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _revisions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<JsonObject>> _history = new(StringComparer.Ordinal);
    private readonly List<(long Seq, JsonObject Entry)> _log = [];
    private readonly HashSet<string> _tokens = [];
    private readonly Dictionary<string, (int Times, int RetryAfter)> _throttles = new(StringComparer.Ordinal);
    private long _seq;
    private int _epoch;
    private int _tokenCount;
    private int _revCount;

    public FakeDropbox(int pageSize = 2)
    {
        PageSize = pageSize;
        BaseUrl = Loopback.Start(_listener) + "/";
        _loop = Task.Run(LoopAsync);
    }

    public string BaseUrl { get; }

    public int PageSize { get; }

    /// <summary>Calls per route (e.g. <c>files/list_folder</c>), 429s included.</summary>
    public Dictionary<string, int> Calls { get; } = new(StringComparer.Ordinal);

    /// <summary>Paths downloaded, in order.</summary>
    public List<string> Downloads { get; } = [];

    public int TokensIssued => _tokenCount;

    public int Throttled { get; private set; }

    public void Put(string path, string content, DateTime? modified = null)
    {
        lock (_gate)
        {
            var lower = path.ToLowerInvariant();
            var rev = (++_revCount).ToString("x9", CultureInfo.InvariantCulture);
            var when = modified ?? DateTime.UtcNow.AddSeconds(-1);
            when = new DateTime(when.Ticks - (when.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
            _files[lower] = (path, rev, when);
            _revisions[rev] = Encoding.UTF8.GetBytes(content);
            var entry = FileEntry(lower);
            _log.Add((++_seq, entry));
            if (!_history.TryGetValue(lower, out var revs))
            {
                _history[lower] = revs = [];
            }

            revs.Insert(0, (JsonObject)entry.DeepClone());
        }
    }

    public void Delete(string path)
    {
        lock (_gate)
        {
            var lower = path.ToLowerInvariant();
            _files.Remove(lower);
            _log.Add((++_seq, new JsonObject { [".tag"] = "deleted", ["name"] = path[(path.LastIndexOf('/') + 1)..], ["path_lower"] = lower, ["path_display"] = path }));
        }
    }

    /// <summary>Invalidates every cursor issued so far: continuing from one answers 409 <c>reset</c>.</summary>
    public void ResetCursors()
    {
        lock (_gate)
        {
            _epoch++;
        }
    }

    /// <summary>Every access token stops working (401 <c>expired_access_token</c>).</summary>
    public void ExpireTokens()
    {
        lock (_gate)
        {
            _tokens.Clear();
        }
    }

    /// <summary>The next <paramref name="times"/> calls of <paramref name="route"/> answer 429 with Retry-After.</summary>
    public void Throttle(string route, int times, int retryAfterSeconds)
    {
        lock (_gate)
        {
            _throttles[route] = (times, retryAfterSeconds);
        }
    }

    private JsonObject FileEntry(string lower)
    {
        var f = _files[lower];
        return new JsonObject
        {
            [".tag"] = "file",
            ["name"] = f.Display[(f.Display.LastIndexOf('/') + 1)..],
            ["path_lower"] = lower,
            ["path_display"] = f.Display,
            ["id"] = "id:" + lower.GetHashCode(StringComparison.Ordinal).ToString("x", CultureInfo.InvariantCulture),
            ["client_modified"] = f.Modified.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["server_modified"] = f.Modified.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["rev"] = f.Rev,
            ["size"] = _revisions[f.Rev].Length,
            ["is_downloadable"] = true,
        };
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
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
            var route = ctx.Request.Url!.AbsolutePath.TrimStart('/');
            route = route.StartsWith("2/", StringComparison.Ordinal) ? route[2..] : route;
            string body;
            using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }

            var (status, json, bytes, headers) = Handle(route, body, ctx.Request.Headers);
            ctx.Response.StatusCode = status;
            foreach (var (k, v) in headers)
            {
                ctx.Response.Headers[k] = v;
            }

            var payload = bytes ?? Encoding.UTF8.GetBytes(json!.ToJsonString());
            ctx.Response.ContentType = bytes is null ? "application/json" : "application/octet-stream";
            ctx.Response.ContentLength64 = payload.Length;
            await ctx.Response.OutputStream.WriteAsync(payload);
            ctx.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
        }
    }

    private static (int, JsonNode?, byte[]?, Dictionary<string, string>) Json(int status, JsonNode json) => (status, json, null, []);

    private static JsonObject Error(string summary, JsonObject error) => new() { ["error_summary"] = summary, ["error"] = error };

    private (int Status, JsonNode? Json, byte[]? Bytes, Dictionary<string, string> Headers) Handle(string route, string body, System.Collections.Specialized.NameValueCollection headers)
    {
        lock (_gate)
        {
            Calls[route] = Calls.GetValueOrDefault(route) + 1;
            if (route == "oauth2/token")
            {
                var form = body.Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => Uri.UnescapeDataString(p[0]), p => Uri.UnescapeDataString(p.Length > 1 ? p[1].Replace('+', ' ') : ""));
                if (form.GetValueOrDefault("grant_type") != "refresh_token" || form.GetValueOrDefault("refresh_token") != RefreshToken
                    || form.GetValueOrDefault("client_id") != AppKey || form.GetValueOrDefault("client_secret") != AppSecret)
                {
                    return Json(400, new JsonObject { ["error"] = "invalid_grant", ["error_description"] = "refresh token is malformed" });
                }

                var token = "tok-" + (++_tokenCount).ToString(CultureInfo.InvariantCulture);
                _tokens.Add(token);
                return Json(200, new JsonObject { ["access_token"] = token, ["token_type"] = "bearer", ["expires_in"] = 14400 });
            }

            var auth = headers["Authorization"] ?? "";
            var bearer = auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : "";
            if (!_tokens.Contains(bearer))
            {
                return bearer.StartsWith("tok-", StringComparison.Ordinal)
                    ? Json(401, Error("expired_access_token/", new JsonObject { [".tag"] = "expired_access_token" }))
                    : Json(401, Error("invalid_access_token/", new JsonObject { [".tag"] = "invalid_access_token" }));
            }

            if (_throttles.TryGetValue(route, out var t) && t.Times > 0)
            {
                _throttles[route] = (t.Times - 1, t.RetryAfter);
                Throttled++;
                var e = Error("too_many_requests/", new JsonObject { ["reason"] = new JsonObject { [".tag"] = "too_many_requests" }, ["retry_after"] = t.RetryAfter });
                return (429, e, null, new Dictionary<string, string> { ["Retry-After"] = t.RetryAfter.ToString(CultureInfo.InvariantCulture) });
            }

            switch (route)
            {
                case "files/list_folder":
                {
                    var args = JsonNode.Parse(body)!;
                    var root = (args["path"]?.GetValue<string>() ?? "").ToLowerInvariant();
                    if (args["recursive"]?.GetValue<bool>() != true)
                    {
                        return Json(400, new JsonObject { ["error"] = "the fake only supports recursive listings" });
                    }

                    if (root.Length > 0 && !_files.Keys.Any(k => k.StartsWith(root + "/", StringComparison.Ordinal)))
                    {
                        return Json(409, Error("path/not_found/..", new JsonObject { [".tag"] = "path", ["path"] = new JsonObject { [".tag"] = "not_found" } }));
                    }

                    return SnapshotPage(root, _seq, 0);
                }

                case "files/list_folder/continue":
                {
                    var cursor = JsonNode.Parse(body)!["cursor"]!.GetValue<string>();
                    var parts = cursor.Split(':');
                    if (int.Parse(parts[1], CultureInfo.InvariantCulture) != _epoch)
                    {
                        return Json(409, Error("reset/...", new JsonObject { [".tag"] = "reset" }));
                    }

                    if (parts[0] == "s")
                    {
                        return SnapshotPage(Uri.UnescapeDataString(parts[4]), long.Parse(parts[2], CultureInfo.InvariantCulture), int.Parse(parts[3], CultureInfo.InvariantCulture));
                    }

                    var after = long.Parse(parts[2], CultureInfo.InvariantCulture);
                    var root = Uri.UnescapeDataString(parts[3]);
                    var changes = _log.Where(c => c.Seq > after && c.Entry["path_lower"]!.GetValue<string>().StartsWith(root + "/", StringComparison.Ordinal)).Take(PageSize).ToList();
                    var last = changes.Count > 0 ? changes[^1].Seq : Math.Max(after, _log.Where(c => c.Seq > after).Select(c => c.Seq).DefaultIfEmpty(after).Max());
                    var more = _log.Any(c => c.Seq > last && c.Entry["path_lower"]!.GetValue<string>().StartsWith(root + "/", StringComparison.Ordinal));
                    return Json(200, new JsonObject
                    {
                        ["entries"] = new JsonArray(changes.Select(c => (JsonNode)c.Entry.DeepClone()).ToArray()),
                        ["cursor"] = $"c:{_epoch}:{last}:{Uri.EscapeDataString(root)}",
                        ["has_more"] = more,
                    });
                }

                case "files/list_revisions":
                {
                    var path = (JsonNode.Parse(body)!["path"]?.GetValue<string>() ?? "").ToLowerInvariant();
                    if (!_history.TryGetValue(path, out var revs))
                    {
                        return Json(409, Error("path/not_found/", new JsonObject { [".tag"] = "path", ["path"] = new JsonObject { [".tag"] = "not_found" } }));
                    }

                    return Json(200, new JsonObject
                    {
                        ["is_deleted"] = !_files.ContainsKey(path),
                        ["entries"] = new JsonArray(revs.Take(1).Select(r => (JsonNode)r.DeepClone()).ToArray()),
                    });
                }

                case "files/download":
                {
                    var arg = JsonNode.Parse(headers["Dropbox-API-Arg"] ?? "{}")!["path"]?.GetValue<string>() ?? "";
                    byte[]? content = null;
                    if (arg.StartsWith("rev:", StringComparison.Ordinal))
                    {
                        _revisions.TryGetValue(arg[4..], out content);
                    }
                    else if (_files.TryGetValue(arg.ToLowerInvariant(), out var f))
                    {
                        content = _revisions[f.Rev];
                    }

                    if (content is null)
                    {
                        return Json(409, Error("path/not_found/", new JsonObject { [".tag"] = "path", ["path"] = new JsonObject { [".tag"] = "not_found" } }));
                    }

                    Downloads.Add(arg);
                    return (200, null, content, new Dictionary<string, string> { ["Dropbox-API-Result"] = "{}" });
                }

                default:
                    return Json(404, new JsonObject { ["error"] = "unknown route " + route });
            }
        }
    }

    private (int, JsonNode?, byte[]?, Dictionary<string, string>) SnapshotPage(string root, long seq, int offset)
    {
        var all = _files.Keys.Where(k => k.StartsWith(root + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var page = all.Skip(offset).Take(PageSize).ToList();
        var more = offset + page.Count < all.Count;
        var cursor = more
            ? $"s:{_epoch}:{seq}:{offset + page.Count}:{Uri.EscapeDataString(root)}"
            : $"c:{_epoch}:{seq}:{Uri.EscapeDataString(root)}";
        return Json(200, new JsonObject
        {
            ["entries"] = new JsonArray(page.Select(k => (JsonNode)FileEntry(k)).ToArray()),
            ["cursor"] = cursor,
            ["has_more"] = more,
        });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
    }
}
