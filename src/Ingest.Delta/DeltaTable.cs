using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Parquet;
using Ingest.Delta.Read;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;

namespace Ingest.Delta;

/// <summary>A Delta table at a path: a local folder or <c>s3://bucket/prefix</c>.</summary>
public sealed partial class DeltaTable
{
    internal static readonly string EngineVersion = typeof(DeltaTable).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    private readonly ILogStore _store;
    private LogState _state;
    private DeltaSnapshot _snapshot;

    // One scanner (parsed schema, column mapping) per snapshot, for merges that read many files of it.
    private readonly ConditionalWeakTable<DeltaSnapshot, FileScanner> _scanners = new();

    private DeltaTable(string path, ILogStore store, LogState state)
    {
        Path = path;
        _store = store;
        _state = state;
        _snapshot = state.ToSnapshot(path);
    }

    /// <summary>The table's root.</summary>
    public string Path { get; }

    /// <summary>The snapshot read last (refreshed by every commit of this instance and by <see cref="RefreshAsync"/>).</summary>
    public DeltaSnapshot Snapshot => _snapshot;

    /// <summary>Most rows per data file written (appends and merge rewrites split larger inputs). Default 1,000,000.</summary>
    public long MaxRowsPerFile { get; set; } = 1_000_000;

    /// <summary>Opens an existing table at its latest version; null when <paramref name="path"/> holds no table.</summary>
    /// <param name="path">A local folder, or <c>s3://bucket/prefix</c> (reached with the AWS environment's settings).</param>
    /// <param name="cancellationToken">Cancels the read of the log.</param>
    public static Task<DeltaTable?> TryOpenAsync(string path, CancellationToken cancellationToken) => TryOpenAsync(path, null, cancellationToken);

    /// <summary>Opens an existing table at its latest version; null when <paramref name="path"/> holds no table.</summary>
    /// <param name="path">A local folder, or <c>s3://bucket/prefix</c>.</param>
    /// <param name="storage">Endpoint, region and credentials for object stores; null for the AWS environment's.</param>
    /// <param name="cancellationToken">Cancels the read of the log.</param>
    public static async Task<DeltaTable?> TryOpenAsync(string path, DeltaStorageOptions? storage, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var store = LogStores.Create(path, storage);
        var state = await LogReplay.LoadAsync(store, null, cancellationToken).ConfigureAwait(false);
        return state is null ? null : new DeltaTable(DisplayPath(path, store), store, state);
    }

    private static string DisplayPath(string path, ILogStore store) => store is S3LogStore ? store.Root : path;

    /// <summary>Opens the table, or creates it (version 0: protocol 1/2 + metaData) with this schema.</summary>
    public static Task<DeltaTable> OpenOrCreateAsync(string path, StreamSchema schema, IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string>? configuration, CancellationToken cancellationToken) =>
        OpenOrCreateAsync(path, schema, partitionColumns, configuration, null, cancellationToken);

