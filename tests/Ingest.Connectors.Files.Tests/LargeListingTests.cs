using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Files.Tests;

public sealed class LargeListingTests
{
    /// <summary>A store of many one-row CSV files listed lazily, as S3 pages are: it tells how far the listing got.</summary>
    private sealed class SyntheticStore(int files) : IFileStore
    {
        private static readonly DateTimeOffset Start = DateTimeOffset.UtcNow.AddDays(-3);

        public int Listed { get; private set; }

        public bool ListingEnded { get; private set; }

        public int Opened { get; private set; }

        public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            ListingEnded = false;
            Listed = 0;
            for (var i = 0; i < files; i++)
            {
                var path = $"part-{i:000000}.csv";
                if (!path.StartsWith(prefix, StringComparison.Ordinal))
                {
                    continue;
                }

                Listed++;

                // Keys in listing order, modification times not: a page is read by time, the listing by key.
                yield return new FileEntry(path, 8, Start.AddSeconds((i * 7919) % files), $"etag-{i}");
            }

            ListingEnded = true;
        }

        public Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken)
        {
            Opened++;
            var id = int.Parse(file.Path.AsSpan(5, 6), System.Globalization.CultureInfo.InvariantCulture);
            return Task.FromResult<Stream>(new MemoryStream(Encoding.UTF8.GetBytes($"id\n{id}\n")));
        }
    }

    private static FileTableOptions Table() =>
        new("parts", "*.csv", FileFormat.Csv, new CsvFormatOptions(), [new Field("id", DataType.Int64)], ["id"]);

    private static FileSourceReader Reader(SyntheticStore store, JsonElement? state) =>
        new(store, [Table()], new ReadContext("t", default, [new StreamSelection("parts", SyncMode.Cdc)], state, NullConnectorLog.Instance),
            new FileReadOptions(TimeSpan.FromMinutes(5), TimeSpan.FromHours(1), ListPageSize: 1000));

    private static void Collect(ChangeBatch b, List<long> ids)
    {
        var col = (Apache.Arrow.Int64Array)b.Data.Column(0);
        for (var r = 0; r < b.Length; r++)
        {
            ids.Add(col.GetValue(r)!.Value);
        }

        b.Dispose();
    }

    [Fact]
    public async Task A_100k_file_listing_checkpoints_before_it_ends_and_a_restart_from_mid_listing_neither_loses_nor_repeats_a_file()
    {
        const int Files = 100_000;
        var store = new SyntheticStore(Files);
        var durable = new List<long>();
        var pending = new List<long>();
        Checkpoint? mid = null;
        int listedAtFirstCheckpoint = -1, checkpoints = 0;
        await using (var reader = Reader(store, null))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    Collect(b, pending);
                }
                else if (m is Checkpoint c)
                {
                    checkpoints++;
                    if (listedAtFirstCheckpoint < 0)
                    {
                        listedAtFirstCheckpoint = store.Listed;
                        Assert.False(store.ListingEnded);
                    }

                    // Everything before this checkpoint is durable; stop (as a crash would) well inside the listing.
                    durable.AddRange(pending);
                    pending.Clear();
                    mid = c;
                    if (store.Listed >= Files / 3)
                    {
                        break;
                    }
                }
            }
        }

        Assert.InRange(listedAtFirstCheckpoint, 1, 2000);
        Assert.False(store.ListingEnded);
        Assert.True(checkpoints >= 30, $"only {checkpoints} checkpoints in the first third of the listing");
        Assert.InRange(durable.Count, Files / 4, Files / 2);

        var restarted = new SyntheticStore(Files);
        var rest = new List<long>();
        await using (var reader = Reader(restarted, mid!.State))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    Collect(b, rest);
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        Assert.Equal(Files - durable.Count, restarted.Opened); // no file that was durable is opened again
        var all = durable.Concat(rest).ToList();
        Assert.Equal(Files, all.Count);
        Assert.Equal(Files, all.Distinct().Count());
    }
}
