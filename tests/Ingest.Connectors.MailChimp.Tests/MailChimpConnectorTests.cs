using System.Text.Json;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.MailChimp.Tests;

public sealed class MailChimpConnectorTests
{
    private static readonly string[] AllStreams = ["lists", "members", "campaigns", "reports", "unsubscribes"];

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

    /// <summary>The tables a merge sink would hold after the durable messages (keyed by each stream's key), and how often each key was read.</summary>
    private sealed class Model
    {
        public Dictionary<string, Dictionary<string, JsonNode>> Tables { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, SourcePosition> LastPosition { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, int> Reads { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, JsonNode> Table(string stream) => Tables.TryGetValue(stream, out var t) ? t : Tables[stream] = new(StringComparer.Ordinal);

        public void Apply(ChangeBatch batch)
        {
            var key = MailChimpStreams.Find(batch.Stream)!.Key;
            var table = Table(batch.Stream);
            var keyColumns = key.Select(k => (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex(k))).ToList();
            var raws = (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex("_raw"));
            for (var r = 0; r < batch.Length; r++)
            {
                var p = batch.Positions[r];
                Assert.True(!LastPosition.TryGetValue(batch.Stream, out var last) || p > last, $"{batch.Stream}: position {p} after {last}");
                LastPosition[batch.Stream] = p;
                var id = string.Join('/', keyColumns.Select(c => c.GetString(r)));
                if (batch.Ops[r] == ChangeOp.Delete)
                {
                    table.Remove(id);
                    continue;
                }

                table[id] = JsonNode.Parse(raws.GetString(r))!;
                Reads[batch.Stream + ":" + id] = Reads.GetValueOrDefault(batch.Stream + ":" + id) + 1;
            }
        }
    }

    private static JsonElement Config(FakeMailChimp fake, int pageSize = 7, double rps = 100, int concurrency = 10, string apiKey = FakeMailChimp.ApiKey) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["apiKey"] = apiKey,
            ["apiBase"] = fake.BaseUrl,
            ["requestsPerSecond"] = rps,
            ["maxConcurrency"] = concurrency,
            ["pageSize"] = pageSize,
            ["pollIntervalSeconds"] = 1,
        });

    private static ReadContext Context(JsonElement config, JsonElement? state, IConnectorLog? log = null, params string[] streams) =>
        new("mailchimp-test", config, (streams.Length == 0 ? AllStreams : streams).Select(s => new StreamSelection(s, SyncMode.Incremental)).ToList(), state, log ?? new ListLog());

    /// <summary>Short backoff without Retry-After, so 500s cost milliseconds; Retry-After is still honoured.</summary>
    private static HttpResilienceOptions Fast(HttpResilienceOptions o) => o with { BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) };

