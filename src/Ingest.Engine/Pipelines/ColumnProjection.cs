using Apache.Arrow;
using Ingest.Sdk.Records;

namespace Ingest.Engine.Pipelines;

/// <summary>Cuts change batches to a stream's selected columns (<c>columns:</c> in the pipeline file).</summary>
internal static class ColumnProjection
{
    /// <summary>
    /// A batch with only <paramref name="columns"/> (in that order; those the batch lacks are left out, so a source
    /// that dropped one still shows as a schema change), sharing the kept Arrow arrays without a copy. The dropped arrays
    /// are disposed and <paramref name="batch"/> must not be used afterwards; returns it unchanged when it already has
    /// exactly these columns.
    /// </summary>
    public static ChangeBatch Project(ChangeBatch batch, IReadOnlyList<string> columns)
    {
        var schema = batch.Data.Schema;
        var keep = new int[columns.Count];
        var kept = 0;
        var identity = true;
        for (var i = 0; i < columns.Count; i++)
        {
            var ordinal = schema.GetFieldIndex(columns[i], StringComparer.OrdinalIgnoreCase);
            if (ordinal >= 0)
            {
                identity &= ordinal == kept;
                keep[kept++] = ordinal;
            }
        }

        if (identity && kept == schema.FieldsList.Count)
        {
            return batch;
        }

        var newOrdinal = new int[schema.FieldsList.Count];
        System.Array.Fill(newOrdinal, -1);
        var builder = new Schema.Builder();
        for (var i = 0; i < kept; i++)
        {
            newOrdinal[keep[i]] = i;
            builder.Field(schema.GetFieldByIndex(keep[i]));
        }

        if (schema.HasMetadata)
        {
            builder.Metadata(schema.Metadata);
        }

        var projected = builder.Build();
        var data = Take(batch.Data, projected, keep.AsSpan(0, kept), newOrdinal);
        var before = batch.Before is null ? null : Take(batch.Before, projected, keep.AsSpan(0, kept), newOrdinal);
        return new ChangeBatch(batch.Stream, data, batch.Ops, batch.Positions, batch.SourceTimestampsMicros, before)
        {
            Unchanged = Remap(batch.Unchanged, newOrdinal),
        };
    }

    /// <summary>
    /// The kept arrays in a new batch that owns them; the others are disposed. The old RecordBatch is not disposed
    /// (that would free the kept arrays too): it holds nothing else.
    /// </summary>
    private static RecordBatch Take(RecordBatch source, Schema schema, ReadOnlySpan<int> keep, int[] newOrdinal)
    {
        var arrays = new IArrowArray[keep.Length];
        for (var i = 0; i < keep.Length; i++)
        {
            arrays[i] = source.Column(keep[i]);
        }

        for (var i = 0; i < source.ColumnCount; i++)
        {
            if (newOrdinal[i] < 0)
            {
                source.Column(i).Dispose();
            }
        }

        return new RecordBatch(schema, arrays, source.Length);
    }

    private static Dictionary<int, int[]>? Remap(IReadOnlyDictionary<int, int[]>? unchanged, int[] newOrdinal)
    {
        if (unchanged is null)
        {
            return null;
        }

        var result = new Dictionary<int, int[]>(unchanged.Count);
        foreach (var (row, columns) in unchanged)
        {
            var count = 0;
            foreach (var c in columns)
            {
                if (c < newOrdinal.Length && newOrdinal[c] >= 0)
                {
                    count++;
                }
            }

            if (count == 0)
            {
                continue;
            }

            var mapped = new int[count];
            var j = 0;
            foreach (var c in columns)
            {
                if (c < newOrdinal.Length && newOrdinal[c] >= 0)
                {
                    mapped[j++] = newOrdinal[c];
                }
            }

            System.Array.Sort(mapped);
            result[row] = mapped;
        }

        return result.Count == 0 ? null : result;
    }
}
