using Ingest.Delta;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;
using Row = Ingest.Engine.Tests.SchemaScriptConnector.Row;
using Step = Ingest.Engine.Tests.SchemaScriptConnector.Step;

namespace Ingest.Engine.Tests;

/// <summary>
/// Values the source did not send (PostgreSQL's unchanged TOASTed columns without REPLICA IDENTITY FULL):
/// merge and history tables keep the previous value, append tables say which columns were not sent.
/// </summary>
public sealed class UnchangedColumnsTests
{
    private static readonly StreamSchema People = new([
        new Field("id", DataType.Int64, false), new Field("name", DataType.String), new Field("bio", DataType.String), new Field("score", DataType.Int32)]);

    private const int Bio = 2;
    private const int Score = 3;

    private static Row Insert(ulong pos, long id, string name, string? bio, int score) => new(ChangeOp.Insert, pos, [id, name, bio, score]);

    private static Row Update(ulong pos, long id, string name, string? bio, int score, params int[] unchanged) => new(ChangeOp.Update, pos, [id, name, bio, score], unchanged);

    private static Row Delete(ulong pos, long id) => new(ChangeOp.Delete, pos, [id, null, null, null]);

    private static string Table(TempDir dir) => dir.Combine("lake", "c", "people");

    private static async Task<Dictionary<long, (string? Name, string? Bio, int? Score)>> MirrorAsync(TempDir dir) =>
        (await Lake.ReadAsync(Table(dir))).ToDictionary(r => (long)r["id"]!, r => ((string?)r["name"], (string?)r["bio"], (int?)r["score"]));

    [Fact]
    public async Task Merge_keeps_the_tables_value_across_commits()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Insert(1, 1, "a", "a long biography", 1), Insert(2, 2, "b", "b's", 1)),
            new Step(People, Update(3, 1, "a2", null, 2, Bio), Update(4, 2, "b2", "b's new", 2)),
            new Step(People, Update(5, 1, "a3", null, 0, Bio, Score)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await MirrorAsync(dir);
        Assert.Equal(("a3", "a long biography", 2), rows[1]);
        Assert.Equal(("b2", "b's new", 2), rows[2]);
    }

    [Fact]
    public async Task Merge_keeps_the_value_of_an_earlier_row_of_the_same_key_in_the_same_commit()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Insert(1, 1, "a", "first", 1), Insert(2, 2, "b", "b bio", 1)),
            new Step(People, Update(3, 1, "a2", "second", 2), Update(4, 1, "a3", null, 3, Bio)) { Checkpoint = false },
            new Step(People, Update(5, 1, "a4", null, 4, Bio), Update(6, 2, "b2", null, 2, Bio), Insert(7, 3, "c", "c bio", 1), Update(8, 3, "c2", null, 2, Bio)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await MirrorAsync(dir);
        Assert.Equal(("a4", "second", 4), rows[1]);
        Assert.Equal(("b2", "b bio", 2), rows[2]);
        Assert.Equal(("c2", "c bio", 2), rows[3]);
    }

    [Fact]
    public async Task Merge_leaves_null_and_warns_once_when_no_previous_row_exists()
    {
        using var dir = new TempDir();
        var logs = new ListLoggerFactory();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Update(1, 9, "nine", null, 1, Bio)),
            new Step(People, Update(2, 8, "eight", null, 1, Bio)),
            new Step(People, Insert(3, 7, "seven", "kept?", 1), Delete(4, 7), Update(5, 7, "seven again", null, 2, Bio)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge}", logs);

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await MirrorAsync(dir);
        Assert.Equal(("nine", null, 1), rows[9]);
        Assert.Equal(("eight", null, 1), rows[8]);
        Assert.Equal(("seven again", null, 2), rows[7]);
        var warning = Assert.Single(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("unchanged", StringComparison.Ordinal));
        Assert.Contains("column(s) bio", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Merge_after_a_truncate_in_the_same_commit_does_not_revive_the_old_value()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Insert(1, 1, "a", "old bio", 1)),
            new Step(People, new Row(ChangeOp.Truncate, 2, []), Update(3, 1, "a2", null, 2, Bio)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        Assert.Equal(("a2", null, 2), (await MirrorAsync(dir))[1]);
    }

    [Fact]
    public async Task History_keeps_the_previous_value_in_the_new_version_row()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Insert(1, 1, "a", "bio one", 1)),
            new Step(People, Update(2, 1, "a2", null, 2, Bio), Update(3, 1, "a3", null, 3, Bio)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: history}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = (await Lake.ReadAsync(Table(dir)))
            .Select(r => ((string?)r["name"], (string?)r["bio"], (bool)r[ScdColumns.IsCurrent]!))
            .OrderBy(r => r.Item1, StringComparer.Ordinal).ToList();
        Assert.Equal([("a", "bio one", false), ("a2", "bio one", false), ("a3", "bio one", true)], rows);
    }

    [Fact]
    public async Task Append_records_which_columns_were_not_sent()
    {
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(People, [
            new Step(People, Insert(1, 1, "a", "bio", 1)) { Checkpoint = false },
            new Step(People, Update(2, 1, "a2", null, 2, Bio), Update(3, 1, "a3", null, 0, Bio, Score), Update(4, 1, "a4", "new bio", 4)),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: append}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = (await Lake.ReadAsync(Table(dir))).OrderBy(r => (string)r["_position"]!, StringComparer.Ordinal).ToList();
        Assert.Equal(["a", "a2", "a3", "a4"], rows.Select(r => (string?)r["name"]));
        Assert.Null(rows[0]["_unchanged"]);
        Assert.Equal(["bio"], Assert.IsAssignableFrom<IEnumerable<object?>>(rows[1]["_unchanged"]));
        Assert.Equal(["bio", "score"], Assert.IsAssignableFrom<IEnumerable<object?>>(rows[2]["_unchanged"]));
        Assert.Null(rows[3]["_unchanged"]);
        Assert.Equal([null, null], rows.Skip(1).Take(2).Select(r => r["bio"]));
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(new ArrayType(DataType.String, false), table.Snapshot.Schema["_unchanged"].Type);
    }

    [Fact]
    public async Task Append_table_gets_no_unchanged_column_until_a_row_needs_it()
    {
        using var dir = new TempDir();
        var complete = new SchemaScriptConnector(People, [new Step(People, Insert(1, 1, "a", "bio", 1), Update(2, 1, "a2", "bio2", 2))]);

        var result = await SchemaScriptConnector.RunAsync(dir, complete, "{name: people, mode: append, schemaPolicy: fail}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var table = (await DeltaTable.TryOpenAsync(Table(dir), CancellationToken.None))!;
        Assert.Equal(-1, table.Snapshot.Schema.IndexOf("_unchanged"));

        // Later a row arrives without its TOASTed value: the column is added even under schemaPolicy fail (it is the sink's).
        var later = new SchemaScriptConnector(People, [complete.Steps[0], new Step(People, Update(3, 1, "a3", null, 3, Bio))]);
        result = await SchemaScriptConnector.RunAsync(dir, later, "{name: people, mode: append, schemaPolicy: fail}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = (await Lake.ReadAsync(Table(dir))).OrderBy(r => (string)r["_position"]!, StringComparer.Ordinal).ToList();
        Assert.Equal([null, null, "bio"], rows.Select(r => ((IEnumerable<object?>?)r["_unchanged"])?.Single()));
    }
}
