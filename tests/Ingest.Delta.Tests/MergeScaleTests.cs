namespace Ingest.Delta.Tests;

public sealed class MergeScaleTests
{
    [Fact]
    public async Task Merge_of_a_large_batch_into_a_large_table_touches_only_files_in_its_key_range()
    {
        const int tableRows = 1_000_000;
        const int perFile = 100_000;
        const int sourceRows = 50_000;
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        table.MaxRowsPerFile = perFile;
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, tableRows).Select(i => ((long)i, (string?)$"name-{i}", 1L)))], new CommitOptions("WRITE"), CancellationToken.None);
        Assert.Equal(tableRows / perFile, table.Snapshot.Files.Count);

        // Updates for ids 250,000..274,999 (in the third file) plus 25,000 new ids.
        var source = TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, sourceRows).Select(i => (i < sourceRows / 2 ? 250_000L + i : 2_000_000L + i, (string?)"updated", 2L)));
        var result = await table.MergeAsync(new MergeRequest(source, new bool[sourceRows], ["id"], "version"), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.Equal(perFile + sourceRows / 2, result.RowsWritten);
        Assert.Equal(tableRows + sourceRows / 2, table.Snapshot.RowCount);

        // Scattered updates over ids 0..999,990: every file but the one holding only the inserted ids is rewritten.
        var scattered = TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 100_000).Select(i => ((long)i * 10, (string?)"again", 3L)));
        var all = await table.MergeAsync(new MergeRequest(scattered, new bool[100_000], ["id"], "version"), new CommitOptions("MERGE"), CancellationToken.None);
        Assert.Equal(tableRows / perFile, all.FilesRemoved);
        Assert.Equal(tableRows + sourceRows / 2, table.Snapshot.RowCount);
    }

    [Fact]
    public async Task Merge_copies_untouched_batches_of_a_rewritten_file_intact()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 200_000).Select(i => ((long)i, (string?)$"n{i}", 1L)))], new CommitOptions("WRITE"), CancellationToken.None);

        // One change at the start of the file: the later batches of the file are copied as they were read.
        await table.MergeAsync(new MergeRequest(TestData.Rows(TestData.IdNameVersion, [(5, "changed", 2)]), [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        GC.Collect();
        GC.WaitForPendingFinalizers();

        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(200_000, rows.Count);
        Assert.Equal(("changed", 2L), rows[5]);
        Assert.Equal(("n199999", 1L), rows[199_999]);
        Assert.Equal(("n100000", 1L), rows[100_000]);
    }
}
