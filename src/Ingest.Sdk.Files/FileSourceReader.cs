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
public sealed record FileReadOptions(TimeSpan PollInterval, TimeSpan Lookback, bool Evolve = true);

/// <summary>
/// The read of a file-store connection, shared by every store: a first pass over the files that exist,
/// <see cref="CaughtUp"/>, then a new listing every poll interval until cancelled. Each new or changed file
/// version is read once (the ledger in the checkpoint says which), in order of modification time; a
/// checkpoint follows every batch, so a restart resumes inside a large file. Deleted files change nothing.
/// </summary>
public sealed class FileSourceReader : ISourceReader
{
    private readonly IFileStore _store;
    private readonly FileReadOptions _options;
    private readonly IConnectorLog _log;
    private readonly List<TableRead> _tables = [];
    private readonly JsonElement? _state;
    private JsonNode? _storeState;
    private int _started;

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
    }

    /// <summary>The last checkpoint acknowledged (everything before it is durable).</summary>
    public Checkpoint? LastAcknowledged { get; private set; }

    /// <summary>Lists a table's files in reading order: by modification time, then path.</summary>
    public static async Task<List<FileEntry>> ListAsync(IFileStore store, FileTableOptions table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(table);
        var regex = Glob.Compile(table.Pattern);
        var files = new List<FileEntry>();
        await foreach (var f in store.ListAsync(Glob.StaticPrefix(table.Pattern), cancellationToken).ConfigureAwait(false))
        {
            if (regex.IsMatch(f.Path))
            {
                files.Add(f);
            }
        }

        files.Sort((a, b) => a.Modified != b.Modified ? a.Modified.CompareTo(b.Modified) : string.CompareOrdinal(a.Path, b.Path));
        return files;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("ReadAsync may be called once per reader.");
        }

        var changes = _store as IChangeListingStore;
        if (changes is not null)
        {
            if (_state is { ValueKind: JsonValueKind.Object } st && st.TryGetProperty("store", out var saved) && saved.ValueKind != JsonValueKind.Null)
            {
                changes.RestoreState(saved);
                _storeState = JsonNode.Parse(saved.GetRawText());
            }

            await changes.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var t in _tables)
        {
            await t.OpenAsync(_store, _state, cancellationToken).ConfigureAwait(false);
        }

        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            var listedAt = DateTimeOffset.UtcNow;
            if (changes is not null && !first)
            {
                await changes.RefreshAsync(cancellationToken).ConfigureAwait(false);
            }

            var complete = true;

            // Deleted files first: their rows are deleted by key (re-read from their last version), before a new
            // version of the same path is read, so positions order the delete before the new rows.
            var deletions = changes is null ? [] : await changes.TakeDeletionsAsync(cancellationToken).ConfigureAwait(false);
            foreach (var gone in deletions)
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
                            complete = complete && changes is null;
                            break;
                        }
                        catch (Exception ex) when (ex is IOException or InvalidDataException or ParquetSharp.ParquetException)
                        {
                            throw new ConnectorException(ErrorKind.Transient, $"{t.Options.Name}: cannot read {file.Path}: {ex.Message}", null, ex);
                        }

                        if (chunk.Rows is { } rows)
                        {
                            t.Rows += rows.Length;
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
                        }

                        t.Ledger.Columns = t.Options.Columns is null ? FileColumns.Data(t.Reader.Schema) : null;
                        yield return new StreamProgress(t.Options.Name, first ? StreamPhase.Snapshot : StreamPhase.Streaming, t.Rows, null);
                        yield return Checkpoint();
                    }
                }
            }

            foreach (var t in _tables)
            {
                t.Ledger.AdvanceWatermark(listedAt - _options.Lookback);
            }

            // Every file the listing showed is done: later reads may continue the listing from here.
            if (changes is not null && complete)
            {
                var saved = changes.SaveState();
                var moved = !JsonNode.DeepEquals(saved, _storeState);
                _storeState = saved;
                if (!first && moved)
                {
                    yield return Checkpoint();
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
                await Task.Delay(_options.PollInterval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                yield break;
            }
        }
    }

    private Checkpoint Checkpoint()
    {
        var tables = new JsonObject();
        foreach (var t in _tables)
        {
            tables[t.Options.Name] = t.Ledger.ToJson();
        }

        // Tables not read this time keep their ledgers.
        if (_state is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("tables", out var old))
        {
            foreach (var p in old.EnumerateObject())
            {
                if (!tables.ContainsKey(p.Name))
                {
                    tables[p.Name] = JsonNode.Parse(p.Value.GetRawText());
                }
            }
        }

        var state = new JsonObject { ["v"] = 1, ["tables"] = tables };
        if (_storeState is not null)
        {
            state["store"] = _storeState.DeepClone();
        }

        return new Checkpoint(JsonSerializer.SerializeToElement(state));
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

        public async Task OpenAsync(IFileStore store, JsonElement? state, CancellationToken cancellationToken)
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

            // Declared columns; else the columns the checkpoint says the stream had (a store that lists by
            // changes cannot re-infer: its view holds only what changed); else the same inference Discover does.
            var schema = Options.Columns is not null
                ? FileColumns.Schema(Options.Columns)
                : Ledger.Columns is { } saved
                    ? FileColumns.Schema(saved)
                    : await FileTableReader.InferSchemaAsync(store, Options, await ListAsync(store, Options, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

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
        if (store is IChangeListingStore changes)
        {
            await changes.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        var streams = new List<StreamDescriptor>();
        foreach (var t in tables)
        {
            var files = t.Columns is null ? await FileSourceReader.ListAsync(store, t, cancellationToken).ConfigureAwait(false) : [];
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
