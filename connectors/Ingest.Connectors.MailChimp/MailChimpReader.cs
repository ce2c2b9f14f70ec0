using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.MailChimp;

/// <summary>
/// One read, in passes: lists (all, deletions by difference), members of every list from each list's high-water mark
/// (several lists at once), campaigns, then reports with each campaign's new unsubscribes. Checkpoints after every page.
/// </summary>
internal sealed class MailChimpReader : ISourceReader
{
    private readonly MailChimpOptions _options;
    private readonly ReadContext _context;
    private readonly MailChimpApi _api;
    private readonly HashSet<string> _selected = new(StringComparer.Ordinal);
    private readonly Func<DateTimeOffset> _clock;

    public MailChimpReader(MailChimpOptions options, ReadContext context, HttpMessageHandler? inner = null, Func<HttpResilienceOptions, HttpResilienceOptions>? tune = null, Func<DateTimeOffset>? clock = null)
    {
        _options = options;
        _context = context;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        foreach (var s in context.Streams)
        {
            _ = MailChimpStreams.Find(s.Name)
                ?? throw new ConnectorException(ErrorKind.Configuration, $"MailChimp has no stream '{s.Name}'. Streams: {string.Join(", ", MailChimpStreams.All.Select(x => x.Name))}.", "/streams");
            _selected.Add(s.Name);
        }

        _api = new MailChimpApi(options, context.Log, inner, tune);
    }

    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var state = LoadState();
        var announced = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            var (lists, serverNow) = await ListsAsync(cancellationToken).ConfigureAwait(false);
            if (_selected.Contains("lists") && ListRows(state, lists) is { Count: > 0 } listRows)
            {
                yield return listRows.Build();
            }

