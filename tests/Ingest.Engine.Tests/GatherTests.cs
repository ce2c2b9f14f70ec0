using Apache.Arrow;
using Ingest.Engine.Sink;
using Ingest.Sdk.Records;

namespace Ingest.Engine.Tests;

public sealed class GatherTests
{
    [Fact]
    public void Gather_picks_rows_across_batches_in_the_order_given()
    {
        static ChangeBatch Make(int from, int n)
        {
            var b = new ChangeBatchBuilder("items", FakeConnector.ItemsSchema);
            for (var i = from; i < from + n; i++)
            {
                b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i + 1, 0), 0);
                b.SetInt64(0, i);
                if (i % 3 == 0)
                {
                    b.SetNull(1);
                }
                else
                {
                    b.SetString(1, $"v{i}");
                }

                b.EndRow();
            }

            return b.Build();
        }

        using var a = Make(0, 10);
        using var c = Make(10, 10);
        var schema = LakeColumns.TableSchema(FakeConnector.ItemsSchema, Pipelines.SinkMode.Merge).ToArrowSchema();
        var ra = LakeColumns.Build(schema, Pipelines.SinkMode.Merge, a, 0, 10, 5);
        var rc = LakeColumns.Build(schema, Pipelines.SinkMode.Merge, c, 2, 8, 5);

        using var g = LakeColumns.Gather(schema, [ra, rc], [(0, 1), (0, 2), (0, 3), (1, 0), (1, 5), (0, 9)]);

        Assert.Equal(6, g.Length);
        for (var col = 0; col < g.ColumnCount; col++)
        {
            Assert.Equal(6, g.Column(col).Length);
        }

        Assert.Equal(new object?[] { 1L, 2L, 3L, 12L, 17L, 9L }, Enumerable.Range(0, 6).Select(i => ArrowValues.GetValue(g.Column(0), i)));
        Assert.Equal(new object?[] { "v1", "v2", null, null, "v17", null }, Enumerable.Range(0, 6).Select(i => ArrowValues.GetValue(g.Column(1), i)));
        Assert.Equal(new SourcePosition(13, 0).ToString(), ArrowValues.GetValue(g.Column(2), 3));
    }

    [Fact]
    public async Task Gathered_rows_can_be_written_to_a_table()
    {
        using var dir = new TempDir();
        var b = new ChangeBatchBuilder("items", FakeConnector.ItemsSchema);
        for (var i = 0; i < 10; i++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i + 1, 0), i % 2 == 0 ? 0 : 1_700_000_000_000_000);
            b.SetInt64(0, i);
            b.SetString(1, $"v{i}");
            b.EndRow();
        }

        using var batch = b.Build();
        var tableSchema = LakeColumns.TableSchema(FakeConnector.ItemsSchema, Pipelines.SinkMode.Merge);
        var schema = tableSchema.ToArrowSchema();
        var rows = LakeColumns.Build(schema, Pipelines.SinkMode.Merge, batch, 3, 7, 5);
        var table = await Ingest.Delta.DeltaTable.OpenOrCreateAsync(dir.Combine("t"), tableSchema, [], null, CancellationToken.None);

        await table.AppendAsync([rows], new Ingest.Delta.CommitOptions("WRITE"), CancellationToken.None);

        using var merged = LakeColumns.Gather(schema, [rows], [(0, 0), (0, 2)]);
        await table.MergeAsync(new Ingest.Delta.MergeRequest(merged, [true, false], ["id"], "_position"), new Ingest.Delta.CommitOptions("MERGE"), CancellationToken.None);

        var back = await Lake.ReadAsync(dir.Combine("t"));
        Assert.Equal(new object?[] { 3L, 4L, 5L, 6L, 7L, 8L, 9L }, back.Select(r => r["id"]).Order());
    }
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Gather_copies_runs_and_single_rows_of_every_type_from_sliced_batches_value_for_value(int seed)
    {
        var schema = new Ingest.Sdk.Types.StreamSchema(
        [
            new("id", Ingest.Sdk.Types.DataType.Int64, Nullable: false),
            new("flag", Ingest.Sdk.Types.DataType.Boolean),
            new("name", Ingest.Sdk.Types.DataType.String),
            new("bytes", Ingest.Sdk.Types.DataType.Binary),
            new("amount", Ingest.Sdk.Types.DataType.Decimal(12, 2)),
            new("at", Ingest.Sdk.Types.DataType.Timestamp),
            new("tags", new Ingest.Sdk.Types.ArrayType(Ingest.Sdk.Types.DataType.String)),
        ]);
        var random = new Random(seed);
        ChangeBatch Make(int from, int n)
        {
            var b = new ChangeBatchBuilder("items", schema);
            for (var i = from; i < from + n; i++)
            {
                b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i + 1, 0), 0);
                b.SetInt64(0, i);
                for (var c = 1; c < 7; c++)
                {
                    if (random.Next(4) == 0)
                    {
                        b.SetNull(c);
                        continue;
                    }

                    switch (c)
                    {
                        case 1: b.SetBoolean(c, random.Next(2) == 0); break;
                        case 2: b.SetString(c, new string('x', random.Next(0, 12)) + i); break;
                        case 3: b.SetBinary(c, Enumerable.Range(0, random.Next(0, 5)).Select(x => (byte)(x + i)).ToArray()); break;
                        case 4: b.SetDecimal(c, i + 0.25m); break;
                        case 5: b.SetTimestampMicros(c, 1_700_000_000_000_000L + i); break;
                        default: b.SetValue(c, new List<object?> { "t" + i, null }); break;
                    }
                }

                b.EndRow();
            }

            return b.Build();
        }

        using var a = Make(0, 300);
        using var c = Make(300, 300);
        var arrow = LakeColumns.TableSchema(schema, Pipelines.SinkMode.Merge).ToArrowSchema();

        // Sliced builds (offsets into the source arrays), then picks mixing long runs, short runs and single rows.
        var sources = new[] { LakeColumns.Build(arrow, Pipelines.SinkMode.Merge, a, 7, 280, 5), LakeColumns.Build(arrow, Pipelines.SinkMode.Merge, c, 0, 300, 5) };
        var picks = new List<(int Source, int Row)>();
        while (picks.Count < 400)
        {
            var s = random.Next(2);
            var start = random.Next(sources[s].Length);
            var run = random.Next(3) == 0 ? 1 : random.Next(1, 60);
            for (var r = start; r < Math.Min(start + run, sources[s].Length); r++)
            {
                picks.Add((s, r));
            }
        }

        using var g = LakeColumns.Gather(arrow, sources, picks);

        Assert.Equal(picks.Count, g.Length);
        for (var col = 0; col < g.ColumnCount; col++)
        {
            Assert.Equal(0, g.Column(col).Data.Offset);
            Assert.Equal(picks.Select(p => sources[p.Source].Column(col).IsNull(p.Row)).Count(n => n), g.Column(col).NullCount);
            for (var i = 0; i < picks.Count; i++)
            {
                var expected = ArrowValues.GetValue(sources[picks[i].Source].Column(col), picks[i].Row);
                var actual = ArrowValues.GetValue(g.Column(col), i);
                Assert.True(expected is System.Collections.IEnumerable && expected is not string
                    ? ((System.Collections.IEnumerable)expected).Cast<object?>().SequenceEqual(((System.Collections.IEnumerable)actual!).Cast<object?>())
                    : Equals(expected, actual), $"column {arrow.FieldsList[col].Name}, row {i}: expected {expected}, got {actual}");
            }
        }
    }
}
