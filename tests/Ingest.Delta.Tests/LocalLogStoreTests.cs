using Ingest.Delta.Storage;

namespace Ingest.Delta.Tests;

public sealed class LocalLogStoreTests
{
    [Fact]
    public async Task Put_if_absent_writes_once_and_never_replaces()
    {
        using var dir = new TempDir();
        var store = new LocalLogStore(dir.Path);

        Assert.True(await store.PutIfAbsentAsync("_delta_log/00000000000000000000.json", "first\n"u8.ToArray(), CancellationToken.None));
        Assert.False(await store.PutIfAbsentAsync("_delta_log/00000000000000000000.json", "second\n"u8.ToArray(), CancellationToken.None));

        Assert.Equal("first\n"u8.ToArray(), await store.ReadAsync("_delta_log/00000000000000000000.json", CancellationToken.None));
        var listed = await store.ListAsync("_delta_log/", CancellationToken.None);
        Assert.Equal(["_delta_log/00000000000000000000.json"], listed.Select(f => f.Path));
    }

    [Fact]
    public async Task Racing_put_if_absent_lets_exactly_one_writer_win()
    {
        using var dir = new TempDir();
        var store = new LocalLogStore(dir.Path);

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => store.PutIfAbsentAsync("_delta_log/00000000000000000001.json", System.Text.Encoding.UTF8.GetBytes($"writer {i}\n"), CancellationToken.None))));

        Assert.Single(results, r => r);
        var content = System.Text.Encoding.UTF8.GetString((await store.ReadAsync("_delta_log/00000000000000000001.json", CancellationToken.None))!);
        Assert.Equal($"writer {Array.IndexOf(results, true)}\n", content);
    }

    [Fact]
    public async Task Overwrite_replaces_and_read_of_a_missing_file_is_null()
    {
        using var dir = new TempDir();
        var store = new LocalLogStore(dir.Path);

        await store.OverwriteAsync("_delta_log/_last_checkpoint", "{\"version\":1}"u8.ToArray(), CancellationToken.None);
        await store.OverwriteAsync("_delta_log/_last_checkpoint", "{\"version\":2}"u8.ToArray(), CancellationToken.None);

        Assert.Equal("{\"version\":2}"u8.ToArray(), await store.ReadAsync("_delta_log/_last_checkpoint", CancellationToken.None));
        Assert.Null(await store.ReadAsync("_delta_log/missing.json", CancellationToken.None));
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "_delta_log")));
    }

    [Fact]
    public void A_file_that_vanishes_between_listing_and_stat_is_left_out_instead_of_failing_the_reader()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "00000000000000000003.json.tmp");
        File.WriteAllText(path, "{}\n");
        var info = new FileInfo(path);

        // Another process renames its temporary commit file into place after our listing saw it.
        File.Delete(path);

        Assert.Null(LocalLogStore.Stat(info));
    }
}
