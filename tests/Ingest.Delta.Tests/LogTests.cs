using System.Text.Json.Nodes;
using Ingest.Sdk.Types;

namespace Ingest.Delta.Tests;

public sealed class LogTests
{
    private static Task<DeltaTable> CreateAsync(TempDir dir, IReadOnlyDictionary<string, string>? config = null) =>
        DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], config, CancellationToken.None);

    private static Task<CommitResult> AppendAsync(DeltaTable table, long from, int count, CommitOptions? options = null) =>
        table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, count).Select(i => (from + i, (string?)"n", 1L)))], options ?? new CommitOptions("WRITE"), CancellationToken.None);

    [Fact]
    public async Task Create_writes_commit_info_protocol_and_metadata_in_spark_shape()
    {
        using var dir = new TempDir();
        await CreateAsync(dir, new Dictionary<string, string> { ["delta.appendOnly"] = "false" });

        var lines = File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", "00000000000000000000.json")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["commitInfo", "protocol", "metaData"], lines.Select(l => l.Single().Key));
        Assert.Equal(1, lines[1]["protocol"]!["minReaderVersion"]!.GetValue<int>());
        Assert.Equal(2, lines[1]["protocol"]!["minWriterVersion"]!.GetValue<int>());
        var meta = lines[2]["metaData"]!;
        Assert.True(Guid.TryParse(meta["id"]!.GetValue<string>(), out _));
        Assert.Equal("parquet", meta["format"]!["provider"]!.GetValue<string>());
        Assert.Equal("""{"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},{"name":"name","type":"string","nullable":true,"metadata":{}},{"name":"version","type":"long","nullable":true,"metadata":{}}]}""", meta["schemaString"]!.GetValue<string>());
        Assert.Empty(meta["partitionColumns"]!.AsArray());
        Assert.Equal("false", meta["configuration"]!["delta.appendOnly"]!.GetValue<string>());
        Assert.True(meta["createdTime"]!.GetValue<long>() > 0);
    }

    [Fact]
    public async Task Txn_versions_and_app_metadata_round_trip_through_the_log()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir);
        var appMeta = new JsonObject { ["ingest"] = new JsonObject { ["position"] = "0/16B3748" } };

        await AppendAsync(table, 0, 3, new CommitOptions("WRITE", Txns: [new TxnAction("stream-a", 7)], AppMetadata: appMeta));
        await table.CommitEmptyAsync(new CommitOptions("WRITE", Txns: [new TxnAction("stream-b", 2), new TxnAction("stream-a", 8)]), CancellationToken.None);

        Assert.Equal(8, table.Snapshot.TxnVersions["stream-a"]);
        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(8, reopened.Snapshot.TxnVersions["stream-a"]);
        Assert.Equal(2, reopened.Snapshot.TxnVersions["stream-b"]);
        var history = await reopened.HistoryAsync(null, CancellationToken.None);
        Assert.Equal([2L, 1L, 0L], history.Select(h => h.Version));
        Assert.Equal("0/16B3748", history[1].CommitInfo["ingest"]!["position"]!.GetValue<string>());
        var v1 = File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", "00000000000000000001.json"));
        Assert.StartsWith("{\"commitInfo\":", v1[0], StringComparison.Ordinal);
        Assert.Contains(v1, l => l.StartsWith("{\"txn\":{\"appId\":\"stream-a\",\"version\":7,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Checkpoints_are_written_every_ten_commits_and_give_the_same_snapshot()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir);
        for (var i = 0; i < 25; i++)
        {
            if (i % 7 == 6)
            {
                await table.MergeAsync(new MergeRequest(TestData.Rows(TestData.IdNameVersion, [(i * 10 - 5, "m", 2)]), [true], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
            }
            else
            {
                await AppendAsync(table, i * 10, 10, new CommitOptions("WRITE", Txns: [new TxnAction("app", i)]));
            }
        }

        var log = Path.Combine(dir.Path, "_delta_log");
        Assert.True(File.Exists(Path.Combine(log, "00000000000000000010.checkpoint.parquet")));
        Assert.True(File.Exists(Path.Combine(log, "00000000000000000020.checkpoint.parquet")));
        Assert.False(File.Exists(Path.Combine(log, "00000000000000000025.checkpoint.parquet")));
        var last = JsonNode.Parse(File.ReadAllText(Path.Combine(log, "_last_checkpoint")))!;
        Assert.Equal(20, last["version"]!.GetValue<long>());

        var fromCheckpoint = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!.Snapshot;

        // The same table without checkpoints: replay of every JSON commit.
        using var copy = new TempDir();
        Directory.CreateDirectory(Path.Combine(copy.Path, "_delta_log"));
        foreach (var f in Directory.GetFiles(log, "*.json"))
        {
            File.Copy(f, Path.Combine(copy.Path, "_delta_log", Path.GetFileName(f)));
        }

        var fromJson = (await DeltaTable.TryOpenAsync(copy.Path, CancellationToken.None))!.Snapshot;
        Assert.Equal(25, fromCheckpoint.Version);
        Assert.Equal(fromJson.Version, fromCheckpoint.Version);
        Assert.Equal(fromJson.Schema, fromCheckpoint.Schema);
        Assert.Equal(fromJson.Files.OrderBy(f => f.Path).Select(Describe), fromCheckpoint.Files.OrderBy(f => f.Path).Select(Describe));
        Assert.Equal(fromJson.TxnVersions, fromCheckpoint.TxnVersions);
        Assert.Equal(fromJson.RowCount, fromCheckpoint.RowCount);
        Assert.Equal(24, fromCheckpoint.TxnVersions["app"]);

        // A checkpoint read by DuckDB (an independent Parquet reader) holds protocol, metaData and every live add.
        using var db = TestData.DuckDb();
        var cp = Path.Combine(log, "00000000000000000020.checkpoint.parquet");
        var adds = Convert.ToInt64(TestData.Scalar(db, $"select count(*) from read_parquet('{cp}') where add is not null"), System.Globalization.CultureInfo.InvariantCulture);
        var snapshot20 = await (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!.GetSnapshotAsync(20, CancellationToken.None);
        Assert.Equal(snapshot20.Files.Count, adds);
        Assert.Equal(1L, Convert.ToInt64(TestData.Scalar(db, $"select count(*) from read_parquet('{cp}') where metaData is not null"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, Convert.ToInt32(TestData.Scalar(db, $"select protocol.minWriterVersion from read_parquet('{cp}') where protocol is not null"), System.Globalization.CultureInfo.InvariantCulture));
    }

    private static string Describe(AddFile f) =>
        $"{f.Path}|{f.Size}|{f.ModificationTime}|{f.DataChange}|{f.Stats}|{string.Join(",", f.PartitionValues.Select(kv => kv.Key + "=" + kv.Value))}";

    [Fact]
    public async Task A_damaged_checkpoint_is_skipped_in_favour_of_the_json_commits()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir);
        for (var i = 0; i < 11; i++)
        {
            await AppendAsync(table, i * 10, 10);
        }

        var checkpoint = Path.Combine(dir.Path, "_delta_log", "00000000000000000010.checkpoint.parquet");
        Assert.True(File.Exists(checkpoint));
        await File.WriteAllBytesAsync(checkpoint, "PAR1 not really"u8.ToArray());

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;

        Assert.Equal(11, reopened.Snapshot.Version);
        Assert.Equal(110, await TestData.CountAsync(reopened, reopened.Snapshot));
    }

    [Fact]
    public async Task Checkpoint_interval_from_table_configuration_is_honoured()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir, new Dictionary<string, string> { ["delta.checkpointInterval"] = "3" });
        for (var i = 0; i < 6; i++)
        {
            await AppendAsync(table, i * 10, 2);
        }

        var log = Path.Combine(dir.Path, "_delta_log");
        Assert.Equal(["00000000000000000003.checkpoint.parquet", "00000000000000000006.checkpoint.parquet"], Directory.GetFiles(log, "*.checkpoint.parquet").Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Time_travel_returns_each_version_rows()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir);
        await AppendAsync(table, 0, 5);
        await AppendAsync(table, 5, 5);
        await table.DeleteAllAsync(new CommitOptions("DELETE"), CancellationToken.None);
        await AppendAsync(table, 100, 2);

        Assert.Equal(0, await TestData.CountAsync(table, await table.GetSnapshotAsync(0, CancellationToken.None)));
        Assert.Equal(5, await TestData.CountAsync(table, await table.GetSnapshotAsync(1, CancellationToken.None)));
        Assert.Equal(10, await TestData.CountAsync(table, await table.GetSnapshotAsync(2, CancellationToken.None)));
        var v3 = await table.GetSnapshotAsync(3, CancellationToken.None);
        Assert.Empty(v3.Files);
        Assert.Equal(0, v3.RowCount);
        Assert.Equal(2, await TestData.CountAsync(table, table.Snapshot));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => table.GetSnapshotAsync(9, CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_appenders_from_two_tasks_lose_nothing()
    {
        using var dir = new TempDir();
        await CreateAsync(dir);
        var a = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        var b = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;

        async Task RunAsync(DeltaTable t, long offset)
        {
            for (var i = 0; i < 15; i++)
            {
                await AppendAsync(t, offset + i * 10, 10);
            }
        }

        await Task.WhenAll(Task.Run(() => RunAsync(a, 0)), Task.Run(() => RunAsync(b, 100_000)));

        var table = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(30, table.Snapshot.Version);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(300, rows.Count);
    }

    [Fact]
    public async Task Merge_conflicts_when_a_concurrent_commit_removed_a_file_it_rewrote()
    {
        using var dir = new TempDir();
        var a = await CreateAsync(dir);
        await AppendAsync(a, 0, 10);
        var b = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;

        await a.DeleteAllAsync(new CommitOptions("DELETE"), CancellationToken.None);
        var source = TestData.Rows(TestData.IdNameVersion, [(3, "x", 2)]);

        var ex = await Assert.ThrowsAsync<DeltaConcurrencyException>(() => b.MergeAsync(new MergeRequest(source, [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None));
        Assert.Contains("removed file", ex.Message, StringComparison.Ordinal);
        await b.RefreshAsync(CancellationToken.None);
        Assert.Equal(2, b.Snapshot.Version);
    }

    [Fact]
    public async Task Merge_conflicts_when_a_concurrent_commit_added_a_file_that_may_hold_its_keys()
    {
        using var dir = new TempDir();
        var a = await CreateAsync(dir);
        await AppendAsync(a, 0, 10);
        var b = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;

        // A inserts id 50 first; B's merge would insert id 50 again from a stale snapshot.
        await AppendAsync(a, 50, 1);
        var source = TestData.Rows(TestData.IdNameVersion, [(50, "dup", 2)]);

        await Assert.ThrowsAsync<DeltaConcurrencyException>(() => b.MergeAsync(new MergeRequest(source, [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None));

        // After a refresh the merge updates the row instead of duplicating it.
        await b.RefreshAsync(CancellationToken.None);
        await b.MergeAsync(new MergeRequest(source, [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        var rows = await TestData.ReadAllAsync(b, b.Snapshot);
        Assert.Equal(("dup", 2L), rows[50]);
        Assert.Equal(11, rows.Count);
    }

    [Fact]
    public async Task Merge_does_not_conflict_with_a_concurrent_append_of_other_keys()
    {
        using var dir = new TempDir();
        var a = await CreateAsync(dir);
        await AppendAsync(a, 0, 10);
        var b = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;

        await AppendAsync(a, 1000, 10);
        var result = await b.MergeAsync(new MergeRequest(TestData.Rows(TestData.IdNameVersion, [(5, "x", 2)]), [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(3, result.Version);
        Assert.Equal(20, (await TestData.ReadAllAsync(b, b.Snapshot)).Count);
    }

    [Fact]
    public async Task Append_after_a_concurrent_append_retries_as_the_next_version()
    {
        using var dir = new TempDir();
        var a = await CreateAsync(dir);
        var b = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await AppendAsync(a, 0, 3);

        var result = await AppendAsync(b, 10, 3);

        Assert.Equal(2, result.Version);
        Assert.Equal(6, await TestData.CountAsync(b, b.Snapshot));
        var commit = JsonNode.Parse(File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", "00000000000000000002.json"))[0])!;
        Assert.Equal(0, commit["commitInfo"]!["readVersion"]!.GetValue<long>());
    }

    [Fact]
    public async Task Delete_all_removes_every_file_with_extended_file_metadata()
    {
        using var dir = new TempDir();
        var table = await CreateAsync(dir);
        await AppendAsync(table, 0, 3);
        await AppendAsync(table, 3, 3);

        var result = await table.DeleteAllAsync(new CommitOptions("DELETE"), CancellationToken.None);

        Assert.Equal(2, result.FilesRemoved);
        Assert.Empty(table.Snapshot.Files);
        var removes = File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", "00000000000000000003.json")).Select(l => JsonNode.Parse(l)!).Where(n => n["remove"] is not null).ToList();
        Assert.Equal(2, removes.Count);
        Assert.All(removes, r => Assert.True(r["remove"]!["extendedFileMetadata"]!.GetValue<bool>()));
        Assert.All(removes, r => Assert.True(r["remove"]!["size"]!.GetValue<long>() > 0));
    }

    [Fact]
    public async Task TryOpen_returns_null_for_a_folder_without_a_table()
    {
        using var dir = new TempDir();
        Assert.Null(await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None));
    }
}
