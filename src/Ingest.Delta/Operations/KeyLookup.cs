using Apache.Arrow;
using Ingest.Delta.Parquet;

namespace Ingest.Delta.Operations;

/// <summary>
/// Finds the table's rows for a set of keys, reading only the files whose key statistics may hold one (as a merge does):
/// for a merge that must keep a value the source did not send (PostgreSQL's unchanged TOASTed values).
/// </summary>
internal static class KeyLookup
{
    /// <summary>
    /// Per row of <paramref name="source"/> (rows with the table's columns), the table's row with the same key, as (part,
    /// row) into the returned parts, or (-1, -1) when the table has none. With <paramref name="currentColumn"/>, only rows
    /// where that boolean column is true count (an SCD type 2 table's current rows).
    /// </summary>
    public static async Task<(IReadOnlyList<RecordBatch> Parts, (int Part, int Row)[] Match)> LookupAsync(
        DeltaTable table, RecordBatch source, IReadOnlyList<string> keyColumns, string? currentColumn, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(keyColumns);
        var snapshot = table.Snapshot;
        var schema = snapshot.Schema;
        var keyOrdinals = keyColumns.Select(k => schema.IndexOf(k) is var i and >= 0 ? i : throw new ArgumentException($"Key column '{k}' is not a column of the table ({schema}).", nameof(keyColumns))).ToArray();
        var currentOrdinal = currentColumn is null ? -1
            : schema.IndexOf(currentColumn) is var ci and >= 0 ? ci : throw new ArgumentException($"Column '{currentColumn}' is not a column of the table.", nameof(currentColumn));
        var index = new KeyIndex(keyOrdinals.Select(source.Column).ToArray(), source.Length, keyColumns, allowDuplicates: true);
        var pruning = new FilePruning(source, schema, keyColumns, snapshot.PartitionColumns);
        var byGroup = new Dictionary<int, (int Part, int Row)>();
        var parts = new List<RecordBatch>();
        foreach (var file in snapshot.Files)
        {
            if (!pruning.MayContainAnyKey(file))
            {
                continue;
            }

            await foreach (var batch in table.ReadFileAsync(snapshot, file, cancellationToken).ConfigureAwait(false))
            {
                using (batch)
                {
                    var targetKeys = keyOrdinals.Select(batch.Column).ToArray();
                    var current = currentOrdinal < 0 ? null : (BooleanArray)batch.Column(currentOrdinal);
                    var take = new List<int>();
                    for (var r = 0; r < batch.Length; r++)
                    {
                        if (current is not null && current.GetValue(r) != true)
                        {
                            continue;
                        }

                        var g = index.Find(targetKeys, r);
                        if (g >= 0)
                        {
                            byGroup[g] = (parts.Count, take.Count);
                            take.Add(r);
                        }
                    }

                    if (take.Count > 0)
                    {
                        // A copy: the read batch's buffers belong to the file reader.
                        parts.Add(ArrowKernels.Take(batch, take.ToArray()));
                    }
                }
            }
        }

        var match = new (int, int)[source.Length];
        for (var j = 0; j < match.Length; j++)
        {
            match[j] = byGroup.TryGetValue(index.Group[j], out var m) ? m : (-1, -1);
        }

        return (parts, match);
    }
}
