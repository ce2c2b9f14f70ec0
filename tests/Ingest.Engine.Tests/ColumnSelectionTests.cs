using Ingest.Connectors.Sample;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging.Abstractions;
using Row = Ingest.Engine.Tests.SchemaScriptConnector.Row;
using Step = Ingest.Engine.Tests.SchemaScriptConnector.Step;

namespace Ingest.Engine.Tests;

/// <summary><c>columns:</c> on a stream: only the selected columns reach its tables.</summary>
public sealed class ColumnSelectionTests
{
    private const string Config = "{seed: 11, customers: 200, products: 30, orders: 600, changes: 3000, changesPerSecond: 0, batchSize: 400}";

    private static readonly Dictionary<string, ISourceConnector> Sample = new() { ["sample"] = new SampleConnector() };

    private static string Pipeline(string streams) =>
        $"lake: ./lake\ncommit: {{interval: 50ms, maxRows: 5000}}\nconnections:\n  - name: shop\n    connector: sample\n    config: {Config}\n    streams:\n{streams}";

    [Fact]
    public async Task Selected_columns_are_the_only_columns_of_the_tables_and_merge_is_exact_on_them()
    {
        using var dir = new TempDir();
        var yaml = Pipeline(
            "      - {name: customers, mode: merge, columns: [email, id, country]}\n" +
            "      - {name: orders, mode: merge, columns: [id, status, total]}\n" +
            "      - {name: orders, mode: append, table: shop_log/orders, columns: [id, status, total]}\n" +
            "      - {name: products, mode: merge}\n");
        var bound = await PipelineBinder.BindAsync(PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml")), Sample, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var options = new RunOptions { Once = true, RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 1 };

        var result = await PipelineRunner.RunAsync(bound, options, null, NullLoggerFactory.Instance, new RunStatus(), timeout.Token);

        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => c.Error)));
        var json = SampleLake.YamlFlowToJson(Config);
        var sampleOptions = SampleExpectations.ParseOptions(json);
        var final = SampleExpectations.FinalState(sampleOptions, sampleOptions.Changes);
        var events = SampleExpectations.Events(sampleOptions, sampleOptions.Changes);
        var lake = dir.Combine("lake");

        // The stream's order, not the list's; the key kept.
        await AssertMirrorAsync(Path.Combine(lake, "shop", "customers"), final["customers"], ["id", "email", "country"], "id");
        await AssertMirrorAsync(Path.Combine(lake, "shop", "orders"), final["orders"], ["id", "status", "total"], "id");

        // Without a selection every column is written.
        var products = await Lake.ReadAsync(Path.Combine(lake, "shop", "products"));
        Assert.Equal(SampleStreams.Schemas[SampleStreams.IndexOf("products")].Columns.Select(c => c.Name), products[0].Keys.Where(k => !k.StartsWith('_')));

        // The append table of the same stream takes the same columns, one row per event.
        var log = await Lake.ReadAsync(Path.Combine(lake, "shop_log", "orders"));
        Assert.Equal(events["orders"].Count, log.Count);
        Assert.All(log, r => Assert.Equal(["id", "status", "total"], r.Keys.Where(k => !k.StartsWith('_'))));
        var byPosition = log.ToDictionary(r => (string)r["_position"]!, StringComparer.Ordinal);
        foreach (var e in events["orders"])
        {
            var row = byPosition[e.Position.ToString()];
            Assert.Null(Lake.Diff($"orders@{e.Position}", Project(e.Row, ["id", "status", "total"]), row));
        }
    }

    private static Dictionary<string, object?> Project(IReadOnlyDictionary<string, object?> row, string[] columns) =>
        columns.Where(row.ContainsKey).ToDictionary(c => c, c => row[c], StringComparer.Ordinal);

    /// <summary>The table holds exactly the source's final rows, cut to <paramref name="columns"/>, and no other column.</summary>
    private static async Task AssertMirrorAsync(string table, IReadOnlyDictionary<string, IReadOnlyDictionary<string, object?>> final, string[] columns, string key)
    {
        var rows = await Lake.ReadAsync(table);
        Assert.Equal(final.Count, rows.Count);
        var problems = new List<string>();
        foreach (var row in rows)
        {
            Assert.Equal(columns, row.Keys.Where(k => !k.StartsWith('_')));
            var k = Lake.Key(row, [key]);
            if (!final.TryGetValue(k, out var expected))
            {
                problems.Add($"{table}: key {k} is not at the source");
            }
            else if (Lake.Diff($"{table}[{k}]", Project(expected, columns), row) is { } diff)
            {
                problems.Add(diff);
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(10)));
    }

    [Fact]
    public async Task An_unknown_column_is_refused_with_its_line_and_a_suggestion()
    {
        using var dir = new TempDir();
        var yaml = Pipeline("      - name: orders\n        mode: merge\n        columns: [id, stauts]\n");
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));

        var e = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, Sample, CancellationToken.None));

        var error = Assert.Single(e.Errors);
        Assert.Equal((10, 23), (error.Line, error.Column));
        Assert.Equal("connections[0].streams[0].columns[1]", error.Path);
        Assert.Contains("unknown column 'stauts' of stream 'orders' (did you mean 'status'?)", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("pipeline.yaml:10:23", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("merge")]
    [InlineData("history")]
    public async Task Leaving_out_a_key_column_of_a_keyed_table_is_refused(string mode)
    {
        using var dir = new TempDir();
        var yaml = Pipeline($"      - {{name: order_lines, mode: {mode}, columns: [order_id, quantity]}}\n");
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));

        var e = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, Sample, CancellationToken.None));

        var error = Assert.Single(e.Errors);
        Assert.Equal("connections[0].streams[0].columns", error.Path);
        Assert.Contains("key column 'line_no' of stream 'order_lines' cannot be left out", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Columns_with_the_kafka_transport_are_refused_rather_than_ignored()
    {
        using var dir = new TempDir();
        var yaml = Pipeline("      - {name: orders, mode: merge, columns: [id, status]}\n")
            .Replace("lake: ./lake\n", "lake: ./lake\ntransport: {kind: kafka, bootstrapServers: \"127.0.0.1:1\", topicPrefix: t}\n", StringComparison.Ordinal);
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));

        var e = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, Sample, CancellationToken.None));

        Assert.Contains("needs the embedded transport", Assert.Single(e.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_append_table_may_leave_out_the_key()
    {
        using var dir = new TempDir();
        var def = PipelineFile.Parse(Pipeline("      - {name: orders, mode: append, columns: [status, total]}\n"), dir.Combine("pipeline.yaml"));

        var bound = await PipelineBinder.BindAsync(def, Sample, CancellationToken.None);

        var target = Assert.Single(bound.Connections[0].Targets);
        Assert.Equal(["status", "total"], target.Stream.Schema.Columns.Select(c => c.Name));
        Assert.Equal(["status", "total"], target.Columns);
    }

    [Fact]
    public async Task One_stream_with_two_different_column_selections_is_refused()
    {
        using var dir = new TempDir();
        var def = PipelineFile.Parse(Pipeline(
            "      - {name: orders, mode: merge, columns: [id, status]}\n      - {name: orders, mode: append, table: log/orders, columns: [id, total]}\n"), dir.Combine("pipeline.yaml"));

        var e = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, Sample, CancellationToken.None));

        Assert.Contains(e.Errors, x => x.Message.Contains("selected more than once with different columns", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("columns: []", "expected a non-empty list of column names")]
    [InlineData("columns: id", "expected a non-empty list of column names")]
    [InlineData("columns: [id, {a: b}]", "expected a column name")]
    public void A_malformed_columns_list_is_refused_by_the_parser(string columns, string message)
    {
        var e = Assert.Throws<PipelineException>(() => PipelineFile.Parse(Pipeline($"      - {{name: orders, {columns}}}\n"), Path.Combine(Path.GetTempPath(), "p.yaml")));

        Assert.Contains(e.Errors, x => x.Message.Contains(message, StringComparison.Ordinal) && x.Line == 8);
    }

    [Fact]
    public async Task Unchanged_columns_follow_their_column_when_others_are_left_out()
    {
        // Leaving out 'bio' (ordinal 2) moves 'score' from 3 to 2: its "not sent" mark must move with it.
        var people = new StreamSchema([
            new Field("id", DataType.Int64, false), new Field("name", DataType.String), new Field("bio", DataType.String), new Field("score", DataType.Int32)]);
        using var dir = new TempDir();
        var connector = new SchemaScriptConnector(people, [
            new Step(people, new Row(ChangeOp.Insert, 1, [1L, "a", "bio a", 5]), new Row(ChangeOp.Insert, 2, [2L, "b", "bio b", 7])),
            new Step(people, new Row(ChangeOp.Update, 3, [1L, "a2", null, null], [2, 3]), new Row(ChangeOp.Update, 4, [2L, "b2", null, 8], [2])),
        ]);

        var result = await SchemaScriptConnector.RunAsync(dir, connector, "{name: people, mode: merge, columns: [id, name, score]}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = (await Lake.ReadAsync(dir.Combine("lake", "c", "people"))).ToDictionary(r => (long)r["id"]!);
        Assert.Equal(["id", "name", "score"], rows[1].Keys.Where(k => !k.StartsWith('_')));
        Assert.Equal(("a2", 5), ((string?)rows[1]["name"], (int?)rows[1]["score"]));
        Assert.Equal(("b2", 8), ((string?)rows[2]["name"], (int?)rows[2]["score"]));
    }

    [Fact]
    public void Projection_keeps_the_chosen_arrays_and_remaps_unchanged_ordinals()
    {
        var schema = new StreamSchema([new Field("a", DataType.Int64, false), new Field("b", DataType.String), new Field("c", DataType.Int32), new Field("d", DataType.String)]);
        var builder = new ChangeBatchBuilder("s", schema);
        builder.BeginRow(ChangeOp.Update, new SourcePosition(0, 1), 0);
        builder.SetInt64(0, 1);
        builder.SetString(1, "x");
        builder.SetUnchanged(2);
        builder.SetUnchanged(3);
        builder.EndRow();
        builder.BeginRow(ChangeOp.Update, new SourcePosition(0, 2), 0);
        builder.SetInt64(0, 2);
        builder.SetUnchanged(1);
        builder.SetInt32(2, 9);
        builder.SetString(3, "y");
        builder.EndRow();
        var batch = builder.Build();
        var kept = batch.Data.Column(2);

        using var projected = ColumnProjection.Project(batch, ["a", "c", "d"]);

        Assert.Equal(["a", "c", "d"], projected.Data.Schema.FieldsList.Select(f => f.Name));
        Assert.Same(kept, projected.Data.Column(1));
        Assert.Equal(2, projected.Length);
        Assert.Equal([1, 2], projected.Unchanged![0]);
        Assert.False(projected.Unchanged.ContainsKey(1));
        Assert.Equal(9, ((Apache.Arrow.Int32Array)projected.Data.Column(1)).GetValue(1));
    }
}
