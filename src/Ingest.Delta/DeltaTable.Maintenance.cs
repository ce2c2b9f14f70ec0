using System.Globalization;
using System.Text.Json.Nodes;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Read;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;

namespace Ingest.Delta;

/// <summary>OPTIMIZE, VACUUM and DESCRIBE.</summary>
public sealed partial class DeltaTable
{
    /// <summary>The target size of files OPTIMIZE writes when neither the call nor <c>delta.targetFileSize</c> sets one: 128 MiB.</summary>
    public const long DefaultTargetFileSize = 128L * 1024 * 1024;

    /// <summary>
    /// Bin-packs small files (smaller than the target size) of each partition into files of about the target size, in one
    /// commit of <c>dataChange=false</c> adds and removes (operation OPTIMIZE, Spark's metrics). Files with a deletion
    /// vector are rewritten without their deleted rows even when alone. Returns null when nothing needs compacting.
    /// </summary>
    public async Task<CommitResult?> OptimizeAsync(long? targetFileSize, CancellationToken cancellationToken)
    {
        var readState = _state;
        var snapshot = _snapshot;
        WriterFeatures.Check(readState, Path, "optimize", removesData: false);
        var target = targetFileSize
            ?? (snapshot.Configuration.TryGetValue("delta.targetFileSize", out var t) && long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed > 0 ? parsed : DefaultTargetFileSize);
        if (target <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(targetFileSize), targetFileSize, "The target file size must be positive.");
        }

        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var bins = new List<List<AddFile>>();
        var considered = 0;
        foreach (var partition in snapshot.Files.GroupBy(f => PartitionKey(f, snapshot.PartitionColumns), StringComparer.Ordinal))
        {
            var small = partition.Where(f => f.Size < target || f.DeletionVector is not null).OrderBy(f => f.Size).ThenBy(f => f.Path, StringComparer.Ordinal).ToList();
            considered += partition.Count();
            var bin = new List<AddFile>();
            long binSize = 0;
            foreach (var f in small)
            {
                if (bin.Count > 0 && binSize + f.Size > target)
                {
                    bins.Add(bin);
                    bin = [];
                    binSize = 0;
                }

                bin.Add(f);
                binSize += f.Size;
            }

            if (bin.Count > 0)
            {
                bins.Add(bin);
            }
        }

        // A lone file gains nothing from a rewrite, unless dropping its deleted rows.
        bins.RemoveAll(b => b.Count == 1 && b[0].DeletionVector is null);
        if (bins.Count == 0)
        {
            return null;
        }

        using var writer = NewWriter(snapshot);
        try
        {
            var removes = new List<RemoveAction>();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var dvsRemoved = 0;
            foreach (var bin in bins)
            {
                foreach (var file in bin)
                {
                    await foreach (var batch in ReadFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false))
                    {
                        using (batch)
                        {
                            var all = new int[batch.Length];
                            for (var i = 0; i < all.Length; i++)
                            {
                                all[i] = i;
                            }

                            // A copy: the read batch's buffers belong to the file reader.
                            using var copy = Parquet.ArrowKernels.Take(batch, all);
                            writer.Write(copy);
                        }
                    }

                    dvsRemoved += file.DeletionVector is null ? 0 : 1;
                    removes.Add(new RemoveAction(file.Path, now, false, true, file.PartitionValues, file.Size) { DeletionVector = file.DeletionVector });
                }

                // One bin, one file (per partition: a bin never spans two).
                writer.CloseFiles();
            }

