using System.Text.Json;
using Apache.Arrow;
using Ingest.Delta.Parquet;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;
using StructType = Ingest.Sdk.Types.StructType;

namespace Ingest.Delta.Tests;

/// <summary>
/// Merge tables with list, struct and map columns and deletion vectors, written in every micro-batch split a streaming
/// sink may make (with a schema evolution between two of them), read back value by value. Reading a file whose deletion
/// vector leaves one run of rows once handed back nested columns that were views of the Parquet reader's batch, whose
/// memory the scan then released (NullReferenceException in ListArray.ValueOffsets).
/// </summary>
public sealed class NestedMergeReadBackTests
{
    private static readonly Dictionary<string, string> DvConfig = new() { ["delta.enableDeletionVectors"] = "true" };

    private static readonly StreamSchema Narrow = new(
    [
        new Field("id", DataType.Int64, Nullable: false),
        new Field("tags", new ArrayType(DataType.String)),
        new Field("address", new StructType([new Field("city", DataType.String), new Field("since", DataType.Date)])),
        new Field("scores", new MapType(DataType.String, DataType.Int64)),
    ]);

    private static readonly StreamSchema Wide = new([.. Narrow.Columns, new Field("note", DataType.String)]);

    /// <summary>The change records, in order: three inserts, an update, then (widened) an update and an insert.</summary>
    private static readonly (long Id, string City, bool Widened)[] Changes =
        [(1, "Oslo", false), (2, "Lyon", false), (3, "Kyiv", false), (2, "Lyon 2", false), (1, "Oslo 2", true), (4, "Rome", true)];

    private static object?[] Values(long id, string city, bool widened)
    {
        object?[] values =
        [
            id,
            new List<object?> { "a" + id, null, "b" },
            new Dictionary<string, object?> { ["city"] = city, ["since"] = new DateOnly(2020, 2, 29).AddDays((int)id) },
            new List<KeyValuePair<object, object?>> { new("x", id * 10), new("y", null) },
        ];
        return widened ? [.. values, $"note {id}"] : values;
    }

