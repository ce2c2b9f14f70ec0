using System.Text.Json.Nodes;

namespace Ingest.Delta.Tests;

public sealed class GoldenTableTests
{
    private static string Golden(string kind, string name) => Path.Combine(TestData.SharedDir(), "delta-golden", kind, name);

    [Theory]
    [InlineData("simple_table")]
    [InlineData("basic-with-inserts-updates")]
    [InlineData("basic-with-inserts-deletes-checkpoint")]
    public async Task Golden_table_reads_the_expected_row_count(string name)
    {
        var summary = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Golden("expected", name), "summary.json")))!;
        var table = await DeltaTable.TryOpenAsync(Golden("tables", name), CancellationToken.None);

        Assert.NotNull(table);
        Assert.Equal(summary["latestVersion"]!.GetValue<long>(), table.Snapshot.Version);
        Assert.Equal(summary["activeFiles"]!.GetValue<int>(), table.Snapshot.Files.Count);
        Assert.Equal(summary["rowCount"]!.GetValue<long>(), await TestData.CountAsync(table, table.Snapshot));
        foreach (var (version, rows) in summary["rowsPerVersion"]!.AsObject())
        {
            var snapshot = await table.GetSnapshotAsync(long.Parse(version, System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None);
            Assert.True(rows!.GetValue<long>() == await TestData.CountAsync(table, snapshot), $"rows at version {version}");
        }
    }

    [Fact]
    public async Task Golden_checkpoint_table_rows_equal_the_expected_ids()
    {
        const string name = "basic-with-inserts-deletes-checkpoint";
        var expected = File.ReadAllLines(Path.Combine(Golden("expected", name), "rows.jsonl"))
            .Select(l => JsonNode.Parse(l)!["id"]!.GetValue<long>()).Order().ToList();
        var table = (await DeltaTable.TryOpenAsync(Golden("tables", name), CancellationToken.None))!;

        var ids = new List<long>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            var col = (Apache.Arrow.Int64Array)batch.Column(0);
            for (var i = 0; i < batch.Length; i++)
            {
                ids.Add(col.GetValue(i)!.Value);
            }
        }

        Assert.Equal(expected, ids.Order().ToList());
    }

    /// <summary>Every table in the golden set: a table added there is covered without touching this file.</summary>
    public static TheoryData<string> ReadableTables()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(TestData.SharedDir(), "delta-golden", "tables")).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ReadableTables))]
    public async Task Golden_table_row_counts_per_version_match_summary(string name)
    {
        var summary = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Golden("expected", name), "summary.json")))!;
        var table = (await DeltaTable.TryOpenAsync(Golden("tables", name), CancellationToken.None))!;

        Assert.Equal(summary["latestVersion"]!.GetValue<long>(), table.Snapshot.Version);
        Assert.Equal(summary["activeFiles"]!.GetValue<int>(), table.Snapshot.Files.Count);
        foreach (var (version, rows) in summary["rowsPerVersion"]!.AsObject())
        {
            var snapshot = await table.GetSnapshotAsync(long.Parse(version, System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None);
            Assert.True(rows!.GetValue<long>() == await TestData.CountAsync(table, snapshot), $"rows at version {version}");
        }
    }

    [Theory]
    [MemberData(nameof(ReadableTables))]
    public async Task Golden_table_rows_equal_rows_jsonl(string name)
    {
        var expected = File.ReadAllLines(Path.Combine(Golden("expected", name), "rows.jsonl"))
            .Where(l => l.Length > 0).Select(l => Canonical(JsonNode.Parse(l))).Order(StringComparer.Ordinal).ToList();
        var table = (await DeltaTable.TryOpenAsync(Golden("tables", name), CancellationToken.None))!;

        var actual = new List<string>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < batch.Length; i++)
            {
                using var ms = new MemoryStream();
                using (var w = new System.Text.Json.Utf8JsonWriter(ms))
                {
                    Ingest.Sdk.Records.ArrowValues.WriteRowJson(w, batch, i);
                }

                actual.Add(Canonical(JsonNode.Parse(ms.ToArray())));
            }
        }

        Assert.Equal(expected, actual.Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>JSON with numbers compared numerically (the README: decimals are compared by value, so 0.0 equals 0.00).</summary>
    private static string Canonical(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject o => "{" + string.Join(",", o.Select(kv => System.Text.Json.JsonSerializer.Serialize(kv.Key) + ":" + Canonical(kv.Value))) + "}",
        JsonArray a => "[" + string.Join(",", a.Select(Canonical)) + "]",
        JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.Number => CanonicalNumber(v.ToJsonString()),
        _ => node.ToJsonString(),
    };

    private static string CanonicalNumber(string text)
    {
        if (text.Contains('E', StringComparison.OrdinalIgnoreCase))
        {
            return double.Parse(text, System.Globalization.CultureInfo.InvariantCulture).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        }

        if (text.Contains('.', StringComparison.Ordinal))
        {
            text = text.TrimEnd('0').TrimEnd('.');
        }

        return text is "-0" ? "0" : text;
    }
}
