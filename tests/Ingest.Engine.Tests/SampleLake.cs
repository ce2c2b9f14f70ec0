using System.Text.Json;
using Ingest.Connectors.Sample;
using Ingest.Sdk.Records;

namespace Ingest.Engine.Tests;

/// <summary>Pipelines of the sample connector, and checks of their tables against what the sample source holds.</summary>
internal static class SampleLake
{
    public static readonly string[] Streams = ["customers", "products", "orders", "order_lines"];

    public const string SmallConfig = "{seed: 7, customers: 300, products: 50, orders: 1000, changes: 5000, changesPerSecond: 0, batchSize: 500}";

    /// <summary>Every stream merged into lake/shop/&lt;stream&gt; and appended into lake/shop_log/&lt;stream&gt;.</summary>
    public static string Pipeline(string config = SmallConfig, string commit = "{interval: 100ms, maxRows: 5000}") =>
        $"""
        lake: ./lake
        transport: embedded
        commit: {commit}
        connections:
          - name: shop
            connector: sample
            config: {config}
            streams:
        {string.Join("\n", Streams.Select(s => $"      - {{name: {s}, mode: merge}}\n      - {{name: {s}, mode: append, table: shop_log/{s}}}"))}
        """;

    public static async Task AssertExactAsync(string lake, string config = SmallConfig)
    {
        var json = YamlFlowToJson(config);
        var options = SampleExpectations.ParseOptions(json);
        var final = SampleExpectations.FinalState(options, options.Changes);
        var events = SampleExpectations.Events(options, options.Changes);
        var catalog = await new SampleConnector().DiscoverAsync(json, CancellationToken.None);
        var problems = new List<string>();
        foreach (var stream in Streams)
        {
            var keys = catalog.Find(stream)!.PrimaryKey;

            // Merge table: exactly the source's final state.
            var rows = await Lake.ReadAsync(Path.Combine(lake, "shop", stream));
            var expected = final[stream];
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                var key = Lake.Key(row, keys);
                if (!seen.Add(key))
                {
                    problems.Add($"{stream}: key {key} appears twice in the merge table");
                }
                else if (!expected.TryGetValue(key, out var exp))
                {
                    problems.Add($"{stream}: key {key} is in the merge table but not at the source");
                }
                else if (Lake.Diff($"{stream}[{key}]", exp, row) is { } diff)
                {
                    problems.Add(diff);
                }
            }

            foreach (var key in expected.Keys.Where(k => !seen.Contains(k)))
            {
                problems.Add($"{stream}: key {key} is missing from the merge table");
            }

            // Append table: every event exactly once.
            var log = await Lake.ReadAsync(Path.Combine(lake, "shop_log", stream));
            var byPosition = new Dictionary<string, Dictionary<string, object?>>(StringComparer.Ordinal);
            foreach (var row in log)
            {
                var p = (string)row["_position"]!;
                if (!byPosition.TryAdd(p, row))
                {
                    problems.Add($"{stream}: event at {p} appears twice in the append table");
                }
            }

            var evs = events[stream];
            foreach (var e in evs)
            {
                if (!byPosition.TryGetValue(e.Position.ToString(), out var row))
                {
                    problems.Add($"{stream}: event at {e.Position} is missing from the append table");
                    continue;
                }

                if ((string?)row["_op"] != e.Op.Code())
                {
                    problems.Add($"{stream}: event at {e.Position} has _op {row["_op"]}, expected {e.Op.Code()}");
                }

                if (Lake.Diff($"{stream}@{e.Position}", e.Row, row) is { } diff)
                {
                    problems.Add(diff);
                }
            }

            if (log.Count != evs.Count)
            {
                problems.Add($"{stream}: the append table has {log.Count} rows, the source emitted {evs.Count} events");
            }

            if (problems.Count > 20)
            {
                break;
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
        Assert.True(final.Values.Sum(t => t.Count) > 1000, "the scenario should hold thousands of rows");
    }

    /// <summary>The flow mapping used in the YAML, as JSON (numbers stay numbers).</summary>
    public static JsonElement YamlFlowToJson(string flow)
    {
        var body = flow.Trim().TrimStart('{').TrimEnd('}');
        var parts = body.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split(':', 2, StringSplitOptions.TrimEntries))
            .Select(kv => $"\"{kv[0]}\": {kv[1]}");
        using var doc = JsonDocument.Parse("{" + string.Join(",", parts) + "}");
        return doc.RootElement.Clone();
    }
}
