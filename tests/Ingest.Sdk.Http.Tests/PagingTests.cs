namespace Ingest.Sdk.Http.Tests;

public sealed class PagingTests
{
    private static readonly int[] Items = Enumerable.Range(1, 23).ToArray();

    [Fact]
    public async Task Cursor_paging_reads_every_item_once_and_resumes_after_a_cursor()
    {
        Task<Page<int>> Fetch(string? after, CancellationToken ct)
        {
            var from = after is null ? 0 : Array.IndexOf(Items, int.Parse(after, System.Globalization.CultureInfo.InvariantCulture)) + 1;
            var page = Items.Skip(from).Take(5).ToList();
            return Task.FromResult(new Page<int>(page, from + page.Count < Items.Length));
        }

        var all = new List<int>();
        await foreach (var p in Paging.ByCursorAsync(Fetch, i => i.ToString(System.Globalization.CultureInfo.InvariantCulture), null, CancellationToken.None))
        {
            all.AddRange(p.Items);
        }

        Assert.Equal(Items, all);
        var rest = new List<int>();
        await foreach (var p in Paging.ByCursorAsync(Fetch, i => i.ToString(System.Globalization.CultureInfo.InvariantCulture), "10", CancellationToken.None))
        {
            rest.AddRange(p.Items);
        }

        Assert.Equal(Items.Skip(10), rest);
    }

    [Fact]
    public async Task Offset_paging_stops_at_the_total()
    {
        var calls = 0;
        var all = new List<int>();
        await foreach (var p in Paging.ByOffsetAsync((offset, limit, ct) =>
        {
            calls++;
            return Task.FromResult(new Page<int>(Items.Skip((int)offset).Take(limit).ToList(), true, Total: Items.Length));
        }, 5, 0, CancellationToken.None))
        {
            all.AddRange(p.Items);
        }

        Assert.Equal(Items, all);
        Assert.Equal(5, calls);
    }

    [Fact]
    public async Task Token_paging_follows_tokens_and_refuses_a_loop()
    {
        var all = new List<int>();
        await foreach (var p in Paging.ByTokenAsync((token, ct) =>
        {
            var from = token is null ? 0 : int.Parse(token, System.Globalization.CultureInfo.InvariantCulture);
            var next = from + 10 < Items.Length ? (from + 10).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
            return Task.FromResult(new Page<int>(Items.Skip(from).Take(10).ToList(), next is not null, next));
        }, null, CancellationToken.None))
        {
            all.AddRange(p.Items);
        }

        Assert.Equal(Items, all);
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await foreach (var p in Paging.ByTokenAsync((token, ct) => Task.FromResult(new Page<int>([1], true, "same")), null, CancellationToken.None))
            {
            }
        });
    }
}
