using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Ingest.Testing;

namespace Ingest.Connectors.Stripe.Tests;

/// <summary>
/// A stateful in-process fake of Stripe's list API on a loopback port: objects of every type with created timestamps,
/// <c>GET /v1/{type}</c> newest first with <c>limit</c>, <c>starting_after</c>, <c>has_more</c> and
/// <c>created[gte]</c>/<c>created[lt]</c>; <c>/v1/events</c> with <c>type</c> and <c>data.object</c> for every change
/// made through <see cref="Create"/>, <see cref="Update"/> and <see cref="Delete"/>; Bearer auth (401 otherwise); 429s
/// with Retry-After on a schedule, 500s every Nth request, and a record of when each request arrived (its own clock).
/// </summary>
internal sealed class FakeStripe : IDisposable
{
    public const string ApiKey = "sk_test_fake";

    private static readonly Dictionary<string, string> Prefixes = new(StringComparer.Ordinal)
    {
        ["customers"] = "cus", ["charges"] = "ch", ["payment_intents"] = "pi", ["invoices"] = "in", ["subscriptions"] = "sub",
        ["refunds"] = "re", ["products"] = "prod", ["prices"] = "price", ["balance_transactions"] = "txn", ["disputes"] = "dp",
    };

    private static readonly Dictionary<string, string> ObjectTypes = new(StringComparer.Ordinal)
    {
        ["customers"] = "customer", ["charges"] = "charge", ["payment_intents"] = "payment_intent", ["invoices"] = "invoice",
        ["subscriptions"] = "subscription", ["refunds"] = "refund", ["products"] = "product", ["prices"] = "price",
        ["balance_transactions"] = "balance_transaction", ["disputes"] = "dispute",
    };

    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private readonly Dictionary<string, List<JsonObject>> _objects = new(StringComparer.Ordinal);
    private readonly List<JsonObject> _events = [];
    private readonly Dictionary<string, Sorted> _sorted = new(StringComparer.Ordinal);
    private readonly Queue<TimeSpan> _lastSecond = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _seq;
    private int _requests;
    private int _inFlight;
    private int _maxInFlight;

    public FakeStripe()
    {
        foreach (var t in Prefixes.Keys)
        {
            _objects[t] = [];
        }

        BaseUrl = Loopback.Start(_listener);
        _loop = Task.Run(LoopAsync);
    }

    public string BaseUrl { get; }

    /// <summary>Requests numbered (1-based) here get a 429 with <see cref="RetryAfterSeconds"/>.</summary>
    public HashSet<int> ThrottleAt { get; } = [];

    /// <summary>Requests numbered here get a 500.</summary>
    public HashSet<int> FailAt { get; } = [];

    /// <summary>Requests numbered here get a 400 (a bad request: never retried).</summary>
    public HashSet<int> BadRequestAt { get; } = [];

    public int RetryAfterSeconds { get; set; } = 1;

    /// <summary>When set, the fake answers 429 to a request that would make more than this many in one second (as Stripe does).</summary>
    public int? EnforcedRatePerSecond { get; set; }

    /// <summary>How long each answer takes (a real API is some 100 ms away).</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>The most requests that were in flight at once.</summary>
    public int MaxConcurrency => Volatile.Read(ref _maxInFlight);

    /// <summary>When each request arrived, on the fake's clock, with its path, status and the number of objects answered.</summary>
    public List<(TimeSpan At, string Path, int Status, int Items)> Log { get; } = [];

    public int Requests => Volatile.Read(ref _requests);

    /// <summary>The most requests that arrived within any one second of the fake's clock.</summary>
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

    /// <summary>Adds an object as if created at <paramref name="created"/>, without an event (older than the event horizon).</summary>
    public JsonObject Seed(string type, DateTimeOffset created, JsonObject? fields = null) => Add(type, created, fields, withEvent: false);

    /// <summary>Creates an object now, with a <c>*.created</c> event.</summary>
    public JsonObject Create(string type, JsonObject? fields = null) => Add(type, DateTimeOffset.UtcNow, fields, withEvent: true);

    public void Update(string type, string id, Action<JsonObject> change)
    {
        lock (_gate)
        {
            var o = _objects[type].Single(x => (string)x["id"]! == id);
            change(o);
            _sorted.Clear();
            AddEvent(ObjectTypes[type] + ".updated", o);
        }
    }