            var adds = (await writer.FinishAsync(cancellationToken).ConfigureAwait(false)).Select(a => a with { DataChange = false }).ToList();
            var sizes = adds.Select(a => a.Size).Order().ToList();
            long Percentile(double p) => sizes.Count == 0 ? 0 : sizes[(int)Math.Min(sizes.Count - 1, Math.Floor(p * sizes.Count))];
            var pending = new PendingCommit
            {
                Options = new CommitOptions("OPTIMIZE"),
                Adds = adds,
                Removes = removes,
                ReadFiles = new HashSet<string>(removes.Select(r => r.Path), StringComparer.Ordinal),
                RowsWritten = writer.RowsWritten,
                DefaultParameters = { ["predicate"] = "[]", ["zOrderBy"] = "[]", ["auto"] = "false" },
                Metrics =
                {
                    ["numRemovedFiles"] = Committer.Metric(removes.Count),
                    ["numRemovedBytes"] = Committer.Metric(removes.Sum(r => r.Size ?? 0)),
                    ["p25FileSize"] = Committer.Metric(Percentile(0.25)),
                    ["numDeletionVectorsRemoved"] = Committer.Metric(dvsRemoved),
                    ["minFileSize"] = Committer.Metric(sizes.Count == 0 ? 0 : sizes[0]),
                    ["numAddedFiles"] = Committer.Metric(adds.Count),
                    ["maxFileSize"] = Committer.Metric(sizes.Count == 0 ? 0 : sizes[^1]),
                    ["p75FileSize"] = Committer.Metric(Percentile(0.75)),
                    ["p50FileSize"] = Committer.Metric(Percentile(0.5)),
                    ["numAddedBytes"] = Committer.Metric(adds.Sum(a => a.Size)),
                    ["numBatches"] = Committer.Metric(bins.Count),
                    ["totalConsideredFiles"] = Committer.Metric(considered),
                    ["totalFilesSkipped"] = Committer.Metric(considered - removes.Count),
                    ["startTimeMs"] = Committer.Metric(start),
                    ["endTimeMs"] = Committer.Metric(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
                },
            };
            return await CommitAsync(readState, pending, removes.Count, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private static string PartitionKey(AddFile f, IReadOnlyList<string> columns) =>
        string.Join('\u0001', columns.Select(c => f.PartitionValues.TryGetValue(c, out var v) ? v ?? "\u0000" : "\u0000"));

    /// <summary>
    /// Deletes files in the table's folder that no live file or unexpired tombstone references and that are older than
    /// the retention (<paramref name="retain"/>, else <c>delta.deletedFileRetentionDuration</c>, default 7 days). A retention
    /// below the table's (168 h by default) is refused unless <paramref name="force"/>: readers of older versions and
    /// concurrent writers may still need those files. With <paramref name="dryRun"/> nothing is deleted or committed.
    /// Otherwise the log gets Spark's <c>VACUUM START</c> and <c>VACUUM END</c> commits.
    /// </summary>
    public async Task<VacuumResult> VacuumAsync(TimeSpan? retain, bool dryRun, bool force, CancellationToken cancellationToken)
    {
        var state = _state;
        WriterFeatures.Check(state, Path, "vacuum", removesData: false);
        var tableRetention = state.TombstoneRetention();
        var retention = retain ?? tableRetention;
        if (retention < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(retain), retain, "The retention must not be negative.");
        }

        if (retention < tableRetention && !force)
        {
            throw new InvalidOperationException(
                $"A retention of {retention.TotalHours.ToString("0.##", CultureInfo.InvariantCulture)} h is below the table's delta.deletedFileRetentionDuration of "
                + $"{tableRetention.TotalHours.ToString("0.##", CultureInfo.InvariantCulture)} h: files that readers of older versions or running writers still need could be deleted, "
                + "and the table corrupted for them. Use a longer retention, or force it if no reader or writer can be running.");
        }

        var now = DateTimeOffset.UtcNow;
        var cutoff = now - retention;
        var keep = new HashSet<string>(StringComparer.Ordinal);
        void Keep(string path, DeletionVectorDescriptor? dv)
        {
            keep.Add(Partitioning.DecodePath(path));
            if (dv is { StorageType: "u" })
            {
                keep.Add(DeletionVectors.FilePath(dv));
            }
        }

        foreach (var f in state.Files.Values)
        {
            Keep(f.Path, f.DeletionVector);
        }

        foreach (var r in state.Tombstones.Values)
        {
            if (r.DeletionTimestamp is not { } ts || DateTimeOffset.FromUnixTimeMilliseconds(ts) > cutoff)
            {
                Keep(r.Path, r.DeletionVector);
            }
        }

        var candidates = new List<StoredFile>();
        foreach (var file in await _store.ListAllAsync(cancellationToken).ConfigureAwait(false))
        {
            // Spark leaves hidden files and folders alone (_delta_log, .crc files), but not change data files (never live:
            // deleted once past the retention) nor partition folders whose column starts with '_' (DeltaTableUtils.isHiddenDirectory).
            if (IsHidden(file.Path, state.Metadata?.PartitionColumns ?? []))
            {
                continue;
            }

            if (!keep.Contains(file.Path) && file.LastModified < cutoff)
            {
                candidates.Add(file);
            }
        }

        var result = new VacuumResult(candidates.Select(c => c.Path).ToList(), candidates.Sum(c => c.Size), dryRun, retention);
        if (dryRun)
        {
            return result;
        }

        var startParameters = new Dictionary<string, string>
        {
            ["retentionCheckEnabled"] = (!force).ToString().ToLowerInvariant(),
            ["specifiedRetentionMillis"] = ((long)retention.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            ["defaultRetentionMillis"] = ((long)tableRetention.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        };
        await CommitAsync(state, new PendingCommit
        {
            Options = new CommitOptions("VACUUM START", startParameters),
            IsBlindAppend = true,
            Metrics = { ["numFilesToDelete"] = Committer.Metric(candidates.Count), ["sizeOfDataToDelete"] = Committer.Metric(result.Bytes) },
        }, 0, cancellationToken).ConfigureAwait(false);
        foreach (var c in candidates)
        {
            await _store.DeleteAsync(c.Path, cancellationToken).ConfigureAwait(false);
        }

        var dirs = await _store.RemoveEmptyFoldersAsync(cancellationToken).ConfigureAwait(false);
        await CommitAsync(_state, new PendingCommit
        {
            Options = new CommitOptions("VACUUM END", new Dictionary<string, string> { ["status"] = "COMPLETED" }),
            IsBlindAppend = true,
            Metrics = { ["numDeletedFiles"] = Committer.Metric(candidates.Count), ["numVacuumedDirectories"] = Committer.Metric(dirs) },
        }, 0, cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static bool IsHidden(string path, IReadOnlyList<string> partitionColumns)
    {
        var segments = path.Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var seg = segments[i];
            if (!seg.StartsWith('_') && !seg.StartsWith('.'))
            {
                continue;
            }

            var visible = (i == 0 && seg == Operations.ChangeDataWriter.Folder.TrimEnd('/') && segments.Length > 1)
                || (i < segments.Length - 1 && partitionColumns.Any(c => seg.StartsWith(c + "=", StringComparison.Ordinal)));
            if (!visible)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What the latest snapshot is: schema, partitioning, protocol and features, files, bytes, rows.</summary>
    public DeltaTableDescription Describe()
    {
        var state = _state;
        var snapshot = _snapshot;
        var p = state.Protocol!;
        var meta = state.Metadata!;
        return new DeltaTableDescription(
            Path,
            snapshot.Version,
            meta.Id,
            meta.Name,
            meta.Description,
            meta.CreatedTime is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null,
            snapshot.Schema,
            snapshot.PartitionColumns,
            snapshot.Configuration,
            p.MinReaderVersion,
            p.MinWriterVersion,
            p.ReaderFeatures ?? [],
            p.WriterFeatures ?? [],
            snapshot.Files.Count,
            snapshot.Files.Sum(f => f.Size),
            snapshot.RowCount,
            snapshot.Files.Count(f => f.DeletionVector is not null),
            ReaderFeatures.FirstUnsupported(p),
            WriterFeatures.Refusal(state, removesData: true, writesChangeData: true));
    }
}

/// <summary>What VACUUM deleted (or would delete, in a dry run).</summary>
/// <param name="Files">Table-relative paths.</param>
/// <param name="Bytes">Their total size.</param>
/// <param name="DryRun">Nothing was deleted.</param>
/// <param name="Retention">The retention applied.</param>
public sealed record VacuumResult(IReadOnlyList<string> Files, long Bytes, bool DryRun, TimeSpan Retention);

/// <summary>A table's latest snapshot described.</summary>
/// <param name="Path">The table's root.</param>
/// <param name="Version">The version described.</param>
/// <param name="Id">metaData.id.</param>
/// <param name="Name">metaData.name.</param>
/// <param name="Description">metaData.description.</param>
/// <param name="CreatedTime">metaData.createdTime.</param>
/// <param name="Schema">The schema.</param>
/// <param name="PartitionColumns">Partition columns.</param>
/// <param name="Configuration">Table properties.</param>
/// <param name="MinReaderVersion">protocol.minReaderVersion.</param>
/// <param name="MinWriterVersion">protocol.minWriterVersion.</param>
/// <param name="ReaderFeatures">Explicit reader features (reader version 3).</param>
/// <param name="WriterFeatures">Explicit writer features (writer version 7).</param>
/// <param name="Files">Live data files.</param>
/// <param name="Bytes">Their total size.</param>
/// <param name="Rows">Live rows (null when a file lacks stats).</param>
/// <param name="FilesWithDeletionVectors">Files with a deletion vector.</param>
/// <param name="ReadRefusal">Why this library cannot read the table, or null.</param>
/// <param name="WriteRefusal">Why this library cannot write (change) the table, or null.</param>
public sealed record DeltaTableDescription(
    string Path,
    long Version,
    string Id,
    string? Name,
    string? Description,
    DateTimeOffset? CreatedTime,
    StreamSchema Schema,
    IReadOnlyList<string> PartitionColumns,
    IReadOnlyDictionary<string, string> Configuration,
    int MinReaderVersion,
    int MinWriterVersion,
    IReadOnlyList<string> ReaderFeatures,
    IReadOnlyList<string> WriterFeatures,
    int Files,
    long Bytes,
    long? Rows,
    int FilesWithDeletionVectors,
    string? ReadRefusal,
    string? WriteRefusal);
