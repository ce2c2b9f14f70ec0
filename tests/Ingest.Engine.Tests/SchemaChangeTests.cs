using Ingest.Delta;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Row = Ingest.Engine.Tests.SchemaScriptConnector.Row;
using Step = Ingest.Engine.Tests.SchemaScriptConnector.Step;

namespace Ingest.Engine.Tests;

/// <summary>The source changes a stream's schema in the middle of a read; each schema policy, in append and merge tables.</summary>
public sealed class SchemaChangeTests
{
    private static readonly Field Id = new("id", DataType.Int64, false);
    private static readonly Field Name = new("name", DataType.String);
    private static readonly StreamSchema V1 = new([Id, Name, new Field("score", DataType.Int32)]);
    private static readonly StreamSchema WithAge = new([Id, Name, new Field("score", DataType.Int32), new Field("age", DataType.Int32)]);
    private static readonly StreamSchema ScoreLong = new([Id, Name, new Field("score", DataType.Int64)]);
    private static readonly StreamSchema ScoreText = new([Id, Name, new Field("score", DataType.String)]);
    private static readonly StreamSchema NoName = new([Id, new Field("score", DataType.Int32)]);

    private static string Table(TempDir dir) => dir.Combine("lake", "c", "people");

    private static async Task<Dictionary<long, Dictionary<string, object?>>> RowsAsync(TempDir dir) =>
        (await Lake.ReadAsync(Table(dir))).ToDictionary(r => (long)r["id"]!);

    [Theory]
    [InlineData("append")]
    [InlineData("merge")]
    [InlineData("history")]
    public async Task Evolve_adds_a_column_that_appears_mid_read_and_earlier_rows_read_null(string mode)
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(V1, new Row(ChangeOp.Insert, 2, [2L, "b", 20])) { Checkpoint = false },
            new Step(WithAge, new Row(ChangeOp.Insert, 3, [3L, "c", 30, 42])),
            new Step(WithAge, new Row(ChangeOp.Insert, 4, [4L, "d", null, 43])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, $"{{name: people, mode: {mode}, schemaPolicy: evolve}}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal([null, null, 42, 43], rows.OrderBy(r => r.Key).Select(r => r.Value["age"]));
        Assert.Equal([10, 20, 30, null], rows.OrderBy(r => r.Key).Select(r => r.Value["score"]));
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.True(table.Snapshot.Schema["age"].Nullable);
    }

