using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Parquet;
using Ingest.Sdk.Types;

namespace Ingest.Delta;

/// <summary>Overwrite, SCD type 2 history and schema evolution.</summary>
public sealed partial class DeltaTable
{
    /// <summary>
    /// Replaces every row of the table with <paramref name="batches"/> in one commit (Spark's <c>WRITE</c> with
    /// <c>mode=Overwrite</c>: remove of every live file + add of the new ones). Readers see the old or the new table, never a mix.
    /// </summary>
    public async Task<CommitResult> OverwriteAsync(IReadOnlyList<RecordBatch> batches, CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batches);
        await using var overwrite = BeginOverwrite();
        foreach (var b in batches)
        {
            overwrite.Write(b);
        }

        return await overwrite.CommitAsync(options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts an overwrite whose rows are written to data files as they come (memory stays bounded) and that replaces the
    /// table only at <see cref="DeltaOverwrite.CommitAsync"/>. Disposing it without committing deletes the files written.
    /// </summary>
    public DeltaOverwrite BeginOverwrite()
    {
        WriterFeatures.Check(_state, Path, "overwrite", removesData: true, writesChangeData: true);
        return new DeltaOverwrite(this, _snapshot, NewWriter(_snapshot));
    }

    internal async Task<CommitResult> CommitOverwriteAsync(DeltaSnapshot written, TableWriter writer, CommitOptions options, CancellationToken ct)
    {
        // The files replaced are those live when the commit is made: a concurrent add is a conflict (its rows would survive).
        await RefreshAsync(ct).ConfigureAwait(false);
        var readState = _state;
        if (!_snapshot.Schema.Equals(written.Schema) || !_snapshot.PartitionColumns.SequenceEqual(written.PartitionColumns))
        {
            throw new DeltaConcurrencyException($"The schema of '{Path}' changed (version {_snapshot.Version}) while an overwrite was being written; retry it.");
        }

        WriterFeatures.Check(readState, Path, "overwrite", removesData: true, writesChangeData: true);
        var adds = await writer.FinishAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var live = _snapshot.Files;
        var removes = live.Select(f => RemoveOf(f, now)).ToList();
        var pending = new PendingCommit
        {
            Options = options,
            Adds = adds.ToList(),
            Removes = removes,
            ReadFiles = new HashSet<string>(live.Select(f => f.Path), StringComparer.Ordinal),
            ConflictsWithAdd = a => a.DataChange,
            RowsWritten = writer.RowsWritten,
            DefaultParameters = { ["mode"] = "Overwrite", ["partitionBy"] = PartitionByJson(_snapshot) },
            Metrics =
            {
                ["numFiles"] = Committer.Metric(adds.Count),
                ["numOutputRows"] = Committer.Metric(writer.RowsWritten),
                ["numOutputBytes"] = Committer.Metric(adds.Sum(a => a.Size)),
                ["numRemovedFiles"] = Committer.Metric(removes.Count),
                ["numRemovedBytes"] = Committer.Metric(removes.Sum(r => r.Size ?? 0)),
            },
        };
        return await CommitAsync(readState, pending, removes.Count, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies change events to an SCD type 2 table (<see cref="ScdColumns"/>): per key one current row. A change closes
    /// the key's current row (<c>_valid_to</c> = the change's <c>_valid_from</c>, <c>_is_current</c> false) and adds the new
    /// row; a delete closes it. Events at or below a position the table already holds for their key are skipped, so a
    /// replayed event never adds a second history row. One commit; files are rewritten only where a current row closes.
    /// </summary>
    public async Task<CommitResult> MergeHistoryAsync(HistoryRequest request, CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        var readState = _state;
        var snapshot = _snapshot;
        var schema = snapshot.Schema;
        var source = request.Rows;
        CheckKeyedSource(readState, snapshot, source, request.IsDelete, request.KeyColumns, "history source", "history merge", nameof(request));

        int Ordinal(string name, string what) => schema.IndexOf(name) is var i and >= 0 ? i
            : throw new ArgumentException($"The table has no {what} column '{name}' ({schema}); an SCD type 2 table needs {ScdColumns.ValidFrom}, {ScdColumns.ValidTo} and {ScdColumns.IsCurrent}.", nameof(request));
        var keyOrdinals = request.KeyColumns.Select(k => Ordinal(k, "key")).ToArray();
        var versionOrdinal = Ordinal(request.VersionColumn, "version");
        var fromOrdinal = Ordinal(ScdColumns.ValidFrom, "validity");
        var toOrdinal = Ordinal(ScdColumns.ValidTo, "validity");
        var currentOrdinal = Ordinal(ScdColumns.IsCurrent, "validity");

        var index = new KeyIndex(keyOrdinals.Select(source.Column).ToArray(), source.Length, request.KeyColumns, allowDuplicates: true);
        var isTruncate = request.IsTruncate ?? new bool[source.Length];
        if (isTruncate.Length != source.Length)
        {
            throw new ArgumentException($"IsTruncate has {isTruncate.Length} entries; the history source has {source.Length} rows.", nameof(request));
        }

        // Truncates (in source order) close every row current before them; they belong to no key.
        var truncates = Enumerable.Range(0, source.Length).Where(j => isTruncate[j]).ToList();
        var groups = new Dictionary<int, List<int>>();
        for (var j = 0; j < source.Length; j++)
        {
            if (isTruncate[j])
            {
                continue;
            }

            var g = index.Group[j];
            if (!groups.TryGetValue(g, out var list))
            {
                groups[g] = list = [];
            }

            list.Add(j);
        }

        var pruning = new FilePruning(source, schema, request.KeyColumns, snapshot.PartitionColumns);
        var sourceVersions = source.Column(versionOrdinal);
        var seen = new bool[source.Length];
        var hasCurrent = new HashSet<int>();
        var filesWithCurrent = new Dictionary<string, AddFile>(StringComparer.Ordinal);
        var readFiles = new HashSet<string>(StringComparer.Ordinal);

        // The first truncate that closes a table row: the first one after the row's version (a replayed truncate closes
        // nothing written after it).
        int TruncateFor(IArrowArray versions, int r)
        {
            foreach (var t in truncates)
            {
                if (KeyIndex.Compare(sourceVersions, t, versions, r) > 0)
                {
                    return t;
                }
            }

            return -1;
        }

        // Pass 1: which events the table already holds (replays), and which files hold a current row that closes.
        foreach (var file in snapshot.Files)
        {
            if (truncates.Count == 0 && !pruning.MayContainAnyKey(file))
            {
                continue;
            }

            readFiles.Add(file.Path);
            await foreach (var batch in ReadFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false))
            {
                using (batch)
                {
                    var targetKeys = keyOrdinals.Select(batch.Column).ToArray();
                    var versions = batch.Column(versionOrdinal);
                    var current = (BooleanArray)batch.Column(currentOrdinal);
                    for (var r = 0; r < batch.Length; r++)
                    {
                        if (truncates.Count > 0 && current.GetValue(r) == true && TruncateFor(versions, r) >= 0)
                        {
                            filesWithCurrent[file.Path] = file;
                        }

                        var g = index.Find(targetKeys, r);
                        if (g < 0 || !groups.ContainsKey(g))
                        {
                            continue;
                        }

                        foreach (var j in groups[g])
                        {
                            if (KeyIndex.Compare(sourceVersions, j, versions, r) <= 0)
                            {
                                seen[j] = true;
                            }
                        }

                        if (current.GetValue(r) == true)
                        {
                            hasCurrent.Add(g);
                            filesWithCurrent[file.Path] = file;
                        }
                    }
                }
            }
        }

        // Per key, the events to apply, in order; the close time of its current row; the rows to add.
        var closeAt = new Dictionary<int, int>();
        var newRows = new List<int>();
        var newTo = new List<long?>();
        var newCurrent = new List<bool>();
        var fromColumn = (TimestampArray)source.Column(fromOrdinal);
        long? From(int j) => fromColumn.IsNull(j) ? null : fromColumn.Values[j];
        long skipped = 0, closedByDelete = 0;
        foreach (var (g, rows) in groups)
        {
            var applied = rows.Where(j => !seen[j]).ToList();
            skipped += rows.Count - applied.Count;
            if (applied.Count == 0)
            {
                continue;
            }

            if (hasCurrent.Contains(g))
            {
                closeAt[g] = applied[0];
            }

            for (var i = 0; i < applied.Count; i++)
            {
                var j = applied[i];
                if (request.IsDelete[j])
                {
                    continue;
                }

                // Closed by the key's next event or the next truncate, whichever comes first.
                var next = i + 1 < applied.Count ? applied[i + 1] : int.MaxValue;
                var truncate = truncates.FirstOrDefault(t => t > j, int.MaxValue);
                var closer = Math.Min(next, truncate);
                newRows.Add(j);
                newTo.Add(closer == int.MaxValue ? null : From(closer));
                newCurrent.Add(closer == int.MaxValue);
            }
        }

        var removes = new List<RemoveAction>();
        long closed = 0, copied = 0, bytesRemoved = 0;
        using var writer = NewWriter(snapshot);
        try
        {
            // Pass 2: rewrite the files holding a current row that closes.
            foreach (var file in filesWithCurrent.Values)
            {
                var rewrite = new List<RecordBatch>();
                var changed = false;
                try
                {
                    await foreach (var batch in ReadFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false))
                    {
                        using (batch)
                        {
                            var targetKeys = keyOrdinals.Select(batch.Column).ToArray();
                            var versions = batch.Column(versionOrdinal);
                            var current = (BooleanArray)batch.Column(currentOrdinal);
                            var to = (TimestampArray)batch.Column(toOrdinal);
                            var toValues = new long?[batch.Length];
                            var currentValues = new bool[batch.Length];
                            for (var r = 0; r < batch.Length; r++)
                            {
                                toValues[r] = to.IsNull(r) ? null : to.Values[r];
                                currentValues[r] = current.GetValue(r) == true;
                                if (!currentValues[r])
                                {
                                    continue;
                                }

                                var g = index.Find(targetKeys, r);
                                var closer = g >= 0 && closeAt.TryGetValue(g, out var first) ? first : int.MaxValue;
                                if (truncates.Count > 0 && TruncateFor(versions, r) is var t and >= 0)
                                {
                                    closer = Math.Min(closer, t);
                                }

                                if (closer != int.MaxValue)
                                {
                                    toValues[r] = From(closer);
                                    currentValues[r] = false;
                                    changed = true;
                                    closed++;
                                    closedByDelete += request.IsDelete[closer] || isTruncate[closer] ? 1 : 0;
                                }
                            }

                            var all = new int[batch.Length];
                            for (var r = 0; r < all.Length; r++)
                            {
                                all[r] = r;
                            }

                            // A copy: the read batch's buffers belong to the file reader.
                            var copy = ArrowKernels.Take(batch, all);
                            rewrite.Add(WithValidity(copy, toOrdinal, currentOrdinal, toValues, currentValues, (Apache.Arrow.Types.TimestampType)to.Data.DataType));
                        }
                    }

                    if (!changed)
                    {
                        continue;
                    }

                    foreach (var b in rewrite)
                    {
                        copied += b.Length;
                        writer.Write(b);
                    }
                }
                finally
                {
                    foreach (var b in rewrite)
                    {
                        b.Dispose();
                    }
                }

                bytesRemoved += file.Size;
                removes.Add(RemoveOf(file, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            }

            if (newRows.Count > 0)
            {
                var taken = ArrowKernels.Take(source, CollectionsMarshal.AsSpan(newRows));
                var type = (Apache.Arrow.Types.TimestampType)source.Column(toOrdinal).Data.DataType;
                writer.Write(WithValidity(taken, toOrdinal, currentOrdinal, newTo.ToArray(), newCurrent.ToArray(), type));
            }

            var pending = await MergeCommitAsync(options, writer, removes, readFiles, pruning.MayContainAnyKey, MergePredicate(request.KeyColumns).Append($"target.{ScdColumns.IsCurrent}"),
                new MergeMetrics(source.Length, newRows.Count, closed - closedByDelete, closedByDelete, copied - closed, skipped, bytesRemoved), cancellationToken).ConfigureAwait(false);
            return await CommitAsync(readState, pending, removes.Count, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private static RecordBatch WithValidity(RecordBatch batch, int toOrdinal, int currentOrdinal, long?[] to, bool[] current, Apache.Arrow.Types.TimestampType type)
    {
        var toValues = new ArrowBuffer.Builder<long>(to.Length);
        var toValid = new ArrowBuffer.BitmapBuilder(to.Length);
        var nulls = 0;
        var flags = new ArrowBuffer.BitmapBuilder(current.Length);
        for (var i = 0; i < to.Length; i++)
        {
            toValues.Append(to[i] ?? 0);
            toValid.Append(to[i] is not null);
            nulls += to[i] is null ? 1 : 0;
            flags.Append(current[i]);
        }

        var columns = new IArrowArray[batch.ColumnCount];
        for (var c = 0; c < columns.Length; c++)
        {
            columns[c] = batch.Column(c);
        }

        columns[toOrdinal] = new TimestampArray(type, toValues.Build(), nulls == 0 ? ArrowBuffer.Empty : toValid.Build(), to.Length, nulls, 0);
        columns[currentOrdinal] = new BooleanArray(flags.Build(), ArrowBuffer.Empty, current.Length, 0, 0);
        return new RecordBatch(batch.Schema, columns, batch.Length);
    }

    /// <summary>
    /// Commits a new schema (a new metaData replacing the old, PROTOCOL.md "Change Metadata"): every existing column stays
    /// (same name, same or wider type), new columns are added as nullable. A wider type needs the <c>typeWidening</c>
    /// table feature: the table must list it, or enable it with <c>delta.enableTypeWidening=true</c> (then the protocol is
    /// raised to 3/7 with the feature in both lists in the same commit). Each widening is recorded in the field's
    /// <c>delta.typeChanges</c> metadata. A schema that is already the table's commits nothing and returns null.
    /// </summary>
    /// <exception cref="InvalidOperationException">A column would be dropped, narrowed, changed to an unrelated type, or widened without typeWidening.</exception>
    public async Task<CommitResult?> EvolveSchemaAsync(StreamSchema schema, CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(options);
        var readState = _state;
        var snapshot = _snapshot;
        WriterFeatures.Check(readState, Path, "change the schema of", removesData: false);
        var diff = DeltaSchema.Compare(snapshot.Schema, schema);
        if (diff.Incompatible.Count > 0)
        {
            var (t, i) = diff.Incompatible[0];
            throw new InvalidOperationException($"Column '{t.Name}' of '{Path}' has type {t.Type.DisplayName}; the new schema has {i.Type.DisplayName}, which it cannot widen to.");
        }

        if (diff.Added.Count == 0 && diff.Widened.Count == 0 && diff.StructsGrown.Count == 0)
        {
            return null;
        }

        var meta = readState.Metadata!;
        var protocol = readState.Protocol!;
        ProtocolAction? newProtocol = null;
        if (diff.Widened.Count > 0 && !HasWriterFeature(protocol, "typeWidening") && !HasWriterFeature(protocol, "typeWidening-preview"))
        {
            if (!WriterFeatures.IsTrue(meta.Configuration, "delta.enableTypeWidening"))
            {
                var (t, i) = diff.Widened[0];
                throw new InvalidOperationException(
                    $"Column '{t.Name}' of '{Path}' would widen from {t.Type.DisplayName} to {i.Type.DisplayName}, which needs the typeWidening table feature "
                    + $"(protocol 3/7, readers from Delta 3.2/Spark 4.0); the table has protocol {protocol.MinReaderVersion}/{protocol.MinWriterVersion} without it. "
                    + "Set delta.enableTypeWidening=true on the table to allow it.");
            }

            newProtocol = WithFeature(protocol, "typeWidening");
        }

        var root = JsonNode.Parse(meta.SchemaString)!.AsObject();
        var fields = root["fields"]!.AsArray();
        foreach (var (t, i) in diff.Widened)
        {
            var node = fields.First(f => string.Equals(f!["name"]!.GetValue<string>(), t.Name, StringComparison.OrdinalIgnoreCase))!.AsObject();
            node["type"] = i.Type.ToDeltaJson();
            var md = node["metadata"] as JsonObject ?? [];
            node["metadata"] = md;
            var changes = md["delta.typeChanges"] as JsonArray ?? [];
            md["delta.typeChanges"] = changes;
            changes.Add(new JsonObject { ["fromType"] = t.Type.ToDeltaJson(), ["toType"] = i.Type.ToDeltaJson() });
        }

        foreach (var (t, i) in diff.StructsGrown)
        {
            var node = fields.First(f => string.Equals(f!["name"]!.GetValue<string>(), t.Name, StringComparison.OrdinalIgnoreCase))!.AsObject();
            DeltaSchema.GrowStructJson(node["type"]!.AsObject(), (StructType)i.Type);
        }

        foreach (var a in diff.Added)
        {
            fields.Add((a with { Nullable = true }).ToDeltaJson());
        }

        var newMeta = meta with { SchemaString = root.ToJsonString() };
        var pending = new PendingCommit
        {
            Options = options,
            Protocol = newProtocol,
            Metadata = newMeta,
            IsBlindAppend = true,
            DefaultParameters =
            {
                ["columns"] = new JsonArray(diff.Added.Select(a => (JsonNode)a.ToDeltaJson()).Concat(diff.Widened.Concat(diff.StructsGrown).Select(w => (JsonNode)w.Incoming.ToDeltaJson())).ToArray()).ToJsonString(),
            },
        };
        return await CommitAsync(readState, pending, 0, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Table properties this library can set: they need no table feature it does not manage.</summary>
    private static readonly IReadOnlySet<string> RefusedProperties = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "delta.enableChangeDataFeed", "delta.columnMapping.mode", "delta.enableRowTracking",
        "delta.enableInCommitTimestamps", "delta.checkpointPolicy", "delta.enableIcebergCompatV1", "delta.enableIcebergCompatV2",
        "delta.columnMapping.maxColumnId",
    };

    /// <summary>
    /// Sets (value) or removes (null) table properties in one commit (Spark's <c>SET TBLPROPERTIES</c>): a new metaData with the
    /// configuration changed. <c>delta.enableTypeWidening=true</c> and <c>delta.enableDeletionVectors=true</c> also raise the
    /// protocol to 3/7 with the feature (typeWidening, deletionVectors) in both feature lists, the features the old protocol
    /// version implied listed explicitly (PROTOCOL.md "Table Features"); merges then mark rows deleted with deletion vectors.
    /// Properties that turn on a feature this library does not write (change data feed, column mapping, row tracking,
    /// in-commit timestamps, v2 checkpoints) are refused. Returns null when nothing changes.
    /// </summary>
    /// <exception cref="ArgumentException">A refused property, or a <c>delta.</c> property with an invalid value.</exception>
    public async Task<CommitResult?> SetPropertiesAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var readState = _state;
        WriterFeatures.Check(readState, Path, "set properties of", removesData: false);
        var meta = readState.Metadata!;
        var config = new Dictionary<string, string>(meta.Configuration, StringComparer.Ordinal);
        foreach (var (key, value) in changes)
        {
            if (RefusedProperties.Contains(key))
            {
                throw new ArgumentException($"Property '{key}' would turn on a table feature this library does not write; set it with Spark instead.", nameof(changes));
            }

            if (value is null)
            {
                config.Remove(key);
                continue;
            }

            var valid = key switch
            {
                "delta.appendOnly" or "delta.enableTypeWidening" or "delta.enableDeletionVectors" => value is "true" or "false",
                "delta.checkpointInterval" or "delta.dataSkippingNumIndexedCols" => int.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= (key == "delta.checkpointInterval" ? 1 : -1),
                "delta.targetFileSize" => long.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var size) && size > 0,
                "delta.deletedFileRetentionDuration" or "delta.logRetentionDuration" => value.StartsWith("interval ", StringComparison.Ordinal),
                _ => true,
            };
            if (!valid)
            {
                throw new ArgumentException($"Property '{key}' cannot be '{value}'.", nameof(changes));
            }

            config[key] = value;
        }

        if (config.Count == meta.Configuration.Count && config.All(kv => meta.Configuration.TryGetValue(kv.Key, out var v) && v == kv.Value))
        {
            return null;
        }

        var protocol = readState.Protocol!;
        ProtocolAction? newProtocol = null;
        if (WriterFeatures.IsTrue(config, "delta.enableTypeWidening") && !HasWriterFeature(protocol, "typeWidening") && !HasWriterFeature(protocol, "typeWidening-preview"))
        {
            newProtocol = WithFeature(protocol, "typeWidening");
        }

        if (WriterFeatures.IsTrue(config, "delta.enableDeletionVectors") && !HasWriterFeature(protocol, "deletionVectors"))
        {
            newProtocol = WithFeature(newProtocol ?? protocol, "deletionVectors");
        }

        if (newProtocol?.WriterFeatures?.FirstOrDefault(f => !WriterFeatures.CanWriteWith(f)) is { } unwritable)
        {
            throw new ArgumentException(
                $"Raising the protocol of '{Path}' to 3/7 would list writer feature '{unwritable}' (implied by its writer version {protocol.MinWriterVersion}), "
                + "which this library does not write; set the property with Spark instead.", nameof(changes));
        }

        var pending = new PendingCommit
        {
            Options = new CommitOptions("SET TBLPROPERTIES"),
            Protocol = newProtocol,
            Metadata = meta with { Configuration = config },
            IsBlindAppend = true,
            DefaultParameters =
            {
                ["properties"] = new JsonObject(changes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))).ToJsonString(),
            },
        };
        return await CommitAsync(readState, pending, 0, cancellationToken).ConfigureAwait(false);
    }

    private static bool HasWriterFeature(ProtocolAction p, string feature) => p.MinWriterVersion == 7 && (p.WriterFeatures?.Contains(feature) ?? false);

    /// <summary>The protocol with <paramref name="feature"/> (a reader+writer feature) added: 3/7, legacy features listed explicitly.</summary>
    private static ProtocolAction WithFeature(ProtocolAction p, string feature)
    {
        var writer = new List<string>();
        var reader = new List<string>();
        if (p.MinWriterVersion == 7)
        {
            writer.AddRange(p.WriterFeatures ?? []);
        }
        else
        {
            if (p.MinWriterVersion >= 2)
            {
                writer.AddRange(["appendOnly", "invariants"]);
            }

            if (p.MinWriterVersion >= 3)
            {
                writer.Add("checkConstraints");
            }

            if (p.MinWriterVersion >= 4)
            {
                writer.AddRange(["changeDataFeed", "generatedColumns"]);
            }

            if (p.MinWriterVersion >= 5)
            {
                writer.Add("columnMapping");
            }

            if (p.MinWriterVersion >= 6)
            {
                writer.Add("identityColumns");
            }
        }

        if (p.MinReaderVersion == 3)
        {
            reader.AddRange(p.ReaderFeatures ?? []);
        }
        else if (p.MinReaderVersion == 2)
        {
            reader.Add("columnMapping");
        }

        if (!writer.Contains(feature))
        {
            writer.Add(feature);
        }

        if (!reader.Contains(feature))
        {
            reader.Add(feature);
        }

        return new ProtocolAction(3, 7, reader, writer);
    }
}

/// <summary>An overwrite being written (see <see cref="DeltaTable.BeginOverwrite"/>).</summary>
public sealed class DeltaOverwrite : IAsyncDisposable
{
    private readonly DeltaTable _table;
    private readonly DeltaSnapshot _snapshot;
    private readonly TableWriter _writer;
    private bool _done;

    internal DeltaOverwrite(DeltaTable table, DeltaSnapshot snapshot, TableWriter writer)
    {
        _table = table;
        _snapshot = snapshot;
        _writer = writer;
    }

    /// <summary>Rows written so far.</summary>
    public long RowsWritten => _writer.RowsWritten;

    /// <summary>Writes rows with the table's schema (the batch stays owned by the caller).</summary>
    public void Write(RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_done, this);
        DeltaTable.CheckBatchSchema(batch.Schema, _snapshot, "overwrite batch");
        _writer.Write(batch);
    }

    /// <summary>Replaces the table with the rows written, in one commit.</summary>
    public async Task<CommitResult> CommitAsync(CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_done, this);
        try
        {
            var result = await _table.CommitOverwriteAsync(_snapshot, _writer, options, cancellationToken).ConfigureAwait(false);
            _done = true;
            _writer.Dispose();
            return result;
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Deletes the files written unless the overwrite was committed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_done)
        {
            return;
        }

        _done = true;
        await _writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>The columns of an SCD type 2 table beside the data.</summary>
public static class ScdColumns
{
    /// <summary>When the row's values became current (the change's source timestamp). timestamp, not null.</summary>
    public const string ValidFrom = "_valid_from";

    /// <summary>When they stopped being current (null while current). timestamp.</summary>
    public const string ValidTo = "_valid_to";

    /// <summary>Whether the row is its key's current row (at most one per key). boolean, not null.</summary>
    public const string IsCurrent = "_is_current";
}

/// <summary>
/// Change events for <see cref="DeltaTable.MergeHistoryAsync"/>. <see cref="Rows"/> has the table's schema and holds the
/// events in source order, any number per key; each row's <see cref="ScdColumns.ValidFrom"/> is set (the values of
/// <see cref="ScdColumns.ValidTo"/> and <see cref="ScdColumns.IsCurrent"/> are ignored). <see cref="IsDelete"/>[i] says
/// event i deletes its key. <see cref="VersionColumn"/> orders events of a key (the source position): an event at or below
/// a version the table holds for its key is a replay and is skipped. A truncate closes rows only below its own version, so
/// a replayed truncate is harmless too.
/// </summary>
public sealed record HistoryRequest(RecordBatch Rows, bool[] IsDelete, IReadOnlyList<string> KeyColumns, string VersionColumn)
{
    /// <summary>
    /// Per row, whether it is a truncate (a source TRUNCATE, keys unset): it closes, at its <see cref="ScdColumns.ValidFrom"/>,
    /// every row current before it (table rows whose version is lower, and earlier rows of the batch). Null: none.
    /// </summary>
    public bool[]? IsTruncate { get; init; }
}
