using Apache.Arrow;
using Ingest.Delta.Operations;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

/// <summary>
/// Keyed merges on partitioned tables where a key's row moves to another partition (its partition column changes): the
/// key must be looked for in every partition unless the partition columns are part of the key.
/// </summary>
public sealed class MergePartitionMoveTests
{
    private static readonly CommitOptions Merge = new("MERGE");

    private static async Task<DeltaTable> PartitionedAsync(TempDir dir, bool deletionVectors, params IEnumerable<(long, string?, long)>[] files)
    {
        var config = deletionVectors ? new Dictionary<string, string> { ["delta.enableDeletionVectors"] = "true" } : null;
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, ["name"], config, CancellationToken.None);
        foreach (var rows in files)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, rows)], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return table;
    }

    private static MergeRequest Request(IReadOnlyList<(long Id, string? Name, long Version)> rows, bool[]? isDelete = null, string? versionColumn = null) =>
        new(TestData.Rows(TestData.IdNameVersion, rows), isDelete ?? new bool[rows.Count], ["id"], versionColumn);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Merge_moving_a_key_to_another_partition_leaves_one_row_for_it(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, deletionVectors, [(1, "a", 1), (2, "a", 1), (3, "a", 1)], [(4, "b", 1)]);

        await table.MergeAsync(Request([(2, "b", 2), (5, "c", 2)]), Merge, CancellationToken.None);

        // ReadAllAsync fails on a key seen twice.
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(5, rows.Count);
        Assert.Equal(("b", 2L), rows[2]);
        Assert.Equal(("a", 1L), rows[1]);
        Assert.Equal(("a", 1L), rows[3]);
        Assert.Equal(("c", 2L), rows[5]);
        var metrics = (await table.HistoryAsync(1, CancellationToken.None))[0].OperationMetrics!;
        Assert.Equal("1", metrics["numTargetRowsUpdated"]!.GetValue<string>());
        Assert.Equal("1", metrics["numTargetRowsInserted"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Merge_moving_a_key_out_of_the_null_partition_replaces_it(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, deletionVectors, [(1, null, 1), (2, null, 1)]);

        await table.MergeAsync(Request([(1, "x", 2)]), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(2, rows.Count);
        Assert.Equal(("x", 2L), rows[1]);
        Assert.Equal((null, 1L), rows[2]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Delete_with_only_the_key_set_finds_the_row_in_any_partition(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, deletionVectors, [(1, "a", 1), (2, "a", 1)], [(3, "b", 1), (4, "b", 1)]);

        // A delete carries only its key: the partition column is null, but the rows live in "a" and "b".
        await table.MergeAsync(Request([(1, null, 2), (4, null, 2)], [true, true]), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal([2L, 3L], rows.Keys.Order());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Version_column_still_guards_a_move_replayed_with_an_older_version(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, deletionVectors, [(1, "a", 5), (2, "a", 5)]);

        await table.MergeAsync(Request([(1, "b", 3)], versionColumn: "version"), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(("a", 5L), rows[1]);
        Assert.Equal(2, rows.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Move_still_reads_only_files_whose_key_stats_may_hold_a_source_key(bool deletionVectors)
    {
        using var dir = new TempDir();
        // Ten files in two partitions with disjoint id ranges: only the file holding id 42 may hold a source key.
        var files = Enumerable.Range(0, 10)
            .Select(f => Enumerable.Range(0, 10).Select(i => ((long)((f * 10) + i), (string?)(f % 2 == 0 ? "a" : "b"), 1L)))
            .ToArray();
        var table = await PartitionedAsync(dir, deletionVectors, files);
        var before = table.Snapshot.Files.Select(f => f.Path).ToHashSet();

        var result = await table.MergeAsync(Request([(42, "b", 2)]), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(100, rows.Count);
        Assert.Equal(("b", 2L), rows[42]);
        // Nine of the ten files are untouched: the merge cost follows the changed key, not the number of partitions.
        Assert.Equal(9, table.Snapshot.Files.Count(f => before.Contains(f.Path) && f.DeletionVector is null));
        Assert.Equal(deletionVectors ? 0 : 1, result.FilesRemoved);
    }

    [Fact]
    public async Task When_the_partition_column_is_part_of_the_key_other_partitions_are_not_read()
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, false, [(1, "a", 1), (2, "a", 1)], [(1, "b", 1), (2, "b", 1)]);
        var inA = table.Snapshot.Files.Single(f => f.PartitionValues["name"] == "a").Path;

        // Key (name, id): ("b", 1) is a different key than ("a", 1), so partition "a" cannot hold it.
        var source = TestData.Rows(TestData.IdNameVersion, [(1, "b", 2)]);
        var result = await table.MergeAsync(new MergeRequest(source, [false], ["name", "id"], null), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.Contains(table.Snapshot.Files, f => f.Path == inA);
        var versions = new List<(long, string?, long)>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    versions.Add((((Int64Array)b.Column(0)).GetValue(i)!.Value, ((StringArray)b.Column(1)).GetString(i), ((Int64Array)b.Column(2)).GetValue(i)!.Value));
                }
            }
        }

        Assert.Equal([(1L, "a", 1L), (1L, "b", 2L), (2L, "a", 1L), (2L, "b", 1L)], versions.Order());
    }

    [Fact]
    public async Task Key_lookup_finds_the_stored_row_in_another_partition()
    {
        using var dir = new TempDir();
        var table = await PartitionedAsync(dir, false, [(1, "a", 1), (2, "a", 1)], [(3, "b", 1)]);

        var (parts, match) = await KeyLookup.LookupAsync(table, TestData.Rows(TestData.IdNameVersion, [(2, "b", 2), (9, "b", 2)]), ["id"], null, CancellationToken.None);

        Assert.Equal((-1, -1), match[1]);
        var (part, row) = match[0];
        Assert.True(part >= 0);
        Assert.Equal(2L, ((Int64Array)parts[part].Column(0)).GetValue(row));
        Assert.Equal("a", ((StringArray)parts[part].Column(1)).GetString(row));
    }

    private static readonly StreamSchema Scd = new([
        new Field("id", DataType.Int64, Nullable: false),
        new Field("name", DataType.String),
        new Field("_position", DataType.String, Nullable: false),
        new Field(ScdColumns.ValidFrom, DataType.Timestamp, Nullable: false),
        new Field(ScdColumns.ValidTo, DataType.Timestamp),
        new Field(ScdColumns.IsCurrent, DataType.Boolean, Nullable: false),
    ]);

    private static HistoryRequest History(params (long Id, string? Name, int Pos, bool Delete)[] rows)
    {
        var ids = new Int64Array.Builder();
        var names = new StringArray.Builder();
        var pos = new StringArray.Builder();
        var type = (Apache.Arrow.Types.TimestampType)DataType.Timestamp.ToArrowType();
        var from = new TimestampArray.Builder(type);
        var to = new TimestampArray.Builder(type);
        var current = new BooleanArray.Builder();
        foreach (var (id, name, p, _) in rows)
        {
            ids.Append(id);
            if (name is null)
            {
                names.AppendNull();
            }
            else
            {
                names.Append(name);
            }

            pos.Append(p.ToString("D8", System.Globalization.CultureInfo.InvariantCulture));
            from.Append(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 + p));
            to.AppendNull();
            current.Append(true);
        }

        var batch = new RecordBatch(Scd.ToArrowSchema(), [ids.Build(), names.Build(), pos.Build(), from.Build(), to.Build(), current.Build()], rows.Length);
        return new HistoryRequest(batch, rows.Select(r => r.Delete).ToArray(), ["id"], "_position");
    }

    private static async Task<List<(long Id, string? Name, long? To, bool Current)>> HistoryRowsAsync(DeltaTable table)
    {
        var result = new List<(long, string?, long?, bool)>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    var to = (TimestampArray)b.Column(4);
                    result.Add((((Int64Array)b.Column(0)).GetValue(i)!.Value, ((StringArray)b.Column(1)).GetString(i),
                        to.IsNull(i) ? null : (to.Values[i] / 1_000_000) - 1_700_000_000, ((BooleanArray)b.Column(5)).GetValue(i)!.Value));
                }
            }
        }

        return result.OrderBy(r => r.Item1).ThenBy(r => r.Item3 ?? long.MaxValue).ToList();
    }

    [Fact]
    public async Task History_merge_moving_a_key_to_another_partition_closes_its_current_row()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, ["name"], null, CancellationToken.None);
        await table.MergeHistoryAsync(History((1, "a", 1, false), (2, "a", 2, false)), Merge, CancellationToken.None);

        await table.MergeHistoryAsync(History((1, "b", 3, false)), Merge, CancellationToken.None);
        // A replay of the move is skipped even though the source row's partition now holds the key's current row.
        await table.MergeHistoryAsync(History((1, "b", 3, false)), Merge, CancellationToken.None);

        Assert.Equal([(1L, "a", 3L, false), (1L, "b", null, true), (2L, "a", null, true)], await HistoryRowsAsync(table));
    }

    [Fact]
    public async Task History_delete_with_only_the_key_set_closes_the_row_in_its_partition()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, ["name"], null, CancellationToken.None);
        await table.MergeHistoryAsync(History((1, "a", 1, false), (2, "b", 2, false)), Merge, CancellationToken.None);

        await table.MergeHistoryAsync(History((2, null, 3, true)), Merge, CancellationToken.None);

        Assert.Equal([(1L, "a", null, true), (2L, "b", 3L, false)], await HistoryRowsAsync(table));
    }
}
