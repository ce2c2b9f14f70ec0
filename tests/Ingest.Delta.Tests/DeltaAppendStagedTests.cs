using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

public sealed class DeltaAppendStagedTests
{
    private static RecordBatch Rows(long from, int count) =>
        TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, count).Select(i => (from + i, (string?)$"n{from + i}", 1L)));

    private static string[] DataFiles(string root) =>
        Directory.GetFiles(root, "*.parquet", SearchOption.AllDirectories);

    private static CommitOptions Streaming(string appId, long version) =>
        new("STREAMING UPDATE", Txns: [new TxnAction(appId, version)], AppMetadata: new JsonObject { ["ingest"] = new JsonObject { ["checkpointSeq"] = version } });

    [Fact]
    public async Task Staged_rows_are_in_data_files_before_the_commit_and_the_commit_adds_them_exactly_once()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await using var append = table.BeginAppend();
        append.Write(Rows(0, 100));
        append.Write(Rows(100, 50));

        // Written, not referenced: readers see nothing yet.
        Assert.Equal(150, append.RowsWritten);
        Assert.NotEmpty(DataFiles(dir.Path));
        Assert.Empty(table.Snapshot.Files);

        var result = await append.CommitAsync(Streaming("app", 7), CancellationToken.None);

        Assert.Equal(1, result.Version);
        Assert.Equal(150, result.RowsWritten);
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        var rows = await TestData.ReadAllAsync(reopened, reopened.Snapshot);
        Assert.Equal(Enumerable.Range(0, 150).Select(i => (long)i), rows.Keys.Order());
        Assert.Equal(7, reopened.Snapshot.TxnVersions["app"]);
        Assert.Equal(DataFiles(dir.Path).Length, reopened.Snapshot.Files.Count);
        var entry = (await reopened.HistoryAsync(1, CancellationToken.None))[0];
        Assert.Equal("STREAMING UPDATE", entry.Operation);
        Assert.Equal(7, entry.CommitInfo["ingest"]!["checkpointSeq"]!.GetValue<long>());
        Assert.True(entry.CommitInfo["isBlindAppend"]!.GetValue<bool>());
        Assert.Equal("150", entry.OperationMetrics!["numOutputRows"]!.GetValue<string>());

        // Committed once: a second commit or a dispose changes nothing.
        await Assert.ThrowsAsync<ObjectDisposedException>(() => append.CommitAsync(Streaming("app", 8), CancellationToken.None));
        await append.DisposeAsync();
        Assert.Equal(DataFiles(dir.Path).Length, reopened.Snapshot.Files.Count);
    }

    [Fact]
    public async Task Disposing_an_uncommitted_append_deletes_its_files_and_the_table_has_no_trace_of_it()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var append = table.BeginAppend();
        append.Write(Rows(0, 1000));
        Assert.NotEmpty(DataFiles(dir.Path));

        await append.DisposeAsync();

        Assert.Empty(DataFiles(dir.Path));
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(0, reopened.Snapshot.Version);
        Assert.Empty(reopened.Snapshot.TxnVersions);
        Assert.Throws<ObjectDisposedException>(() => append.Write(Rows(0, 1)));
    }

    [Fact]
    public async Task A_commit_that_loses_the_race_to_the_same_txn_app_id_fails_and_deletes_its_files()
    {
        using var dir = new TempDir();
        var ours = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var theirs = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await using var append = ours.BeginAppend();
        append.Write(Rows(0, 10));

        // Another writer (a second instance of the same pipeline) commits the same stream's txn first.
        await theirs.AppendAsync([Rows(100, 5)], Streaming("app", 1), CancellationToken.None);

        await Assert.ThrowsAsync<DeltaConcurrencyException>(() => append.CommitAsync(Streaming("app", 1), CancellationToken.None));

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(Enumerable.Range(100, 5).Select(i => (long)i), (await TestData.ReadAllAsync(reopened, reopened.Snapshot)).Keys.Order());
        Assert.Single(DataFiles(dir.Path));
    }

    [Fact]
    public async Task A_commit_that_loses_the_race_to_another_blind_append_retries_and_both_keep_their_rows()
    {
        using var dir = new TempDir();
        var ours = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var theirs = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await using var append = ours.BeginAppend();
        append.Write(Rows(0, 10));
        await theirs.AppendAsync([Rows(100, 5)], Streaming("other", 1), CancellationToken.None);

        var result = await append.CommitAsync(Streaming("app", 1), CancellationToken.None);

        Assert.Equal(2, result.Version);
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(15, (await TestData.ReadAllAsync(reopened, reopened.Snapshot)).Count);
        Assert.Equal(1, reopened.Snapshot.TxnVersions["app"]);
        Assert.Equal(1, reopened.Snapshot.TxnVersions["other"]);
    }

    [Fact]
    public async Task A_concurrent_schema_change_by_another_writer_fails_the_commit_and_deletes_its_files()
    {
        using var dir = new TempDir();
        var ours = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var theirs = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await using var append = ours.BeginAppend();
        append.Write(Rows(0, 10));
        await theirs.EvolveSchemaAsync(new StreamSchema([.. TestData.IdNameVersion.Columns, new Field("extra", DataType.String)]), new CommitOptions("ADD COLUMNS"), CancellationToken.None);

        await Assert.ThrowsAsync<DeltaConcurrencyException>(() => append.CommitAsync(Streaming("app", 1), CancellationToken.None));

        Assert.Empty(DataFiles(dir.Path));
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(1, reopened.Snapshot.Version);
        Assert.Empty(reopened.Snapshot.Files);
    }

    [Fact]
    public async Task Rows_staged_before_the_tables_own_schema_evolution_commit_with_it_and_read_the_new_column_as_null()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await using var append = table.BeginAppend();
        append.Write(Rows(0, 3));
        var wider = new StreamSchema([.. TestData.IdNameVersion.Columns, new Field("extra", DataType.String)]);
        await table.EvolveSchemaAsync(wider, new CommitOptions("ADD COLUMNS"), CancellationToken.None);

        // The old shape no longer fits; the new one goes to a file of its own.
        Assert.Throws<ArgumentException>(() => append.Write(Rows(10, 1)));
        var extra = new StringArray.Builder().Append("x").Append("y").Build();
        var newer = Rows(3, 2);
        append.Write(new RecordBatch(wider.ToArrowSchema(), [newer.Column(0), newer.Column(1), newer.Column(2), extra], 2));
        await append.CommitAsync(Streaming("app", 1), CancellationToken.None);

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(2, reopened.Snapshot.Files.Count);
        var extras = new Dictionary<long, string?>();
        await foreach (var batch in reopened.ScanAsync(reopened.Snapshot, CancellationToken.None))
        {
            var ids = (Int64Array)batch.Column(0);
            var values = (StringArray)batch.Column(3);
            for (var i = 0; i < batch.Length; i++)
            {
                extras.Add(ids.GetValue(i)!.Value, values.GetString(i));
            }
        }

        Assert.Equal(new Dictionary<long, string?> { [0] = null, [1] = null, [2] = null, [3] = "x", [4] = "y" }, extras);
    }

    [Fact]
    public async Task An_absorbed_append_is_committed_by_the_one_that_absorbed_it_and_dropped_with_it()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await using var covered = table.BeginAppend();
        covered.Write(Rows(0, 10));
        var spilled = table.BeginAppend();
        spilled.Write(Rows(10, 10));

        covered.Absorb(spilled);
        covered.Write(Rows(20, 10));

        Assert.Equal(30, covered.RowsWritten);
        Assert.Throws<ObjectDisposedException>(() => spilled.Write(Rows(0, 1)));
        await spilled.DisposeAsync(); // finished: deletes nothing
        Assert.Equal(2, DataFiles(dir.Path).Length);
        await covered.CommitAsync(Streaming("app", 1), CancellationToken.None);
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(30, (await TestData.ReadAllAsync(reopened, reopened.Snapshot)).Count);

        var other = await DeltaTable.OpenOrCreateAsync(Path.Combine(dir.Path, "other"), TestData.IdNameVersion, [], null, CancellationToken.None);
        await using var foreign = other.BeginAppend();
        await using var mine = table.BeginAppend();
        Assert.Throws<ArgumentException>(() => mine.Absorb(foreign));
    }
}
