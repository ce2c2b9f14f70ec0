using System.Runtime.CompilerServices;

namespace Ingest.Sdk.Http;

/// <summary>One page of a listing.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Items">The page's items.</param>
/// <param name="HasMore">Whether another page follows (for cursor and offset paging).</param>
/// <param name="NextToken">The token of the next page (token paging), null on the last page.</param>
/// <param name="Total">The total number of items, where the API says (offset paging).</param>
public sealed record Page<T>(IReadOnlyList<T> Items, bool HasMore, string? NextToken = null, long? Total = null);

/// <summary>
/// The three ways APIs page: a cursor taken from the last item (Stripe's <c>starting_after</c>), an offset and limit
/// (GA4, MailChimp), and an opaque next-page token. Each yields pages in order and stops on an empty or last page.
/// Pages, not items, are yielded so that a connector can checkpoint after each one.
/// </summary>
public static class Paging
{
    /// <summary>
    /// Cursor paging: <paramref name="fetch"/> gets the page after cursor (null for the first), and the next cursor is
    /// <paramref name="cursorOf"/> of the page's last item. Starts after <paramref name="startAfter"/> when resuming.
    /// </summary>
    public static async IAsyncEnumerable<Page<T>> ByCursorAsync<T>(
        Func<string?, CancellationToken, Task<Page<T>>> fetch,
        Func<T, string> cursorOf,
        string? startAfter,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        ArgumentNullException.ThrowIfNull(cursorOf);
        var cursor = startAfter;
        while (true)
        {
            var page = await fetch(cursor, cancellationToken).ConfigureAwait(false);
            yield return page;
            if (!page.HasMore || page.Items.Count == 0)
            {
                yield break;
            }

            var next = cursorOf(page.Items[^1]);
            if (next == cursor)
            {
                throw new InvalidOperationException($"The API returned the same cursor '{next}' twice; paging would never end.");
            }

            cursor = next;
        }
    }

    /// <summary>
    /// Offset paging: <paramref name="fetch"/> gets <paramref name="pageSize"/> items from an offset; stops when a page is
    /// short, empty, says it is the last, or the offset reaches the reported total.
    /// </summary>
    public static async IAsyncEnumerable<Page<T>> ByOffsetAsync<T>(
        Func<long, int, CancellationToken, Task<Page<T>>> fetch,
        int pageSize,
        long startOffset,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var offset = startOffset;
        while (true)
        {
            var page = await fetch(offset, pageSize, cancellationToken).ConfigureAwait(false);
            yield return page;
            offset += page.Items.Count;
            if (page.Items.Count == 0 || page.Items.Count < pageSize || !page.HasMore || (page.Total is { } total && offset >= total))
            {
                yield break;
            }
        }
    }

    /// <summary>Token paging: <paramref name="fetch"/> gets the page for a token (null first) and says the next token, null at the end.</summary>
    public static async IAsyncEnumerable<Page<T>> ByTokenAsync<T>(
        Func<string?, CancellationToken, Task<Page<T>>> fetch,
        string? startToken,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        var token = startToken;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var page = await fetch(token, cancellationToken).ConfigureAwait(false);
            yield return page;
            if (string.IsNullOrEmpty(page.NextToken))
            {
                yield break;
            }

            if (!seen.Add(page.NextToken))
            {
                throw new InvalidOperationException($"The API returned page token '{page.NextToken}' twice; paging would never end.");
            }

            token = page.NextToken;
        }
    }
}
