using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>How a file-store read behaves beyond its tables.</summary>
/// <param name="PollInterval">How often the store is listed again after the first pass.</param>
/// <param name="Lookback">
/// How far behind the listing time the ledger's watermark stays: a file that appears later with a modification
/// time older than that is not seen (keep it above the longest upload or copy with preserved times).
/// </param>
/// <param name="Evolve">Widen inferred schemas when a later file needs it (else non-fitting values are rescued).</param>
/// <param name="DetectDeletions">
/// Compare each full listing with the ledger: when an ingested file is gone, its table is truncated and every
/// file still there is read again, so a <c>merge</c> table holds exactly the rows of the files that exist. The
/// ledger then keeps every file it has read (no watermark), so it grows with the number of files. For stores that
/// list by changes (Dropbox) deletions come from the store instead and this setting is not used.
/// </param>
/// <param name="ListPageSize">New files read per listing page: a checkpoint follows each page, so a large listing advances the checkpoint as it goes.</param>
public sealed record FileReadOptions(TimeSpan PollInterval, TimeSpan Lookback, bool Evolve = true, bool DetectDeletions = false, int ListPageSize = 1000);

/// <summary>
/// The read of a file-store connection, shared by every store: a first pass over the files that exist,
/// <see cref="CaughtUp"/>, then a new listing every poll interval until cancelled. Each new or changed file
/// version is read once (the ledger in the checkpoint says which), page by page of the listing and by
/// modification time within a page; a checkpoint follows every batch of a large file and every page, so a
/// restart resumes inside a large file or a large listing. Backfills (<see cref="IBackfillReader"/>) re-read
/// ingested files under a prefix or modified in a time range, resumable at file granularity.
/// </summary>
public sealed class FileSourceReader : ISourceReader, IBackfillReader
{
    private const int FinishedBackfillsKept = 50;
    private readonly IFileStore _store;
    private readonly FileReadOptions _options;
    private readonly IConnectorLog _log;
    private readonly List<TableRead> _tables = [];
    private readonly JsonElement? _state;
    private readonly IReadOnlyList<BackfillRequest> _openBackfills;
    private readonly List<ReReadJob> _jobs = [];
    private readonly List<string> _finished = [];
    private readonly List<BackfillDone> _doneToReport = [];
    private readonly ConcurrentQueue<BackfillRequest> _requests = new();
    private readonly ConcurrentDictionary<string, bool> _cancels = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private JsonNode? _storeState;
    private bool? _loadedMore;
    private int _started;
    private long _rowsSinceCheckpoint;
    private int _filesSinceCheckpoint;
    private DateTimeOffset _lastCheckpointAt = DateTimeOffset.UtcNow;

