using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>
/// One read. A run reads every selected report date by date from startDate (first read) or from the last date read
/// minus <c>lookbackDays</c>, up to today in the property's time zone, and replaces those dates: every row is an upsert
/// keyed by the report's dimensions, and a key read for a date before but missing now is deleted. A checkpoint follows
/// each date, so a restart resumes at the first date not yet committed. Then it waits <c>pollIntervalSeconds</c> and runs
/// again. Backfills (date ranges) run between runs, one at a time, resumable from their checkpointed next date.
/// </summary>
internal sealed class GaReader : ISourceReader, IBackfillReader
{
    /// <summary>Keys kept per report in the checkpoint (for deletions in the lookback window); beyond, deletions are not tracked.</summary>
    internal const int MaxTrackedKeys = 20_000;
    private const int RowsPerBatch = 5_000;
    private const int DoneBackfillsKept = 20;

    private readonly GaOptions _options;
    private readonly ReadContext _context;
    private readonly GaHooks? _hooks;
    private readonly GaApi _api;
    private readonly List<string> _selected;
    private readonly ConcurrentQueue<BackfillRequest> _requests = new();
    private readonly ConcurrentDictionary<string, bool> _cancelled = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly HashSet<string> _warnedUntracked = new(StringComparer.Ordinal);
    private Dictionary<string, GaStream> _streams = new(StringComparer.Ordinal);
    private volatile string? _timeZone;

    public GaReader(GaOptions options, ReadContext context, GaHooks? hooks = null)
    {
        _options = options;
        _context = context;
        _hooks = hooks;
        _selected = [];
        foreach (var s in context.Streams)
        {
            if (!options.Reports.Any(r => r.Name == s.Name))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"No report is called '{s.Name}'. Reports: {string.Join(", ", options.Reports.Select(r => r.Name))}.", "/reports");
            }

