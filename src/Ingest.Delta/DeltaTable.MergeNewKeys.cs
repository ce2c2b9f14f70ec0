using Ingest.Delta.Log;
using Ingest.Delta.Operations;

namespace Ingest.Delta;

/// <summary>The merge whose keys no live file can hold (a snapshot into a keyed table): it costs what an append costs.</summary>
public sealed partial class DeltaTable
{
    /// <summary>
    /// Whether <paramref name="request"/> only inserts: it deletes nothing and no live file may hold one of its keys. Files
    /// are checked against the source's key range first (one pass over the keys); only files overlapping it build the
    /// per-key pruning, which comes back for the general merge to reuse.
    /// </summary>
    private static (bool OnlyNewKeys, KeyRange? Range, FilePruning? Pruning) ProbeNewKeys(MergeRequest request, DeltaSnapshot snapshot)
    {
        if (Array.IndexOf(request.IsDelete, true) >= 0)
        {
            return (false, null, null);
        }

        var source = request.Rows;
        var range = new KeyRange(source, snapshot.Schema, request.KeyColumns, snapshot.PartitionColumns);
        FilePruning? pruning = null;
        foreach (var file in snapshot.Files)
        {
            if (!range.MayOverlap(file))
            {
                continue;
            }

            pruning ??= new FilePruning(source, snapshot.Schema, request.KeyColumns, snapshot.PartitionColumns);
            if (pruning.MayContainAnyKey(file))
            {
                return (false, range, pruning);
            }
        }

        return (true, range, pruning);
    }

    /// <summary>
    /// The merge of <see cref="MergeAsync"/> when every source row is an upsert of a key no live file may hold: the rows
    /// are written as an append writes them (no file read, no key lookup, no deletion vector), committed as a MERGE of
    /// inserts. A key held twice is refused as the general merge refuses it. The change data feed needs no change files:
    /// a commit without <c>cdc</c> actions has its added rows read as inserts (PROTOCOL.md "Add CDC File"). A concurrent
    /// commit adding a file that may hold a source key conflicts.
    /// </summary>
    private async Task<CommitResult> MergeNewKeysAsync(MergeRequest request, CommitOptions options, LogState readState, DeltaSnapshot snapshot, int[] keyOrdinals, KeyRange range, FilePruning? pruning, CancellationToken ct)
    {
        var source = request.Rows;
        if (ChangeDataWriter.IsEnabled(snapshot))
        {
            // No change files are written, but the table must be one whose changes can be recorded.
            ChangeDataWriter.CheckSchema(snapshot);
        }

        if (!range.StrictlyAscending)
        {
            // Only for its check that no key occurs twice.
            _ = new KeyIndex(keyOrdinals.Select(source.Column).ToArray(), source.Length, request.KeyColumns);
        }

        // Decided before the rows are written (writing may move the source's buffers away).
        Func<AddFile, bool> conflicts = pruning is null ? range.MayOverlap : f => range.MayOverlap(f) && pruning.MayContainAnyKey(f);
        using var writer = NewWriter(snapshot);
        try
        {
            writer.Write(source);
            var pending = await MergeCommitAsync(options, writer, [], new HashSet<string>(StringComparer.Ordinal), conflicts, MergePredicate(request.KeyColumns),
                new MergeMetrics(source.Length, source.Length, 0, 0, 0, null, 0), ct).ConfigureAwait(false);
            if (WritesDeletionVectors(readState))
            {
                // As the deletion-vector merge marks the files it writes: whole files, tight bounds.
                for (var i = 0; i < pending.Adds.Count; i++)
                {
                    pending.Adds[i] = pending.Adds[i] with { Stats = WithTightBounds(pending.Adds[i].Stats, true, null) };
                }

                pending.Metrics["numTargetDeletionVectorsAdded"] = "0";
                pending.Metrics["numTargetDeletionVectorsUpdated"] = "0";
                pending.Metrics["numTargetDeletionVectorsRemoved"] = "0";
            }

            return await CommitAsync(readState, pending, 0, ct).ConfigureAwait(false);
        }
        catch
        {
            await writer.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }
}