    /// <summary>Creates the reader of the selected streams among <paramref name="tables"/>.</summary>
    public FileSourceReader(IFileStore store, IReadOnlyList<FileTableOptions> tables, ReadContext context, FileReadOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _options = options;
        _log = context.Log ?? NullConnectorLog.Instance;
        _state = context.State is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } s ? s : null;
        _openBackfills = context.Backfills;
        var selected = context.Streams.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in selected)
        {
            if (!tables.Any(t => t.Name == name || t.DeadLetterStream == name))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"There is no table '{name}'; the tables are {string.Join(", ", tables.Select(t => t.Name))}.", "/tables");
            }
        }

        foreach (var t in tables)
        {
            if (selected.Contains(t.Name) || selected.Contains(t.DeadLetterStream))
            {
                _tables.Add(new TableRead(t, selected.Contains(t.Name), selected.Contains(t.DeadLetterStream)));
            }
        }

        if (_state is { ValueKind: JsonValueKind.Object } st)
        {
            try
            {
                if (st.TryGetProperty("jobs", out var jobs) && jobs.ValueKind == JsonValueKind.Array)
                {
                    _jobs.AddRange(jobs.EnumerateArray().Select(ReReadJob.FromJson));
                }

                if (st.TryGetProperty("backfillsDone", out var done) && done.ValueKind == JsonValueKind.Array)
                {
                    _finished.AddRange(done.EnumerateArray().Select(d => d.GetString()!));
                }
            }
            catch (FormatException e)
            {
                throw new ConnectorException(ErrorKind.Fatal, e.Message, null, e);
            }
        }
    }

    /// <summary>The last checkpoint acknowledged (everything before it is durable).</summary>
    public Checkpoint? LastAcknowledged { get; private set; }

    /// <summary>Lists a table's files in reading order: by modification time, then path.</summary>
    public static async Task<List<FileEntry>> ListAsync(IFileStore store, FileTableOptions table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(table);
        return Sorted(await Matching(store.ListAsync(Glob.StaticPrefix(table.Pattern), cancellationToken), table, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Like <see cref="ListAsync"/>, but from a full listing also on a store that lists by changes.</summary>
    internal static async Task<List<FileEntry>> ListFullAsync(IFileStore store, FileTableOptions table, CancellationToken cancellationToken) =>
        store is IChangeListingStore changes
            ? Sorted(await Matching(changes.ListAllAsync(Glob.StaticPrefix(table.Pattern), cancellationToken), table, cancellationToken).ConfigureAwait(false))
            : await ListAsync(store, table, cancellationToken).ConfigureAwait(false);

    private static async Task<List<FileEntry>> Matching(IAsyncEnumerable<FileEntry> listing, FileTableOptions table, CancellationToken cancellationToken)
    {
        var regex = Glob.Compile(table.Pattern);
        var files = new List<FileEntry>();
        await foreach (var f in listing.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (regex.IsMatch(f.Path))
            {
                files.Add(f);
            }
        }

        return files;
    }

    private static List<FileEntry> Sorted(List<FileEntry> files)
    {
        files.Sort((a, b) => a.Modified != b.Modified ? a.Modified.CompareTo(b.Modified) : string.CompareOrdinal(a.Path, b.Path));
        return files;
    }

    /// <inheritdoc />
    public ValueTask StartBackfillAsync(BackfillRequest request, CancellationToken cancellationToken)
    {
        Validate(request);
        _requests.Enqueue(request);
        _wake.Release();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask CancelBackfillAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        _cancels[id] = true;
        _wake.Release();
        return ValueTask.CompletedTask;
    }

    private void Validate(BackfillRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_tables.Any(t => t.EmitRows && t.Options.Name == request.Stream))
        {
            throw new ConnectorException(ErrorKind.Configuration,
                $"Cannot backfill '{request.Stream}': it is not a selected table (selected: {string.Join(", ", _tables.Where(t => t.EmitRows).Select(t => t.Options.Name))}).", "stream");
        }

        _ = FileFilter.Parse(request.Filter);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("ReadAsync may be called once per reader.");
        }

        var changes = _store as IChangeListingStore;
        if (changes is not null && _state is { ValueKind: JsonValueKind.Object } st && st.TryGetProperty("store", out var saved) && saved.ValueKind != JsonValueKind.Null)
        {
            changes.RestoreState(saved);
            _storeState = JsonNode.Parse(saved.GetRawText());
        }

        foreach (var t in _tables)
        {
            t.LoadLedger(_state);
        }

        // A store that lists by changes infers from its first page (the view), so a first listing is not done twice;
        // a continued listing's view holds only changes, so inference then needs a full listing.
        if (changes is not null && _storeState is null && _tables.Any(t => t.NeedsInference))
        {
            _loadedMore = await changes.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var t in _tables)
        {
            await t.OpenAsync(_store, changes is not null && _storeState is not null, cancellationToken).ConfigureAwait(false);
        }

        // Backfills pending at open: resumed when the state holds them, else started; a bad one ends at once.
        foreach (var request in _openBackfills)
        {
            if (_jobs.Any(j => j.Id == request.Id))
            {
                continue;
            }

            try
            {
                Validate(request);
                _requests.Enqueue(request);
            }
            catch (ConnectorException e)
            {
                _log.Write(ConnectorLogLevel.Error, $"Backfill {request.Id} of {request.Stream} cannot run: {e.Message}");
                _doneToReport.Add(new BackfillDone(request.Id, request.Stream, 0, cancelled: true));
            }
        }

        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            var listedAt = DateTimeOffset.UtcNow;
            await foreach (var m in RunJobsAsync(changes, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            if (changes is not null)
            {
                await foreach (var m in ChangePassAsync(changes, first, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }
            }
            else
            {
                foreach (var t in _tables)
                {
                    await foreach (var m in ListingPassAsync(t, first, cancellationToken).ConfigureAwait(false))
                    {
                        yield return m;
                    }
                }
            }

            if (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }

            // Re-reads that a deletion started, before the pass counts as caught up.
            await foreach (var m in RunJobsAsync(changes, cancellationToken).ConfigureAwait(false))
            {
                yield return m;
            }

            if (!_options.DetectDeletions || changes is not null)
            {
                foreach (var t in _tables)
                {
                    t.Ledger.AdvanceWatermark(listedAt - _options.Lookback);
                }
            }

            if (first)
            {
                first = false;
                yield return Checkpoint();

                yield return CaughtUp.Instance;
            }

            try
            {
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var woken = _wake.WaitAsync(wake.Token);
                await Task.WhenAny(Task.Delay(_options.PollInterval, wake.Token), woken).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                try
                {
                    await woken.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // the poll interval passed first
                }

                cancellationToken.ThrowIfCancellationRequested();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }
        }
    }

    /// <summary>One pass over a listed store (folder, S3): the interrupted file first, then new files page by page, then the deletion diff.</summary>
    private async IAsyncEnumerable<SourceMessage> ListingPassAsync(TableRead t, bool first, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var outcome = new FileOutcome();
        string? abandoned = null;
        if (t.Ledger.Current is { } current)
        {
            FileEntry? same = null;
            await foreach (var f in _store.ListAsync(current.File.Path, cancellationToken).ConfigureAwait(false))
            {
                if (f.SameVersion(current.File))
                {
                    same = f;
                }
            }

            if (same is null)
            {
                _log.Write(ConnectorLogLevel.Warning, $"{t.Options.Name}: {current.File.Path} changed or vanished while it was being read; its new version (if any) is read as a new file.");
                t.Ledger.Abandon();
                abandoned = current.File.Path; // some of its rows were emitted: if it is gone, they must go too
            }
            else
            {
                await foreach (var m in ReadNewFileAsync(t, same, first, outcome, cancellationToken).ConfigureAwait(false))
                {
                    yield return m;
                }
            }
        }

        var listed = _options.DetectDeletions ? new HashSet<string>(StringComparer.Ordinal) : null;
        var page = new List<FileEntry>();
        var pageSize = Math.Max(1, _options.ListPageSize);
        var listing = _store.ListAsync(Glob.StaticPrefix(t.Options.Pattern), cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using (listing.ConfigureAwait(false))
        {
            while (true)
            {
                var more = await listing.MoveNextAsync().ConfigureAwait(false);
                if (more)
                {
                    var f = listing.Current;
                    if (!t.Matches(f.Path))
                    {
                        continue;
                    }

                    listed?.Add(f.Path);
                    if (t.Ledger.IsPending(f))
                    {
                        page.Add(f);
                    }
                }

                if (page.Count >= pageSize || (!more && page.Count > 0))
                {
                    foreach (var file in Sorted(page))
                    {
                        if (cancellationToken.IsCancellationRequested)
                        {
                            yield break;
                        }

                        await foreach (var m in ReadNewFileAsync(t, file, first, outcome, cancellationToken).ConfigureAwait(false))
                        {
                            yield return m;
                        }
                    }

                    page.Clear();
                    if (outcome.FilesSinceCheckpoint > 0 && (!more || CheckpointDue(t)))
                    {
                        outcome.FilesSinceCheckpoint = 0;
                        yield return Checkpoint();
                    }
                }

                if (!more)
                {
                    break;
                }
            }
        }

        if (listed is null || cancellationToken.IsCancellationRequested)
        {
            yield break;
        }

        var gone = t.Ledger.KnownPaths.Append(abandoned).OfType<string>().Distinct(StringComparer.Ordinal).Where(p => !listed.Contains(p)).ToList();
        if (gone.Count == 0)
        {
            yield break;
        }

        foreach (var p in gone)
        {
            t.Ledger.Forget(p);
        }

        if (!t.EmitRows)
        {
            yield return Checkpoint();
            yield break;
        }

        // The rows of a file that no longer exists cannot be read to delete them by key: the table is truncated and
        // every file still there read again (a merge table then holds exactly the existing files' rows).
        var ordinal = t.Ledger.TakeOrdinal();
        _log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture,
            $"{t.Options.Name}: {gone.Count} file(s) deleted ({string.Join(", ", gone.Take(5))}{(gone.Count > 5 ? ", ..." : "")}); truncating the table and reading its {listed.Count} remaining file(s) again."));
        var truncate = new ChangeBatchBuilder(t.Options.Name, t.Reader!.Schema, 1);
        truncate.BeginRow(ChangeOp.Truncate, FileColumns.Position(ordinal, 0), (DateTimeOffset.UtcNow.UtcTicks - DateTime.UnixEpoch.Ticks) / 10);
        truncate.EndRow();
        yield return truncate.Build();
        _jobs.RemoveAll(j => j.Internal && j.Stream == t.Options.Name);
        _jobs.Add(new ReReadJob { Id = string.Create(CultureInfo.InvariantCulture, $"deletions-{ordinal}"), Stream = t.Options.Name, Filter = FileFilter.All, Internal = true });
        yield return Checkpoint();
    }

    /// <summary>One pass over a store that lists by changes (Dropbox), a page of changes at a time; the store's cursor is saved after each page whose files are all read.</summary>
    private async IAsyncEnumerable<SourceMessage> ChangePassAsync(IChangeListingStore changes, bool first, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var complete = true;
        var more = true;
        while (more && !cancellationToken.IsCancellationRequested)
        {
            if (_loadedMore is { } loaded)
            {
                more = loaded;
                _loadedMore = null;
            }
            else
            {
                more = await changes.RefreshAsync(cancellationToken).ConfigureAwait(false);
            }

            // Deleted files first: their rows are deleted by key (re-read from their last version), before a new
            // version of the same path is read, so positions order the delete before the new rows.
            foreach (var gone in await changes.TakeDeletionsAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var t in _tables)
                {
                    if (!t.EmitRows || !t.Matches(gone.Path) || t.Ledger.IsPending(gone))
                    {
                        continue; // not this table's, or never ingested: nothing to delete
                    }

                    var ordinal = t.Ledger.TakeOrdinal();
                    _log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture, $"{t.Options.Name}: {gone.Path} was deleted; deleting its rows (file #{ordinal})."));
                    await using var e = t.Reader!.ReadAsync(gone, ordinal, 0, ChangeOp.Delete, evolve: false, cancellationToken).GetAsyncEnumerator(cancellationToken);
                    while (true)
                    {
                        FileChunk chunk;
                        try
                        {
                            if (!await e.MoveNextAsync().ConfigureAwait(false))
                            {
                                break;
                            }

                            chunk = e.Current;
                        }
                        catch (FileNotFoundException)
                        {
                            _log.Write(ConnectorLogLevel.Warning, $"{t.Options.Name}: the last version of deleted {gone.Path} cannot be read; its rows stay.");
                            break;
                        }

                        chunk.DeadLetters?.Dispose(); // reported when the file was read
                        if (chunk.Rows is { } rows)
                        {
                            yield return rows;
                        }

                        yield return Checkpoint();
                    }
                }
            }

            var outcome = new FileOutcome();
            foreach (var t in _tables)
            {
                var files = await ListAsync(_store, t.Options, cancellationToken).ConfigureAwait(false);
                var pending = files.Where(t.Ledger.IsPending).ToList();

                // A file interrupted mid-read comes first (with its ordinal), if it is still the same version.
                if (t.Ledger.Current is { } current)
                {
                    var same = pending.FindIndex(f => f.SameVersion(current.File));
                    if (same < 0)
                    {
                        _log.Write(ConnectorLogLevel.Warning, $"{t.Options.Name}: {current.File.Path} changed or vanished while it was being read; its new version (if any) is read as a new file.");
                        t.Ledger.Abandon();
                    }
                    else
                    {
                        var f = pending[same];
                        pending.RemoveAt(same);
                        pending.Insert(0, f);
                    }
                }

                foreach (var file in pending)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        yield break;
                    }

                    await foreach (var m in ReadNewFileAsync(t, file, first, outcome, cancellationToken).ConfigureAwait(false))
                    {
                        yield return m;
                    }
                }
            }

            complete = complete && !outcome.Vanished;

            // Every file the listing showed so far is done: later reads may continue the listing from here.
            if (complete)
            {
                var state = changes.SaveState();
                var moved = !JsonNode.DeepEquals(state, _storeState);
                _storeState = state;
                if (moved || outcome.FilesSinceCheckpoint > 0)
                {
                    yield return Checkpoint();
                }
            }
            else if (outcome.FilesSinceCheckpoint > 0)
            {
                yield return Checkpoint();
            }
        }
    }

    private sealed class FileOutcome
    {
        public bool Vanished { get; set; }

        public int FilesSinceCheckpoint { get; set; }
    }

    /// <summary>Reads one new file version into its table (resuming where the ledger's current file stopped).</summary>
    private async IAsyncEnumerable<SourceMessage> ReadNewFileAsync(TableRead t, FileEntry file, bool first, FileOutcome outcome, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (ordinal, skip) = t.Ledger.Begin(file);
        _log.Write(ConnectorLogLevel.Debug, string.Create(CultureInfo.InvariantCulture, $"{t.Options.Name}: reading {file.Path} (file #{ordinal}{(skip > 0 ? $", from line {skip + 1}" : "")})."));
        var op = first ? ChangeOp.Read : ChangeOp.Insert;
        var chunks = t.Reader!.ReadAsync(file, ordinal, skip, op, _options.Evolve, cancellationToken);
        await using var e = chunks.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            FileChunk chunk;
            try
            {
                if (!await e.MoveNextAsync().ConfigureAwait(false))
                {
                    break;
                }

                chunk = e.Current;
            }
            catch (FileNotFoundException)
            {
                _log.Write(ConnectorLogLevel.Warning, $"{t.Options.Name}: {file.Path} vanished before it was read; skipped.");
                t.Ledger.Abandon();
                outcome.Vanished = true;
                break;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or ParquetSharp.ParquetException)
            {
                throw new ConnectorException(ErrorKind.Transient, $"{t.Options.Name}: cannot read {file.Path}: {ex.Message}", null, ex);
            }

            if (chunk.Rows is { } rows)
            {
                t.Rows += rows.Length;
                _rowsSinceCheckpoint += rows.Length;
                if (t.EmitRows)
                {
                    yield return rows;
                }
                else
                {
                    rows.Dispose();
                }
            }

            if (chunk.DeadLetters is { } dead)
            {
                if (t.EmitDeadLetters)
                {
                    yield return dead;
                }
                else
                {
                    dead.Dispose();
                }
            }

            t.Ledger.Advance(chunk.LastLine);
            if (chunk.EndOfFile)
            {
                t.Ledger.Complete();
                outcome.FilesSinceCheckpoint++;
                _filesSinceCheckpoint++;
            }

            t.Ledger.Columns = t.Options.Columns is null ? FileColumns.Data(t.Reader.Schema) : null;

            if (!chunk.EndOfFile || CheckpointDue(t))
            {
                outcome.FilesSinceCheckpoint = 0;
                yield return new StreamProgress(t.Options.Name, first ? StreamPhase.Snapshot : StreamPhase.Streaming, t.Rows, null);
                yield return Checkpoint();
            }
        }
    }

    /// <summary>
    /// Whether a checkpoint should follow the end of a file. After every full batch one always does; after a file's
    /// end only when enough rows or time passed, or enough files were read: a tenth of the ledger's size. A checkpoint
    /// holds the whole ledger, and during a large first pass the ledger holds every file read so far, so one per tiny
    /// file of a 100k-file listing would cost quadratic time; this way the cost stays linear and small ledgers still
    /// checkpoint after every file.
    /// </summary>
    private bool CheckpointDue(TableRead t) =>
        _rowsSinceCheckpoint >= t.Options.BatchRows
        || DateTimeOffset.UtcNow - _lastCheckpointAt > TimeSpan.FromSeconds(2)
        || _filesSinceCheckpoint >= Math.Max(1, _tables.Sum(x => x.Ledger.DoneCount) / 10);

    /// <summary>Takes new backfill requests, then runs every job to its end (or its cancellation).</summary>
    private async IAsyncEnumerable<SourceMessage> RunJobsAsync(IChangeListingStore? changes, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        TakeRequests();
        foreach (var d in _doneToReport)
        {
            yield return d;
        }

        if (_doneToReport.Count > 0)
        {
            _doneToReport.Clear();
            yield return Checkpoint();
        }

        while (_jobs.Count > 0 && !cancellationToken.IsCancellationRequested)
        {
            var job = _jobs[0];
            var t = _tables.FirstOrDefault(x => x.EmitRows && x.Options.Name == job.Stream);
            if (t is null)
            {
                _log.Write(ConnectorLogLevel.Warning, $"Backfill {job.Id}: stream {job.Stream} is no longer selected; dropped.");
                _jobs.RemoveAt(0);
                if (!job.Internal)
                {
                    yield return new BackfillDone(job.Id, job.Stream, job.Rows, cancelled: true);
                }

                yield return Checkpoint();
                continue;
            }

            var listing = changes is not null
                ? changes.ListAllAsync(Glob.StaticPrefix(t.Options.Pattern), cancellationToken)
                : _store.ListAsync(Glob.StaticPrefix(t.Options.Pattern), cancellationToken);
            var files = Sorted(await Matching(listing, t.Options, cancellationToken).ConfigureAwait(false))
                .Where(f => job.Filter.Matches(f) && !t.Ledger.IsPending(f) && job.IsAfter(f))
                .ToList();
            var totalBytes = job.BytesDone + files.Sum(f => f.Size);
            _log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture,
                $"{t.Options.Name}: {(job.Internal ? "re-reading" : $"backfill {job.Id} re-reads")} {files.Count} file(s){(job.After is null ? "" : " (resumed)")}."));
            var phase = job.Internal ? StreamPhase.Streaming : StreamPhase.Backfill;
            var backfillId = job.Internal ? null : job.Id;
            foreach (var file in files)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    yield break;
                }

                if (_cancels.ContainsKey(job.Id))
                {
                    job.Cancelled = true;
                    break;
                }

                var ordinal = t.Ledger.TakeOrdinal();
                await using var e = t.Reader!.ReadAsync(file, ordinal, 0, ChangeOp.Read, _options.Evolve, cancellationToken).GetAsyncEnumerator(cancellationToken);
                while (true)
                {
                    FileChunk chunk;
                    try
                    {
                        if (!await e.MoveNextAsync().ConfigureAwait(false))
                        {
                            break;
                        }

                        chunk = e.Current;
                    }
                    catch (FileNotFoundException)
                    {
                        _log.Write(ConnectorLogLevel.Warning, $"{t.Options.Name}: {file.Path} vanished before it was read again; skipped.");
                        break;
                    }
                    catch (Exception ex) when (ex is IOException or InvalidDataException or ParquetSharp.ParquetException)
                    {
                        throw new ConnectorException(ErrorKind.Transient, $"{t.Options.Name}: cannot read {file.Path}: {ex.Message}", null, ex);
                    }

                    chunk.DeadLetters?.Dispose(); // reported when the file was first read
                    if (chunk.Rows is { } rows)
                    {
                        job.Rows += rows.Length;
                        yield return rows;
                    }

                    if (chunk.EndOfFile)
                    {
                        job.After = (file.Modified.UtcTicks, file.Path);
                        job.BytesDone += file.Size;
                    }

                    t.Ledger.Columns = t.Options.Columns is null ? FileColumns.Data(t.Reader.Schema) : null;
                    long? total = job.BytesDone > 0 && totalBytes > 0 ? Math.Max(job.Rows, (long)((double)job.Rows * totalBytes / job.BytesDone)) : null;
                    yield return new StreamProgress(t.Options.Name, phase, job.Rows, chunk.EndOfFile && file == files[^1] ? job.Rows : total, backfillId);
                    yield return Checkpoint();
                }
            }

            _jobs.Remove(job);
            _cancels.TryRemove(job.Id, out _);
            if (!job.Internal)
            {
                _finished.Add(job.Id);
                if (_finished.Count > FinishedBackfillsKept)
                {
                    _finished.RemoveAt(0);
                }

                _log.Write(ConnectorLogLevel.Information, string.Create(CultureInfo.InvariantCulture, $"{t.Options.Name}: backfill {job.Id} {(job.Cancelled ? "cancelled" : "done")} after {job.Rows} row(s)."));
                yield return new BackfillDone(job.Id, job.Stream, job.Rows, job.Cancelled);
            }

            yield return Checkpoint();
            TakeRequests();
            foreach (var d in _doneToReport)
            {
                yield return d;
            }

            _doneToReport.Clear();
        }
    }

    private void TakeRequests()
    {
        while (_requests.TryDequeue(out var r))
        {
            if (_jobs.Any(j => j.Id == r.Id))
            {
                continue;
            }

            if (_finished.Contains(r.Id))
            {
                _doneToReport.Add(new BackfillDone(r.Id, r.Stream, 0));
                continue;
            }

            if (_cancels.TryRemove(r.Id, out _))
            {
                _doneToReport.Add(new BackfillDone(r.Id, r.Stream, 0, cancelled: true));
                continue;
            }

            _jobs.Add(new ReReadJob { Id = r.Id, Stream = r.Stream, FilterText = r.Filter, Filter = FileFilter.Parse(r.Filter) });
        }
    }

    private Checkpoint Checkpoint()
    {
        _rowsSinceCheckpoint = 0;
        _filesSinceCheckpoint = 0;
        _lastCheckpointAt = DateTimeOffset.UtcNow;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("v", 1);
            w.WriteStartObject("tables");
            foreach (var t in _tables)
            {
                w.WritePropertyName(t.Options.Name);
                t.Ledger.WriteTo(w);
            }

            // Tables not read this time keep their ledgers.
            if (_state is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("tables", out var old))
            {
                foreach (var p in old.EnumerateObject())
                {
                    if (!_tables.Any(t => t.Options.Name == p.Name))
                    {
                        p.WriteTo(w);
                    }
                }
            }

            w.WriteEndObject();
            if (_storeState is not null)
            {
                w.WritePropertyName("store");
                _storeState.WriteTo(w);
            }

            if (_jobs.Count > 0)
            {
                w.WriteStartArray("jobs");
                foreach (var j in _jobs)
                {
                    j.ToJson().WriteTo(w);
                }

                w.WriteEndArray();
            }

            if (_finished.Count > 0)
            {
                w.WriteStartArray("backfillsDone");
                foreach (var id in _finished)
                {
                    w.WriteStringValue(id);
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return new Checkpoint(doc.RootElement);
    }

    /// <inheritdoc />
    public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        LastAcknowledged = checkpoint;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        foreach (var t in _tables)
        {
            t.Reader?.Dispose();
        }

        _wake.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class TableRead(FileTableOptions options, bool emitRows, bool emitDeadLetters)
    {
        public FileTableOptions Options { get; } = options;

        public bool EmitRows { get; } = emitRows;

        public bool EmitDeadLetters { get; } = emitDeadLetters;

        public FileLedger Ledger { get; private set; } = new();

        public FileTableReader? Reader { get; private set; }

        public long Rows { get; set; }

        private Regex? _glob;

        public bool Matches(string path) => (_glob ??= Glob.Compile(Options.Pattern)).IsMatch(path);

        public bool NeedsInference => Options.Columns is null && Ledger.Columns is null;

        public void LoadLedger(JsonElement? state)
        {
            if (state is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("tables", out var tables) && tables.TryGetProperty(Options.Name, out var mine))
            {
                try
                {
                    Ledger = FileLedger.FromJson(mine);
                }
                catch (FormatException e)
                {
                    throw new ConnectorException(ErrorKind.Fatal, $"{Options.Name}: {e.Message}", null, e);
                }
            }
        }

        public async Task OpenAsync(IFileStore store, bool fullListing, CancellationToken cancellationToken)
        {
            // Declared columns; else the columns the checkpoint says the stream had (a store that lists by
            // changes cannot re-infer: its view holds only what changed); else the same inference Discover does.
            var schema = Options.Columns is not null
                ? FileColumns.Schema(Options.Columns)
                : Ledger.Columns is { } saved
                    ? FileColumns.Schema(saved)
                    : await FileTableReader.InferSchemaAsync(store, Options, fullListing ? await ListFullAsync(store, Options, cancellationToken).ConfigureAwait(false) : await ListAsync(store, Options, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

            Reader = new FileTableReader(store, Options, schema);
        }
    }
}

/// <summary>Discovery shared by file-store connectors.</summary>
public static class FileDiscovery
{
    /// <summary>The catalog: each table's stream (schema declared or inferred) and its dead-letter stream.</summary>
    public static async Task<SourceCatalog> DiscoverAsync(IFileStore store, IReadOnlyList<FileTableOptions> tables, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var streams = new List<StreamDescriptor>();
        foreach (var t in tables)
        {
            var files = t.Columns is null ? await FileSourceReader.ListFullAsync(store, t, cancellationToken).ConfigureAwait(false) : [];
            var schema = await FileTableReader.InferSchemaAsync(store, t, files, cancellationToken).ConfigureAwait(false);
            foreach (var k in t.PrimaryKey)
            {
                if (schema.IndexOf(k) < 0)
                {
                    throw new ConnectorException(ErrorKind.Configuration, $"Table '{t.Name}': key column '{k}' is not among its columns ({schema}).", $"/tables/{t.Index}/primaryKey");
                }
            }

            streams.Add(FileTableReader.Describe(t, schema));
            streams.Add(FileTableReader.DescribeDeadLetters(t));
        }

        return new SourceCatalog(streams);
    }

    /// <summary>Parses a duration setting: a number of seconds, or text such as <c>30s</c>, <c>5m</c>, <c>1h</c>.</summary>
    public static TimeSpan ParseDuration(JsonElement value, string field)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        var text = value.ValueKind == JsonValueKind.String ? value.GetString() ?? "" : "";
        var m = Regex.Match(text, @"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", RegexOptions.CultureInvariant);
        if (!m.Success)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Expected a duration such as 30s, 5m or 1h (or seconds), got {value.GetRawText()}.", field);
        }

        var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "s" => TimeSpan.FromSeconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            _ => TimeSpan.FromDays(n),
        };
    }
}
