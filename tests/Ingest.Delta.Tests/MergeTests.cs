using Ingest.Delta;

namespace Ingest.Delta.Tests;

public sealed class MergeTests
{
    private static readonly CommitOptions Merge = new("MERGE");

    private static async Task<DeltaTable> TableWithAsync(TempDir dir, params IEnumerable<(long, string?, long)>[] files)
    {
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        foreach (var rows in files)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, rows)], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return table;
    }

    private static IEnumerable<(long, string?, long)> Range(long from, long count, string name = "v1", long version = 1) =>
        Enumerable.Range(0, (int)count).Select(i => (from + i, (string?)$"{name}-{from + i}", version));

    [Fact]
    public async Task Merge_upserts_and_deletes_by_key()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Range(0, 10));
        var source = TestData.Rows(TestData.IdNameVersion, [(3, "new-3", 2), (5, null, 2), (42, "new-42", 2)]);

        var result = await table.MergeAsync(new MergeRequest(source, [false, true, false], ["id"], null), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(10, rows.Count);
        Assert.Equal(("new-3", 2L), rows[3]);
        Assert.False(rows.ContainsKey(5));
        Assert.Equal(("new-42", 2L), rows[42]);
        Assert.Equal("v1-4", rows[4].Name);
        Assert.Equal(1, result.FilesRemoved);
        Assert.Equal(10, table.Snapshot.RowCount);
        var history = await table.HistoryAsync(1, CancellationToken.None);
        Assert.Equal("MERGE", history[0].Operation);
        Assert.Equal("1", history[0].OperationMetrics!["numTargetRowsUpdated"]!.GetValue<string>());
        Assert.Equal("1", history[0].OperationMetrics!["numTargetRowsDeleted"]!.GetValue<string>());
        Assert.Equal("1", history[0].OperationMetrics!["numTargetRowsInserted"]!.GetValue<string>());
    }

    [Fact]
    public async Task Merge_with_version_column_ignores_replayed_older_rows()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Range(0, 5, "v5", 5));
        var source = TestData.Rows(TestData.IdNameVersion, [(1, "old", 3), (2, "same", 5), (3, "newer", 6), (4, "old-delete", 4)]);

        var result = await table.MergeAsync(new MergeRequest(source, [false, false, false, true], ["id"], "version"), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(("v5-1", 5L), rows[1]);
        Assert.Equal(("v5-2", 5L), rows[2]);
        Assert.Equal(("newer", 6L), rows[3]);
        Assert.Equal(("v5-4", 5L), rows[4]);
        Assert.Equal(5, rows.Count);
        Assert.Equal(1, result.FilesRemoved);
    }

    [Fact]
    public async Task Merge_replayed_twice_is_idempotent()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Range(0, 100));
        var source = TestData.Rows(TestData.IdNameVersion, [(10, "x", 2), (200, "y", 2)]);
        var request = new MergeRequest(source, [false, false], ["id"], "version");

        await table.MergeAsync(request, Merge, CancellationToken.None);
        var second = await table.MergeAsync(request, Merge, CancellationToken.None);

        Assert.Equal(0, second.FilesRemoved);
        Assert.Equal(0, second.FilesAdded);
        Assert.Equal(101, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
    }

    [Fact]
    public async Task Merge_rewrites_only_the_file_whose_key_range_holds_a_changed_key()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Range(0, 100), Range(100, 100), Range(200, 100), Range(300, 100));
        var before = table.Snapshot.Files.Select(f => f.Path).ToHashSet();
        var source = TestData.Rows(TestData.IdNameVersion, [(150, "changed", 2), (160, null, 2)]);

        var result = await table.MergeAsync(new MergeRequest(source, [false, true], ["id"], null), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.Equal(1, result.FilesAdded);
        var after = table.Snapshot.Files.Select(f => f.Path).ToHashSet();
        Assert.Equal(3, before.Intersect(after).Count());
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(399, rows.Count);
        Assert.Equal("changed", rows[150].Name);
    }

    [Fact]
    public async Task Merge_rejects_a_source_with_a_duplicate_key()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Range(0, 3));
        var source = TestData.Rows(TestData.IdNameVersion, [(1, "a", 2), (1, "b", 2)]);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.MergeAsync(new MergeRequest(source, [false, false], ["id"], null), Merge, CancellationToken.None));
        Assert.Contains("twice", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Merge_on_partitioned_table_updates_rows_in_their_partition()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, ["name"], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1), (2, "a", 1), (3, "b", 1), (4, null, 1)])], new CommitOptions("WRITE"), CancellationToken.None);
        Assert.Equal(3, table.Snapshot.Files.Count);
        Assert.Contains(table.Snapshot.Files, f => f.Path.StartsWith("name=__HIVE_DEFAULT_PARTITION__/", StringComparison.Ordinal) && f.PartitionValues["name"] is null);

        var source = TestData.Rows(TestData.IdNameVersion, [(2, "a", 2), (5, "b", 2)]);
        var result = await table.MergeAsync(new MergeRequest(source, [false, false], ["id"], null), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(5, rows.Count);
        Assert.Equal(("a", 2L), rows[2]);
        Assert.Equal(("b", 2L), rows[5]);
        Assert.Equal((null, 1L), rows[4]);
    }

    [Fact]
    public async Task Merge_among_many_small_files_rewrites_only_the_files_holding_its_keys()
    {
        using var dir = new TempDir();
        var table = await TableWithAsync(dir, Enumerable.Range(0, 60).Select(f => Range(f * 10, 10)).ToArray());
        var source = TestData.Rows(TestData.IdNameVersion, [(15, "a", 2), (431, "b", 2), (10_000, "c", 2)]);

        var result = await table.MergeAsync(new MergeRequest(source, [false, true, false], ["id"], null), Merge, CancellationToken.None);

        Assert.Equal(2, result.FilesRemoved);
        Assert.Equal(60 - 2 + 1, table.Snapshot.Files.Count);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(600, rows.Count);
        Assert.False(rows.ContainsKey(431));
        Assert.Equal("a", rows[15].Name);
        Assert.Equal("c", rows[10_000].Name);
    }

    [Fact]
    public async Task Merge_on_a_composite_string_key_prunes_by_both_columns()
    {
        using var dir = new TempDir();
        var schema = new Ingest.Sdk.Types.StreamSchema([
            new Ingest.Sdk.Types.Field("tenant", Ingest.Sdk.Types.DataType.String),
            new Ingest.Sdk.Types.Field("id", Ingest.Sdk.Types.DataType.Int32),
            new Ingest.Sdk.Types.Field("value", Ingest.Sdk.Types.DataType.Double),
        ]);
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, schema, [], null, CancellationToken.None);
        static Apache.Arrow.RecordBatch Batch(Ingest.Sdk.Types.StreamSchema schema, params (string Tenant, int Id, double Value)[] rows) => new(
            schema.ToArrowSchema(),
            [
                new Apache.Arrow.StringArray.Builder().AppendRange(rows.Select(r => r.Tenant)).Build(),
                new Apache.Arrow.Int32Array.Builder().AppendRange(rows.Select(r => r.Id)).Build(),
                new Apache.Arrow.DoubleArray.Builder().AppendRange(rows.Select(r => r.Value)).Build(),
            ],
            rows.Length);
        await table.AppendAsync([Batch(schema, ("acme", 1, 1.0), ("acme", 2, 2.0))], new CommitOptions("WRITE"), CancellationToken.None);
        await table.AppendAsync([Batch(schema, ("zeta", 1, 3.0), ("zeta", 2, 4.0))], new CommitOptions("WRITE"), CancellationToken.None);
        // Same ids, other tenant: the tenant range keeps the merge off the first file.
        var result = await table.MergeAsync(new MergeRequest(Batch(schema, ("zeta", 2, 40.0), ("zeta", 3, 50.0)), [false, false], ["tenant", "id"], null), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        var values = new Dictionary<string, double>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < b.Length; i++)
            {
                values[$"{((Apache.Arrow.StringArray)b.Column(0)).GetString(i)}/{((Apache.Arrow.Int32Array)b.Column(1)).GetValue(i)}"] = ((Apache.Arrow.DoubleArray)b.Column(2)).GetValue(i)!.Value;
            }
        }

        Assert.Equal(new Dictionary<string, double> { ["acme/1"] = 1.0, ["acme/2"] = 2.0, ["zeta/1"] = 3.0, ["zeta/2"] = 40.0, ["zeta/3"] = 50.0 }, values);
    }

    [Fact]
    public async Task Merge_rewrite_keeps_nested_and_every_other_type_of_the_copied_rows()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, RoundTripTests.AllTypes, [], null, CancellationToken.None);
        var batch = RoundTripTests.AllTypesBatch();
        await table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None);

        // Delete the row whose i64 key is long.MaxValue (row 1); rows 0 and 2 are copied into a new file.
        var source = batch.Slice(1, 1);
        var result = await table.MergeAsync(new MergeRequest(source, [true], ["i64"], null), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.Equal(2, result.RowsWritten);
        var rows = new List<string>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < b.Length; i++)
            {
                rows.Add(ArrowRender.Row(b, i));
            }
        }

        Assert.Equal([ArrowRender.Row(batch, 0), ArrowRender.Row(batch, 2)], rows);
    }
}
