using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Ingest.Testing;

namespace Ingest.Connectors.MailChimp.Tests;

/// <summary>
/// A stateful in-process fake of MailChimp's Marketing API 3.0 on a loopback port, under <c>/3.0/</c>: <c>ping</c>,
/// <c>lists</c>, <c>lists/{id}/members</c> (with <c>since_last_changed</c>/<c>before_last_changed</c>, both exclusive, and
/// <c>sort_field=last_changed</c>), <c>campaigns</c>, <c>reports</c>, <c>reports/{id}/unsubscribed</c>; <c>count</c>/<c>offset</c>
/// paging with <c>total_items</c>; Basic auth with the key as password (401 problem+json otherwise); MailChimp's limit of
/// 10 simultaneous connections (429 beyond); scheduled 429s with Retry-After, throttling 403s, 500s and plain 403s;
/// its own clock (sent in the Date header, advanced by tests) stamping <c>last_changed</c>; and a log of every request.
/// </summary>
internal sealed class FakeMailChimp : IDisposable
{
    public const string ApiKey = "0123456789abcdef0123456789abcdef-us6";

    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly List<JsonObject> _lists = [];
    private readonly Dictionary<string, List<Member>> _members = new(StringComparer.Ordinal);
    private readonly List<JsonObject> _campaigns = [];
    private readonly Dictionary<string, JsonObject> _reports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<JsonObject>> _unsubscribes = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _skew;
    private long _seq;
    private int _requests;
    private int _inFlight;
    private int _maxInFlight;

    public FakeMailChimp()
    {
        BaseUrl = Loopback.Start(_listener) + "/3.0";
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The apiBase to configure.</summary>
    public string BaseUrl { get; }

    /// <summary>Requests numbered (1-based) here get a 429 "Too Many Requests" with <see cref="RetryAfterSeconds"/>.</summary>
    public HashSet<int> ThrottleAt { get; } = [];

    /// <summary>Requests numbered here get a 403 whose title says the caller is throttled.</summary>
    public HashSet<int> Throttle403At { get; } = [];

    /// <summary>Requests numbered here get a 500.</summary>
    public HashSet<int> FailAt { get; } = [];

    /// <summary>Paths (after /3.0/) answered with a plain 403: the user may not read them.</summary>
    public HashSet<string> ForbiddenPaths { get; } = new(StringComparer.Ordinal);

    public int RetryAfterSeconds { get; set; } = 1;

    /// <summary>Awaited with the path (after /3.0/) before a request is answered: tests hold answers here.</summary>
    public Func<string, Task>? Gate { get; set; }

    /// <summary>How long each answer takes.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Called (outside the fake's lock) with request number n once its answer is ready and before it is sent: tests change data mid-read here.</summary>
    public Action<int>? AfterRequest { get; set; }

    /// <summary>The fake's clock: real time, moved forward by <see cref="Advance"/> (so tests need not wait for seconds to pass).</summary>
    public DateTimeOffset Now
    {
        get
        {
            lock (_gate)
            {
                return DateTimeOffset.UtcNow + _skew;
            }
        }
    }

    /// <summary>The most requests that were in flight at once.</summary>
    public int MaxConcurrency => Volatile.Read(ref _maxInFlight);

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>
    /// Waits until no request is being served and none has arrived for <paramref name="quiet"/>: requests a stopped
    /// reader sent just before it cancelled can still reach the server after the reader is gone.
    /// </summary>
    public async Task WaitQuietAsync(TimeSpan quiet)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var seen = Requests;
        var since = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            if (Requests != seen || Volatile.Read(ref _inFlight) > 0)
            {
                seen = Requests;
                since = DateTime.UtcNow;
            }
            else if (DateTime.UtcNow - since >= quiet)
            {
                return;
            }
        }

