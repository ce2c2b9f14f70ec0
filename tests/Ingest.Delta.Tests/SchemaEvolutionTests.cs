using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

public sealed class SchemaEvolutionTests
{
    private static readonly StreamSchema IdInt = new([new Field("id", DataType.Int64, Nullable: false), new Field("n", DataType.Int32)]);

    private static RecordBatch IntRows(params (long Id, int N)[] rows) => new(IdInt.ToArrowSchema(),
        [new Int64Array.Builder().AppendRange(rows.Select(r => r.Id)).Build(), new Int32Array.Builder().AppendRange(rows.Select(r => r.N)).Build()], rows.Length);

    [Fact]
    public async Task Evolve_adds_nullable_column_and_old_files_read_it_as_null()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, IdInt, [], null, CancellationToken.None);
        await table.AppendAsync([IntRows((1, 10))], new CommitOptions("WRITE"), CancellationToken.None);
        var wider = new StreamSchema([.. IdInt.Columns, new Field("note", DataType.String, Nullable: false)]);

        var result = await table.EvolveSchemaAsync(wider, new CommitOptions("ADD COLUMNS"), CancellationToken.None);
        var batch = new RecordBatch(wider.ToArrowSchema(), [new Int64Array.Builder().Append(2).Build(), new Int32Array.Builder().Append(20).Build(), new StringArray.Builder().Append("hi").Build()], 1);
        await table.AppendAsync([DeltaSchema.Conform(batch, table.Snapshot.Schema)], new CommitOptions("WRITE"), CancellationToken.None);

        Assert.NotNull(result);
        Assert.True(table.Snapshot.Schema["note"].Nullable);
        var notes = new Dictionary<long, string?>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < b.Length; i++)
            {
                notes[((Int64Array)b.Column(0)).GetValue(i)!.Value] = ((StringArray)b.Column(2)).GetString(i);
            }
        }

        Assert.Equal(new Dictionary<long, string?> { [1] = null, [2] = "hi" }, notes);
        Assert.Null(await table.EvolveSchemaAsync(wider, new CommitOptions("ADD COLUMNS"), CancellationToken.None));
    }

    [Fact]
    public async Task Widening_without_type_widening_feature_is_refused_naming_column_and_types()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, IdInt, [], null, CancellationToken.None);
        var widened = new StreamSchema([IdInt.Columns[0], new Field("n", DataType.Int64)]);

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => table.EvolveSchemaAsync(widened, new CommitOptions("CHANGE COLUMN"), CancellationToken.None));

        Assert.Contains("'n'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("int", ex.Message, StringComparison.Ordinal);
        Assert.Contains("long", ex.Message, StringComparison.Ordinal);
        Assert.Contains("typeWidening", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, table.Snapshot.Version);
    }

    [Fact]
    public async Task Widening_with_type_widening_enabled_raises_protocol_and_reads_old_files_widened()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, IdInt, [], new Dictionary<string, string> { ["delta.enableTypeWidening"] = "true" }, CancellationToken.None);
        await table.AppendAsync([IntRows((1, 10))], new CommitOptions("WRITE"), CancellationToken.None);
        var widened = new StreamSchema([IdInt.Columns[0], new Field("n", DataType.Int64)]);

        await table.EvolveSchemaAsync(widened, new CommitOptions("CHANGE COLUMN"), CancellationToken.None);
        var big = new RecordBatch(widened.ToArrowSchema(), [new Int64Array.Builder().Append(2).Build(), new Int64Array.Builder().Append(5_000_000_000).Build()], 1);
        await table.AppendAsync([big], new CommitOptions("WRITE"), CancellationToken.None);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Contains("typeWidening", d.ReaderFeatures);
        Assert.Contains("typeWidening", d.WriterFeatures);
        var lines = await File.ReadAllLinesAsync(Path.Combine(dir.Path, "_delta_log", "00000000000000000002.json"));
        var meta = JsonNode.Parse(lines.Single(l => l.StartsWith("{\"metaData\"", StringComparison.Ordinal)))!["metaData"]!;
        var field = JsonNode.Parse(meta["schemaString"]!.GetValue<string>())!["fields"]![1]!;
        Assert.Equal("integer", field["metadata"]!["delta.typeChanges"]![0]!["fromType"]!.GetValue<string>());
        var values = new List<long>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            values.AddRange(((Int64Array)b.Column(1)).Values.ToArray());
        }

        Assert.Equal([10L, 5_000_000_000L], values.Order());
    }

    [Theory]
    [InlineData("integer", "long", true)]
    [InlineData("long", "integer", false)]
    [InlineData("float", "double", true)]
    [InlineData("date", "timestamp_ntz", true)]
    [InlineData("decimal(10,2)", "decimal(12,4)", true)]
    [InlineData("decimal(10,2)", "decimal(11,4)", false)]
    [InlineData("string", "long", false)]
    [InlineData("integer", "decimal(10,0)", true)]
    public void Type_widening_rules_follow_the_protocol(string from, string to, bool widens)
    {
        Assert.Equal(widens, DeltaSchema.CanWiden(DataType.FromDeltaName(from), DataType.FromDeltaName(to)));
    }

    [Fact]
    public void Conform_fills_missing_columns_with_null_and_widens_narrow_ones()
    {
        var table = new StreamSchema([new Field("id", DataType.Int64, Nullable: false), new Field("extra", DataType.String), new Field("n", DataType.Int64)]);
        var batch = IntRows((1, 7));

        var conformed = DeltaSchema.Conform(batch, table);

        Assert.Equal(3, conformed.ColumnCount);
        Assert.True(conformed.Column(1).IsNull(0));
        Assert.Equal(7L, ((Int64Array)conformed.Column(2)).GetValue(0));
    }
}
