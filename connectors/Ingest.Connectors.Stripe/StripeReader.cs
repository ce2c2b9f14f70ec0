using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Stripe;

/// <summary>
/// One read: a snapshot of each object stream by created windows (resumable within a window), then the Events API
/// from the cursor, applying each event's <c>data.object</c> as an update and <c>*.deleted</c> as a delete.
/// </summary>
internal sealed class StripeReader : ISourceReader
{
    /// <summary>Stripe keeps events for 30 days; a cursor older than this (with an hour's margin) cannot be followed.</summary>
    internal static readonly TimeSpan EventRetention = TimeSpan.FromDays(30) - TimeSpan.FromHours(1);
    private const int EventsPerCheckpoint = 500;
    private const long ApplyMarginSeconds = 60;

    private readonly StripeOptions _options;
    private readonly ReadContext _context;
    private readonly StripeApi _api;
    private readonly Dictionary<string, StripeStream> _selected;
    private readonly Func<DateTimeOffset> _clock;

    // Said in the status of the streams while they are re-read because the events cursor fell out of retention.
    private string? _note;

    public StripeReader(StripeOptions options, ReadContext context, HttpMessageHandler? inner = null, Func<DateTimeOffset>? clock = null)
    {
        _options = options;
        _context = context;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        _selected = new Dictionary<string, StripeStream>(StringComparer.Ordinal);
        foreach (var s in context.Streams)
        {
            _selected[s.Name] = StripeStreams.Find(s.Name)
                ?? throw new ConnectorException(ErrorKind.Configuration, $"Stripe has no stream '{s.Name}'. Streams: {string.Join(", ", StripeStreams.All.Select(x => x.Name))}.", "/streams");
        }

        _api = new StripeApi(options, context.Log, inner);
    }

    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var now = _clock().ToUnixTimeSeconds();
        var state = LoadState(now);
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var stream in _selected.Values)
            {
                if (stream.Name == "events")
                {
                    continue;
                }

                var p = state.Streams[stream.Name];
                if (p.Done && !stream.HasEvents && !first)
                {
                    // No events for these (balance transactions are immutable): list what was created since, with overlap.
                    var t = _clock().ToUnixTimeSeconds();
                    p.From = Math.Max(_options.StartDate.ToUnixTimeSeconds(), p.End - ApplyMarginSeconds);
                    p.End = t + 1;
                    p.High = (ulong)t;
                    p.Open.Clear();
                    p.Done = false;
                }
            }

            await foreach (var m in ListAsync(state, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            await foreach (var m in EventsAsync(state, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            yield return Checkpoint.From(state);
            if (first)
            {
                yield return CaughtUp.Instance;
                first = false;
            }

            await Task.Delay(_options.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    private StripeState LoadState(long now)
    {
        StripeState? state = null;
        if (_context.State is { ValueKind: JsonValueKind.Object } json)
        {
            try
            {
                state = json.Deserialize<StripeState>();
            }
            catch (JsonException e)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"The saved Stripe checkpoint cannot be read ({e.Message}); reset the connection's state to read again from startDate.", null, e);
            }
        }

        var start = _options.StartDate.ToUnixTimeSeconds();
        if (state is null)
        {
            state = new StripeState
            {
                ApplyFrom = now - ApplyMarginSeconds,
                EventsCreated = Math.Max(start, now - (long)EventRetention.TotalSeconds),
                EventsCheckedAt = now,
            };
        }
        else if (state.EventsCheckedAt < now - (long)EventRetention.TotalSeconds)
        {
            // Events after the last pass may already be gone: what changed since cannot be known from events.
            var cursor = DateTimeOffset.FromUnixTimeSeconds(state.EventsCheckedAt).ToString("u", CultureInfo.InvariantCulture);
            _context.Log.Write(ConnectorLogLevel.Warning, $"The events cursor ({cursor}) is older than Stripe's 30-day event retention: re-reading every object stream by created window from startDate. Deletions made before the re-read cannot be seen; rows of deleted objects stay until a full refresh.");
            _note = $"events cursor ({cursor}) older than Stripe's 30-day event retention: re-reading by created window";
            state.ApplyFrom = now - ApplyMarginSeconds;
            state.EventsCheckedAt = now;
            foreach (var p in state.Streams.Values)
            {
                p.From = start;
                p.End = now + 1;
                p.Open.Clear();
                p.Done = false;
                p.High = (ulong)now;
            }
        }

        foreach (var s in _selected.Values)
        {
            if (s.Name != "events" && !state.Streams.ContainsKey(s.Name))
            {
                // A stream new to this connection: snapshot it; its positions stay above events already applied elsewhere.
                state.Streams[s.Name] = new StreamProgressState { From = start, End = now + 1, High = state.Counter == 0 ? 0 : (ulong)now };
            }
        }

        return state;
    }

    /// <summary>One created window of one stream.</summary>
    private sealed record Window(StripeStream Stream, StreamProgressState Progress, long From, long To, string? StartAfter);

    /// <summary>What the fetchers tell the reader, in one channel: a window started, a page of it, or its end.</summary>
    private sealed record WindowEvent(Window Window, Page<JsonElement>? Page, bool Finished);

    /// <summary>
    /// Lists every unfinished stream by created windows, up to <see cref="StripeOptions.ParallelWindows"/> windows at once
    /// (all within the connection's rate limit). Pages are emitted as they come; the checkpoint names each started,
    /// unfinished window with the last id emitted in it, so a resume continues each where it stopped.
    /// </summary>
    private async IAsyncEnumerable<SourceMessage> ListAsync(StripeState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var span = (long)_options.WindowDays * 86400;
        var windows = new List<Window>();
        foreach (var stream in _selected.Values)
        {
            if (stream.Name == "events" || state.Streams[stream.Name] is not { Done: false } p)
            {
                continue;
            }

            windows.AddRange(p.Open.Select(o => new Window(stream, p, o.From, o.To, o.LastId)));
            for (var from = p.From; from < p.End; from += span)
            {
                windows.Add(new Window(stream, p, from, Math.Min(from + span, p.End), null));
            }
        }

        if (windows.Count == 0)
        {
            yield break;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var slots = new SemaphoreSlim(_options.ParallelWindows);
        var events = Channel.CreateBounded<WindowEvent>(new BoundedChannelOptions(2 * _options.ParallelWindows) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        var fetchers = new List<Task>();
        var starter = Task.Run(
            async () =>
            {
                foreach (var w in windows)
                {
                    await slots.WaitAsync(cts.Token).ConfigureAwait(false);
                    // Announced before its fetcher runs, in order: the reader records it as open before any of its pages.
                    await events.Writer.WriteAsync(new WindowEvent(w, null, false), cts.Token).ConfigureAwait(false);
                    fetchers.Add(FetchWindowAsync(w, events.Writer, slots, cts.Token));
                }
            },
            cts.Token);

        var builders = new Dictionary<string, ChangeBatchBuilder>(StringComparer.Ordinal);
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        var remaining = windows.Count;
        try
        {
            while (remaining > 0)
            {
                var e = await NextAsync(events.Reader, cancellationToken).ConfigureAwait(false);
                var w = e.Window;
                var p = w.Progress;
                var open = p.Open.Find(o => o.From == w.From);
                if (e.Page is null && !e.Finished)
                {
                    if (open is null)
                    {
                        p.Open.Add(new OpenWindow { From = w.From, To = w.To, LastId = w.StartAfter });
                        p.From = Math.Max(p.From, w.To);
                    }

                    continue;
                }

                if (e.Finished)
                {
                    remaining--;
                    p.Open.Remove(open!);
                    p.Done = p.Open.Count == 0 && p.From >= p.End;
                    yield return Checkpoint.From(state);
                    continue;
                }

                var page = e.Page!;
                var builder = builders.TryGetValue(w.Stream.Name, out var b) ? b : builders[w.Stream.Name] = new ChangeBatchBuilder(w.Stream.Name, w.Stream.Schema, _options.PageSize);
                foreach (var obj in page.Items)
                {
                    builder.BeginRow(ChangeOp.Read, new SourcePosition(p.High, ++state.Counter), CreatedMicros(obj));
                    RowMapper.Write(builder, w.Stream, obj);
                    builder.EndRow();
                }

                var done = rows[w.Stream.Name] = rows.GetValueOrDefault(w.Stream.Name) + page.Items.Count;
                open!.LastId = page.Items[^1].GetProperty("id").GetString();
                yield return builder.Build();
                yield return Checkpoint.From(state);
                yield return new StreamProgress(w.Stream.Name, p.High == 0 ? StreamPhase.Snapshot : StreamPhase.Backfill, done, null, message: p.High == 0 ? null : _note);
            }
        }
        finally
        {
            await cts.CancelAsync().ConfigureAwait(false);
            try
            {
                await starter.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
                // Stopped, or a fetcher failed and closed the channel: that failure is what the reader reports.
            }

            try
            {
                await Task.WhenAll(fetchers).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>The next event; a fetcher's failure surfaces as itself, not wrapped in the channel's exception.</summary>
    private static async Task<WindowEvent> NextAsync(ChannelReader<WindowEvent> reader, CancellationToken cancellationToken)
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

    private async Task FetchWindowAsync(Window w, ChannelWriter<WindowEvent> events, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var page in Paging.ByCursorAsync(
                (after, ct) => _api.ListAsync(w.Stream.Path, w.From, w.To, after, _options.PageSize, ct),
                e => e.GetProperty("id").GetString()!,
                w.StartAfter,
                cancellationToken).ConfigureAwait(false))
            {
                if (page.Items.Count > 0)
                {
                    await events.WriteAsync(new WindowEvent(w, page, false), cancellationToken).ConfigureAwait(false);
                }
            }

            await events.WriteAsync(new WindowEvent(w, null, true), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The reader fails with the first error (the channel carries it), naming what failed.
            events.TryComplete(e);
        }
        finally
        {
            slots.Release();
        }
    }

    private async IAsyncEnumerable<SourceMessage> EventsAsync(StripeState state, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var wanted = _selected.ContainsKey("events") || _selected.Values.Any(s => s.HasEvents);
        if (!wanted)
        {
            // Nothing selected follows events, so no cursor can go stale.
            state.EventsCheckedAt = _clock().ToUnixTimeSeconds();
            yield break;
        }

        // Stripe lists newest first; read everything from the cursor's second, then apply oldest first.
        var passStart = _clock().ToUnixTimeSeconds();
        var events = new List<JsonElement>();
        await foreach (var page in Paging.ByCursorAsync(
            (after, ct) => _api.ListAsync("v1/events", state.EventsCreated, null, after, _options.PageSize, ct),
            e => e.GetProperty("id").GetString()!,
            null,
            cancellationToken).ConfigureAwait(false))
        {
            events.AddRange(page.Items);
        }

        events.Reverse();
        var seen = new HashSet<string>(state.EventsSeen, StringComparer.Ordinal);
        var builders = new Dictionary<string, ChangeBatchBuilder>(StringComparer.Ordinal);
        var pending = 0;
        foreach (var ev in events)
        {
            var id = ev.GetProperty("id").GetString()!;
            var created = ev.GetProperty("created").GetInt64();
            if (created == state.EventsCreated && seen.Contains(id))
            {
                continue;
            }

            var type = ev.TryGetProperty("type", out var tv) ? tv.GetString() ?? "" : "";
            var micros = created * 1_000_000;
            if (_selected.TryGetValue("events", out var eventsStream))
            {
                var b = Builder(builders, eventsStream);
                b.BeginRow(ChangeOp.Insert, Position(state, created, 0), micros);
                RowMapper.Write(b, eventsStream, ev);
                b.EndRow();
            }

            if (created >= state.ApplyFrom
                && ev.TryGetProperty("data", out var data) && data.TryGetProperty("object", out var obj)
                && StripeStreams.ForObjectType(obj.TryGetProperty("object", out var ot) ? ot.GetString() : null) is { } target
                && _selected.ContainsKey(target.Name)
                && state.Streams.TryGetValue(target.Name, out var progress))
            {
                var b = Builder(builders, target);
                // customer.subscription.deleted means the subscription ended: the object still exists (status canceled).
                var isDelete = type.EndsWith(".deleted", StringComparison.Ordinal) && type != "customer.subscription.deleted";
                b.BeginRow(isDelete ? ChangeOp.Delete : ChangeOp.Update, Position(state, created, progress.High), micros);
                if (isDelete)
                {
                    b.SetString(target.Schema.IndexOf("id"), obj.GetProperty("id").GetString()!);
                }
                else
                {
                    RowMapper.Write(b, target, obj);
                }

                b.EndRow();
            }

            if (created != state.EventsCreated)
            {
                state.EventsCreated = created;
                state.EventsSeen.Clear();
                seen.Clear();
            }

            state.EventsSeen.Add(id);
            seen.Add(id);
            if (++pending >= EventsPerCheckpoint)
            {
                foreach (var m in Flush(builders, state))
                {
                    yield return m;
                }

                pending = 0;
            }
        }

        state.EventsCheckedAt = passStart;
        foreach (var m in Flush(builders, state))
        {
            yield return m;
        }
    }

    private static IEnumerable<SourceMessage> Flush(Dictionary<string, ChangeBatchBuilder> builders, StripeState state)
    {
        foreach (var b in builders.Values)
        {
            if (b.Count > 0)
            {
                yield return b.Build();
            }
        }

        yield return Checkpoint.From(state);
    }

    /// <summary>(event created, counter), kept above a re-read's positions of the same stream.</summary>
    private static SourcePosition Position(StripeState state, long created, ulong floor) =>
        new(Math.Max((ulong)created, floor), ++state.Counter);

    private static ChangeBatchBuilder Builder(Dictionary<string, ChangeBatchBuilder> builders, StripeStream stream)
    {
        if (!builders.TryGetValue(stream.Name, out var b))
        {
            builders[stream.Name] = b = new ChangeBatchBuilder(stream.Name, stream.Schema, 256);
        }

        return b;
    }

    private static long CreatedMicros(JsonElement obj) =>
        obj.TryGetProperty("created", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt64() * 1_000_000 : 0;

    public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _api.Dispose();
        return ValueTask.CompletedTask;
    }
}
