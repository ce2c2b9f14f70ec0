using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Row = Ingest.Engine.Tests.SchemaScriptConnector.Row;
using Step = Ingest.Engine.Tests.SchemaScriptConnector.Step;

namespace Ingest.Engine.Tests;

/// <summary>A stream that brings its own <c>_rescued_data</c> column (file connectors), alone and with the sink's rescue policy.</summary>
public sealed class RescuedDataTests
{
    private static readonly StreamSchema WithOwn = new([new Field("id", DataType.Int64, false), new Field("name", DataType.String), new Field("_rescued_data", DataType.String)]);

    private static readonly StreamSchema WithOwnAndAge = new([.. WithOwn.Columns, new Field("age", DataType.Int32)]);

    private static Dictionary<string, string?> ByName(IEnumerable<Dictionary<string, object?>> rows) =>
        rows.ToDictionary(r => (string)r["name"]!, r => (string?)r["_rescued_data"], StringComparer.Ordinal);

    [Theory]
    [InlineData("append")]
    [InlineData("merge")]
    public async Task Stream_rescued_data_becomes_the_tables_rescued_data_column(string mode)
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(WithOwn, [
            new Step(WithOwn, new Row(ChangeOp.Insert, 1, [1L, "a", null]), new Row(ChangeOp.Insert, 2, [2L, "b", """{"size":"12 kg"}"""])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, $"{{name: people, mode: {mode}, schemaPolicy: fail}}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        Assert.Equal(new Dictionary<string, string?> { ["a"] = null, ["b"] = """{"size":"12 kg"}""" }, ByName(rows));
        var table = (await Delta.DeltaTable.TryOpenAsync(dir.Combine("lake", "c", "people"), CancellationToken.None))!;
        Assert.Single(table.Snapshot.Schema.Columns, c => c.Name == "_rescued_data");
    }

    [Fact]
    public async Task Source_and_policy_rescues_of_one_row_merge_into_one_json_object()
    {
        using var dir = new TempDir();
        var first = new SchemaScriptConnector(WithOwn, [new Step(WithOwn, new Row(ChangeOp.Insert, 1, [1L, "a", null]))]);
        Assert.True((await SchemaScriptConnector.RunAsync(dir, first, "{name: people, mode: append, schemaPolicy: rescue}")).Succeeded);

        // The source grew a column the table lacks: the policy rescues it, beside what the source rescued itself.
        var second = new SchemaScriptConnector(WithOwnAndAge, [
            first.Steps[0],
            new Step(WithOwnAndAge,
                new Row(ChangeOp.Insert, 2, [2L, "both", """{"size":"12 kg"}""", 42]),
                new Row(ChangeOp.Insert, 3, [3L, "policy only", null, 7]),
                new Row(ChangeOp.Insert, 4, [4L, "source only", """{"size":"n/a"}""", null]),
                new Row(ChangeOp.Insert, 5, [5L, "source not json", "12 kg", 8]),
                new Row(ChangeOp.Insert, 6, [6L, "neither", null, null])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, second, "{name: people, mode: append, schemaPolicy: rescue}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = ByName(await Lake.ReadAsync(dir.Combine("lake", "c", "people")));
        Assert.Equal("""{"size":"12 kg","age":42}""", rows["both"]);
        Assert.Equal("""{"age":7}""", rows["policy only"]);
        Assert.Equal("""{"size":"n/a"}""", rows["source only"]);
        Assert.Equal("""{"_rescued_data":"12 kg","age":8}""", rows["source not json"]);
        Assert.Null(rows["neither"]);
        Assert.Null(rows["a"]);
        using var doc = JsonDocument.Parse(rows["both"]!);
        Assert.Equal(2, doc.RootElement.EnumerateObject().Count());
    }

    [Fact]
    public async Task Stream_rescued_data_of_another_type_is_refused_by_name()
    {
        using var dir = new TempDir();
        var wrong = new StreamSchema([new Field("id", DataType.Int64, false), new Field("_rescued_data", DataType.Int32)]);
        var connector = new SchemaScriptConnector(wrong, [new Step(wrong, new Row(ChangeOp.Insert, 1, [1L, 5]))]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: append}");

        Assert.False(result.Succeeded);
        Assert.Contains("'_rescued_data' integer", result.Connections[0].Error, StringComparison.Ordinal);
    }
}
