using System.Text.Json.Nodes;
using Ingest.Delta.Operations;
using Ingest.Delta.Read;

namespace Ingest.Delta.Tests;

public sealed class DeletionVectorMergeTests
{
    private static readonly CommitOptions Merge = new("MERGE");
    private static readonly Dictionary<string, string> DvConfig = new() { ["delta.enableDeletionVectors"] = "true" };

    private static IEnumerable<(long, string?, long)> Range(long from, long count, string name = "v1", long version = 1) =>
        Enumerable.Range(0, (int)count).Select(i => (from + i, (string?)$"{name}-{from + i}", version));

    private static async Task<DeltaTable> DvTableAsync(TempDir dir, params IEnumerable<(long, string?, long)>[] files)
    {
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], DvConfig, CancellationToken.None);
        foreach (var rows in files)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, rows)], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return table;
    }

    private static MergeRequest Request(IEnumerable<(long Id, string? Name, long Version)> rows, bool[] isDelete, string? versionColumn = null) =>
        new(TestData.Rows(TestData.IdNameVersion, rows), isDelete, ["id"], versionColumn);

    [Fact]
    public void Serialized_rows_match_the_kernel_test_vector()
    {
        var data = DeletionVectorWriter.Serialize([3, 4, 7, 11, 18, 29]);

        Assert.Equal("^Bg9^0rr910000000000iXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", Z85.Encode(data));
    }

    [Fact]
    public void Serialized_array_bitmap_and_high_bucket_rows_parse_back()
    {
        var rows = new List<long>();
        rows.AddRange(Enumerable.Range(0, 100).Select(i => (long)i * 7));            // array container
        rows.AddRange(Enumerable.Range(0, 5000).Select(i => 70_000L + (i * 3)));     // > 4096 in one container: bitmap
        rows.AddRange([(1L << 32) + 5, (3L << 32) + 65_536]);                        // further buckets
        var data = DeletionVectorWriter.Serialize(rows.ToArray());

        Assert.Equal(rows, DeletionVectors.Parse(data, "round trip"));
    }

    [Fact]
    public void Unsorted_rows_are_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => DeletionVectorWriter.Serialize([5, 3]));
        Assert.Contains("ascending", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task New_table_with_deletion_vectors_enabled_has_protocol_3_7_with_the_feature()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Contains("deletionVectors", d.ReaderFeatures);
        Assert.Contains("deletionVectors", d.WriterFeatures);
    }

    [Fact]
    public async Task Merge_on_dv_table_marks_rows_deleted_instead_of_rewriting_files()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir, Range(0, 1000), Range(1000, 1000));
        var before = table.Snapshot.Files.Select(f => f.Path).Order().ToList();

        var result = await table.MergeAsync(Request([(3, "new-3", 2), (5, null, 2), (1500, "new-1500", 2), (5000, "new-5000", 2)], [false, true, false, false]), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(2000, rows.Count);
        Assert.Equal(("new-3", 2L), rows[3]);
        Assert.False(rows.ContainsKey(5));
        Assert.Equal(("new-1500", 2L), rows[1500]);
        Assert.Equal(("new-5000", 2L), rows[5000]);
        Assert.Equal("v1-4", rows[4].Name);
        Assert.Equal(0, result.FilesRemoved);
        Assert.Equal(2000, table.Snapshot.RowCount);

        // Both old files stay live with a DV (3 rows deleted in the first, 1 in the second); one new file holds the upserts.
        var withDv = table.Snapshot.Files.Where(f => f.DeletionVector is not null).ToList();
        Assert.Equal(before, withDv.Select(f => f.Path).Order().ToList());
        Assert.Equal([1L, 2L], withDv.Select(f => f.DeletionVector!.Cardinality).Order());
        Assert.All(withDv, f => Assert.False(JsonNode.Parse(f.Stats!)!["tightBounds"]!.GetValue<bool>()));
        Assert.All(withDv, f => Assert.Equal(1000, JsonNode.Parse(f.Stats!)!["numRecords"]!.GetValue<long>()));
        var fresh = Assert.Single(table.Snapshot.Files, f => f.DeletionVector is null);
        Assert.True(JsonNode.Parse(fresh.Stats!)!["tightBounds"]!.GetValue<bool>());
        Assert.Single(Directory.GetFiles(dir.Path, "deletion_vector_*.bin"));

        var metrics = (await table.HistoryAsync(1, CancellationToken.None))[0].OperationMetrics!;
        Assert.Equal("2", metrics["numTargetDeletionVectorsAdded"]!.GetValue<string>());
        Assert.Equal("0", metrics["numTargetRowsCopied"]!.GetValue<string>());
        Assert.Equal("2", metrics["numTargetRowsUpdated"]!.GetValue<string>());
    }

    [Fact]
    public async Task Second_merge_unites_the_files_deletion_vector_and_time_travel_sees_each_version()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir, Range(0, 100));
        await table.MergeAsync(Request([(10, null, 2)], [true]), Merge, CancellationToken.None);
        await table.MergeAsync(Request([(20, "new-20", 2), (30, null, 2)], [false, true]), Merge, CancellationToken.None);

        var original = table.Snapshot.Files.Single(f => f.DeletionVector is not null);
        Assert.Equal(3, original.DeletionVector!.Cardinality);
        var latest = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(98, latest.Count);
        Assert.False(latest.ContainsKey(10) || latest.ContainsKey(30));
        Assert.Equal("new-20", latest[20].Name);
        Assert.Equal(99, (await TestData.ReadAllAsync(table, await table.GetSnapshotAsync(2, CancellationToken.None))).Count);
        Assert.Equal(100, (await TestData.ReadAllAsync(table, await table.GetSnapshotAsync(1, CancellationToken.None))).Count);
        var metrics = (await table.HistoryAsync(1, CancellationToken.None))[0].OperationMetrics!;
        Assert.Equal("1", metrics["numTargetDeletionVectorsUpdated"]!.GetValue<string>());

        // A fresh reader (log replay from disk) sees the same rows.
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(latest, await TestData.ReadAllAsync(reopened, reopened.Snapshot));
    }

    [Fact]
    public async Task Merge_deleting_every_row_of_a_file_removes_it()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir, Range(0, 3), Range(10, 3));

        var result = await table.MergeAsync(Request([(0, null, 2), (1, null, 2), (2, null, 2)], [true, true, true]), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        var file = Assert.Single(table.Snapshot.Files);
        Assert.Null(file.DeletionVector);
        Assert.Equal([10L, 11L, 12L], (await TestData.ReadAllAsync(table, table.Snapshot)).Keys.Order());
    }

    [Fact]
    public async Task Merge_on_dv_table_with_version_column_ignores_replays()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir, Range(0, 5, "v5", 5));

        await table.MergeAsync(Request([(1, "old", 3), (3, "newer", 6), (4, null, 4)], [false, false, true], "version"), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(5, rows.Count);
        Assert.Equal(("v5-1", 5L), rows[1]);
        Assert.Equal(("newer", 6L), rows[3]);
        Assert.Equal(("v5-4", 5L), rows[4]);
        Assert.Equal(1, table.Snapshot.Files.Single(f => f.DeletionVector is not null).DeletionVector!.Cardinality);
    }

    [Fact]
    public async Task Dv_table_survives_checkpoint_optimize_and_vacuum()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], new Dictionary<string, string>(DvConfig) { ["delta.checkpointInterval"] = "3" }, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 50))], new CommitOptions("WRITE"), CancellationToken.None);
        await table.MergeAsync(Request([(1, null, 2)], [true]), Merge, CancellationToken.None);
        await table.MergeAsync(Request([(2, "two", 2)], [false]), Merge, CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(dir.Path, "_delta_log", "00000000000000000003.checkpoint.parquet")));

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        var rows = await TestData.ReadAllAsync(reopened, reopened.Snapshot);
        Assert.Equal(49, rows.Count);
        Assert.Equal("two", rows[2].Name);

        await reopened.OptimizeAsync(null, CancellationToken.None);
        Assert.All(reopened.Snapshot.Files, f => Assert.Null(f.DeletionVector));
        await reopened.VacuumAsync(TimeSpan.Zero, dryRun: false, force: true, CancellationToken.None);
        Assert.Empty(Directory.GetFiles(dir.Path, "deletion_vector_*.bin"));
        Assert.Equal(rows, await TestData.ReadAllAsync(reopened, reopened.Snapshot));
    }

    [Fact]
    public async Task Vacuum_keeps_a_replaced_deletion_vector_that_older_versions_still_need()
    {
        using var dir = new TempDir();
        var table = await DvTableAsync(dir, Range(0, 20));
        await table.MergeAsync(Request([(1, null, 2)], [true]), Merge, CancellationToken.None);
        var first = Assert.Single(Directory.GetFiles(dir.Path, "deletion_vector_*.bin"));
        await table.MergeAsync(Request([(2, null, 2)], [true]), Merge, CancellationToken.None);
        // The first DV file is old on disk, but it was replaced only now: version 2 still reads through it.
        foreach (var f in Directory.GetFiles(dir.Path, "*.*", SearchOption.TopDirectoryOnly))
        {
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-8));
        }

        var result = await table.VacuumAsync(null, dryRun: false, force: false, CancellationToken.None);

        Assert.DoesNotContain(Path.GetFileName(first), result.Files);
        Assert.True(File.Exists(first));
        Assert.Equal(19, (await TestData.ReadAllAsync(table, await table.GetSnapshotAsync(2, CancellationToken.None))).Count);
        Assert.Equal(18, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
    }

    [Fact]
    public async Task Table_without_the_property_keeps_copy_on_write()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 10))], new CommitOptions("WRITE"), CancellationToken.None);

        var result = await table.MergeAsync(Request([(3, "x", 2)], [false]), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.All(table.Snapshot.Files, f => Assert.Null(f.DeletionVector));
        Assert.Empty(Directory.GetFiles(dir.Path, "deletion_vector_*.bin"));
    }
}