    [Fact]
    public async Task Overwrite_takes_a_schema_change_during_the_full_refresh()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Read, 1, [1L, "a", 10])),
            new Step(V1, new Row(ChangeOp.Read, 2, [2L, "b", 20])),
            new Step(WithAge, new Row(ChangeOp.Read, 3, [3L, "c", 30, 42])) { Pause = TimeSpan.FromMilliseconds(300) },
        ])
        { SyncMode = SyncMode.FullRefresh };

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: overwrite}", maxAttempts: 3);

        // The rows before the change were already staged in data files of the old shape: the refresh started over.
        Assert.True(result.Succeeded, result.Connections[0].Error);
        Assert.Equal(2, connector.Reads);
        var rows = await RowsAsync(dir);
        Assert.Equal([null, null, 42], rows.OrderBy(r => r.Key).Select(r => r.Value["age"]));
    }

    [Fact]
    public async Task Evolve_merges_an_update_in_the_new_shape_over_a_row_staged_in_the_old_one()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])) { Checkpoint = false },
            new Step(WithAge, new Row(ChangeOp.Update, 2, [1L, "a2", 11, 30]), new Row(ChangeOp.Insert, 3, [2L, "b", 20, 31])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge, schemaPolicy: evolve}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal(2, rows.Count);
        Assert.Equal(("a2", 11, 30), ((string?)rows[1]["name"], rows[1]["score"], rows[1]["age"]));
        Assert.Equal(31, rows[2]["age"]);
    }

    [Fact]
    public async Task Evolve_keeps_a_column_the_source_dropped_and_new_rows_read_null()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(NoName, new Row(ChangeOp.Insert, 2, [2L, 20]), new Row(ChangeOp.Update, 3, [1L, 11])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge, schemaPolicy: evolve}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal((null, 11), ((string?)rows[1]["name"], rows[1]["score"]));
        Assert.Equal((null, 20), ((string?)rows[2]["name"], rows[2]["score"]));
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.True(table.Snapshot.Schema.IndexOf("name") >= 0);
    }

    [Fact]
    public async Task Evolve_widens_a_type_when_the_table_allows_type_widening()
    {
        using var dir = new TempDir();
        var first = new SchemaScriptConnector(V1, [new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10]))]);
        Assert.True((await SchemaScriptConnector.RunAsync(dir, first, "{name: people, mode: merge}")).Succeeded);
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        await table.SetPropertiesAsync(new Dictionary<string, string?> { ["delta.enableTypeWidening"] = "true" }, CancellationToken.None);
        var second = new SchemaScriptConnector(V1, [
            first.Steps[0],
            new Step(V1, new Row(ChangeOp.Insert, 2, [2L, "b", 20])) { Checkpoint = false },
            new Step(ScoreLong, new Row(ChangeOp.Insert, 3, [3L, "c", 5_000_000_000L])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, second, "{name: people, mode: merge}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal([10L, 20L, 5_000_000_000L], rows.OrderBy(r => r.Key).Select(r => r.Value["score"]));
        table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(DataType.Int64, table.Snapshot.Schema["score"].Type);
    }

    [Fact]
    public async Task Evolve_refuses_a_widening_the_table_does_not_allow_and_says_how_to_allow_it()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(ScoreLong, new Row(ChangeOp.Insert, 2, [2L, "b", 5_000_000_000L])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: append}");

        Assert.False(result.Succeeded);
        Assert.Contains("'score'", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.Contains("ingest table properties", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.Contains("--set delta.enableTypeWidening=true", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.DoesNotContain(await Lake.ReadAsync(Table(dir)), r => (long)r["id"]! == 2);
    }

    [Theory]
    [InlineData("append")]
    [InlineData("merge")]
    public async Task Fail_stops_the_connection_naming_stream_column_and_both_types(string mode)
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(ScoreLong, new Row(ChangeOp.Insert, 2, [2L, "b", 5L])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, $"{{name: people, mode: {mode}, schemaPolicy: fail}}");

        Assert.False(result.Succeeded);
        var error = result.Connections[0].Error;
        Assert.Contains("Stream 'people' changed its schema during the read: column 'score' changed from integer to long (schemaPolicy: fail", error, StringComparison.Ordinal);
        Assert.DoesNotContain(await Lake.ReadAsync(Table(dir)), r => (long)r["id"]! == 2);
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(DataType.Int32, table.Snapshot.Schema["score"].Type);
    }

    [Fact]
    public async Task Fail_names_a_new_column()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(WithAge, new Row(ChangeOp.Insert, 2, [2L, "b", 5, 40])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge, schemaPolicy: fail}");

        Assert.False(result.Succeeded);
        Assert.Contains("column 'age' is new (integer)", result.Connections[0].Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("append")]
    [InlineData("merge")]
    public async Task Rescue_keeps_new_and_unfit_columns_in_rescued_data(string mode)
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])) { Checkpoint = false },
            new Step(WithAge, new Row(ChangeOp.Insert, 2, [2L, "b", 20, 40])),
            new Step(ScoreText, new Row(ChangeOp.Insert, 3, [3L, "c", "high"])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, $"{{name: people, mode: {mode}, schemaPolicy: rescue}}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal([null, """{"age":40}""", """{"score":"high"}"""], rows.OrderBy(r => r.Key).Select(r => (string?)r.Value["_rescued_data"]));
        Assert.Equal([10, 20, null], rows.OrderBy(r => r.Key).Select(r => r.Value["score"]));
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(-1, table.Snapshot.Schema.IndexOf("age"));
        Assert.Equal(DataType.Int32, table.Snapshot.Schema["score"].Type);
    }

    [Fact]
    public async Task Positions_must_still_increase_across_a_schema_change()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 5, [1L, "a", 10])),
            new Step(WithAge, new Row(ChangeOp.Insert, 5, [2L, "b", 20, 40])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: append}");

        Assert.False(result.Succeeded);
        Assert.Contains("positions of stream 'people' must strictly increase", result.Connections[0].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Merge_refuses_a_schema_that_lost_the_key_column()
    {
        using var dir = new TempDir();
        var noKey = new StreamSchema([Name, new Field("score", DataType.Int32)]);
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(noKey, new Row(ChangeOp.Insert, 2, ["b", 20])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge}");

        Assert.False(result.Succeeded);
        Assert.Contains("no longer has its key column 'id'", result.Connections[0].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restart_after_the_change_takes_the_table_schema_as_the_truth()
    {
        using var dir = new TempDir();
        Step[] steps =
        [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(WithAge, new Row(ChangeOp.Insert, 2, [2L, "b", 20, 40])),
            new Step(WithAge, new Row(ChangeOp.Update, 3, [1L, "a2", 11, 41])),
        ];
        var first = new SchemaScriptConnector(V1, steps[..2]);
        Assert.True((await SchemaScriptConnector.RunAsync(dir, first, "{name: people, mode: merge}")).Succeeded);

        // The connector still discovers the old shape (the table has more columns than the stream), then sends the new one.
        var second = new SchemaScriptConnector(V1, steps);
        var result = await SchemaScriptConnector.RunAsync(dir, second, "{name: people, mode: merge}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Equal(2, rows.Count);
        Assert.Equal(("a2", 41), ((string?)rows[1]["name"], rows[1]["age"]));
        Assert.Equal(40, rows[2]["age"]);
    }

    [Fact]
    public async Task Failure_after_the_table_evolved_but_before_the_rows_committed_resumes_without_loss_or_duplicates()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(V1, [
            new Step(V1, new Row(ChangeOp.Insert, 1, [1L, "a", 10])),
            new Step(WithAge, new Row(ChangeOp.Insert, 2, [2L, "b", 20, 40])) { Checkpoint = false },
            new Step(WithAge, new Row(ChangeOp.Insert, 3, [3L, "c", 30, 41])),
        ])
        { FailBeforeStep = 2 };

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: append}", maxAttempts: 3);

        Assert.True(result.Succeeded, result.Connections[0].Error);
        Assert.Equal(2, connector.Reads);
        var rows = await Lake.ReadAsync(Table(dir));
        Assert.Equal([(1L, null), (2L, 40), (3L, 41)], rows.Select(r => ((long)r["id"]!, r["age"])).OrderBy(r => r.Item1));
    }
    private static readonly StructType Address1 = new([new Field("city", DataType.String), new Field("geo", new StructType([new Field("lat", DataType.Double)]))]);

    private static readonly StructType Address2 = new([
        new Field("city", DataType.String), new Field("geo", new StructType([new Field("lat", DataType.Double), new Field("lon", DataType.Double)])), new Field("zip", DataType.String)]);

    private static Dictionary<string, object?> Address(string city, double lat, double? lon = null, string? zip = null, bool v2 = false) =>
        v2 ? new() { ["city"] = city, ["geo"] = new Dictionary<string, object?> { ["lat"] = lat, ["lon"] = lon }, ["zip"] = zip }
           : new() { ["city"] = city, ["geo"] = new Dictionary<string, object?> { ["lat"] = lat } };

    [Theory]
    [InlineData("append")]
    [InlineData("merge")]
    public async Task Evolve_adds_new_nested_struct_fields(string mode)
    {
        using var dir = new TempDir();
        var s1 = new StreamSchema([Id, new Field("address", Address1)]);
        var s2 = new StreamSchema([Id, new Field("address", Address2)]);
        var connector = new SchemaScriptConnector(s1, [
            new Step(s1, new Row(ChangeOp.Insert, 1, [1L, Address("Oslo", 59.9)])) { Checkpoint = false },
            new Step(s2, new Row(ChangeOp.Insert, 2, [2L, Address("Bergen", 60.4, 5.3, "5003", v2: true)])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, $"{{name: people, mode: {mode}}}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        var address = Assert.IsType<StructType>(table.Snapshot.Schema["address"].Type);
        Assert.Equal(["city", "geo", "zip"], address.Fields.Select(f => f.Name));
        Assert.Equal(["lat", "lon"], Assert.IsType<StructType>(address.Fields[1].Type).Fields.Select(f => f.Name));
        var rows = await RowsAsync(dir);
        var oslo = (Dictionary<string, object?>)rows[1]["address"]!;
        var bergen = (Dictionary<string, object?>)rows[2]["address"]!;
        Assert.Equal(("Oslo", null), ((string?)oslo["city"], (string?)oslo["zip"]));
        Assert.Null(((Dictionary<string, object?>)oslo["geo"]!)["lon"]);
        Assert.Equal(("Bergen", "5003", 5.3), ((string?)bergen["city"], (string?)bergen["zip"], ((Dictionary<string, object?>)bergen["geo"]!)["lon"]));
    }

    [Fact]
    public async Task Rescue_keeps_a_grown_struct_whole_in_rescued_data()
    {
        using var dir = new TempDir();
        var s1 = new StreamSchema([Id, new Field("address", Address1)]);
        var s2 = new StreamSchema([Id, new Field("address", Address2)]);
        var connector = new SchemaScriptConnector(s1, [
            new Step(s1, new Row(ChangeOp.Insert, 1, [1L, Address("Oslo", 59.9)])),
            new Step(s2, new Row(ChangeOp.Insert, 2, [2L, Address("Bergen", 60.4, 5.3, "5003", v2: true)])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge, schemaPolicy: rescue}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await RowsAsync(dir);
        Assert.Null(rows[2]["address"]);
        Assert.Equal("""{"address":{"city":"Bergen","geo":{"lat":60.4,"lon":5.3},"zip":"5003"}}""", rows[2]["_rescued_data"]);
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(Address1, table.Snapshot.Schema["address"].Type);
    }
}