            _selected.Add(s.Name);
        }

        _api = new GaApi(options, context.Log, hooks);
        foreach (var b in context.Backfills)
        {
            _requests.Enqueue(b);
        }
    }

    internal GaApi Api => _api;

    public ValueTask StartBackfillAsync(BackfillRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_selected.Contains(request.Stream))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Stream '{request.Stream}' is not read by this connection.", "stream");
        }

        _ = ParseRange(request.Filter, Today());
        _requests.Enqueue(request);
        _wake.Release();
        return ValueTask.CompletedTask;
    }

    public ValueTask CancelBackfillAsync(string id, CancellationToken cancellationToken)
    {
        _cancelled[id] = true;
        _wake.Release();
        return ValueTask.CompletedTask;
    }

    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var metadata = await _api.MetadataAsync(cancellationToken).ConfigureAwait(false);
        _streams = _options.Reports.Where(r => _selected.Contains(r.Name)).ToDictionary(r => r.Name, r => GaStream.Build(r, metadata), StringComparer.Ordinal);
        var state = LoadState();
        _timeZone = state.TimeZone;
        var first = true;
        var nextPass = DateTimeOffset.MinValue;
        while (!cancellationToken.IsCancellationRequested)
        {
            // A backfill interrupted by a restart finishes first: nothing with a newer epoch was emitted after it.
            await foreach (var m in BackfillsAsync(state, startedOnly: true, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            if (state.Pass is not null || DateTimeOffset.UtcNow >= nextPass)
            {
                await foreach (var m in PassAsync(state, first, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }

                nextPass = DateTimeOffset.UtcNow + _options.PollInterval;
                if (first)
                {
                    yield return Checkpoint.From(state);
                    yield return CaughtUp.Instance;
                    first = false;
                }
            }

            await foreach (var m in BackfillsAsync(state, startedOnly: false, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            var wait = nextPass - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero && _requests.IsEmpty)
            {
                await _wake.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private GaState LoadState()
    {
        GaState? state = null;
        if (_context.State is { ValueKind: JsonValueKind.Object } json)
        {
            try
            {
                state = json.Deserialize<GaState>();
            }
            catch (JsonException e)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"The saved Google Analytics checkpoint cannot be read ({e.Message}); reset the connection's state to read again from startDate.", null, e);
            }
        }

        state ??= new GaState();
        foreach (var s in _selected)
        {
            state.Reports.TryAdd(s, new GaReportState());
        }

        return state;
    }

    private DateOnly Today()
    {
        if (_hooks?.Today is { } today)
        {
            return today();
        }

        if (_timeZone is { } tz)
        {
            try
            {
                return DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, TimeZoneInfo.FindSystemTimeZoneById(tz)).DateTime);
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                _context.Log.Write(ConnectorLogLevel.Warning, $"The property's time zone '{tz}' is unknown here; dates run to today in UTC+14 (the latest zone).");
            }
        }

        // Unknown zone: the latest date anywhere, so today is never missed (a future date simply has no rows).
        return DateOnly.FromDateTime(DateTime.UtcNow.AddHours(14));
    }

    private static ulong NextEpoch(GaState state)
    {
        state.Epoch = Math.Max((ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds(), state.Epoch + 1);
        return state.Epoch;
    }

    private async IAsyncEnumerable<SourceMessage> PassAsync(GaState state, bool first, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (state.Pass is null)
        {
            state.Pass = new GaPassState { Epoch = NextEpoch(state), End = Today() };
        }

        var p = state.Pass;
        foreach (var s in _selected.Where(s => !p.Streams.Contains(s)))
        {
            var last = state.Reports[s].LastDate;
            var from = last is { } l ? l.AddDays(-_options.LookbackDays) : _options.StartDate;
            p.Next[s] = from < _options.StartDate ? _options.StartDate : from;
            p.Streams.Add(s);
            _context.Log.Write(ConnectorLogLevel.Information, $"Reading {s} from {GaApi.Iso(p.Next[s])} to {GaApi.Iso(p.End)}.");
        }
        foreach (var name in _selected)
        {
            if (!p.Next.TryGetValue(name, out var next))
            {
                continue;
            }

            var stream = _streams[name];
            var report = state.Reports[name];
            var phase = first && report.LastDate is null ? StreamPhase.Snapshot : StreamPhase.Streaming;
            long done = 0;
            await foreach (var (date, rows) in FetchAsync(stream, next, p.End, cancellationToken).ConfigureAwait(false))
            {
                var revisit = report.LastDate is { } last && date <= last;
                var track = date >= p.End.AddDays(-_options.LookbackDays);
                foreach (var b in Replace(stream, report, date, rows, p.Epoch, revisit ? ChangeOp.Update : ChangeOp.Read, track))
                {
                    yield return b;
                }

                done += rows.Count;
                if (date >= p.End)
                {
                    p.Next.Remove(name);
                }
                else
                {
                    p.Next[name] = date.AddDays(1);
                }

                state.TimeZone = _timeZone;
                yield return new StreamProgress(name, phase, done, null, message: _api.Quota.Note);
                yield return Checkpoint.From(state);
            }

            p.Next.Remove(name);
        }

        foreach (var name in p.Streams)
        {
            // A report deselected before it finished this run keeps its last complete date.
            if (p.Next.ContainsKey(name) || !state.Reports.TryGetValue(name, out var report))
            {
                continue;
            }

            report.LastDate = p.End;
            var keep = GaApi.Iso(p.End.AddDays(-_options.LookbackDays));
            foreach (var d in report.Keys.Keys.Where(d => string.CompareOrdinal(d, keep) < 0).ToList())
            {
                report.Keys.Remove(d);
            }
        }

        state.Pass = null;
        state.TimeZone = _timeZone;
        yield return Checkpoint.From(state);
    }

    private async IAsyncEnumerable<SourceMessage> BackfillsAsync(GaState state, bool startedOnly, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            foreach (var m in Intake(state))
            {
                yield return m;
            }

            var (id, b) = state.Backfills.Where(kv => kv.Value.Epoch != 0).Select(kv => (kv.Key, kv.Value)).FirstOrDefault();
            if (b is null && !startedOnly)
            {
                (id, b) = state.Backfills.Select(kv => (kv.Key, kv.Value)).FirstOrDefault();
            }

            if (b is null)
            {
                yield break;
            }

            if (b.Epoch == 0)
            {
                b.Epoch = NextEpoch(state);
                _context.Log.Write(ConnectorLogLevel.Information, $"Backfill {id}: re-reading {b.Stream} from {GaApi.Iso(b.From)} to {GaApi.Iso(b.To)}.");
            }

            var stream = _streams[b.Stream];
            var report = state.Reports[b.Stream];
            var cancelled = false;
            if (b.Next <= b.To)
            {
                await foreach (var (date, rows) in FetchAsync(stream, b.Next, b.To, cancellationToken).ConfigureAwait(false))
                {
                    if (_cancelled.ContainsKey(id))
                    {
                        cancelled = true;
                        break;
                    }

                    foreach (var batch in Replace(stream, report, date, rows, b.Epoch, ChangeOp.Read, track: report.Keys.ContainsKey(GaApi.Iso(date))))
                    {
                        yield return batch;
                    }

                    b.Rows += rows.Count;
                    b.Next = date.AddDays(1);
                    state.TimeZone = _timeZone;
                    yield return new StreamProgress(b.Stream, StreamPhase.Backfill, b.Rows, null, id, _api.Quota.Note);
                    yield return Checkpoint.From(state);
                }
            }

            cancelled |= _cancelled.TryRemove(id, out _);
            state.Backfills.Remove(id);
            Done(state, id);
            _context.Log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture, $"Backfill {id} of {b.Stream} {(cancelled ? "cancelled" : "done")}: {b.Rows} rows."));
            yield return new BackfillDone(id, b.Stream, b.Rows, cancelled);
            yield return Checkpoint.From(state);
        }
    }

    /// <summary>Takes new requests into the state, answers repeats of finished ones, drops cancelled pending ones.</summary>
    private IEnumerable<SourceMessage> Intake(GaState state)
    {
        var changed = false;
        while (_requests.TryDequeue(out var r))
        {
            if (state.Backfills.ContainsKey(r.Id))
            {
                continue;
            }

            if (state.DoneBackfills.Contains(r.Id))
            {
                yield return new BackfillDone(r.Id, r.Stream, 0);
                changed = true;
                continue;
            }

            (DateOnly From, DateOnly To) range;
            string? error = null;
            try
            {
                range = ParseRange(r.Filter, Today());
            }
            catch (ConnectorException e)
            {
                range = default;
                error = e.Message;
            }

            if (error is not null || !_streams.ContainsKey(r.Stream))
            {
                _context.Log.Write(ConnectorLogLevel.Error, $"Backfill {r.Id} of {r.Stream} cannot run: {error ?? "the stream is not read by this connection"}.");
                Done(state, r.Id);
                yield return new BackfillDone(r.Id, r.Stream, 0, cancelled: true);
                changed = true;
                continue;
            }

            state.Backfills[r.Id] = new GaBackfillState { Stream = r.Stream, From = range.From, To = range.To, Next = range.From };
            changed = true;
        }

        foreach (var id in _cancelled.Keys)
        {
            if (state.Backfills.TryGetValue(id, out var b) && b.Epoch == 0)
            {
                state.Backfills.Remove(id);
                _cancelled.TryRemove(id, out _);
                Done(state, id);
                yield return new BackfillDone(id, b.Stream, 0, cancelled: true);
                changed = true;
            }
        }

        if (changed)
        {
            yield return Checkpoint.From(state);
        }
    }

    private static void Done(GaState state, string id)
    {
        state.DoneBackfills.Remove(id);
        state.DoneBackfills.Add(id);
        if (state.DoneBackfills.Count > DoneBackfillsKept)
        {
            state.DoneBackfills.RemoveAt(0);
        }
    }

    /// <summary>The filter of a backfill: <c>yyyy-MM-dd..yyyy-MM-dd</c>, one date, or empty for startDate..today.</summary>
    internal (DateOnly From, DateOnly To) ParseRange(string? filter, DateOnly today)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return (_options.StartDate, today);
        }

        var parts = filter.Split("..", 2, StringSplitOptions.TrimEntries);
        if (!DateOnly.TryParseExact(parts[0], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from)
            || !DateOnly.TryParseExact(parts.Length == 2 ? parts[1] : parts[0], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var to))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Backfill filter '{filter}' is not a date range: {GaStream.BackfillHelp} Example: {GaStream.BackfillExample}.", "filter");
        }

        if (to < from)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Backfill filter '{filter}' ends before it starts.", "filter");
        }

        return (from, to > today ? today : to);
    }

    /// <summary>
    /// The rows of one date as upserts (positions: epoch, then day number and row), then deletes for keys the date held
    /// at the last read but not now; the date's keys are kept in the state when <paramref name="track"/>.
    /// </summary>
    private IEnumerable<ChangeBatch> Replace(GaStream stream, GaReportState report, DateOnly date, List<(string[] Dims, string?[] Metrics)> rows, ulong epoch, ChangeOp op, bool track)
    {
        var dateKey = GaApi.Iso(date);
        var dateIndex = stream.Report.Dimensions.ToList().IndexOf("date");
        var micros = (date.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber) * 86_400_000_000L;
        var before = report.Keys.TryGetValue(dateKey, out var k) ? k : null;
        var now = new HashSet<string>(StringComparer.Ordinal);
        var keys = new List<string[]>(rows.Count);
        var b = new ChangeBatchBuilder(stream.Name, stream.Schema, Math.Min(RowsPerBatch, Math.Max(16, rows.Count)));
        var row = 0UL;
        foreach (var (dims, metrics) in rows)
        {
            var key = KeyOf(dims, dateIndex);
            if (!now.Add(Join(key)))
            {
                continue;
            }

            keys.Add(key);
            b.BeginRow(op, new SourcePosition(epoch, ((ulong)(uint)date.DayNumber << 32) | row++), micros);
            stream.Write(b, dims, metrics);
            b.EndRow();
            if (b.Count >= RowsPerBatch)
            {
                yield return b.Build();
            }
        }

        if (before is not null)
        {
            foreach (var key in before)
            {
                if (now.Contains(Join(key)))
                {
                    continue;
                }

                var dims = new string[key.Length + 1];
                for (int i = 0, j = 0; i < dims.Length; i++)
                {
                    dims[i] = i == dateIndex ? date.ToString("yyyyMMdd", CultureInfo.InvariantCulture) : key[j++];
                }

                b.BeginRow(ChangeOp.Delete, new SourcePosition(epoch, ((ulong)(uint)date.DayNumber << 32) | row++), micros);
                stream.WriteKey(b, dims);
                b.EndRow();
                if (b.Count >= RowsPerBatch)
                {
                    yield return b.Build();
                }
            }
        }

        if (b.Count > 0)
        {
            yield return b.Build();
        }

        if (track)
        {
            var others = report.Keys.Where(kv => kv.Key != dateKey).Sum(kv => kv.Value.Count);
            if (others + keys.Count <= MaxTrackedKeys)
            {
                report.Keys[dateKey] = keys;
            }
            else
            {
                report.Keys.Remove(dateKey);
                if (_warnedUntracked.Add(stream.Name))
                {
                    _context.Log.Write(ConnectorLogLevel.Warning, string.Create(CultureInfo.InvariantCulture, $"Report '{stream.Name}' has more than {MaxTrackedKeys} rows in the lookback window: rows GA drops from those dates are not deleted (values are still replaced)."));
                }
            }
        }
    }

    private static string[] KeyOf(string[] dims, int dateIndex)
    {
        var key = new string[dims.Length - 1];
        for (int i = 0, j = 0; i < dims.Length; i++)
        {
            if (i != dateIndex)
            {
                key[j++] = dims[i];
            }
        }

        return key;
    }

    private static string Join(string[] key) => JsonSerializer.Serialize(key);

    /// <summary>The rows of each date from..to, in date order, with up to <c>concurrency</c> dates fetched at once.</summary>
    private async IAsyncEnumerable<(DateOnly Date, List<(string[] Dims, string?[] Metrics)> Rows)> FetchAsync(GaStream stream, DateOnly from, DateOnly to, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var inFlight = new Queue<(DateOnly, Task<List<(string[], string?[])>>)>();
        var next = from;
        try
        {
            while (inFlight.Count > 0 || next <= to)
            {
                while (inFlight.Count < _options.Concurrency && next <= to)
                {
                    inFlight.Enqueue((next, FetchDateAsync(stream, next, cts.Token)));
                    next = next.AddDays(1);
                }

                var (date, task) = inFlight.Dequeue();
                yield return (date, await task.ConfigureAwait(false));
            }
        }
        finally
        {
            await cts.CancelAsync().ConfigureAwait(false);
            foreach (var (_, task) in inFlight)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ConnectorException or HttpRequestException)
                {
                    // Abandoned prefetch: its date is read again by whoever resumes.
                }
            }
        }
    }

    private async Task<List<(string[], string?[])>> FetchDateAsync(GaStream stream, DateOnly date, CancellationToken cancellationToken)
    {
        var rows = new List<(string[], string?[])>();
        await foreach (var page in Paging.ByOffsetAsync(
            async (offset, limit, ct) =>
            {
                var r = await _api.RunReportAsync(stream.Report, date, date, offset, limit, ct).ConfigureAwait(false);
                CheckHeaders(stream, r);
                if (r.TimeZone is { } tz)
                {
                    _timeZone = tz;
                }

                return new Page<(string[], string?[])>(r.Rows, offset + r.Rows.Count < r.RowCount, null, r.RowCount);
            },
            _options.PageSize,
            0,
            cancellationToken).ConfigureAwait(false))
        {
            rows.AddRange(page.Items);
        }

        return rows;
    }

    private static void CheckHeaders(GaStream stream, GaReportPage page)
    {
        if (page.MetricHeaders.Count == 0)
        {
            return;
        }

        for (var i = 0; i < stream.Report.Metrics.Count; i++)
        {
            if (i >= page.MetricHeaders.Count || page.MetricHeaders[i].Name != stream.Report.Metrics[i])
            {
                throw new ConnectorException(ErrorKind.Fatal, $"Report '{stream.Name}': GA answered metrics [{string.Join(", ", page.MetricHeaders.Select(h => h.Name))}] for [{string.Join(", ", stream.Report.Metrics)}].");
            }

            if (GaStream.MetricType(page.MetricHeaders[i].Type) != GaStream.MetricType(stream.MetricTypes[i]))
            {
                throw new ConnectorException(ErrorKind.Fatal, $"Report '{stream.Name}': metric {stream.Report.Metrics[i]} is now {page.MetricHeaders[i].Type}, was {stream.MetricTypes[i]} when discovered; discover the catalog again.");
            }
        }
    }

    public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _api.Dispose();
        _wake.Dispose();
        return ValueTask.CompletedTask;
    }
}