    /// <summary>Reads until CaughtUp (or until <paramref name="stopAfterCheckpoints"/> checkpoints); returns the last checkpoint.</summary>
    private static async Task<JsonElement?> ReadAsync(ReadContext context, Model model, int stopAfterCheckpoints = int.MaxValue)
    {
        var options = MailChimpOptions.Parse(context.Config);
        await using var reader = new MailChimpReader(options, context, tune: Fast);
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
                case CaughtUp:
                    return last;
            }
        }

        return last;
    }

    /// <summary>Three audiences of 23, 9 and 0 members, four campaigns (three sent, with unsubscribes), as MailChimp would hold them.</summary>
    private static (List<string> Lists, List<string> Campaigns) Seed(FakeMailChimp fake)
    {
        var lists = new List<string> { fake.AddList("Newsletter"), fake.AddList("Customers"), fake.AddList("Empty") };
        for (var i = 0; i < 23; i++)
        {
            fake.AddMember(lists[0], $"reader{i}@example.com");
        }

        for (var i = 0; i < 9; i++)
        {
            fake.AddMember(lists[1], $"buyer{i}@example.com", i == 8 ? "pending" : "subscribed");
        }

        // The same address in two lists: two members with the same id.
        fake.AddMember(lists[1], "reader0@example.com");
        var campaigns = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var c = fake.AddCampaign(lists[i % 2], $"Campaign {i}");
            campaigns.Add(c);
            if (i < 3)
            {
                fake.SendCampaign(c, 100 + i);
            }
        }

        var members = fake.Members().Keys.Where(k => k.ListId == lists[0]).Select(k => k.Id).ToList();
        for (var i = 0; i < 9; i++)
        {
            fake.Unsubscribe(campaigns[0], lists[0], members[i], i % 2 == 0 ? "NORMAL" : "SPAM");
        }

        fake.Unsubscribe(campaigns[2], lists[0], members[10], "NORMAL");
        fake.Opened(campaigns[1], 40);
        // Time passes at MailChimp: everything above is at least a second old when the read starts.
        fake.Advance(TimeSpan.FromSeconds(2));
        return (lists, campaigns);
    }

    private static void AssertEqualsFake(FakeMailChimp fake, Model model)
    {
        Assert.Equal(Expected(fake.Lists()), Actual(model, "lists"));
        Assert.Equal(Expected(fake.Members().ToDictionary(kv => kv.Key.ListId + "/" + kv.Key.Id, kv => kv.Value)), Actual(model, "members"));
        Assert.Equal(Expected(fake.Campaigns()), Actual(model, "campaigns"));
        Assert.Equal(Expected(fake.Reports()), Actual(model, "reports"));
        Assert.Equal(Expected(fake.Unsubscribes().ToDictionary(kv => kv.Key.CampaignId + "/" + kv.Key.EmailId, kv => kv.Value)), Actual(model, "unsubscribes"));

        static List<KeyValuePair<string, string>> Expected(Dictionary<string, JsonObject> objects) =>
            objects.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToJsonString())).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();

        static List<KeyValuePair<string, string>> Actual(Model model, string stream) =>
            model.Table(stream).Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToJsonString())).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task Snapshot_reads_every_list_member_campaign_report_and_unsubscribe_across_many_pages()
    {
        using var fake = new FakeMailChimp();
        Seed(fake);
        var model = new Model();
        var state = await ReadAsync(Context(Config(fake, pageSize: 4), null), model);

        Assert.NotNull(state);
        AssertEqualsFake(fake, model);
        Assert.Equal(33, model.Table("members").Count);
        // Members of a 23-member list at 4 a page: 6 pages; no record was read twice.
        Assert.True(fake.LogSnapshot().Count(l => FakeMailChimp.IsMembers(l.Path)) >= 8);
        Assert.All(model.Reads, kv => Assert.Equal(1, kv.Value));
    }

    [Fact]
    public async Task Columns_are_typed_with_structs_merge_fields_as_a_map_and_the_member_key_includes_the_list()
    {
        using var fake = new FakeMailChimp();
        var list = fake.AddList("Solo");
        // The fake gives members with an even sequence number (the list took 1) an address merge field: an object.
        var id = fake.AddMember(list, "Typed@Example.com");
        var other = fake.AddMember(list, "second@example.com");
        fake.Advance(TimeSpan.FromSeconds(2));
        var options = MailChimpOptions.Parse(Config(fake));
        await using var reader = new MailChimpReader(options, Context(Config(fake), null, null, "members"));
        var batches = new List<ChangeBatch>();
        await foreach (var m in reader.ReadAsync(CancellationToken.None))
        {
            if (m is ChangeBatch b)
            {
                batches.Add(b);
            }
            else if (m is CaughtUp)
            {
                break;
            }
        }

        var rows = Rows.Of(batches);
        var row = rows.Single(r => (string)r["id"]! == id);
        Assert.Equal(list, row["list_id"]);
        Assert.Equal("Typed@Example.com", row["email_address"]);
        Assert.Equal("subscribed", row["status"]);
        Assert.Equal(2L, row["member_rating"]);
        Assert.IsType<DateTimeOffset>(row["last_changed"]);
        var merge = Assert.IsAssignableFrom<IEnumerable<KeyValuePair<object, object?>>>(row["merge_fields"]).ToDictionary(kv => (string)kv.Key, kv => kv.Value);
        Assert.Equal("Person", merge["FNAME"]);
        Assert.Contains("\"addr1\"", (string)merge["ADDRESS"]!, StringComparison.Ordinal);
        var location = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(row["location"]);
        Assert.Equal("America/New_York", location["timezone"]);
        Assert.Equal(-5L, location["gmtoff"]);
        var otherRow = rows.Single(r => (string)r["id"]! == other);
        var otherMerge = Assert.IsAssignableFrom<IEnumerable<KeyValuePair<object, object?>>>(otherRow["merge_fields"]).ToDictionary(kv => (string)kv.Key, kv => kv.Value);
        Assert.Equal("", otherMerge["ADDRESS"]);
        foreach (var b in batches)
        {
            b.Dispose();
        }
    }

    [Fact]
    public async Task Second_run_applies_created_updated_archived_and_unsubscribed_members_new_campaigns_and_deleted_lists()
    {
        using var fake = new FakeMailChimp();
        var (lists, campaigns) = Seed(fake);
        // A list deleted at MailChimp is deleted from lists (its members' rows would stay: see the README's limits).
        var gone = fake.AddList("To be deleted");
        fake.Advance(TimeSpan.FromSeconds(2));
        var model = new Model();
        var state = await ReadAsync(Context(Config(fake), null), model);
        AssertEqualsFake(fake, model);
        var membersServed = fake.Served(FakeMailChimp.IsMembers);

        var members = fake.Members().Keys.Where(k => k.ListId == lists[1]).Select(k => k.Id).ToList();
        fake.UpdateMember(lists[1], members[0], m => ((JsonObject)m["merge_fields"]!)["FNAME"] = "Renamed");
        fake.ArchiveMember(lists[1], members[1]);
        fake.AddMember(lists[1], "new1@example.com");
        fake.AddMember(lists[2], "first-of-empty@example.com");
        fake.Unsubscribe(campaigns[1], lists[1], members[2], "NORMAL");
        var added = fake.AddCampaign(lists[0], "Campaign 5");
        fake.SendCampaign(added, 7);
        fake.Opened(campaigns[0], 3);
        fake.RenameList(lists[0], "Weekly newsletter");
        fake.DeleteList(gone);
        fake.Advance(TimeSpan.FromSeconds(2));

        state = await ReadAsync(Context(Config(fake), state), model);
        AssertEqualsFake(fake, model);
        Assert.Equal("archived", model.Table("members")[lists[1] + "/" + members[1]]["status"]!.GetValue<string>());
        Assert.Equal("unsubscribed", model.Table("members")[lists[1] + "/" + members[2]]["status"]!.GetValue<string>());
        Assert.DoesNotContain(gone, model.Table("lists").Keys);
        // Only the five changed members were read again, not the audiences.
        Assert.Equal(5, fake.Served(FakeMailChimp.IsMembers) - membersServed);

        // A third run with nothing changed reads no member and no unsubscribe.
        var before = fake.LogSnapshot().Count;
        fake.Advance(TimeSpan.FromSeconds(2));
        await ReadAsync(Context(Config(fake), state), model);
        AssertEqualsFake(fake, model);
        var third = fake.LogSnapshot().Skip(before).ToList();
        Assert.Equal(0, third.Where(l => FakeMailChimp.IsMembers(l.Path) || l.Path.EndsWith("/unsubscribed", StringComparison.Ordinal)).Sum(l => l.Items));
    }

    [Fact]
    public async Task A_member_changed_while_its_list_is_paged_makes_no_other_member_be_skipped()
    {
        using var fake = new FakeMailChimp();
        var list = fake.AddList("Busy");
        var ids = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            ids.Add(fake.AddMember(list, $"m{i}@example.com"));
            if (i % 10 == 9)
            {
                fake.Advance(TimeSpan.FromSeconds(1));
            }
        }

        fake.Advance(TimeSpan.FromSeconds(2));
        var changedAt = 0;
        fake.AfterRequest = n =>
        {
            // After the second page of members: the first two members change, leaving the read's window.
            if (changedAt == 0 && fake.LogSnapshot().Count(l => FakeMailChimp.IsMembers(l.Path)) == 2)
            {
                changedAt = n;
                fake.UpdateMember(list, ids[0], m => m["full_name"] = "Changed 0");
                fake.UpdateMember(list, ids[1], m => m["full_name"] = "Changed 1");
            }
        };

        var model = new Model();
        var state = await ReadAsync(Context(Config(fake, pageSize: 5, concurrency: 1), null, null, "members"), model);
        Assert.NotEqual(0, changedAt);
        // Every member is there after the first run (with values from before or after the change) ...
        Assert.Equal(ids.Order(StringComparer.Ordinal), model.Table("members").Keys.Select(k => k.Split('/')[1]).Order(StringComparer.Ordinal));

        // ... and the next run brings the changes.
        fake.AfterRequest = null;
        fake.Advance(TimeSpan.FromSeconds(2));
        await ReadAsync(Context(Config(fake, pageSize: 5, concurrency: 1), state, null, "members"), model);
        Assert.Equal("Changed 0", model.Table("members")[list + "/" + ids[0]]["full_name"]!.GetValue<string>());
        Assert.Equal("Changed 1", model.Table("members")[list + "/" + ids[1]]["full_name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Resuming_from_a_mid_read_checkpoint_reads_no_committed_record_again()
    {
        using var fake = new FakeMailChimp();
        var (lists, _) = Seed(fake);
        for (var i = 0; i < 60; i++)
        {
            fake.AddMember(lists[2], $"later{i}@example.com");
        }

        fake.Advance(TimeSpan.FromSeconds(2));
        var model = new Model();
        var config = Config(fake, pageSize: 5, concurrency: 2);
        var partial = await ReadAsync(Context(config, null), model, stopAfterCheckpoints: 6);
        var durable = model.Table("members").Count;
        Assert.InRange(durable, 1, 92);
        await fake.WaitQuietAsync(TimeSpan.FromMilliseconds(500));
        var servedBefore = fake.Served(FakeMailChimp.IsMembers);

        await ReadAsync(Context(config, partial), model);
        AssertEqualsFake(fake, model);
        // The resume fetched only what the checkpoint did not cover: members served in all = members + the pages that were
        // in flight or buffered when the first read stopped (2 fetchers, a channel of 4 pages, 5 members a page).
        var served = fake.Served(FakeMailChimp.IsMembers);
        Assert.InRange(served - 93, 0, (2 + 4 + 2) * 5);
        Assert.Equal(93 - durable, served - servedBefore);
        Assert.All(model.Reads.Where(kv => kv.Key.StartsWith("members:", StringComparison.Ordinal)), kv => Assert.Equal(1, kv.Value));
    }

    [Fact]
    public async Task Throttling_429s_and_403s_and_server_errors_are_retried_and_the_read_completes()
    {
        using var fake = new FakeMailChimp();
        Seed(fake);
        fake.ThrottleAt.Add(3);
        fake.Throttle403At.Add(6);
        fake.FailAt.UnionWith([9, 10, 14]);
        var model = new Model();
        var log = new ListLog();
        await ReadAsync(Context(Config(fake, pageSize: 5), null, log), model);

        AssertEqualsFake(fake, model);
        var statuses = fake.LogSnapshot().Select(l => l.Status).ToList();
        Assert.Contains(429, statuses);
        Assert.Contains(403, statuses);
        Assert.Equal(3, statuses.Count(s => s == 500));
        Assert.Contains(log.Lines, l => l.Level == ConnectorLogLevel.Warning && l.Message.Contains("got 429", StringComparison.Ordinal));
        Assert.Equal(2, log.Lines.Count(l => l.Message.Contains("got 429", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_configured_rate_and_concurrency_are_never_exceeded_even_around_a_429()
    {
        using var fake = new FakeMailChimp { Latency = TimeSpan.FromMilliseconds(60) };
        for (var l = 0; l < 6; l++)
        {
            var list = fake.AddList($"List {l}");
            for (var i = 0; i < 12; i++)
            {
                fake.AddMember(list, $"p{l}-{i}@example.com");
            }
        }

        fake.Advance(TimeSpan.FromSeconds(2));
        fake.ThrottleAt.Add(10);
        var model = new Model();
        await ReadAsync(Context(Config(fake, pageSize: 3, rps: 25, concurrency: 3), null, null, "lists", "members"), model);

        Assert.Equal(72, model.Table("members").Count);
        Assert.Contains(fake.LogSnapshot(), l => l.Status == 429);
        // 6 lists read at once would be 6 requests in flight: the limit holds it at 3, and the reads do overlap.
        Assert.InRange(fake.MaxConcurrency, 2, 3);
        // The client sends at most 25 in any second; one more may show when the listener's dispatch delays one arrival.
        Assert.InRange(fake.MaxRequestsPerSecond(), 1, 26);
    }

    [Fact]
    public async Task Check_names_the_api_key_when_mailchimp_refuses_it()
    {
        using var fake = new FakeMailChimp();
        var connector = new MailChimpConnector();
        var wrong = await connector.CheckAsync(Config(fake, apiKey: "ffffffffffffffffffffffffffffffff-us6"), CancellationToken.None);
        Assert.False(wrong.Succeeded);
        Assert.Equal("/apiKey", wrong.Field);
        Assert.Contains("401", wrong.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("ffffffffffffffffffffffffffffffff", wrong.Message, StringComparison.Ordinal);

        var ok = await connector.CheckAsync(Config(fake), CancellationToken.None);
        Assert.True(ok.Succeeded, ok.Message);
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcdef-")]
    [InlineData("0123456789abcdef0123456789abcdef-6")]
    public async Task Check_names_the_api_key_when_it_has_no_data_center_suffix(string key)
    {
        using var fake = new FakeMailChimp();
        var result = await new MailChimpConnector().CheckAsync(Config(fake, apiKey: key), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/apiKey", result.Field);
        Assert.Contains("data center", result.Message, StringComparison.Ordinal);
        Assert.Equal(0, fake.Requests);
    }

    [Fact]
    public async Task A_forbidden_resource_is_not_retried_and_check_names_the_api_key()
    {
        using var fake = new FakeMailChimp();
        fake.ForbiddenPaths.Add("lists");
        var result = await new MailChimpConnector().CheckAsync(Config(fake), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/apiKey", result.Field);
        Assert.Contains("403", result.Message, StringComparison.Ordinal);
        Assert.Equal(1, fake.LogSnapshot().Count(l => l.Path == "lists"));
    }

    [Fact]
    public async Task Check_names_api_base_when_nothing_answers_there()
    {
        var port = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        port.Start();
        var closed = $"http://127.0.0.1:{((System.Net.IPEndPoint)port.LocalEndpoint).Port}/3.0";
        port.Stop();
        var config = JsonSerializer.SerializeToElement(new { apiKey = FakeMailChimp.ApiKey, apiBase = closed });
        var result = await new MailChimpConnector().CheckAsync(config, CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/apiBase", result.Field);
        Assert.Contains("Cannot reach MailChimp", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_data_center_comes_from_the_key_and_limits_are_validated()
    {
        var o = MailChimpOptions.Parse(JsonSerializer.SerializeToElement(new { apiKey = "abc123-us21" }));
        Assert.Equal(new Uri("https://us21.api.mailchimp.com/3.0/"), o.ApiBase);
        Assert.Equal(10, o.MaxConcurrency);

        var e = Assert.Throws<ConnectorException>(() => MailChimpOptions.Parse(JsonSerializer.SerializeToElement(new { apiKey = "abc123-us21", maxConcurrency = 11 })));
        Assert.Equal("/maxConcurrency", e.Field);
        e = Assert.Throws<ConnectorException>(() => MailChimpOptions.Parse(JsonSerializer.SerializeToElement(new { apiKey = "abc123-us21", apiBase = "ftp://x" })));
        Assert.Equal("/apiBase", e.Field);
        e = Assert.Throws<ConnectorException>(() => MailChimpOptions.Parse(JsonSerializer.SerializeToElement(new { apiKey = "abc123-us21", startDate = "yesterday" })));
        Assert.Equal("/startDate", e.Field);
    }

    [Fact]
    public async Task Discover_keys_members_by_list_and_id_and_marks_the_key_secret()
    {
        var connector = new MailChimpConnector();
        Assert.Equal(["/apiKey"], connector.Spec.SecretPaths());
        var catalog = await connector.DiscoverAsync(JsonSerializer.SerializeToElement(new { apiKey = "abc-us6" }), CancellationToken.None);
        Assert.Equal(AllStreams, catalog.Streams.Select(s => s.Name));
        Assert.Equal(["list_id", "id"], catalog.Find("members")!.PrimaryKey);
        Assert.Equal(["campaign_id", "email_id"], catalog.Find("unsubscribes")!.PrimaryKey);
        Assert.Equal(["id"], catalog.Find("reports")!.PrimaryKey);
        Assert.IsType<Ingest.Sdk.Types.MapType>(catalog.Find("members")!.Schema["merge_fields"].Type);
        Assert.IsType<Ingest.Sdk.Types.StructType>(catalog.Find("reports")!.Schema["opens"].Type);
    }
}