    /// <summary>Every way to cut the six changes into micro-batches that never mix the two schemas (cuts after change 1..5).</summary>
    public static TheoryData<int> Splits()
    {
        var data = new TheoryData<int>();
        for (var cuts = 0; cuts < 1 << 5; cuts++)
        {
            if ((cuts & (1 << 3)) != 0)
            {
                // Bit 3 is the cut after change 4, where the schema changes: always there.
                data.Add(cuts);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Splits))]
    public async Task Merged_nested_values_read_back_exactly_in_every_micro_batch_split(int cuts)
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Narrow, [], DvConfig, CancellationToken.None);
        var batch = new List<int>();
        for (var i = 0; i < Changes.Length; i++)
        {
            batch.Add(i);
            if (i == Changes.Length - 1 || (cuts & (1 << i)) != 0)
            {
                await MergeAsync(table, batch);
                batch.Clear();
            }
        }

        var expected = new Dictionary<long, object?[]>
        {
            [1] = Values(1, "Oslo 2", widened: true),
            [2] = Values(2, "Lyon 2", widened: false),
            [3] = Values(3, "Kyiv", widened: false),
            [4] = Values(4, "Rome", widened: true),
        };
        var rows = await ReadAsync(table);
        Assert.Equal(expected.Keys.Order(), rows.Keys.Order());
        foreach (var (id, row) in rows)
        {
            var want = expected[id];
            for (var c = 0; c < Wide.Count; c++)
            {
                var e = c < want.Length ? want[c] : null;
                Assert.True(JsonSerializer.Serialize(e) == JsonSerializer.Serialize(row[c]),
                    $"split {cuts}: id {id} column {Wide.Columns[c].Name}: expected {JsonSerializer.Serialize(e)} but read {JsonSerializer.Serialize(row[c])}");
            }
        }
    }

    [Fact]
    public async Task Rows_left_by_a_deletion_vector_outlive_the_scan_of_their_file()
    {
        // One file, its first row deleted: the live rows are one run, the case that returned views of the reader's batch.
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Narrow, [], DvConfig, CancellationToken.None);
        await table.AppendAsync([Batch(Narrow, [Values(1, "Oslo", false), Values(2, "Lyon", false), Values(3, "Kyiv", false)])], new CommitOptions("WRITE"), CancellationToken.None);
        await table.MergeAsync(new MergeRequest(Batch(Narrow, [Values(1, "Bern", false)]), [true], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        var file = Assert.Single(table.Snapshot.Files, f => f.DeletionVector is not null);

        var kept = new List<RecordBatch>();
        await foreach (var b in table.ReadFileAsync(table.Snapshot, file, CancellationToken.None))
        {
            kept.Add(b);
        }

        // The scan is over (its reader and raw batches are gone); the rows it handed out still read.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var read = Assert.Single(kept);
        Assert.Equal(2, read.Length);
        Assert.Equal("[\"a3\",null,\"b\"]", JsonSerializer.Serialize(ArrowValues.GetValue(read.Column(1), 1)));
        Assert.Equal("{\"city\":\"Lyon\",\"since\":\"2020-03-02\"}", JsonSerializer.Serialize(ArrowValues.GetValue(read.Column(2), 0)));
        Assert.Equal("[{\"Key\":\"x\",\"Value\":30},{\"Key\":\"y\",\"Value\":null}]", JsonSerializer.Serialize(ArrowValues.GetValue(read.Column(3), 1)));
        read.Dispose();
    }

    [Fact]
    public void Take_of_nested_columns_copies_them_whatever_the_runs()
    {
        using var source = Batch(Narrow, [Values(1, "Oslo", false), Values(2, "Lyon", false), Values(3, "Kyiv", false)]);
        foreach (var indices in new[] { new[] { 0, 1, 2 }, [1, 2], [0], [2, 0], [] })
        {
            using var taken = ArrowKernels.Take(source, indices);
            for (var c = 1; c < Narrow.Count; c++)
            {
                Assert.False(SharesMemory(source.Column(c).Data, taken.Column(c).Data), $"column {Narrow.Columns[c].Name}, rows [{string.Join(",", indices)}]: shares buffers with the source");
            }

            for (var i = 0; i < indices.Length; i++)
            {
                for (var c = 0; c < Narrow.Count; c++)
                {
                    Assert.Equal(JsonSerializer.Serialize(ArrowValues.GetValue(source.Column(c), indices[i])), JsonSerializer.Serialize(ArrowValues.GetValue(taken.Column(c), i)));
                }
            }
        }
    }

    private static bool SharesMemory(ArrayData a, ArrayData b)
    {
        foreach (var x in Flatten(a).SelectMany(d => d.Buffers).Where(x => !x.Memory.IsEmpty))
        {
            if (Flatten(b).SelectMany(d => d.Buffers).Any(y => !y.Memory.IsEmpty && x.Memory.Span.Overlaps(y.Memory.Span)))
            {
                return true;
            }
        }

        return false;
    }

    private static IEnumerable<ArrayData> Flatten(ArrayData data) => data.Children is null ? [data] : [data, .. data.Children.SelectMany(Flatten)];

    /// <summary>The newest row per key of the changes at <paramref name="batch"/>, merged (as a merge-mode sink commits them).</summary>
    private static async Task MergeAsync(DeltaTable table, List<int> batch)
    {
        var widened = Changes[batch[0]].Widened;
        var schema = widened ? Wide : Narrow;
        if (widened && table.Snapshot.Schema.Count < Wide.Count)
        {
            await table.EvolveSchemaAsync(Wide, new CommitOptions("ADD COLUMNS"), CancellationToken.None);
        }

        var latest = batch.GroupBy(i => Changes[i].Id).Select(g => g.Max()).Order().ToList();
        using var rows = Batch(schema, latest.Select(i => Values(Changes[i].Id, Changes[i].City, Changes[i].Widened)).ToList());
        await table.MergeAsync(new MergeRequest(rows, new bool[rows.Length], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
    }

    private static RecordBatch Batch(StreamSchema schema, IReadOnlyList<object?[]> rows)
    {
        var columns = new IArrowArray[schema.Count];
        for (var c = 0; c < schema.Count; c++)
        {
            columns[c] = ArrowValues.BuildArray(schema.Columns[c].Type, rows.Select(r => r[c]).ToList());
        }

        return new RecordBatch(schema.ToArrowSchema(), columns, rows.Count);
    }

    private static async Task<Dictionary<long, object?[]>> ReadAsync(DeltaTable table)
    {
        var rows = new Dictionary<long, object?[]>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                for (var r = 0; r < batch.Length; r++)
                {
                    var row = new object?[batch.ColumnCount];
                    for (var c = 0; c < batch.ColumnCount; c++)
                    {
                        row[c] = ArrowValues.GetValue(batch.Column(c), r);
                    }

                    Assert.True(rows.TryAdd((long)row[0]!, row), $"id {row[0]} is live twice");
                }
            }
        }

        return rows;
    }
}