    /// <summary>Opens the table, or creates it (version 0: protocol + metaData) with this schema; <paramref name="path"/> may be <c>s3://bucket/prefix</c>.</summary>
    public static async Task<DeltaTable> OpenOrCreateAsync(string path, StreamSchema schema, IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string>? configuration, DeltaStorageOptions? storage, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(partitionColumns);
        var existing = await TryOpenAsync(path, storage, cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            return existing;
        }

        var canonical = new List<string>();
        foreach (var p in partitionColumns)
        {
            var i = schema.IndexOf(p);
            if (i < 0)
            {
                throw new ArgumentException($"Partition column '{p}' is not a column of the schema ({schema}).", nameof(partitionColumns));
            }

            if (schema.Columns[i].Type is not (PrimitiveType or DecimalType))
            {
                throw new ArgumentException($"Partition column '{p}' has type {schema.Columns[i].Type}; only primitive types can partition a table.", nameof(partitionColumns));
            }

            canonical.Add(schema.Columns[i].Name);
        }

        if (canonical.Count == schema.Count && schema.Count > 0)
        {
            throw new ArgumentException("A table needs at least one column that is not a partition column.", nameof(partitionColumns));
        }

        var ntz = schema.Columns.Any(c => UsesNtz(c.Type));
        var config = configuration ?? new Dictionary<string, string>();
        var widening = WriterFeatures.IsTrue(config, "delta.enableTypeWidening");
        var ict = WriterFeatures.IsTrue(config, "delta.enableInCommitTimestamps");
        var dv = WriterFeatures.IsTrue(config, "delta.enableDeletionVectors");
        var cdf = WriterFeatures.IsTrue(config, "delta.enableChangeDataFeed");
        // Change data feed alone: legacy writer version 4 (PROTOCOL.md "Table Features": writer 4 implies changeDataFeed).
        var protocol = cdf ? new ProtocolAction(1, 4) : new ProtocolAction(1, 2);
        if (ntz || widening || ict || dv)
        {
            // Table features (PROTOCOL.md "Table Features"): reader 3 only for reader+writer features; appendOnly is listed
            // when the table asks for it (writer version 2 implied it).
            var readerFeatures = new List<string>();
            var writerFeatures = new List<string>();
            if (WriterFeatures.IsTrue(config, "delta.appendOnly"))
            {
                writerFeatures.Add("appendOnly");
            }

            if (ntz)
            {
                readerFeatures.Add("timestampNtz");
                writerFeatures.Add("timestampNtz");
            }

            if (widening)
            {
                readerFeatures.Add("typeWidening");
                writerFeatures.Add("typeWidening");
            }

            if (ict)
            {
                writerFeatures.Add("inCommitTimestamp");
            }

            if (dv)
            {
                readerFeatures.Add("deletionVectors");
                writerFeatures.Add("deletionVectors");
            }

            if (cdf)
            {
                writerFeatures.Add("changeDataFeed");
            }

            protocol = readerFeatures.Count > 0 ? new ProtocolAction(3, 7, readerFeatures, writerFeatures) : new ProtocolAction(1, 7, null, writerFeatures);
        }

        var metadata = new MetadataAction(
            Guid.NewGuid().ToString(), null, null, "parquet", new Dictionary<string, string>(),
            schema.ToDeltaJson().ToJsonString(), canonical,
            new Dictionary<string, string>(configuration ?? new Dictionary<string, string>()),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var pending = new PendingCommit
        {
            Options = new CommitOptions("CREATE TABLE"),
            Protocol = protocol,
            Metadata = metadata,
            DefaultParameters =
            {
                ["isManaged"] = "false",
                ["partitionBy"] = new JsonArray(canonical.Select(c => (JsonNode)c).ToArray()).ToJsonString(),
                ["properties"] = new JsonObject(metadata.Configuration.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))).ToJsonString(),
            },
            IsBlindAppend = true,
        };
        var store = LogStores.Create(path, storage);
        var bytes = pending.Serialize(-1, Guid.NewGuid().ToString(), ict ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() : null);
        if (!await store.PutIfAbsentAsync(LogReplay.CommitPath(0), bytes, cancellationToken).ConfigureAwait(false))
        {
            // Another writer created the table first.
            return await TryOpenAsync(path, storage, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidDataException($"Delta table '{path}' has a version 0 that cannot be read.");
        }

        var state = new LogState();
        state.Apply(pending.ToActions(), 0);
        return new DeltaTable(DisplayPath(path, store), store, state);
    }

    private static bool UsesNtz(DataType t) => t switch
    {
        PrimitiveType { Kind: PrimitiveKind.TimestampNtz } => true,
        ArrayType a => UsesNtz(a.ElementType),
        MapType m => UsesNtz(m.KeyType) || UsesNtz(m.ValueType),
        Sdk.Types.StructType s => s.Fields.Any(f => UsesNtz(f.Type)),
        _ => false,
    };

