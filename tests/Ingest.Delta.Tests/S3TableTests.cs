using System.Text;
using Amazon.S3.Model;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Tests;

[Collection(MotoCollection.Name)]
public sealed class S3TableTests(MotoServer moto)
{
    private static readonly CommitOptions Write = new("WRITE");

    private static MergeRequest Upsert(IEnumerable<(long Id, string? Name, long Version)> rows, params long[] deletes)
    {
        var all = rows.Concat(deletes.Select(d => (d, (string?)null, long.MaxValue))).ToList();
        return new MergeRequest(TestData.Rows(TestData.IdNameVersion, all), all.Select(r => deletes.Contains(r.Item1) && r.Item3 == long.MaxValue).ToArray(), ["id"], null);
    }

    [Fact]
    public async Task Put_if_absent_creates_a_key_once_and_refuses_every_later_writer()
    {
        var bucket = await moto.CreateBucketAsync();
        var store = LogStores.Create($"s3://{bucket}/t", moto.Storage);
        const string key = "_delta_log/00000000000000000000.json";

        Assert.True(await store.PutIfAbsentAsync(key, "first"u8.ToArray(), CancellationToken.None));
        Assert.False(await store.PutIfAbsentAsync(key, "late"u8.ToArray(), CancellationToken.None));
        Assert.Equal("first", Encoding.UTF8.GetString((await store.ReadAsync(key, CancellationToken.None))!));

        // Writers racing for a new key: S3 decides the race atomically (one 200, the others 412). moto checks and then
        // writes without a lock, so two racers can both get 200 from it: here the store must answer every racer, at
        // least one wins, the key holds a winner's bytes, and every writer after the race is refused.
        const string raced = "_delta_log/00000000000000000001.json";
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            store.PutIfAbsentAsync(raced, Encoding.UTF8.GetBytes("writer " + i), CancellationToken.None)));

        Assert.Contains(true, results);
        var stored = Encoding.UTF8.GetString((await store.ReadAsync(raced, CancellationToken.None))!);
        Assert.Contains(stored, Enumerable.Range(0, 8).Where(i => results[i]).Select(i => "writer " + i));
        Assert.False(await store.PutIfAbsentAsync(raced, "late"u8.ToArray(), CancellationToken.None));
    }

    [Fact]
    public async Task Table_on_s3_creates_appends_merges_checkpoints_and_reads_back()
    {
        var bucket = await moto.CreateBucketAsync();
        var uri = $"s3://{bucket}/lake/orders";
        var table = await DeltaTable.OpenOrCreateAsync(uri, TestData.IdNameVersion, [], new Dictionary<string, string> { ["delta.checkpointInterval"] = "3" }, moto.Storage, CancellationToken.None);
        Assert.Equal(uri, table.Path);

        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 100).Select(i => ((long)i, (string?)$"n{i}", 1L)))], Write, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(100, 50).Select(i => ((long)i, (string?)$"n{i}", 1L)))], Write, CancellationToken.None);
        var merged = await table.MergeAsync(Upsert([(5, "five", 2), (200, "new", 2)], 7), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(3, merged.Version);
        var keys = await moto.KeysAsync(bucket);
        Assert.Contains("lake/orders/_delta_log/00000000000000000003.checkpoint.parquet", keys);
        Assert.Contains("lake/orders/_delta_log/_last_checkpoint", keys);
        Assert.Contains(keys, k => k.StartsWith("lake/orders/part-", StringComparison.Ordinal) && k.EndsWith(".parquet", StringComparison.Ordinal));

        // A fresh open starts from the checkpoint on S3 and sees every change.
        var reopened = (await DeltaTable.TryOpenAsync(uri, moto.Storage, CancellationToken.None))!;
        var rows = await TestData.ReadAllAsync(reopened, reopened.Snapshot);
        Assert.Equal(150, rows.Count);
        Assert.Equal(("five", 2L), rows[5]);
        Assert.Equal(("new", 2L), rows[200]);
        Assert.False(rows.ContainsKey(7));
        Assert.Equal(3, reopened.Snapshot.Version);
    }

    [Fact]
    public async Task Time_travel_on_s3_reads_older_versions_by_version_and_timestamp()
    {
        var bucket = await moto.CreateBucketAsync();
        var uri = $"s3://{bucket}/t";
        var table = await DeltaTable.OpenOrCreateAsync(uri, TestData.IdNameVersion, [], null, moto.Storage, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1), (2, "b", 1)])], Write, CancellationToken.None);
        await Task.Delay(1100); // S3 modification times have second precision
        var between = DateTimeOffset.UtcNow;
        await Task.Delay(1100);
        await table.MergeAsync(Upsert([(1, "a2", 2)], 2), new CommitOptions("MERGE"), CancellationToken.None);

        var v1 = await TestData.ReadAllAsync(table, await table.GetSnapshotAsync(1, CancellationToken.None));
        var asOf = await TestData.ReadAllAsync(table, await table.GetSnapshotAsOfAsync(between, CancellationToken.None));
        var latest = await TestData.ReadAllAsync(table, table.Snapshot);

        Assert.Equal([1L, 2L], v1.Keys.Order());
        Assert.Equal("a", v1[1].Name);
        Assert.Equal(v1, asOf);
        Assert.Equal([1L], latest.Keys);
        Assert.Equal("a2", latest[1].Name);
    }

    [Fact]
    public async Task Concurrent_writers_on_s3_one_conflicts_and_succeeds_on_retry()
    {
        var bucket = await moto.CreateBucketAsync();
        var uri = $"s3://{bucket}/t";
        var a = await DeltaTable.OpenOrCreateAsync(uri, TestData.IdNameVersion, [], null, moto.Storage, CancellationToken.None);
        await a.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 10).Select(i => ((long)i, (string?)"x", 1L)))], Write, CancellationToken.None);
        var b = (await DeltaTable.TryOpenAsync(uri, moto.Storage, CancellationToken.None))!;

        // Both read version 1; A commits version 2 first.
        await a.MergeAsync(Upsert([(3, "from a", 2)]), new CommitOptions("MERGE"), CancellationToken.None);
        // B's merge touches the file A rewrote: its put of version 2 gets 412, and the re-read finds the conflict.
        await Assert.ThrowsAsync<DeltaConcurrencyException>(() => b.MergeAsync(Upsert([(4, "from b", 2)]), new CommitOptions("MERGE"), CancellationToken.None));
        // A blind append of B's does not conflict: it is retried as the next version on its own.
        var appended = await b.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(50, "appended", 1)])], Write, CancellationToken.None);
        Assert.Equal(3, appended.Version);

        // B retries its merge on the fresh snapshot and wins.
        await b.RefreshAsync(CancellationToken.None);
        var retried = await b.MergeAsync(Upsert([(4, "from b", 2)]), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(4, retried.Version);
        var rows = await TestData.ReadAllAsync(b, b.Snapshot);
        Assert.Equal(11, rows.Count);
        Assert.Equal("from a", rows[3].Name);
        Assert.Equal("from b", rows[4].Name);
        Assert.Equal("appended", rows[50].Name);
        Assert.DoesNotContain(await moto.KeysAsync(bucket), k => k.Contains("00000000000000000005.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Vacuum_on_s3_deletes_unreferenced_files_and_keeps_live_ones()
    {
        var bucket = await moto.CreateBucketAsync();
        var uri = $"s3://{bucket}/t";
        var table = await DeltaTable.OpenOrCreateAsync(uri, TestData.IdNameVersion, [], null, moto.Storage, CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(i * 10, 10).Select(k => ((long)k, (string?)"v", 1L)))], Write, CancellationToken.None);
        }

        await table.OptimizeAsync(null, CancellationToken.None);
        await moto.Client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "t/part-orphan.snappy.parquet", ContentBody = "x", UseChunkEncoding = false });

        var dry = await table.VacuumAsync(TimeSpan.Zero, dryRun: true, force: true, CancellationToken.None);
        Assert.Equal(4, dry.Files.Count);
        Assert.Contains("part-orphan.snappy.parquet", dry.Files);

        var done = await table.VacuumAsync(TimeSpan.Zero, dryRun: false, force: true, CancellationToken.None);

        Assert.Equal(4, done.Files.Count);
        var data = (await moto.KeysAsync(bucket)).Where(k => k.EndsWith(".parquet", StringComparison.Ordinal) && !k.Contains("_delta_log", StringComparison.Ordinal)).ToList();
        Assert.Single(data);
        Assert.Equal(30, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
        var history = await table.HistoryAsync(2, CancellationToken.None);
        Assert.Equal(["VACUUM END", "VACUUM START"], history.Select(h => h.Operation));
    }

    [Fact]
    public async Task Deletion_vector_and_change_feed_merge_on_s3_reads_back()
    {
        var bucket = await moto.CreateBucketAsync();
        var uri = $"s3://{bucket}/dv";
        var config = new Dictionary<string, string> { ["delta.enableDeletionVectors"] = "true", ["delta.enableChangeDataFeed"] = "true" };
        var table = await DeltaTable.OpenOrCreateAsync(uri, TestData.IdNameVersion, [], config, moto.Storage, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 20).Select(i => ((long)i, (string?)$"n{i}", 1L)))], Write, CancellationToken.None);

        await table.MergeAsync(Upsert([(2, "two", 2)], 3), new CommitOptions("MERGE"), CancellationToken.None);

        var keys = await moto.KeysAsync(bucket);
        Assert.Single(keys, k => k.StartsWith("dv/deletion_vector_", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.StartsWith("dv/_change_data/cdc-", StringComparison.Ordinal));
        var reopened = (await DeltaTable.TryOpenAsync(uri, moto.Storage, CancellationToken.None))!;
        var rows = await TestData.ReadAllAsync(reopened, reopened.Snapshot);
        Assert.Equal(19, rows.Count);
        Assert.Equal("two", rows[2].Name);
        Assert.False(rows.ContainsKey(3));
        Assert.Equal(1, reopened.Describe().FilesWithDeletionVectors);
    }

    [Fact]
    public async Task Missing_bucket_fails_with_the_table_uri_in_the_error()
    {
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => DeltaTable.TryOpenAsync("s3://no-such-bucket-" + Guid.NewGuid().ToString("N")[..8] + "/t", moto.Storage, CancellationToken.None));
        Assert.Contains("bucket", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("s3://")]
    [InlineData("s3:///prefix")]
    public void Uri_without_bucket_is_refused(string uri)
    {
        var ex = Assert.Throws<ArgumentException>(() => LogStores.Create(uri, moto.Storage));
        Assert.Contains("no bucket", ex.Message, StringComparison.Ordinal);
    }
}