        throw new TimeoutException("The fake MailChimp kept receiving requests after the reader stopped.");
    }

    /// <summary>Each request: when it arrived (fake's stopwatch), its path after /3.0/, status and the number of records answered.</summary>
    public List<(TimeSpan At, string Path, int Status, int Items)> Log { get; } = [];

    public List<(TimeSpan At, string Path, int Status, int Items)> LogSnapshot()
    {
        lock (_gate)
        {
            return [.. Log];
        }
    }

    /// <summary>Records served for paths matching <paramref name="match"/> (e.g. members of any list).</summary>
    public int Served(Func<string, bool> match) => LogSnapshot().Where(l => match(l.Path) && l.Status == 200).Sum(l => l.Items);

    public static bool IsMembers(string path) => path.StartsWith("lists/", StringComparison.Ordinal) && path.EndsWith("/members", StringComparison.Ordinal);

    /// <summary>The most requests that arrived within any one second.</summary>
    public int MaxRequestsPerSecond()
    {
        var times = LogSnapshot().Select(l => l.At).Order().ToList();
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

    /// <summary>Moves the fake's clock forward (time passes at MailChimp between runs).</summary>
    public void Advance(TimeSpan by)
    {
        lock (_gate)
        {
            _skew += by;
        }
    }

    public string AddList(string name)
    {
        lock (_gate)
        {
            var n = ++_seq;
            var id = n.ToString("x10", CultureInfo.InvariantCulture);
            _lists.Add(new JsonObject
            {
                ["id"] = id,
                ["web_id"] = 1000 + n,
                ["name"] = name,
                ["contact"] = new JsonObject { ["company"] = "Acme", ["address1"] = "1 Main St", ["address2"] = "", ["city"] = "Atlanta", ["state"] = "GA", ["zip"] = "30308", ["country"] = "US", ["phone"] = "" },
                ["permission_reminder"] = "You signed up on our site.",
                ["use_archive_bar"] = true,
                ["campaign_defaults"] = new JsonObject { ["from_name"] = "Acme", ["from_email"] = "news@acme.test", ["subject"] = "", ["language"] = "en" },
                ["notify_on_subscribe"] = "",
                ["notify_on_unsubscribe"] = "",
                ["date_created"] = Iso(DateTimeOffset.UtcNow + _skew),
                ["list_rating"] = 3,
                ["email_type_option"] = false,
                ["subscribe_url_short"] = $"http://eepurl.com/{id}",
                ["subscribe_url_long"] = $"https://acme.us6.list-manage.com/subscribe?u=abc&id={id}",
                ["beamer_address"] = $"us6-{id}@inbound.mailchimp.com",
                ["visibility"] = "pub",
                ["double_optin"] = false,
                ["has_welcome"] = false,
                ["marketing_permissions"] = false,
                ["stats"] = new JsonObject
                {
                    ["member_count"] = 0, ["unsubscribe_count"] = 0, ["cleaned_count"] = 0, ["campaign_count"] = 0, ["campaign_last_sent"] = "",
                    ["merge_field_count"] = 4, ["avg_sub_rate"] = 0, ["avg_unsub_rate"] = 0, ["open_rate"] = 0, ["click_rate"] = 0.5, ["last_sub_date"] = "", ["last_unsub_date"] = "",
                },
                ["_links"] = new JsonArray(),
            });
            _members[id] = [];
            return id;
        }
    }

    public void RenameList(string listId, string name)
    {
        lock (_gate)
        {
            _lists.Single(l => (string)l["id"]! == listId)["name"] = name;
        }
    }

    public void DeleteList(string listId)
    {
        lock (_gate)
        {
            _lists.RemoveAll(l => (string)l["id"]! == listId);
            _members.Remove(listId);
        }
    }

    /// <summary>Subscribes an address (its id is the MD5 of the lower-case address, as MailChimp's subscriber hash).</summary>
    public string AddMember(string listId, string email, string status = "subscribed")
    {
        lock (_gate)
        {
            var n = ++_seq;
#pragma warning disable CA5351 // MailChimp's subscriber hash is MD5: an identifier, not security.
            var id = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(email.ToLowerInvariant())));
#pragma warning restore CA5351
            var now = Iso(DateTimeOffset.UtcNow + _skew);
            var json = new JsonObject
            {
                ["id"] = id,
                ["email_address"] = email,
                ["unique_email_id"] = $"u{n:x8}",
                ["contact_id"] = $"c{n:x12}",
                ["full_name"] = $"Person {n}",
                ["web_id"] = 5000 + n,
                ["email_type"] = "html",
                ["status"] = status,
                ["consents_to_one_to_one_messaging"] = true,
                ["merge_fields"] = new JsonObject
                {
                    ["FNAME"] = "Person",
                    ["LNAME"] = n.ToString(CultureInfo.InvariantCulture),
                    ["ADDRESS"] = n % 2 == 0 ? new JsonObject { ["addr1"] = $"{n} Elm St", ["city"] = "Atlanta", ["state"] = "GA", ["zip"] = "30308", ["country"] = "US" } : "",
                    ["PHONE"] = "",
                },
                ["interests"] = new JsonObject { ["9143cf3bd1"] = n % 3 == 0, ["3a2a927344"] = true },
                ["stats"] = new JsonObject { ["avg_open_rate"] = 0.25, ["avg_click_rate"] = 0.1 },
                ["ip_signup"] = "",
                ["timestamp_signup"] = "",
                ["ip_opt"] = "198.2.191.34",
                ["timestamp_opt"] = now,
                ["member_rating"] = 2,
                ["last_changed"] = now,
                ["language"] = "",
                ["vip"] = false,
                ["email_client"] = "",
                ["location"] = new JsonObject { ["latitude"] = 33.7, ["longitude"] = -84.4, ["gmtoff"] = -5, ["dstoff"] = -4, ["country_code"] = "US", ["timezone"] = "America/New_York", ["region"] = "GA" },
                ["source"] = "API - Generic",
                ["tags_count"] = 1,
                ["tags"] = new JsonArray(new JsonObject { ["id"] = 17, ["name"] = "newsletter" }),
                ["list_id"] = listId,
                ["_links"] = new JsonArray(),
            };
            _members[listId].Add(new Member(n, json));
            return id;
        }
    }

    /// <summary>Changes a member; its last_changed becomes now.</summary>
    public void UpdateMember(string listId, string id, Action<JsonObject> change)
    {
        lock (_gate)
        {
            var m = _members[listId].Single(x => (string)x.Json["id"]! == id);
            change(m.Json);
            m.Json["last_changed"] = Iso(DateTimeOffset.UtcNow + _skew);
        }
    }

    /// <summary>DELETE /lists/{id}/members/{hash}: MailChimp archives the member (it stays, with status archived).</summary>
    public void ArchiveMember(string listId, string id) => UpdateMember(listId, id, m => m["status"] = "archived");

    /// <summary>Every member of every list: (list id, member id) to its JSON.</summary>
    public Dictionary<(string ListId, string Id), JsonObject> Members()
    {
        lock (_gate)
        {
            return _members.SelectMany(kv => kv.Value.Select(m => (kv.Key, m))).ToDictionary(x => (x.Key, (string)x.m.Json["id"]!), x => (JsonObject)x.m.Json.DeepClone());
        }
    }

    public Dictionary<string, JsonObject> Lists()
    {
        lock (_gate)
        {
            return _lists.ToDictionary(l => (string)l["id"]!, l => (JsonObject)l.DeepClone());
        }
    }

    public string AddCampaign(string listId, string title)
    {
        lock (_gate)
        {
            var n = ++_seq;
            var id = $"cmp{n:x7}";
            _campaigns.Add(new JsonObject
            {
                ["id"] = id,
                ["web_id"] = 9000 + n,
                ["type"] = "regular",
                ["create_time"] = Iso(DateTimeOffset.UtcNow + _skew),
                ["archive_url"] = $"http://eepurl.com/{id}",
                ["long_archive_url"] = $"https://us6.campaign-archive.com/?u=abc&id={id}",
                ["status"] = "save",
                ["emails_sent"] = 0,
                ["send_time"] = "",
                ["content_type"] = "template",
                ["needs_block_refresh"] = false,
                ["resendable"] = false,
                ["recipients"] = new JsonObject { ["list_id"] = listId, ["list_is_active"] = true, ["list_name"] = "List", ["segment_text"] = "", ["recipient_count"] = 0 },
                ["settings"] = new JsonObject { ["subject_line"] = $"Subject {title}", ["preview_text"] = "", ["title"] = title, ["from_name"] = "Acme", ["reply_to"] = "news@acme.test", ["use_conversation"] = false, ["to_name"] = "", ["folder_id"] = "", ["authenticate"] = true, ["auto_footer"] = false, ["inline_css"] = false, ["auto_tweet"] = false, ["fb_comments"] = false, ["timewarp"] = false, ["template_id"] = 12, ["drag_and_drop"] = true },
                ["tracking"] = new JsonObject { ["opens"] = true, ["html_clicks"] = true, ["text_clicks"] = false, ["goal_tracking"] = false, ["ecomm360"] = false, ["google_analytics"] = "", ["clicktale"] = "" },
                ["_links"] = new JsonArray(),
            });
            return id;
        }
    }

    /// <summary>Sends a campaign: its status becomes sent and its report appears.</summary>
    public void SendCampaign(string id, int emailsSent)
    {
        lock (_gate)
        {
            var c = _campaigns.Single(x => (string)x["id"]! == id);
            var now = Iso(DateTimeOffset.UtcNow + _skew);
            c["status"] = "sent";
            c["emails_sent"] = emailsSent;
            c["send_time"] = now;
            c["report_summary"] = new JsonObject { ["opens"] = 0, ["unique_opens"] = 0, ["open_rate"] = 0, ["clicks"] = 0, ["subscriber_clicks"] = 0, ["click_rate"] = 0 };
            _reports[id] = new JsonObject
            {
                ["id"] = id,
                ["campaign_title"] = c["settings"]!["title"]!.DeepClone(),
                ["type"] = "regular",
                ["list_id"] = c["recipients"]!["list_id"]!.DeepClone(),
                ["list_is_active"] = true,
                ["list_name"] = "List",
                ["subject_line"] = c["settings"]!["subject_line"]!.DeepClone(),
                ["preview_text"] = "",
                ["emails_sent"] = emailsSent,
                ["abuse_reports"] = 0,
                ["unsubscribed"] = 0,
                ["send_time"] = now,
                ["bounces"] = new JsonObject { ["hard_bounces"] = 1, ["soft_bounces"] = 2, ["syntax_errors"] = 0 },
                ["forwards"] = new JsonObject { ["forwards_count"] = 0, ["forwards_opens"] = 0 },
                ["opens"] = new JsonObject { ["opens_total"] = 0, ["unique_opens"] = 0, ["open_rate"] = 0, ["last_open"] = "" },
                ["clicks"] = new JsonObject { ["clicks_total"] = 0, ["unique_clicks"] = 0, ["unique_subscriber_clicks"] = 0, ["click_rate"] = 0, ["last_click"] = "" },
                ["list_stats"] = new JsonObject { ["sub_rate"] = 0, ["unsub_rate"] = 0, ["open_rate"] = 0, ["click_rate"] = 0 },
                ["_links"] = new JsonArray(),
            };
            _unsubscribes[id] = [];
        }
    }

    /// <summary>Some recipients opened the campaign: its report's figures change.</summary>
    public void Opened(string campaignId, int opens)
    {
        lock (_gate)
        {
            var r = _reports[campaignId];
            var o = (JsonObject)r["opens"]!;
            o["opens_total"] = (int)o["opens_total"]! + opens;
            o["unique_opens"] = (int)o["unique_opens"]! + opens;
            o["open_rate"] = (double)(int)o["unique_opens"]! / Math.Max(1, (int)r["emails_sent"]!);
            o["last_open"] = Iso(DateTimeOffset.UtcNow + _skew);
        }
    }

    /// <summary>A member unsubscribes through a campaign: an unsubscribe record, the report's count, and the member's status.</summary>
    public void Unsubscribe(string campaignId, string listId, string memberId, string reason)
    {
        lock (_gate)
        {
            var m = _members[listId].Single(x => (string)x.Json["id"]! == memberId).Json;
            var now = Iso(DateTimeOffset.UtcNow + _skew);
            m["status"] = "unsubscribed";
            m["unsubscribe_reason"] = reason;
            m["last_changed"] = now;
            _unsubscribes[campaignId].Add(new JsonObject
            {
                ["email_id"] = memberId,
                ["email_address"] = m["email_address"]!.DeepClone(),
                ["merge_fields"] = m["merge_fields"]!.DeepClone(),
                ["vip"] = false,
                ["timestamp"] = now,
                ["reason"] = reason,
                ["campaign_id"] = campaignId,
                ["list_id"] = listId,
                ["list_is_active"] = true,
                ["_links"] = new JsonArray(),
            });
            _reports[campaignId]["unsubscribed"] = _unsubscribes[campaignId].Count;
        }
    }

    public Dictionary<string, JsonObject> Campaigns()
    {
        lock (_gate)
        {
            return _campaigns.ToDictionary(c => (string)c["id"]!, c => (JsonObject)c.DeepClone());
        }
    }

    public Dictionary<string, JsonObject> Reports()
    {
        lock (_gate)
        {
            return _reports.ToDictionary(kv => kv.Key, kv => (JsonObject)kv.Value.DeepClone());
        }
    }

    /// <summary>Every unsubscribe: (campaign id, email id) to its JSON.</summary>
    public Dictionary<(string CampaignId, string EmailId), JsonObject> Unsubscribes()
    {
        lock (_gate)
        {
            return _unsubscribes.SelectMany(kv => kv.Value).ToDictionary(u => ((string)u["campaign_id"]!, (string)u["email_id"]!), u => (JsonObject)u.DeepClone());
        }
    }

    private static string Iso(DateTimeOffset t) => t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", CultureInfo.InvariantCulture);

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
        // Stamped on arrival, before the simulated latency, so the log shows the client's pacing.
        var arrived = _clock.Elapsed;
        var inFlight = Interlocked.Increment(ref _inFlight);
        int max;
        while (inFlight > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, inFlight, max) != max)
        {
        }

        var counted = 1;
        try
        {
            if (Latency > TimeSpan.Zero)
            {
                await Task.Delay(Latency);
            }

            if (Gate is { } gate)
            {
                var path = ctx.Request.Url!.AbsolutePath;
                await gate(path.StartsWith("/3.0/", StringComparison.Ordinal) ? path[5..] : path);
            }

            var (n, answer) = Handle(ctx.Request, inFlight, arrived);
            // Before the answer leaves, so that a change made here is in place for the client's next request.
            AfterRequest?.Invoke(n);
            ctx.Response.StatusCode = answer.Status;
            ctx.Response.ContentType = answer.Status == 200 ? "application/json; charset=utf-8" : "application/problem+json; charset=utf-8";
            ctx.Response.Headers.Set("Date", Now.ToString("R", CultureInfo.InvariantCulture));
            if (answer.RetryAfter is not null)
            {
                ctx.Response.Headers["Retry-After"] = answer.RetryAfter;
            }

            var bytes = Encoding.UTF8.GetBytes(answer.Body);
            // Answered: from here the client may send its next request on this connection.
            if (Interlocked.Exchange(ref counted, 0) == 1)
            {
                Interlocked.Decrement(ref _inFlight);
            }

            ctx.Response.ContentLength64 = bytes.Length;
            await ctx.Response.OutputStream.WriteAsync(bytes);
            ctx.Response.Close();
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (HttpListenerException)
        {
        }
        finally
        {
            if (counted == 1)
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }
    }

    private (int N, (int Status, string Body, string? RetryAfter) Answer) Handle(HttpListenerRequest request, int inFlight, TimeSpan arrived)
    {
        var n = Interlocked.Increment(ref _requests);
        var path = request.Url!.AbsolutePath;
        path = path.StartsWith("/3.0/", StringComparison.Ordinal) ? path[5..] : path;
        var (status, body, retryAfter, items) = Route(n, request, path, inFlight);
        lock (_gate)
        {
            Log.Add((arrived, path, status, items));
        }

        return (n, (status, body, retryAfter));
    }

    private (int, string, string?, int) Route(int n, HttpListenerRequest request, string path, int inFlight)
    {
        var auth = request.Headers["Authorization"];
        if (auth is null || !auth.StartsWith("Basic ", StringComparison.Ordinal) || !Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..])).EndsWith(":" + ApiKey, StringComparison.Ordinal))
        {
            return (401, Problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter."), null, 0);
        }

        if (inFlight > 10)
        {
            return (429, Problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."), "1", 0);
        }

        if (ThrottleAt.Contains(n))
        {
            return (429, Problem(429, "Too Many Requests", "You have made too many requests recently."), RetryAfterSeconds.ToString(CultureInfo.InvariantCulture), 0);
        }

        if (Throttle403At.Contains(n))
        {
            return (403, Problem(403, "Too Many Requests", "You have been throttled: too many requests."), null, 0);
        }

        if (FailAt.Contains(n))
        {
            return (500, Problem(500, "Internal Server Error", "An unexpected internal error has occurred."), null, 0);
        }

        if (ForbiddenPaths.Contains(path))
        {
            return (403, Problem(403, "Forbidden", "You don't have permission to access this resource."), null, 0);
        }

        var q = request.QueryString;
        var count = Math.Min(1000, int.Parse(q["count"] ?? "10", CultureInfo.InvariantCulture));
        var offset = int.Parse(q["offset"] ?? "0", CultureInfo.InvariantCulture);
        var parts = path.Split('/');
        lock (_gate)
        {
            switch (parts)
            {
                case ["ping"]:
                    return (200, new JsonObject { ["health_status"] = "Everything's Chimpy!" }.ToJsonString(), null, 0);
                case ["lists"]:
                    return Collection("lists", _lists, count, offset);
                case ["lists", var listId, "members"]:
                    if (!_members.TryGetValue(listId, out var members))
                    {
                        return (404, Problem(404, "Resource Not Found", "The requested resource could not be found."), null, 0);
                    }

                    IEnumerable<Member> selected = members;
                    if (q["since_last_changed"] is { } since)
                    {
                        var s = DateTimeOffset.Parse(since, CultureInfo.InvariantCulture);
                        selected = selected.Where(m => LastChanged(m) > s);
                    }

                    if (q["before_last_changed"] is { } before)
                    {
                        var b = DateTimeOffset.Parse(before, CultureInfo.InvariantCulture);
                        selected = selected.Where(m => LastChanged(m) < b);
                    }

                    selected = q["sort_field"] == "last_changed"
                        ? (q["sort_dir"] == "DESC" ? selected.OrderByDescending(LastChanged) : selected.OrderBy(LastChanged)).ThenBy(m => m.Seq)
                        : selected.OrderBy(m => m.Seq);
                    var (st, body, _, items) = Collection("members", selected.Select(m => m.Json).ToList(), count, offset);
                    var json = JsonNode.Parse(body)!.AsObject();
                    json["list_id"] = listId;
                    return (st, json.ToJsonString(), null, items);
                case ["campaigns"]:
                    return Collection("campaigns", _campaigns.OrderBy(c => DateTimeOffset.Parse((string)c["create_time"]!, CultureInfo.InvariantCulture)).ToList(), count, offset);
                case ["reports"]:
                    return Collection("reports", _reports.Values.OrderBy(r => DateTimeOffset.Parse((string)r["send_time"]!, CultureInfo.InvariantCulture)).ToList(), count, offset);
                case ["reports", var campaignId, "unsubscribed"]:
                    return _unsubscribes.TryGetValue(campaignId, out var unsubscribes)
                        ? Collection("unsubscribes", unsubscribes, count, offset)
                        : (404, Problem(404, "Resource Not Found", "The requested resource could not be found."), null, 0);
                default:
                    return (404, Problem(404, "Resource Not Found", $"The requested resource could not be found: {path}."), null, 0);
            }
        }
    }

    private static DateTimeOffset LastChanged(Member m) => DateTimeOffset.Parse((string)m.Json["last_changed"]!, CultureInfo.InvariantCulture);

    private static (int, string, string?, int) Collection(string name, IReadOnlyList<JsonObject> all, int count, int offset)
    {
        var page = all.Skip(offset).Take(count).Select(o => o.DeepClone()).ToArray();
        var body = new JsonObject { [name] = new JsonArray(page), ["total_items"] = all.Count, ["_links"] = new JsonArray() };
        return (200, body.ToJsonString(), null, page.Length);
    }

    private static string Problem(int status, string title, string detail) => new JsonObject
    {
        ["type"] = "https://mailchimp.com/developer/marketing/docs/errors/",
        ["title"] = title,
        ["status"] = status,
        ["detail"] = detail,
        ["instance"] = Guid.NewGuid().ToString(),
    }.ToJsonString();

    private sealed record Member(long Seq, JsonObject Json);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
    }
}
