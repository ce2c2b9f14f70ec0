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
}
