using Apache.Arrow;
using Ingest.Delta.Operations;

namespace Ingest.Delta;

/// <summary>Change data feed writing (PROTOCOL.md "Change Data Files") for tables with <c>delta.enableChangeDataFeed=true</c>.</summary>
public sealed partial class DeltaTable
{
    /// <summary>A change data writer when the table records its changes, else null.</summary>
    private ChangeDataWriter? NewChangeDataWriter(DeltaSnapshot snapshot) =>
        ChangeDataWriter.IsEnabled(snapshot) ? new ChangeDataWriter(_store, snapshot, MaxRowsPerFile) : null;

    /// <summary>Target rows a merge changed: their old values as <c>update_preimage</c>, or as <c>delete</c>.</summary>
    private static void WriteTargetChanges(ChangeDataWriter? cdc, RecordBatch target, List<int> updated, List<int> deleted)
    {
        cdc?.Write(target, updated, "update_preimage");
        cdc?.Write(target, deleted, "delete");
    }

    /// <summary>Source rows a merge applied: <c>update_postimage</c> for matched updates, <c>insert</c> for new keys.</summary>
    private static void WriteSourceChanges(ChangeDataWriter? cdc, RecordBatch source, bool[] matched, bool[] updated, bool[] isDelete)
    {
        if (cdc is null)
        {
            return;
        }

        var post = new List<int>();
        var inserts = new List<int>();
        for (var j = 0; j < source.Length; j++)
        {
            if (updated[j])
            {
                post.Add(j);
            }
            else if (!matched[j] && !isDelete[j])
            {
                inserts.Add(j);
            }
        }

        cdc.Write(source, post, "update_postimage");
        cdc.Write(source, inserts, "insert");
    }

    private static async Task AddChangeFilesAsync(PendingCommit pending, ChangeDataWriter? cdc, CancellationToken ct)
    {
        if (cdc is null)
        {
            return;
        }

        var files = await cdc.FinishAsync(ct).ConfigureAwait(false);
        pending.ChangeFiles.AddRange(files);
        pending.Metrics["numAddedChangeFiles"] = Committer.Metric(files.Count);
    }

    private static async Task AbortChangeDataAsync(ChangeDataWriter? cdc)
    {
        if (cdc is not null)
        {
            await cdc.AbortAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