    public void Delete(string type, string id)
    {
        lock (_gate)
        {
            var o = _objects[type].Single(x => (string)x["id"]! == id);
            _objects[type].Remove(o);
            _sorted.Clear();
            var deleted = (JsonObject)o.DeepClone();
            deleted["deleted"] = true;
            AddEvent(ObjectTypes[type] + ".deleted", deleted);
        }
    }

    /// <summary>The current objects of a type, by id.</summary>
    public Dictionary<string, JsonObject> Objects(string type)
    {
        lock (_gate)
        {
            return _objects[type].ToDictionary(o => (string)o["id"]!, o => (JsonObject)o.DeepClone());
        }
    }

    public int EventCount
    {
        get
        {
            lock (_gate)
            {
                return _events.Count;
            }
        }
    }

    private JsonObject Add(string type, DateTimeOffset created, JsonObject? fields, bool withEvent)
    {
        lock (_gate)
        {
            var n = ++_seq;
            var o = new JsonObject
            {
                ["id"] = $"{Prefixes[type]}_{n:D8}",
                ["object"] = ObjectTypes[type],
                ["created"] = created.ToUnixTimeSeconds(),
                ["livemode"] = false,
                ["metadata"] = new JsonObject { ["seq"] = n.ToString(CultureInfo.InvariantCulture) },
            };
            switch (type)
            {
                case "customers":
                    o["email"] = $"c{n}@example.com";
                    o["name"] = $"Customer {n}";
                    o["balance"] = 0;
                    o["delinquent"] = false;
                    o["address"] = new JsonObject { ["line1"] = $"{n} Main St", ["city"] = "Dublin", ["country"] = "IE", ["postal_code"] = null };
                    break;
                case "charges":
                    o["amount"] = 1000 + n;
                    o["amount_captured"] = 1000 + n;
                    o["amount_refunded"] = 0;
                    o["currency"] = "eur";
                    o["customer"] = new JsonObject { ["id"] = "cus_x", ["object"] = "customer" };
                    o["status"] = "succeeded";
                    o["paid"] = true;
                    o["billing_details"] = new JsonObject { ["name"] = "B", ["email"] = null, ["address"] = new JsonObject { ["country"] = "FR" } };
                    break;
                case "prices":
                    o["unit_amount"] = 500 + n;
                    o["currency"] = "usd";
                    o["active"] = true;
                    o["recurring"] = new JsonObject { ["interval"] = "month", ["interval_count"] = 1, ["usage_type"] = "licensed" };
                    break;
                default:
                    o["amount"] = n;
                    o["currency"] = "usd";
                    o["status"] = "ok";
                    break;
            }

            foreach (var (k, v) in fields ?? [])
            {
                o[k] = v?.DeepClone();
            }

            _objects[type].Add(o);
            _sorted.Clear();
            if (withEvent)
            {
                AddEvent(ObjectTypes[type] + ".created", o);
            }

            return o;
        }
    }

    private void AddEvent(string type, JsonObject obj)
    {
        var n = ++_seq;
        _events.Add(new JsonObject
        {
            ["id"] = $"evt_{n:D8}",
            ["object"] = "event",
            ["type"] = type,
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["livemode"] = false,
            ["api_version"] = "2025-01-01",
            ["pending_webhooks"] = 0,
            ["request"] = new JsonObject { ["id"] = $"req_{n}", ["idempotency_key"] = null },
            ["data"] = new JsonObject { ["object"] = obj.DeepClone() },
        });
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
        var inFlight = Interlocked.Increment(ref _inFlight);
        int max;
        while (inFlight > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, inFlight, max) != max)
        {
        }

