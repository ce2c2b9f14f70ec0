using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Parquet;
using Ingest.Delta.Read;

namespace Ingest.Delta;

/// <summary>Merge with deletion vectors (PROTOCOL.md "Deletion Vectors"): changed rows are marked deleted in place instead of copying their files.</summary>
public sealed partial class DeltaTable
{
    /// <summary>
    /// Whether merges mark rows deleted with DVs: the table sets <c>delta.enableDeletionVectors=true</c> and its protocol
    /// lists the <c>deletionVectors</c> writer feature (DVs without the feature would make the table unreadable to Spark).
    /// </summary>
    internal static bool WritesDeletionVectors(LogState state) =>
        state.Metadata is { } meta && WriterFeatures.IsTrue(meta.Configuration, "delta.enableDeletionVectors")
        && state.Protocol is { MinWriterVersion: 7, MinReaderVersion: 3 } p && p.WriterFeatures?.Contains("deletionVectors") == true;

    /// <summary>
    /// The merge of <see cref="MergeAsync"/> for tables with deletion vectors: candidate files (pruned by key stats) are
    /// read for their key (and version) columns only; the row positions of matched rows go into each file's DV (united
    /// with the DV it had), the file is re-added with the new DV and <c>tightBounds:false</c>, and updated and inserted
    /// rows are written to new files. A file whose rows are all deleted is removed. One DV file per commit.
    /// </summary>
    private async Task<CommitResult> MergeWithDeletionVectorsAsync(MergeRequest request, CommitOptions options, LogState readState, DeltaSnapshot snapshot, int[] keyOrdinals, int versionOrdinal, FilePruning pruning, CancellationToken ct)
    {
        var source = request.Rows;
        var sourceKeys = keyOrdinals.Select(source.Column).ToArray();
        var index = new KeyIndex(sourceKeys, source.Length, request.KeyColumns);
        using var cdc = NewChangeDataWriter(snapshot);

        // Key (and version) columns only, unless the change feed needs the old rows whole.
        bool[]? wanted = null;
        if (cdc is null)
        {
            wanted = new bool[snapshot.Schema.Count];
            foreach (var k in keyOrdinals)
            {
                wanted[k] = true;
            }

            if (versionOrdinal >= 0)
            {
                wanted[versionOrdinal] = true;
            }
        }

        var scanner = _scanners.GetValue(snapshot, s => new FileScanner(_store, s));
        var matched = new bool[source.Length];
        var writeSource = new bool[source.Length];
        long updated = 0, deleted = 0, dvsAdded = 0, dvsUpdated = 0, filesRemoved = 0, bytesRemoved = 0;
        var removes = new List<RemoveAction>();
        var dvAdds = new List<AddFile>();
        var readFiles = new HashSet<string>(StringComparer.Ordinal);
        var dvs = new DeletionVectorWriter();
        var dvWritten = false;
        using var writer = NewWriter(snapshot);
        try
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var file in snapshot.Files)
            {
                if (!pruning.MayContainAnyKey(file))
                {
                    continue;
                }

                readFiles.Add(file.Path);
                var existing = file.DeletionVector is { } dv ? await DeletionVectors.LoadAsync(_store, dv, file.Path, ct).ConfigureAwait(false) : [];
                var hits = new List<long>();
                long physical = 0;
                var nextExisting = 0;
                await foreach (var batch in scanner.ReadFileAsync(file, wanted, ct).ConfigureAwait(false))
                {
                    using (batch)
                    {
                        var (updatedRows, deletedRows) = (new List<int>(), new List<int>());
                        var targetKeys = keyOrdinals.Select(batch.Column).ToArray();
                        for (var r = 0; r < batch.Length; r++)
                        {
                            // The scan skips rows the file's DV deletes already: live row r is the next physical row not in it.
                            while (nextExisting < existing.Length && existing[nextExisting] == physical)
                            {
                                nextExisting++;
                                physical++;
                            }

                            var position = physical++;
                            var j = index.Find(targetKeys, r);
                            if (j < 0)
                            {
                                continue;
                            }

                            matched[j] = true;
                            if (versionOrdinal >= 0 && KeyIndex.Compare(source.Column(versionOrdinal), j, batch.Column(versionOrdinal), r) <= 0)
                            {
                                continue;
                            }

                            hits.Add(position);
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

                        WriteTargetChanges(cdc, batch, updatedRows, deletedRows);
                    }
                }

                if (hits.Count == 0)
                {
                    continue;
                }

                var rows = Union(existing, hits);
                var physicalRows = physical + (existing.Length - nextExisting);
                removes.Add(RemoveOf(file, now));
                if (rows.Length >= physicalRows)
                {
                    // Every row is gone: drop the file rather than keep an all-deleted one.
                    filesRemoved++;
                    bytesRemoved += file.Size;
                    continue;
                }

                var descriptor = dvs.Add(rows);
                if (file.DeletionVector is null)
                {
                    dvsAdded++;
                }
                else
                {
                    dvsUpdated++;
                }

                dvAdds.Add(file with { DataChange = true, Stats = WithTightBounds(file.Stats, false, physicalRows), DeletionVector = descriptor });
            }

            var fromSource = new List<int>();
            long inserted = 0;
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

            if (!dvs.IsEmpty)
            {
                dvWritten = true;
                await dvs.WriteAsync(_store, ct).ConfigureAwait(false);
            }

            var pending = await MergeCommitAsync(options, writer, removes, readFiles, pruning.MayContainAnyKey, MergePredicate(request.KeyColumns),
                new MergeMetrics(source.Length, inserted, updated, deleted, 0, null, bytesRemoved), ct).ConfigureAwait(false);
            for (var i = 0; i < pending.Adds.Count; i++)
            {
                pending.Adds[i] = pending.Adds[i] with { Stats = WithTightBounds(pending.Adds[i].Stats, true, null) };
            }

            pending.Adds.AddRange(dvAdds);
            await AddChangeFilesAsync(pending, cdc, ct).ConfigureAwait(false);
            pending.Metrics["numTargetFilesRemoved"] = Committer.Metric(filesRemoved);
            pending.Metrics["numTargetDeletionVectorsAdded"] = Committer.Metric(dvsAdded);
            pending.Metrics["numTargetDeletionVectorsUpdated"] = Committer.Metric(dvsUpdated);
            pending.Metrics["numTargetDeletionVectorsRemoved"] = Committer.Metric(removes.Count(r => r.DeletionVector is not null) - dvsUpdated);
            return await CommitAsync(readState, pending, (int)filesRemoved, ct).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            await AbortChangeDataAsync(cdc).ConfigureAwait(false);
            if (dvWritten)
            {
                try
                {
                    await _store.DeleteAsync(dvs.RelativePath, CancellationToken.None).ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // An orphan DV file is harmless (VACUUM removes it).
                }
            }

            throw;
        }
    }

    /// <summary>Both ascending position lists as one ascending, distinct array.</summary>
    private static long[] Union(long[] a, List<long> b)
    {
        b.Sort();
        var result = new long[a.Length + b.Count];
        int i = 0, j = 0, n = 0;
        while (i < a.Length || j < b.Count)
        {
            var next = j >= b.Count || (i < a.Length && a[i] <= b[j]) ? a[i++] : b[j++];
            if (n == 0 || result[n - 1] != next)
            {
                result[n++] = next;
            }
        }

        return n == result.Length ? result : result[..n];
    }

    /// <summary>
    /// The stats with <c>tightBounds</c> (PROTOCOL.md "Per-file Statistics"): true for files written whole, false once a DV
    /// hides rows (min/max then bound a superset). <c>numRecords</c> stays the physical row count, which a DV requires.
    /// </summary>
    private static string? WithTightBounds(string? stats, bool tight, long? physicalRows)
    {
        if (stats is null)
        {
            return physicalRows is { } n ? new JsonObject { ["numRecords"] = n, ["tightBounds"] = tight }.ToJsonString() : null;
        }

        if (JsonNode.Parse(stats) is not JsonObject o)
        {
            return stats;
        }

        if (physicalRows is { } rows && o["numRecords"] is null)
        {
            o["numRecords"] = rows;
        }

        o["tightBounds"] = tight;
        return o.ToJsonString();
    }
}