            state.Lists = lists.Select(Id).ToList();
            if (_selected.Contains("members"))
            {
                await foreach (var m in MembersAsync(state, lists, serverNow, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }
            }

            if (_selected.Contains("campaigns"))
            {
                await foreach (var m in CampaignsAsync(state, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }
            }

            if (_selected.Contains("reports") || _selected.Contains("unsubscribes"))
            {
                await foreach (var m in ReportsAsync(state, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }
            }

            state.Caught = true;
            yield return Checkpoint.From(state);
            if (!announced)
            {
                yield return CaughtUp.Instance;
                announced = true;
            }

            await Task.Delay(_options.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    private MailChimpState LoadState()
    {
        if (_context.State is not { ValueKind: JsonValueKind.Object } json)
        {
            return new MailChimpState();
        }

        try
        {
            return json.Deserialize<MailChimpState>() ?? new MailChimpState();
        }
        catch (JsonException e)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"The saved MailChimp checkpoint cannot be read ({e.Message}); reset the connection's state to read again from startDate.", null, e);
        }
    }

    /// <summary>Every list (a few requests at most), and the server's clock at the first answer.</summary>
    private async Task<(List<JsonElement> Lists, DateTimeOffset ServerNow)> ListsAsync(CancellationToken cancellationToken)
    {
        var lists = new List<JsonElement>();
        DateTimeOffset? serverNow = null;
        await foreach (var (page, _) in PagesAsync("lists", "lists", null, 0, cancellationToken).ConfigureAwait(false))
        {
            serverNow ??= page.ServerDate;
            lists.AddRange(page.Page.Items);
        }

        // Without a Date header, our clock less a minute stands in for the server's (see MembersAsync on why it matters).
        return (lists, serverNow ?? _clock().AddMinutes(-1));
    }

    private ChangeBatchBuilder ListRows(MailChimpState state, List<JsonElement> lists)
    {
        var stream = MailChimpStreams.Lists;
        var b = new ChangeBatchBuilder(stream.Name, stream.Schema, Math.Max(1, lists.Count));
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var list in lists)
        {
            present.Add(Id(list));
            b.BeginRow(ChangeOp.Read, Position(state), Micros(list, "date_created"));
            RowMapper.Write(b, stream, list);
            b.EndRow();
        }

        foreach (var gone in state.Lists.Where(id => !present.Contains(id)))
        {
            b.BeginRow(ChangeOp.Delete, Position(state), 0);
            b.SetString(stream.Schema.IndexOf("id"), gone);
            b.EndRow();
        }

        return b;
    }

    /// <summary>What the member fetchers tell the reader: a page of a list's window (with the offset after it), or its end.</summary>
    private sealed record MemberPage(string ListId, IReadOnlyList<JsonElement>? Items, long NextOffset);

    /// <summary>
    /// Each list's members changed in [Since, Before), sorted by last_changed, up to maxConcurrency lists at once.
    /// Before is the server's clock when the pass began, so a member changed during the read leaves the window (to the
    /// next pass) rather than entering it; the window only shrinks, and the pager steps back when it does.
    /// </summary>
    private async IAsyncEnumerable<SourceMessage> MembersAsync(MailChimpState state, List<JsonElement> lists, DateTimeOffset serverNow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var ids = lists.Select(Id).ToList();
        foreach (var gone in state.Members.Keys.Where(k => !ids.Contains(k)).ToList())
        {
            state.Members.Remove(gone);
        }

        var before = serverNow.ToUnixTimeSeconds();
        foreach (var id in ids)
        {
            if (!state.Members.TryGetValue(id, out var p))
            {
                state.Members[id] = p = new MemberProgress { Since = _options.StartDate?.ToUnixTimeSeconds() };
            }

            if (p.Before is null)
            {
                p.Before = Math.Max(before, p.Since ?? long.MinValue);
                p.Offset = 0;
            }
        }

        var windows = new List<string>();
        foreach (var id in ids)
        {
            var p = state.Members[id];
            if (p.Since is { } since && since >= p.Before)
            {
                // Nothing can have changed in an empty window (a pass within the same second as the last one).
                p.Before = null;
                p.Offset = 0;
            }
            else
            {
                windows.Add(id);
            }
        }

        if (windows.Count == 0)
        {
            yield break;
        }

        yield return Checkpoint.From(state);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pages = Channel.CreateBounded<MemberPage>(new BoundedChannelOptions(2 * _options.MaxConcurrency) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        using var slots = new SemaphoreSlim(_options.MaxConcurrency);
        var fetchers = windows.Select(id => FetchMembersAsync(id, state.Members[id], pages.Writer, slots, cts.Token)).ToList();
        var stream = MailChimpStreams.Members;
        var builder = new ChangeBatchBuilder(stream.Name, stream.Schema, _options.PageSize);
        var remaining = windows.Count;
        long done = 0;
        try
        {
            while (remaining > 0)
            {
                var page = await NextAsync(pages.Reader, cancellationToken).ConfigureAwait(false);
                var p = state.Members[page.ListId];
                if (page.Items is null)
                {
                    remaining--;
                    p.Since = p.Before;
                    p.Before = null;
                    p.Offset = 0;
                    yield return Checkpoint.From(state);
                    continue;
                }

                foreach (var m in page.Items)
                {
                    var changed = LastChanged(m, page.ListId);
                    // The query reaches a second further back than Since (MailChimp does not say whether the bounds are inclusive).
                    if ((p.Since is { } since && changed < since) || changed >= p.Before)
                    {
                        continue;
                    }

                    builder.BeginRow(state.Caught ? ChangeOp.Update : ChangeOp.Read, Position(state), changed * 1_000_000);
                    RowMapper.Write(builder, stream, m);
                    builder.EndRow();
                }

                p.Offset = page.NextOffset;
                done += builder.Count;
                if (builder.Count > 0)
                {
                    yield return builder.Build();
                }

                yield return Checkpoint.From(state);
                yield return new StreamProgress(stream.Name, state.Caught ? StreamPhase.Streaming : StreamPhase.Snapshot, done, null);
            }
        }
        finally
        {
            await cts.CancelAsync().ConfigureAwait(false);
            try
            {
                await Task.WhenAll(fetchers).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private async Task FetchMembersAsync(string listId, MemberProgress p, ChannelWriter<MemberPage> pages, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        // Taken before the first await, on the reader's thread: the reader changes them only as it consumes this window's pages.
        var since = p.Since;
        var before = p.Before!.Value;
        var offset = p.Offset;
        try
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var query = "sort_field=last_changed&sort_dir=ASC&before_last_changed=" + Iso(before)
                    + (since is { } s ? "&since_last_changed=" + Iso(s - 1) : "");
                await foreach (var (page, next) in PagesAsync($"lists/{Uri.EscapeDataString(listId)}/members", "members", query, offset, cancellationToken).ConfigureAwait(false))
                {
                    await pages.WriteAsync(new MemberPage(listId, page.Page.Items, next), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                slots.Release();
            }

            await pages.WriteAsync(new MemberPage(listId, null, 0), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The reader fails with the first error (the channel carries it).
            pages.TryComplete(e);
        }
    }

    /// <summary>Every campaign created since startDate, oldest first; resumes at the checkpointed offset.</summary>
    private async IAsyncEnumerable<SourceMessage> CampaignsAsync(MailChimpState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var stream = MailChimpStreams.Campaigns;
        var query = "sort_field=create_time&sort_dir=ASC" + (_options.StartDate is { } start ? "&since_create_time=" + Iso(start.ToUnixTimeSeconds()) : "");
        state.CampaignsOffset ??= 0;
        long done = 0;
        await foreach (var (page, next) in PagesAsync("campaigns", "campaigns", query, state.CampaignsOffset.Value, cancellationToken).ConfigureAwait(false))
        {
            var b = new ChangeBatchBuilder(stream.Name, stream.Schema, Math.Max(1, page.Page.Items.Count));
            foreach (var c in page.Page.Items)
            {
                b.BeginRow(ChangeOp.Read, Position(state), Micros(c, "create_time"));
                RowMapper.Write(b, stream, c);
                b.EndRow();
            }

            done += b.Count;
            state.CampaignsOffset = next;
            yield return b.Build();
            yield return Checkpoint.From(state);
            yield return new StreamProgress(stream.Name, StreamPhase.Snapshot, done, page.Page.Total);
        }

        state.CampaignsOffset = null;
        yield return Checkpoint.From(state);
    }

    /// <summary>
    /// Every report, and per report page the new unsubscribes of its campaigns (those whose <c>unsubscribed</c> count
    /// passed what was read), fetched in parallel: a checkpoint covers both, so a resume repeats neither.
    /// </summary>
    private async IAsyncEnumerable<SourceMessage> ReportsAsync(MailChimpState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reports = MailChimpStreams.Reports;
        var unsubscribes = MailChimpStreams.Unsubscribes;
        var emitReports = _selected.Contains("reports");
        var emitUnsubscribes = _selected.Contains("unsubscribes");
        var query = "sort_field=send_time&sort_dir=ASC" + (_options.StartDate is { } start ? "&since_send_time=" + Iso(start.ToUnixTimeSeconds()) : "");
        state.ReportsOffset ??= 0;
        await foreach (var (page, next) in PagesAsync("reports", "reports", query, state.ReportsOffset.Value, cancellationToken).ConfigureAwait(false))
        {
            if (emitReports)
            {
                var b = new ChangeBatchBuilder(reports.Name, reports.Schema, Math.Max(1, page.Page.Items.Count));
                foreach (var r in page.Page.Items)
                {
                    b.BeginRow(ChangeOp.Read, Position(state), Micros(r, "send_time"));
                    RowMapper.Write(b, reports, r);
                    b.EndRow();
                }

                yield return b.Build();
            }

            if (emitUnsubscribes)
            {
                var due = page.Page.Items
                    .Select(r => (Id: Id(r), Count: r.TryGetProperty("unsubscribed", out var u) && u.TryGetInt64(out var n) ? n : 0))
                    .Where(x => x.Count > state.Unsubscribed.GetValueOrDefault(x.Id))
                    .ToList();
                var fetched = await Task.WhenAll(due.Select(x => UnsubscribesAsync(x.Id, state.Unsubscribed.GetValueOrDefault(x.Id), cancellationToken))).ConfigureAwait(false);
                var b = new ChangeBatchBuilder(unsubscribes.Name, unsubscribes.Schema, 16);
                foreach (var (campaignId, items, nextOffset) in fetched)
                {
                    foreach (var u in items)
                    {
                        b.BeginRow(ChangeOp.Insert, Position(state), Micros(u, "timestamp"));
                        RowMapper.Write(b, unsubscribes, u);
                        b.EndRow();
                    }

                    state.Unsubscribed[campaignId] = nextOffset;
                }

                if (b.Count > 0)
                {
                    yield return b.Build();
                }
            }

            state.ReportsOffset = next;
            yield return Checkpoint.From(state);
        }

        state.ReportsOffset = null;
        yield return Checkpoint.From(state);
    }

    private async Task<(string CampaignId, List<JsonElement> Items, long NextOffset)> UnsubscribesAsync(string campaignId, long from, CancellationToken cancellationToken)
    {
        var items = new List<JsonElement>();
        var offset = from;
        await foreach (var (page, next) in PagesAsync($"reports/{Uri.EscapeDataString(campaignId)}/unsubscribed", "unsubscribes", null, from, cancellationToken).ConfigureAwait(false))
        {
            items.AddRange(page.Page.Items);
            offset = next;
        }

        return (campaignId, items, offset);
    }

    /// <summary>
    /// Offset paging (<see cref="Paging.ByOffsetAsync"/>) that never skips an item when the set shrinks while it is read:
    /// if <c>total_items</c> drops by d between pages, items before the offset may have left (a member changed past the
    /// window, a campaign deleted) and the rest moved d places forward, so the offset steps back by d and the page is
    /// fetched again (at worst some items are read twice, which a merge table absorbs). Yields each page with the
    /// offset that follows it (for the checkpoint).
    /// </summary>
    private async IAsyncEnumerable<(MailChimpPage Page, long NextOffset)> PagesAsync(string path, string arrayName, string? query, long startOffset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long shift = 0;
        long? lastTotal = null;
        long nextOffset = startOffset;
        MailChimpPage? last = null;
        await foreach (var page in Paging.ByOffsetAsync(
            async (offset, count, ct) =>
            {
                while (true)
                {
                    var at = Math.Max(0, offset - shift);
                    var p = await _api.ListAsync(path, arrayName, at, count, query, ct).ConfigureAwait(false);
                    var total = p.Page.Total;
                    if (total is { } t && lastTotal is { } lt && t < lt && at > 0)
                    {
                        lastTotal = t;
                        shift += Math.Min(lt - t, at);
                        continue;
                    }

                    lastTotal = total ?? lastTotal;
                    nextOffset = at + p.Page.Items.Count;
                    last = p;
                    // In the pager's own (unshifted) terms, so its "offset reached the total" test stays right.
                    return p.Page with { Total = total + shift };
                }
            },
            _options.PageSize,
            startOffset,
            cancellationToken).ConfigureAwait(false))
        {
            yield return (last! with { Page = page }, nextOffset);
        }
    }

    private static string Id(JsonElement o) =>
        o.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : throw new ConnectorException(ErrorKind.Fatal, "MailChimp returned an object without an id.");

    private static long LastChanged(JsonElement member, string listId) =>
        member.TryGetProperty("last_changed", out var v) && RowMapper.Timestamp(v) is { } t
            ? t.ToUnixTimeSeconds()
            : throw new ConnectorException(ErrorKind.Fatal, $"A member of list {listId} has no last_changed: the incremental read cannot place it.");

    private static long Micros(JsonElement o, string field) =>
        o.TryGetProperty(field, out var v) && RowMapper.Timestamp(v) is { } t ? t.ToUnixTimeMilliseconds() * 1000 : 0;

    private static string Iso(long unixSeconds) =>
        Uri.EscapeDataString(DateTimeOffset.FromUnixTimeSeconds(unixSeconds).ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", CultureInfo.InvariantCulture));

    private static SourcePosition Position(MailChimpState state) => new(0, ++state.Counter);

    /// <summary>The next page; a fetcher's failure surfaces as itself, not wrapped in the channel's exception.</summary>
    private static async Task<MemberPage> NextAsync(ChannelReader<MemberPage> reader, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }

    public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _api.Dispose();
        return ValueTask.CompletedTask;
    }
}