        try
        {
            if (Latency > TimeSpan.Zero)
            {
                await Task.Delay(Latency);
            }

            var (status, body, retryAfter) = Handle(ctx.Request);
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json";
            if (retryAfter is not null)
            {
                ctx.Response.Headers["Retry-After"] = retryAfter;
            }

            var bytes = Encoding.UTF8.GetBytes(body);
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
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private (int Status, string Body, string? RetryAfter) Handle(HttpListenerRequest request)
    {
        var n = Interlocked.Increment(ref _requests);
        var path = request.Url!.AbsolutePath;
        var (status, body, retryAfter, items) = Route(n, request, path);
        lock (_gate)
        {
            Log.Add((_clock.Elapsed, path, status, items));
        }

        return (status, body, retryAfter);
    }

    private (int, string, string?, int) Route(int n, HttpListenerRequest request, string path)
    {
        if (request.Headers["Authorization"] != "Bearer " + ApiKey)
        {
            return (401, Error("invalid_request_error", "Invalid API Key provided: sk_***"), null, 0);
        }

        if (EnforcedRatePerSecond is { } rate)
        {
            lock (_lastSecond)
            {
                var now = _clock.Elapsed;
                while (_lastSecond.Count > 0 && now - _lastSecond.Peek() >= TimeSpan.FromSeconds(1))
                {
                    _lastSecond.Dequeue();
                }

                if (_lastSecond.Count >= rate)
                {
                    return (429, Error("rate_limit", "Too many requests hit the API too quickly."), "1", 0);
                }

                _lastSecond.Enqueue(now);
            }
        }

        if (ThrottleAt.Contains(n))
        {
            return (429, Error("rate_limit", "Too many requests hit the API too quickly."), RetryAfterSeconds.ToString(CultureInfo.InvariantCulture), 0);
        }

        if (FailAt.Contains(n))
        {
            return (500, Error("api_error", "Something went wrong on Stripe's end."), null, 0);
        }

        if (BadRequestAt.Contains(n))
        {
            return (400, Error("invalid_request_error", "Invalid created[gte]: must be an integer"), null, 0);
        }

        if (!path.StartsWith("/v1/", StringComparison.Ordinal))
        {
            return (404, Error("invalid_request_error", $"Unrecognized request URL (GET: {path})."), null, 0);
        }

        var type = path[4..];
        var q = request.QueryString;
        var limit = int.Parse(q["limit"] ?? "10", CultureInfo.InvariantCulture);
        long? gte = q["created[gte]"] is { } g ? long.Parse(g, CultureInfo.InvariantCulture) : null;
        long? lt = q["created[lt]"] is { } l ? long.Parse(l, CultureInfo.InvariantCulture) : null;
        lock (_gate)
        {
            Sorted sorted;
            if (type == "events")
            {
                sorted = new Sorted(_events.Select((e, i) => (e, i)).OrderByDescending(x => (long)x.e["created"]!).ThenByDescending(x => x.i).Select(x => x.e).ToList());
            }
            else if (_objects.TryGetValue(type, out var objects))
            {
                if (!_sorted.TryGetValue(type, out sorted!))
                {
                    _sorted[type] = sorted = new Sorted(objects.OrderByDescending(o => (long)o["created"]!).ThenByDescending(o => (string)o["id"]!, StringComparer.Ordinal).ToList());
                }
            }
            else
            {
                return (404, Error("invalid_request_error", $"Unrecognized request URL (GET: {path})."), null, 0);
            }

            // Newest first: [first, end) holds lt > created >= gte.
            var first = lt is null ? 0 : sorted.FirstAtOrBelow(lt.Value - 1);
            var end = gte is null ? sorted.Items.Count : sorted.FirstAtOrBelow(gte.Value - 1);
            var start = first;
            if (q["starting_after"] is { } after)
            {
                if (!sorted.Index.TryGetValue(after, out var i) || i < first || i >= end)
                {
                    return (400, Error("invalid_request_error", $"No such object: '{after}'"), null, 0);
                }

                start = i + 1;
            }

            var count = Math.Max(0, Math.Min(limit, end - start));
            var page = sorted.Items.Skip(start).Take(count).Select(o => o.DeepClone()).ToArray();
            var body = new JsonObject
            {
                ["object"] = "list",
                ["url"] = path,
                ["has_more"] = start + count < end,
                ["data"] = new JsonArray(page),
            };
            return (200, body.ToJsonString(), null, count);
        }
    }

    /// <summary>A list newest first, with its created values and each id's index, for quick range and cursor look-ups.</summary>
    private sealed class Sorted
    {
        public Sorted(List<JsonObject> items)
        {
            Items = items;
            Created = items.Select(o => (long)o["created"]!).ToArray();
            Index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < items.Count; i++)
            {
                Index[(string)items[i]["id"]!] = i;
            }
        }

        public List<JsonObject> Items { get; }

        public long[] Created { get; }

        public Dictionary<string, int> Index { get; }

        /// <summary>The first index whose created is at most <paramref name="created"/> (Created is descending).</summary>
        public int FirstAtOrBelow(long created)
        {
            int lo = 0, hi = Created.Length;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (Created[mid] > created)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }
    }

    private static string Error(string type, string message) =>
        new JsonObject { ["error"] = new JsonObject { ["type"] = type, ["message"] = message } }.ToJsonString();

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
