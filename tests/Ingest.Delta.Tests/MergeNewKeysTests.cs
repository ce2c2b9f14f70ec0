using System.Text.Json.Nodes;

namespace Ingest.Delta.Tests;

/// <summary>Merges whose keys no live file can hold: written as an append writes them, committed as a MERGE of inserts.</summary>
public sealed class MergeNewKeysTests
{
    private static readonly CommitOptions Merge = new("MERGE");

    private static IEnumerable<(long, string?, long)> Range(long from, long count, long version = 1) =>
        Enumerable.Range(0, (int)count).Select(i => (from + i, (string?)$"v{version}-{from + i}", version));

    private static async Task<DeltaTable> TableAsync(TempDir dir, Dictionary<string, string>? config, params IEnumerable<(long, string?, long)>[] files)
    {
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], config, CancellationToken.None);
        foreach (var rows in files)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, rows)], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return table;
    }

    private static MergeRequest Upserts(IEnumerable<(long, string?, long)> rows)
    {
        var batch = TestData.Rows(TestData.IdNameVersion, rows);
        return new MergeRequest(batch, new bool[batch.Length], ["id"], "version");
    }

    /// <summary>The actions of one commit, by kind.</summary>
    private static List<JsonObject> Actions(TempDir dir, long version, string kind) =>
        File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", $"{version:D20}.json"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => o.ContainsKey(kind))
            .Select(o => o[kind]!.AsObject())
            .ToList();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Merge_of_new_keys_into_an_empty_table_only_adds_files(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, deletionVectors ? new() { ["delta.enableDeletionVectors"] = "true" } : null);

        var result = await table.MergeAsync(Upserts(Range(0, 500)), Merge, CancellationToken.None);

        Assert.Equal((0, 500L), (result.FilesRemoved, result.RowsWritten));
        Assert.Empty(Actions(dir, result.Version, "remove"));
        Assert.All(Actions(dir, result.Version, "add"), a => Assert.True(a["dataChange"]!.GetValue<bool>()));
        Assert.Empty(Directory.GetFiles(dir.Path, "deletion_vector_*.bin"));
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(500, rows.Count);
        Assert.Equal(("v1-499", 1L), rows[499]);
        var entry = (await table.HistoryAsync(1, CancellationToken.None))[0];
        Assert.Equal("MERGE", entry.Operation);
        Assert.Equal("500", entry.OperationMetrics!["numTargetRowsInserted"]!.GetValue<string>());
        Assert.Equal("0", entry.OperationMetrics!["numTargetRowsUpdated"]!.GetValue<string>());
        Assert.Equal("0", entry.OperationMetrics!["numTargetFilesRemoved"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Merge_of_keys_above_every_file_leaves_the_files_untouched(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, deletionVectors ? new() { ["delta.enableDeletionVectors"] = "true" } : null, Range(0, 100), Range(100, 100));
        var before = table.Snapshot.Files.Select(f => (f.Path, f.Stats)).ToHashSet();

        var result = await table.MergeAsync(Upserts(Range(200, 100, version: 2)), Merge, CancellationToken.None);

        Assert.Equal(0, result.FilesRemoved);
        Assert.True(before.IsSubsetOf(table.Snapshot.Files.Select(f => (f.Path, f.Stats))));
        Assert.All(table.Snapshot.Files, f => Assert.Null(f.DeletionVector));
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(300, rows.Count);
        Assert.Equal(("v1-99", 1L), rows[99]);
        Assert.Equal(("v2-250", 2L), rows[250]);
    }

    [Fact]
    public async Task Unordered_source_holding_a_key_twice_is_refused_as_by_the_general_merge()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        var source = TestData.Rows(TestData.IdNameVersion, [(5, "a", 1), (3, "b", 1), (5, "c", 1)]);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.MergeAsync(new MergeRequest(source, [false, false, false], ["id"], null), Merge, CancellationToken.None));

        Assert.Contains("twice", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, table.Snapshot.Version);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.parquet", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Unordered_new_keys_interleaving_no_file_are_inserted()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null, Range(100, 10));

        await table.MergeAsync(Upserts([(7, "a", 1), (3, "b", 1), (500, "c", 1)]), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(13, rows.Count);
        Assert.Equal("b", rows[3].Name);
    }

    [Fact]
    public async Task Keys_inside_a_files_range_but_absent_from_it_still_merge_correctly()
    {
        using var dir = new TempDir();
        // Even ids 0..98 in one file: odd ids fall inside its range, so the per-key pruning decides.
        var table = await TableAsync(dir, null, Enumerable.Range(0, 50).Select(i => ((long)(i * 2), (string?)"even", 1L)));

        var result = await table.MergeAsync(Upserts([(1, "odd", 2), (2, "two", 2), (3, "odd", 2)]), Merge, CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(52, rows.Count);
        Assert.Equal(("two", 2L), rows[2]);
        Assert.Equal(("odd", 2L), rows[3]);
    }

    [Fact]
    public async Task A_delete_in_the_source_takes_the_general_merge()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null, Range(0, 10));
        var source = TestData.Rows(TestData.IdNameVersion, [(5, null, 2), (50, "new", 2)]);

        await table.MergeAsync(new MergeRequest(source, [true, false], ["id"], null), Merge, CancellationToken.None);

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.False(rows.ContainsKey(5));
        Assert.Equal("new", rows[50].Name);
        Assert.Equal(10, rows.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Change_feed_reads_the_added_rows_of_a_new_keys_merge_as_inserts(bool deletionVectors)
    {
        using var dir = new TempDir();
        var config = new Dictionary<string, string> { ["delta.enableChangeDataFeed"] = "true" };
        if (deletionVectors)
        {
            config["delta.enableDeletionVectors"] = "true";
        }

        var table = await TableAsync(dir, config, Range(0, 10));

        var result = await table.MergeAsync(Upserts(Range(10, 5, version: 2)), Merge, CancellationToken.None);

        // A commit without cdc actions has its change data read from its add (insert) and remove (delete) actions
        // (PROTOCOL.md "Change Data Files": an operation that only adds data needs no change data files).
        Assert.Empty(Actions(dir, result.Version, "cdc"));
        Assert.Empty(Actions(dir, result.Version, "remove"));
        var adds = Actions(dir, result.Version, "add");
        Assert.All(adds, a => Assert.True(a["dataChange"]!.GetValue<bool>()));
        using var duck = TestData.DuckDb();
        var files = string.Join(", ", adds.Select(a => $"'{Path.Combine(dir.Path, a["path"]!.GetValue<string>())}'"));
        Assert.Equal("10,11,12,13,14", TestData.Scalar(duck, $"SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM read_parquet([{files}])"));

        // A later merge that changes an existing key still writes its change files.
        var update = await table.MergeAsync(Upserts([(12, "v3-12", 3)]), Merge, CancellationToken.None);
        Assert.NotEmpty(Actions(dir, update.Version, "cdc"));
    }

    [Fact]
    public async Task New_keys_merge_conflicts_with_a_concurrent_add_holding_one_of_its_keys()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        var other = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await other.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(7, "other", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        // The merge read version 0 (empty): it takes the new-keys path, and the concurrent add of key 7 must conflict.
        await Assert.ThrowsAsync<DeltaConcurrencyException>(() => table.MergeAsync(Upserts(Range(5, 5)), Merge, CancellationToken.None));

        await table.RefreshAsync(CancellationToken.None);
        Assert.Equal([7L], (await TestData.ReadAllAsync(table, table.Snapshot)).Keys);
    }

    [Fact]
    public async Task New_keys_merge_commits_after_a_concurrent_add_of_other_keys()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        var other = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await other.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1000, "other", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        var result = await table.MergeAsync(Upserts(Range(5, 5)), Merge, CancellationToken.None);

        Assert.Equal(2, result.Version);
        Assert.Equal(6, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
    }

    [Fact]
    public async Task New_keys_merge_into_a_partitioned_table_writes_each_partition()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, ["name"], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1), (2, "b", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        var result = await table.MergeAsync(Upserts([(3, "a", 1), (4, "c", 1), (5, null, 1)]), Merge, CancellationToken.None);

        Assert.Equal(0, result.FilesRemoved);
        Assert.Equal(3, result.FilesAdded);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(5, rows.Count);
        Assert.Equal(("c", 1L), rows[4]);
        Assert.Equal((null, 1L), rows[5]);
    }
}
