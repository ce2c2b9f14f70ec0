using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Stripe.Tests;

public sealed class StripeConnectorTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private sealed class ListLog : IConnectorLog
    {
        public List<(ConnectorLogLevel Level, string Message)> Lines { get; } = [];

        public void Write(ConnectorLogLevel level, string message, Exception? exception = null)
        {
            lock (Lines)
            {
                Lines.Add((level, message));
            }
        }
    }

    /// <summary>The tables a merge sink would hold after the messages, plus how often each id was read.</summary>
    private sealed class Model
    {
        public Dictionary<string, Dictionary<string, JsonNode>> Tables { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, SourcePosition> LastPosition { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, int> Reads { get; } = new(StringComparer.Ordinal);

        public List<ChangeOp> Ops { get; } = [];

        public List<string> Notes { get; } = [];

        public void Apply(ChangeBatch batch)
        {
            var table = Tables.TryGetValue(batch.Stream, out var t) ? t : Tables[batch.Stream] = new(StringComparer.Ordinal);
            var ids = (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex("id"));
            var raws = (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex("_raw"));
            for (var r = 0; r < batch.Length; r++)
            {
                var p = batch.Positions[r];
                Assert.True(!LastPosition.TryGetValue(batch.Stream, out var last) || p > last, $"{batch.Stream}: position {p} after {last}");
                LastPosition[batch.Stream] = p;
                var id = ids.GetString(r);
                Ops.Add(batch.Ops[r]);
                if (batch.Ops[r] == ChangeOp.Delete)
                {
                    table.Remove(id);
                }
                else
                {
                    table[id] = JsonNode.Parse(raws.GetString(r))!;
                    if (batch.Ops[r] == ChangeOp.Read)
                    {
                        Reads[id] = Reads.GetValueOrDefault(id) + 1;
                    }
                }
            }
        }
    }

    private static JsonElement Config(FakeStripe fake, int pageSize = 10, double rps = 50, string? apiKey = FakeStripe.ApiKey, int parallelWindows = 4) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["parallelWindows"] = parallelWindows,
            ["apiKey"] = apiKey,
            ["apiBase"] = fake.BaseUrl,
            ["startDate"] = Now.AddDays(-400).ToString("O", CultureInfo.InvariantCulture),
            ["requestsPerSecond"] = rps,
            ["windowDays"] = 30,
            ["pageSize"] = pageSize,
            ["pollIntervalSeconds"] = 1,
        });

    private static ReadContext Context(JsonElement config, JsonElement? state, IConnectorLog? log = null, params string[] streams) =>
        new("stripe-test", config, (streams.Length == 0 ? ["customers", "charges", "prices", "events"] : streams).Select(s => new StreamSelection(s, SyncMode.Incremental)).ToList(), state, log ?? new ListLog());

    /// <summary>Reads until CaughtUp (or until <paramref name="stopAfterCheckpoints"/> checkpoints); returns the last checkpoint.</summary>
    private static async Task<JsonElement?> ReadAsync(ReadContext context, Model model, int stopAfterCheckpoints = int.MaxValue)
    {
        var connector = new StripeConnector();
        await using var reader = connector.OpenReader(context);
        JsonElement? last = null;
        var pending = new List<ChangeBatch>();
        var checkpoints = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var m in reader.ReadAsync(cts.Token))
        {
            switch (m)
            {
                case ChangeBatch b:
                    pending.Add(b);
                    break;
                case Checkpoint c:
                    // Only what a checkpoint covers counts as durable.
                    foreach (var b in pending)
                    {
                        model.Apply(b);
                        b.Dispose();
                    }

                    pending.Clear();
                    last = c.State;
                    if (++checkpoints >= stopAfterCheckpoints)
                    {
                        return last;
                    }

                    break;
                case StreamProgress { Message: { } note }:
                    model.Notes.Add(note);
                    break;
                case CaughtUp:
                    return last;
            }
        }

        return last;
    }

    private static void Seed(FakeStripe fake)
    {
        for (var i = 0; i < 57; i++)
        {
            fake.Seed("customers", Now.AddDays(-300).AddHours(i * 97));
        }

        for (var i = 0; i < 23; i++)
        {
            fake.Seed("charges", Now.AddDays(-200).AddHours(i * 50));
        }

        for (var i = 0; i < 5; i++)
        {
            fake.Seed("prices", Now.AddDays(-10).AddMinutes(i));
        }
    }

    private static void AssertEqualsFake(FakeStripe fake, Model model, params string[] streams)
    {
        foreach (var s in streams)
        {
            var expected = fake.Objects(s);
            var actual = model.Tables.GetValueOrDefault(s) ?? [];
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (id, obj) in expected)
            {
                Assert.True(JsonNode.DeepEquals(obj, actual[id]), $"{s} {id}: expected {obj.ToJsonString()}, got {actual[id].ToJsonString()}");
            }
        }
    }

    [Fact]
    public async Task Snapshot_reads_every_object_across_created_windows_and_pages_with_typed_columns()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        var model = new Model();
        var typed = new List<ChangeBatch>();
        var connector = new StripeConnector();
        await using (var reader = connector.OpenReader(Context(Config(fake), null)))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    model.Apply(b);
                    typed.Add(b);
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        AssertEqualsFake(fake, model, "customers", "charges", "prices");
        Assert.All(model.Reads.Values, n => Assert.Equal(1, n));
        Assert.Contains(fake.Log, l => l.Path == "/v1/customers");

        var charges = typed.First(b => b.Stream == "charges").Data;
        var amount = (Int64Array)charges.Column(charges.Schema.GetFieldIndex("amount"));
        var id = ((StringArray)charges.Column(charges.Schema.GetFieldIndex("id"))).GetString(0);
        Assert.Equal((long)fake.Objects("charges")[id]["amount"]!, amount.GetValue(0));
        Assert.Equal("eur", ((StringArray)charges.Column(charges.Schema.GetFieldIndex("currency"))).GetString(0));
        Assert.Equal("cus_x", ((StringArray)charges.Column(charges.Schema.GetFieldIndex("customer"))).GetString(0));
        var billing = (StructArray)charges.Column(charges.Schema.GetFieldIndex("billing_details"));
        var billingAddress = (StructArray)billing.Fields[((Apache.Arrow.Types.StructType)billing.Data.DataType).GetFieldIndex("address")];
        Assert.Equal("FR", ((StringArray)billingAddress.Fields[5]).GetString(0));
        var metadata = (MapArray)charges.Column(charges.Schema.GetFieldIndex("metadata"));
        Assert.Equal("seq", ((StringArray)metadata.Keys).GetString(metadata.ValueOffsets[0]));
        var created = (TimestampArray)charges.Column(charges.Schema.GetFieldIndex("created"));
        Assert.Equal((long)fake.Objects("charges")[id]["created"]! * 1_000_000, created.GetValue(0));
        foreach (var b in typed)
        {
            b.Dispose();
        }
    }

    [Fact]
    public async Task Incremental_read_applies_creates_updates_and_deletes_from_events()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        var config = Config(fake);
        var model = new Model();
        var state = await ReadAsync(Context(config, null), model);
        AssertEqualsFake(fake, model, "customers", "charges", "prices");

        var customers = fake.Objects("customers").Keys.Order(StringComparer.Ordinal).ToList();
        fake.Create("customers", new JsonObject { ["email"] = "new@example.com" });
        fake.Update("customers", customers[3], o => o["email"] = "changed@example.com");
        fake.Update("customers", customers[3], o => o["metadata"] = new JsonObject { ["tier"] = "gold" });
        fake.Delete("customers", customers[10]);
        fake.Update("charges", fake.Objects("charges").Keys.First(), o => o["amount_refunded"] = 300);
        fake.Delete("prices", fake.Objects("prices").Keys.First());

        var before = fake.Log.Count(l => l.Path != "/v1/events");
        state = await ReadAsync(Context(config, state), model);
        AssertEqualsFake(fake, model, "customers", "charges", "prices");
        Assert.Equal("changed@example.com", (string)model.Tables["customers"][customers[3]]["email"]!);
        Assert.Contains(ChangeOp.Delete, model.Ops);
        // The second read listed no objects again: only events.
        Assert.Equal(before, fake.Log.Count(l => l.Path != "/v1/events"));
        Assert.Equal(fake.EventCount, model.Tables["events"].Count);

        // A third read with nothing new changes nothing.
        var ops = model.Ops.Count;
        await ReadAsync(Context(config, state), model);
        Assert.Equal(ops, model.Ops.Count);
    }

    [Fact]
    public async Task Resuming_from_a_mid_snapshot_checkpoint_reads_no_object_twice()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        var config = Config(fake, pageSize: 4);
        var model = new Model();
        var state = await ReadAsync(Context(config, null), model, stopAfterCheckpoints: 9);
        Assert.NotNull(state);
        var partial = model.Reads.Count;
        Assert.InRange(partial, 1, 84);
        await ReadAsync(Context(config, state), model);
        AssertEqualsFake(fake, model, "customers", "charges", "prices");
        Assert.All(model.Reads, kv => Assert.True(kv.Value == 1, $"{kv.Key} read {kv.Value} times"));
    }

    [Fact]
    public async Task A_cursor_older_than_the_event_horizon_re_reads_by_created_window_and_says_so()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        var config = Config(fake);
        var model = new Model();
        var state = await ReadAsync(Context(config, null), model);
        var old = JsonNode.Parse(state!.Value.GetRawText())!;
        old["EventsCreated"] = Now.AddDays(-40).ToUnixTimeSeconds();
        old["EventsCheckedAt"] = Now.AddDays(-40).ToUnixTimeSeconds();
        var customers = fake.Objects("customers").Keys.ToList();
        fake.Update("customers", customers[0], o => o["name"] = "Renamed");
        var log = new ListLog();
        await ReadAsync(Context(config, JsonSerializer.SerializeToElement(old), log), model);
        Assert.Contains(log.Lines, l => l.Level == ConnectorLogLevel.Warning && l.Message.Contains("30-day", StringComparison.Ordinal));
        Assert.Contains(model.Notes, n => n.Contains("30-day event retention: re-reading by created window", StringComparison.Ordinal));
        Assert.All(fake.Objects("customers").Keys, id => Assert.Equal(2, model.Reads[id]));
        AssertEqualsFake(fake, model, "customers", "charges", "prices");
    }

    [Fact]
    public async Task Throttling_and_server_errors_are_retried_and_the_read_completes()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        fake.ThrottleAt.UnionWith([2, 3, 9]);
        fake.FailAt.UnionWith([5, 12]);
        var model = new Model();
        var log = new ListLog();
        await ReadAsync(Context(Config(fake), null, log), model);
        AssertEqualsFake(fake, model, "customers", "charges", "prices");
        Assert.Equal(3, fake.Log.Count(l => l.Status == 429));
        Assert.Equal(2, fake.Log.Count(l => l.Status == 500));
        Assert.Contains(log.Lines, l => l.Message.Contains("429", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_bad_request_is_not_retried_and_stops_the_read()
    {
        using var fake = new FakeStripe();
        Seed(fake);
        fake.BadRequestAt.Add(2);

        // One window at a time: with several in flight, requests already sent when the 400 arrives would count too.
        var e = await Assert.ThrowsAsync<ConnectorException>(() => ReadAsync(Context(Config(fake, parallelWindows: 1), null), new Model()));
        Assert.Contains("400", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, fake.Requests);
    }

    [Fact]
    public async Task The_configured_request_rate_is_never_exceeded()
    {
        using var fake = new FakeStripe();
        for (var i = 0; i < 30; i++)
        {
            fake.Seed("customers", Now.AddDays(-5).AddMinutes(i));
        }

        var model = new Model();
        var started = DateTime.UtcNow;
        await ReadAsync(Context(Config(fake, pageSize: 1, rps: 10), null, null, "customers"), model);
        Assert.Equal(30, model.Tables["customers"].Count);
        Assert.True(fake.Requests >= 31);
        // Arrivals, measured on the fake's clock, may bunch by scheduling jitter after an exact send-side limit: allow one.
        Assert.InRange(fake.MaxRequestsPerSecond(), 1, 11);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2.5));
    }

    [Fact]
    public async Task Snapshot_lists_several_created_windows_in_parallel_and_emits_them_in_order()
    {
        using var fake = new FakeStripe { Latency = TimeSpan.FromMilliseconds(40) };
        for (var i = 0; i < 40; i++)
        {
            fake.Seed("customers", Now.AddDays(-390).AddDays(i * 9));
        }

        var model = new Model();
        await ReadAsync(Context(Config(fake, pageSize: 2), null, null, "customers"), model);
        AssertEqualsFake(fake, model, "customers");
        Assert.All(model.Reads.Values, n => Assert.Equal(1, n));
        Assert.InRange(fake.MaxConcurrency, 2, 4);
    }

    [Fact]
    public async Task Sustained_server_errors_stop_the_read_with_a_clear_error()
    {
        using var fake = new FakeStripe();
        fake.FailAt.UnionWith(Enumerable.Range(1, 100));
        var options = StripeOptions.Parse(Config(fake));
        using var api = new StripeApi(options, NullConnectorLog.Instance, tune: o => o with { MaxAttempts = 4, BaseDelay = TimeSpan.FromMilliseconds(5) });
        var e = await Assert.ThrowsAsync<ConnectorException>(() => api.ListAsync("v1/customers", null, null, null, 10, CancellationToken.None));
        Assert.Equal(ErrorKind.Fatal, e.Kind);
        Assert.StartsWith("Stopped after sustained failure", e.Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 500", e.Message, StringComparison.Ordinal);
        Assert.Equal(4, fake.Requests);
    }

    [Fact]
    public async Task Check_names_the_api_key_when_stripe_refuses_it()
    {
        using var fake = new FakeStripe();
        var connector = new StripeConnector();
        var bad = await connector.CheckAsync(Config(fake, apiKey: "sk_test_wrong"), CancellationToken.None);
        Assert.False(bad.Succeeded);
        Assert.Equal("/apiKey", bad.Field);
        Assert.Contains("401", bad.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sk_test_wrong", bad.Message, StringComparison.Ordinal);
        var good = await connector.CheckAsync(Config(fake), CancellationToken.None);
        Assert.True(good.Succeeded, good.Message);
        var missing = await connector.CheckAsync(Config(fake, apiKey: null), CancellationToken.None);
        Assert.Equal("/apiKey", missing.Field);
    }

    [Fact]
    public async Task Discover_lists_every_stream_keyed_by_id_with_raw_and_typed_amounts()
    {
        using var fake = new FakeStripe();
        var catalog = await new StripeConnector().DiscoverAsync(Config(fake), CancellationToken.None);
        Assert.Equal(
            ["customers", "charges", "payment_intents", "invoices", "subscriptions", "refunds", "products", "prices", "balance_transactions", "disputes", "events"],
            catalog.Streams.Select(s => s.Name));
        Assert.All(catalog.Streams, s => Assert.Equal(["id"], s.PrimaryKey));
        Assert.All(catalog.Streams, s => Assert.True(s.Schema.IndexOf("_raw") >= 0));
        Assert.Equal("long", catalog.Find("charges")!.Schema["amount"].Type.DisplayName);
        Assert.Equal("map<string,string>", catalog.Find("customers")!.Schema["metadata"].Type.DisplayName);
        Assert.Equal(["/apiKey"], new StripeConnector().Spec.SecretPaths());
    }
}
