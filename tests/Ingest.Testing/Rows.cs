using Apache.Arrow;
using Ingest.Sdk.Records;

namespace Ingest.Testing;

/// <summary>Rows of batches as dictionaries (column name to value), for assertions.</summary>
public static class Rows
{
    /// <summary>The rows of one Arrow batch.</summary>
    public static List<Dictionary<string, object?>> Of(RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var rows = new List<Dictionary<string, object?>>();
        for (var r = 0; r < batch.Length; r++)
        {
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var c = 0; c < batch.ColumnCount; c++)
            {
                row[batch.Schema.FieldsList[c].Name] = ArrowValues.GetValue(batch.Column(c), r);
            }

            rows.Add(row);
        }

        return rows;
    }

    /// <summary>The rows of change batches, in order.</summary>
    public static List<Dictionary<string, object?>> Of(IEnumerable<ChangeBatch> batches) => batches.SelectMany(b => Of(b.Data)).ToList();
}
