using System.Globalization;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

internal sealed class ListLog : IConnectorLog
{
    public List<(ConnectorLogLevel Level, string Message)> Lines { get; } = [];

    public void Write(ConnectorLogLevel level, string message, Exception? exception = null)
    {
        lock (Lines)
        {
            Lines.Add((level, message));
        }
    }

    public bool Has(string text)
    {
        lock (Lines)
        {
            return Lines.Any(l => l.Message.Contains(text, StringComparison.Ordinal));
        }
    }
}

/// <summary>
/// The table a merge sink would hold for the report (date, country, deviceCategory) → activeUsers, built only from
/// batches a checkpoint covers; checks that positions strictly increase.
/// </summary>
internal sealed class MergeModel
{
    private SourcePosition _last;

    public Dictionary<string, long> Table { get; } = new(StringComparer.Ordinal);

    public List<ChangeOp> Ops { get; } = [];

    public void Apply(ChangeBatch batch)
    {
        var dates = (Date32Array)batch.Data.Column(batch.Data.Schema.GetFieldIndex("date"));
        var countries = (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex("country"));
        var devices = (StringArray)batch.Data.Column(batch.Data.Schema.GetFieldIndex("deviceCategory"));
        var users = (Int64Array)batch.Data.Column(batch.Data.Schema.GetFieldIndex("activeUsers"));
        for (var r = 0; r < batch.Length; r++)
        {
            Assert.True(batch.Positions[r] > _last, $"position {batch.Positions[r]} after {_last}");
            _last = batch.Positions[r];
            var key = FakeGa.Key3(DateOnly.FromDateTime(dates.GetDateTime(r)!.Value), countries.GetString(r), devices.GetString(r));
            Ops.Add(batch.Ops[r]);
            if (batch.Ops[r] == ChangeOp.Delete)
            {
                Assert.True(Table.Remove(key), $"delete of {key}, which the table does not hold");
            }
            else
            {
                Table[key] = users.GetValue(r)!.Value;
            }
        }
    }
}

internal static class GaTestKit
{
    public static readonly DateOnly Today = new(2025, 3, 20);

    public static Dictionary<string, object?> Config(FakeGa fake, int pageSize = 10_000, double rps = 50, int concurrency = 2, int lookback = 3, DateOnly? start = null) => new()
    {
        ["propertyId"] = FakeGa.PropertyId,
        ["credentialsJson"] = fake.ServiceAccountJson(),
        ["apiBase"] = fake.BaseUrl,
        ["startDate"] = (start ?? Today.AddDays(-9)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        ["lookbackDays"] = lookback,
        ["reports"] = new[]
        {
            new Dictionary<string, object?>
            {
                ["name"] = "traffic",
                ["dimensions"] = new[] { "country", "deviceCategory" },
                ["metrics"] = new[] { "activeUsers", "totalRevenue", "userEngagementDuration" },
            },
        },
        ["requestsPerSecond"] = rps,
        ["concurrency"] = concurrency,
        ["pageSize"] = pageSize,
        ["pollIntervalSeconds"] = 3600,
    };

    public static JsonElement Json(Dictionary<string, object?> config) => JsonSerializer.SerializeToElement(config);

    public static GaHooks Hooks(Func<DateOnly>? today = null, TimeSpan? quotaReset = null) => new()
    {
        Today = today ?? (() => Today),
        ResetAt = (now, _) => now + (quotaReset ?? TimeSpan.FromSeconds(1)),
        Tune = o => o with { BaseDelay = TimeSpan.FromMilliseconds(50) },
    };

    public static GaSession Open(Dictionary<string, object?> config, JsonElement? state, GaHooks hooks, IConnectorLog? log = null, params BackfillRequest[] backfills)
    {
        var json = Json(config);
        var context = new ReadContext("ga-test", json, [new StreamSelection("traffic", SyncMode.Incremental)], state, log ?? new ListLog()) { Backfills = backfills };
        return new GaSession(new GaReader(GaOptions.Parse(json), context, hooks));
    }

    public static void AssertEqualsFake(FakeGa fake, MergeModel model, DateOnly? from = null, DateOnly? to = null)
    {
        var expected = fake.Expected().Where(kv => InRange(kv.Key, from, to)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var actual = model.Table.Where(kv => InRange(kv.Key, from, to)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, actual);
    }

    private static bool InRange(string key, DateOnly? from, DateOnly? to)
    {
        var d = DateOnly.ParseExact(key[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture);
        return (from is null || d >= from) && (to is null || d <= to);
    }

    public static HttpResilienceOptions Fast(HttpResilienceOptions o) => o with { BaseDelay = TimeSpan.FromMilliseconds(50) };
}

/// <summary>One read, driven like the engine does: messages pulled in order, checkpoints make batches count.</summary>
internal sealed class GaSession : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(30));
    private readonly IAsyncEnumerator<SourceMessage> _messages;

    public GaSession(GaReader reader)
    {
        Reader = reader;
        _messages = reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
    }

    public GaReader Reader { get; }

    /// <summary>
    /// Reads until <paramref name="stop"/> says so after a message (or CaughtUp when null), applying to the model only
    /// what checkpoints cover; returns the last checkpoint's state and every message seen.
    /// </summary>
    public async Task<(JsonElement? State, List<SourceMessage> Seen)> ReadAsync(MergeModel model, Func<SourceMessage, bool>? stop = null, bool keepBatches = false)
    {
        stop ??= m => m is CaughtUp;
        JsonElement? last = null;
        var seen = new List<SourceMessage>();
        var pending = new List<ChangeBatch>();
        while (await _messages.MoveNextAsync())
        {
            var m = _messages.Current;
            seen.Add(m);
            switch (m)
            {
                case ChangeBatch b:
                    pending.Add(b);
                    break;
                case Checkpoint c:
                    foreach (var b in pending)
                    {
                        model.Apply(b);
                        if (!keepBatches)
                        {
                            b.Dispose();
                        }
                    }

                    pending.Clear();
                    last = c.State;
                    break;
            }

            if (stop(m))
            {
                break;
            }
        }

        foreach (var b in pending)
        {
            b.Dispose();
        }

        return (last, seen);
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        try
        {
            await _messages.DisposeAsync();
        }
        catch (OperationCanceledException)
        {
        }

        await Reader.DisposeAsync();
        _cts.Dispose();
    }
}