    /// <summary>Re-reads the log to its latest version.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var state = _state.Clone();
        var applied = await LogReplay.UpdateAsync(_store, state, cancellationToken).ConfigureAwait(false);
        if (applied.Count > 0)
        {
            SetState(state);
        }
    }

    private void SetState(LogState state)
    {
        _state = state;
        _snapshot = state.ToSnapshot(Path);
    }

    /// <summary>The snapshot at <paramref name="version"/> (time travel).</summary>
    public async Task<DeltaSnapshot> GetSnapshotAsync(long version, CancellationToken cancellationToken)
    {
        if (version == _state.Version)
        {
            return _snapshot;
        }

        var state = await LogReplay.LoadAsync(_store, version, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidDataException($"Delta table '{Path}' has no log.");
        return state.ToSnapshot(Path);
    }

    /// <summary>
    /// The snapshot as of <paramref name="timestamp"/> (time travel): the latest version committed at or before it. Commit
    /// times are in-commit timestamps where the table enables them, else the commit files' modification times.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The timestamp is before the first commit that can be read.</exception>
    public async Task<DeltaSnapshot> GetSnapshotAsOfAsync(DateTimeOffset timestamp, CancellationToken cancellationToken)
    {
        // Every commit file is listed, newer ones included; the in-commit timestamp setting is the snapshot's.
        var commits = await LogReplay.CommitTimestampsAsync(_store, _snapshot.Configuration, cancellationToken).ConfigureAwait(false);
        if (commits.Count == 0)
        {
            throw new InvalidDataException($"Delta table '{Path}' has no commit that can be read.");
        }

        long? version = null;
        foreach (var (v, ts) in commits)
        {
            if (ts <= timestamp)
            {
                version = v;
            }
        }

        if (version is null)
        {
            var (first, firstTs) = commits[0];
            throw new ArgumentOutOfRangeException(nameof(timestamp), timestamp,
                $"Delta table '{Path}' has no version as of {timestamp:O}: its first readable commit (version {first}) is at {firstTs:O}.");
        }

        return await GetSnapshotAsync(version.Value, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Appends the rows (each batch has the table's schema) in one commit.</summary>
    public async Task<CommitResult> AppendAsync(IReadOnlyList<RecordBatch> batches, CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(options);
        var readState = _state;
        var snapshot = _snapshot;
        WriterFeatures.Check(readState, Path, "append", removesData: false);
        using var writer = NewWriter(snapshot);
        try
        {
            foreach (var batch in batches)
            {
                CheckSchema(batch.Schema, snapshot, "append batch");
                writer.Write(batch);
            }

            var adds = await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
            var pending = new PendingCommit
            {
                Options = options,
                Adds = adds.ToList(),
                IsBlindAppend = true,
                RowsWritten = writer.RowsWritten,
                DefaultParameters = { ["mode"] = "Append", ["partitionBy"] = PartitionByJson(snapshot) },
                Metrics =
                {
                    ["numFiles"] = Committer.Metric(adds.Count),
                    ["numOutputRows"] = Committer.Metric(writer.RowsWritten),
                    ["numOutputBytes"] = Committer.Metric(adds.Sum(a => a.Size)),
                },
            };
            return await CommitAsync(readState, pending, 0, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private static string PartitionByJson(DeltaSnapshot s) => new JsonArray(s.PartitionColumns.Select(c => (JsonNode)c).ToArray()).ToJsonString();

    private TableWriter NewWriter(DeltaSnapshot snapshot) =>
        new(_store, snapshot.Schema, snapshot.PartitionColumns, snapshot.Configuration, MaxRowsPerFile);

    internal static void CheckBatchSchema(Schema schema, DeltaSnapshot snapshot, string what) => CheckSchema(schema, snapshot, what);

    private static void CheckSchema(Schema schema, DeltaSnapshot snapshot, string what)
    {
        var expected = snapshot.Schema;
        if (schema.FieldsList.Count != expected.Count)
        {
            throw new ArgumentException($"The {what} has {schema.FieldsList.Count} columns; the table has {expected.Count} ({expected}).");
        }

        for (var i = 0; i < expected.Count; i++)
        {
            var f = schema.FieldsList[i];
            var e = expected.Columns[i];
            if (!string.Equals(f.Name, e.Name, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"Column {i} of the {what} is '{f.Name}'; the table has '{e.Name}' there.");
            }

            DataType actual;
            try
            {
                actual = DataType.FromArrowType(f.DataType);
            }
            catch (NotSupportedException ex)
            {
                throw new ArgumentException($"Column '{f.Name}' of the {what}: {ex.Message}", ex);
            }

            if (!SameType(actual, e.Type))
            {
                throw new ArgumentException($"Column '{f.Name}' of the {what} has type {actual}; the table has {e.Type}.");
            }
        }
    }

    private static bool SameType(DataType a, DataType b) => (a, b) switch
    {
        (ArrayType x, ArrayType y) => SameType(x.ElementType, y.ElementType),
        (MapType x, MapType y) => SameType(x.KeyType, y.KeyType) && SameType(x.ValueType, y.ValueType),
        (Sdk.Types.StructType x, Sdk.Types.StructType y) => x.Fields.Count == y.Fields.Count
            && x.Fields.Zip(y.Fields).All(p => string.Equals(p.First.Name, p.Second.Name, StringComparison.OrdinalIgnoreCase) && SameType(p.First.Type, p.Second.Type)),
        _ => a == b,
    };

    /// <summary>Checks a keyed source (merge or history merge) against the table: writable, same schema, one IsDelete per row, keys named.</summary>
    private void CheckKeyedSource(LogState readState, DeltaSnapshot snapshot, RecordBatch source, bool[] isDelete, IReadOnlyList<string> keyColumns, string what, string operation, string paramName, bool writesChangeData = false)
    {
        WriterFeatures.Check(readState, Path, "merge", removesData: true, writesChangeData);
        CheckSchema(source.Schema, snapshot, what);
        if (isDelete.Length != source.Length)
        {
            throw new ArgumentException($"IsDelete has {isDelete.Length} entries; the {what} has {source.Length} rows.", paramName);
        }

        if (keyColumns.Count == 0)
        {
            throw new ArgumentException($"A {operation} needs at least one key column.", paramName);
        }
    }

    /// <summary>The remove action for a live file replaced or deleted at <paramref name="timestamp"/>.</summary>
    private static RemoveAction RemoveOf(AddFile file, long timestamp) =>
        new(file.Path, timestamp, true, true, file.PartitionValues, file.Size) { DeletionVector = file.DeletionVector };

    /// <summary>The key conditions of a merge predicate, as Spark spells them.</summary>
    private static IEnumerable<string> MergePredicate(IReadOnlyList<string> keyColumns) => keyColumns.Select(k => $"(target.{k} = source.{k})");

    /// <summary>Row counts of a merge commit (Spark's MERGE operationMetrics); <see cref="Skipped"/> only where the operation skips replays.</summary>
    private readonly record struct MergeMetrics(long SourceRows, long Inserted, long Updated, long Deleted, long Copied, long? Skipped, long BytesRemoved);

    /// <summary>The commit of a copy-on-write merge: the files written replace <paramref name="removes"/>; a concurrent add that may hold a key conflicts.</summary>
    private static async Task<PendingCommit> MergeCommitAsync(CommitOptions options, TableWriter writer, List<RemoveAction> removes, HashSet<string> readFiles, Func<AddFile, bool> conflictsWithAdd, IEnumerable<string> predicate, MergeMetrics m, CancellationToken ct)
    {
        var adds = await writer.FinishAsync(ct).ConfigureAwait(false);
        var metrics = new Dictionary<string, string>
        {
            ["numSourceRows"] = Committer.Metric(m.SourceRows),
            ["numTargetRowsInserted"] = Committer.Metric(m.Inserted),
            ["numTargetRowsUpdated"] = Committer.Metric(m.Updated),
            ["numTargetRowsDeleted"] = Committer.Metric(m.Deleted),
            ["numTargetRowsCopied"] = Committer.Metric(m.Copied),
        };
        if (m.Skipped is { } skipped)
        {
            metrics["numSourceRowsSkipped"] = Committer.Metric(skipped);
        }

        metrics["numOutputRows"] = Committer.Metric(writer.RowsWritten);
        metrics["numTargetFilesAdded"] = Committer.Metric(adds.Count);
        metrics["numTargetFilesRemoved"] = Committer.Metric(removes.Count);
        metrics["numTargetBytesAdded"] = Committer.Metric(adds.Sum(a => a.Size));
        metrics["numTargetBytesRemoved"] = Committer.Metric(m.BytesRemoved);
        return new PendingCommit
        {
            Options = options,
            Adds = adds.ToList(),
            Removes = removes,
            ReadFiles = readFiles,
            ConflictsWithAdd = conflictsWithAdd,
            RowsWritten = writer.RowsWritten,
            DefaultParameters = { ["predicate"] = new JsonArray(predicate.Select(p => (JsonNode)p).ToArray()).ToJsonString() },
            Metrics = metrics,
        };
    }

    private async Task<CommitResult> CommitAsync(LogState readState, PendingCommit pending, int filesRemoved, CancellationToken ct)
    {
        var (version, state) = await Committer.CommitAsync(_store, readState, pending, ct).ConfigureAwait(false);
        // Keep the newest state this instance has seen.
        if (state.Version > _state.Version)
        {
            SetState(state);
        }

        await MaybeCheckpointAsync(state, ct).ConfigureAwait(false);
        return new CommitResult(version, pending.Adds.Count, filesRemoved, pending.RowsWritten);
    }

    private async Task MaybeCheckpointAsync(LogState state, CancellationToken ct)
    {
        var interval = state.Metadata?.Configuration.TryGetValue("delta.checkpointInterval", out var text) == true && int.TryParse(text, out var n) && n > 0 ? n : 10;
        if (state.Version > 0 && state.Version % interval == 0)
        {
            try
            {
                await CheckpointWriter.WriteAsync(_store, state, ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // A checkpoint only speeds up readers; the commit stands without it.
            }
        }
    }

    /// <summary>
    /// Merge by key, one commit: copy-on-write (rewrites only files whose key stats may hold a changed key), or with
    /// deletion vectors where the table enables them. A key is looked for in every partition (its row may have moved to
    /// another one, and a delete carries only its key) unless the partition columns are key columns. When the source only
    /// upserts keys no live file may hold, the rows are written as an append writes them.
    /// </summary>
    public async Task<CommitResult> MergeAsync(MergeRequest request, CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        var readState = _state;
        var snapshot = _snapshot;
        var schema = snapshot.Schema;
        var source = request.Rows;
        CheckKeyedSource(readState, snapshot, source, request.IsDelete, request.KeyColumns, "merge source", "merge", nameof(request), writesChangeData: true);

        var keyOrdinals = request.KeyColumns.Select(k => schema.IndexOf(k) is var i and >= 0 ? i : throw new ArgumentException($"Key column '{k}' is not a column of the table ({schema}).", nameof(request))).ToArray();
        var versionOrdinal = request.VersionColumn is null ? -1
            : schema.IndexOf(request.VersionColumn) is var vi and >= 0 ? vi : throw new ArgumentException($"Version column '{request.VersionColumn}' is not a column of the table.", nameof(request));
        var (onlyNewKeys, range, pruning) = ProbeNewKeys(request, snapshot);
        if (onlyNewKeys)
        {
            return await MergeNewKeysAsync(request, options, readState, snapshot, keyOrdinals, range!, pruning, cancellationToken).ConfigureAwait(false);
        }

        pruning ??= new FilePruning(source, schema, request.KeyColumns, snapshot.PartitionColumns);
        if (WritesDeletionVectors(readState))
        {
            return await MergeWithDeletionVectorsAsync(request, options, readState, snapshot, keyOrdinals, versionOrdinal, pruning, cancellationToken).ConfigureAwait(false);
        }

        var sourceKeys = keyOrdinals.Select(source.Column).ToArray();
        var index = new KeyIndex(sourceKeys, source.Length, request.KeyColumns);

        var matched = new bool[source.Length];
        var writeSource = new bool[source.Length];
        long updated = 0, deleted = 0, copied = 0, inserted = 0, bytesRemoved = 0;
        var removes = new List<RemoveAction>();
        var readFiles = new HashSet<string>(StringComparer.Ordinal);
        using var writer = NewWriter(snapshot);
        using var cdc = NewChangeDataWriter(snapshot);
        try
        {
            foreach (var file in snapshot.Files)
            {
                if (!pruning.MayContainAnyKey(file))
                {
                    continue;
                }

                readFiles.Add(file.Path);
                var batches = new List<(RecordBatch Batch, List<int> Keep)>();
                var changes = new List<(List<int> Updated, List<int> Deleted)>();
                try
                {
                    var changed = false;
                    long fileCopied = 0;
                    await foreach (var batch in ReadFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false))
                    {
                        var targetKeys = keyOrdinals.Select(batch.Column).ToArray();
                        var keep = new List<int>(batch.Length);
                        batches.Add((batch, keep));
                        var (updatedRows, deletedRows) = (new List<int>(), new List<int>());
                        changes.Add((updatedRows, deletedRows));
                        for (var r = 0; r < batch.Length; r++)
                        {
                            var j = index.Find(targetKeys, r);
                            if (j < 0)
                            {
                                keep.Add(r);
                                continue;
                            }

                            matched[j] = true;
                            var apply = versionOrdinal < 0 || KeyIndex.Compare(source.Column(versionOrdinal), j, batch.Column(versionOrdinal), r) > 0;
                            if (!apply)
                            {
                                keep.Add(r);
                                continue;
                            }

                            changed = true;
                            if (request.IsDelete[j])
                            {
                                deleted++;
                                deletedRows.Add(r);
                            }
                            else
                            {
                                updated++;
                                writeSource[j] = true;
                                updatedRows.Add(r);
                            }
                        }

                        fileCopied += keep.Count;
                    }

                    if (!changed)
                    {
                        continue;
                    }

                    copied += fileCopied;
                    for (var b = 0; b < batches.Count; b++)
                    {
                        var (batch, keep) = batches[b];
                        WriteTargetChanges(cdc, batch, changes[b].Updated, changes[b].Deleted);
                        if (keep.Count > 0)
                        {
                            // Always a copy: the batch's buffers belong to the file reader, which is closed before the
                            // buffered Parquet writer exports them (ingest engine: crashes in CArrowArrayExporter.ReleaseArray).
                            writer.Write(ArrowKernels.Take(batch, CollectionsMarshal.AsSpan(keep)));
                        }
                    }
                }
                finally
                {
                    // Batches read through the C data interface hold native memory: release it now, not at finalization.
                    foreach (var (batch, _) in batches)
                    {
                        batch.Dispose();
                    }
                }

                bytesRemoved += file.Size;
                removes.Add(RemoveOf(file, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            }

            var fromSource = new List<int>();
            for (var j = 0; j < source.Length; j++)
            {
                if (!matched[j] && !request.IsDelete[j])
                {
                    inserted++;
                    fromSource.Add(j);
                }
                else if (writeSource[j])
                {
                    fromSource.Add(j);
                }
            }

            // Change data first: writing the source to Parquet moves its buffers away.
            WriteSourceChanges(cdc, source, matched, writeSource, request.IsDelete);
            if (fromSource.Count > 0)
            {
                writer.Write(fromSource.Count == source.Length ? source : ArrowKernels.Take(source, CollectionsMarshal.AsSpan(fromSource)));
            }

            var pending = await MergeCommitAsync(options, writer, removes, readFiles, pruning.MayContainAnyKey, MergePredicate(request.KeyColumns),
                new MergeMetrics(source.Length, inserted, updated, deleted, copied, null, bytesRemoved), cancellationToken).ConfigureAwait(false);
            await AddChangeFilesAsync(pending, cdc, cancellationToken).ConfigureAwait(false);
            return await CommitAsync(readState, pending, removes.Count, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            await AbortChangeDataAsync(cdc).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Removes every row (a TRUNCATE at the source) in one commit.</summary>
    public Task<CommitResult> DeleteAllAsync(CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var readState = _state;
        var snapshot = _snapshot;
        WriterFeatures.Check(readState, Path, "delete", removesData: true, writesChangeData: true);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var removes = snapshot.Files.Select(f => RemoveOf(f, now)).ToList();
        var pending = new PendingCommit
        {
            Options = options,
            Removes = removes,
            ReadFiles = new HashSet<string>(snapshot.Files.Select(f => f.Path), StringComparer.Ordinal),
            DefaultParameters = { ["predicate"] = "[]" },
            Metrics =
            {
                ["numRemovedFiles"] = Committer.Metric(removes.Count),
                ["numRemovedBytes"] = Committer.Metric(removes.Sum(r => r.Size ?? 0)),
                ["numDeletedRows"] = snapshot.RowCount is { } rows ? Committer.Metric(rows) : "0",
                ["numAddedFiles"] = "0",
            },
        };
        return CommitAsync(readState, pending, removes.Count, cancellationToken);
    }

    /// <summary>A commit holding only actions such as <c>txn</c> and commitInfo, no data (records progress of an idle stream).</summary>
    public Task<CommitResult> CommitEmptyAsync(CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        WriterFeatures.Check(_state, Path, options.Operation, removesData: false);
        var pending = new PendingCommit { Options = options, IsBlindAppend = true };
        return CommitAsync(_state, pending, 0, cancellationToken);
    }

    /// <summary>
    /// Every row of a snapshot, as Arrow batches with the table's logical schema: deletion vectors applied, column
    /// mapping (name and id) resolved, partition values filled in, older files' narrower types widened and columns
    /// added after a file was written read as null. Change data files (<c>cdc</c>) are not part of a scan.
    /// </summary>
    /// <remarks>Batches are read from Parquet into native memory: dispose each one when done with it to release that memory early.</remarks>
    /// <exception cref="NotSupportedException">The table needs a reader feature this library lacks (the message names it).</exception>
    public async IAsyncEnumerable<RecordBatch> ScanAsync(DeltaSnapshot snapshot, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        CheckReadable(snapshot);
        await foreach (var batch in new FileScanner(_store, snapshot).ScanAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    private void CheckReadable(DeltaSnapshot snapshot)
    {
        if (snapshot.State?.Protocol is { } protocol)
        {
            ReaderFeatures.Check(protocol, Path);
        }
    }

    /// <summary>Reads one data file's live rows as batches with the table's schema.</summary>
    internal IAsyncEnumerable<RecordBatch> ReadFileAsync(DeltaSnapshot snapshot, AddFile file, CancellationToken ct) =>
        _scanners.GetValue(snapshot, s => new FileScanner(_store, s)).ReadFileAsync(file, ct);

    /// <summary>Commit history, newest first: version, timestamp, operation, parameters, metrics, and the whole commitInfo.</summary>
    public async Task<IReadOnlyList<CommitHistoryEntry>> HistoryAsync(int? limit, CancellationToken cancellationToken)
    {
        var files = await _store.ListAsync(LogReplay.LogFolder, cancellationToken).ConfigureAwait(false);
        var versions = files
            .Select(f => f.Path[LogReplay.LogFolder.Length..])
            .Where(n => n.Length == 25 && n.EndsWith(".json", StringComparison.Ordinal) && long.TryParse(n.AsSpan(0, 20), out _))
            .Select(n => long.Parse(n.AsSpan(0, 20), System.Globalization.CultureInfo.InvariantCulture))
            .OrderDescending()
            .Take(limit ?? int.MaxValue)
            .ToList();
        var result = new List<CommitHistoryEntry>(versions.Count);
        foreach (var v in versions)
        {
            var actions = await LogReplay.ReadCommitAsync(_store, v, cancellationToken).ConfigureAwait(false);
            var info = actions?.CommitInfo ?? [];
            DateTimeOffset? ts = info["timestamp"] is JsonValue t && t.TryGetValue<long>(out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
            result.Add(new CommitHistoryEntry(v, ts, info["operation"]?.GetValue<string>(), info["operationParameters"] as JsonObject, info["operationMetrics"] as JsonObject, info));
        }

        return result;
    }
}

/// <summary>A table at one version.</summary>
public sealed class DeltaSnapshot
{
    /// <summary>The version.</summary>
    public long Version { get; init; }

    /// <summary>The table's schema (from metaData.schemaString).</summary>
    public required StreamSchema Schema { get; init; }

    /// <summary>Partition columns.</summary>
    public required IReadOnlyList<string> PartitionColumns { get; init; }

    /// <summary>metaData.configuration.</summary>
    public required IReadOnlyDictionary<string, string> Configuration { get; init; }

    /// <summary>Live data files.</summary>
    public required IReadOnlyList<AddFile> Files { get; init; }

    /// <summary>The latest <c>txn</c> version per appId.</summary>
    public required IReadOnlyDictionary<string, long> TxnVersions { get; init; }

    /// <summary>Total rows (sum of numRecords; null when a file lacks stats).</summary>
    public long? RowCount { get; init; }

    internal LogState? State { get; init; }
}

/// <summary>An <c>add</c> action as the snapshot holds it.</summary>
public sealed record AddFile(string Path, IReadOnlyDictionary<string, string?> PartitionValues, long Size, long ModificationTime, bool DataChange, string? Stats)
{
    /// <summary>The file's deletion vector (rows deleted without rewriting it), if any.</summary>
    internal DeletionVectorDescriptor? DeletionVector { get; init; }
}

/// <summary>What goes into a commit beside the data.</summary>
/// <param name="Operation">commitInfo.operation, Spark's spelling: WRITE, MERGE, DELETE, ...</param>
/// <param name="OperationParameters">commitInfo.operationParameters.</param>
/// <param name="Txns">txn actions (appId, version) to commit atomically with the data.</param>
/// <param name="AppMetadata">Extra fields merged into commitInfo (e.g. the engine's checkpoint under "ingest").</param>
public sealed record CommitOptions(
    string Operation,
    IReadOnlyDictionary<string, string>? OperationParameters = null,
    IReadOnlyList<TxnAction>? Txns = null,
    JsonObject? AppMetadata = null);

/// <summary>A <c>txn</c> action.</summary>
public sealed record TxnAction(string AppId, long Version);

/// <summary>The outcome of a commit.</summary>
/// <param name="Version">The version committed.</param>
/// <param name="FilesAdded">Data files added.</param>
/// <param name="FilesRemoved">Data files removed.</param>
/// <param name="RowsWritten">Rows in the files added.</param>
public sealed record CommitResult(long Version, int FilesAdded, int FilesRemoved, long RowsWritten);

/// <summary>
/// Rows to merge by key. <see cref="Rows"/> has the table's schema and at most one row per key;
/// <see cref="IsDelete"/>[i] says row i deletes its key (only key columns need values) instead of upserting it.
/// When <see cref="VersionColumn"/> is set, a row changes an existing row only if its value in that column
/// is greater (ordinal string order, or numeric) than the existing row's: replays are harmless.
/// </summary>
public sealed record MergeRequest(RecordBatch Rows, bool[] IsDelete, IReadOnlyList<string> KeyColumns, string? VersionColumn);

/// <summary>One commit in the history.</summary>
public sealed record CommitHistoryEntry(long Version, DateTimeOffset? Timestamp, string? Operation, JsonObject? OperationParameters, JsonObject? OperationMetrics, JsonObject CommitInfo);
