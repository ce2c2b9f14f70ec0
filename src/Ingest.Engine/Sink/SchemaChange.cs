using Ingest.Sdk.Types;

namespace Ingest.Engine.Sink;

/// <summary>How a stream's schema changed between two batches, in words a user can act on.</summary>
internal static class SchemaChange
{
    /// <summary>Same columns, in the same order, with the same types (nullability aside: batches do not promise it).</summary>
    public static bool SameShape(StreamSchema a, StreamSchema b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!string.Equals(a.Columns[i].Name, b.Columns[i].Name, StringComparison.Ordinal) || !SameType(a.Columns[i].Type, b.Columns[i].Type))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether an Arrow batch has exactly the columns (names and types, in order) of <paramref name="schema"/>.</summary>
    public static bool Matches(Apache.Arrow.Schema batch, StreamSchema schema)
    {
        var fields = batch.FieldsList;
        if (fields.Count != schema.Count)
        {
            return false;
        }

        for (var c = 0; c < fields.Count; c++)
        {
            if (!string.Equals(fields[c].Name, schema.Columns[c].Name, StringComparison.Ordinal) || !TypeMatches(fields[c].DataType, schema.Columns[c].Type))
            {
                return false;
            }
        }

        return true;
    }

    private static bool TypeMatches(Apache.Arrow.Types.IArrowType arrow, DataType type)
    {
        try
        {
            return SameType(DataType.FromArrowType(arrow), type);
        }
        catch (NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>Equal types, descriptions of nested fields aside (Arrow carries none, so a batch never has them).</summary>
    public static bool SameType(DataType a, DataType b) => (a, b) switch
    {
        (ArrayType x, ArrayType y) => x.ContainsNull == y.ContainsNull && SameType(x.ElementType, y.ElementType),
        (MapType x, MapType y) => x.ValueContainsNull == y.ValueContainsNull && SameType(x.KeyType, y.KeyType) && SameType(x.ValueType, y.ValueType),
        (StructType x, StructType y) => x.Fields.Count == y.Fields.Count
            && x.Fields.Zip(y.Fields).All(p => string.Equals(p.First.Name, p.Second.Name, StringComparison.Ordinal) && p.First.Nullable == p.Second.Nullable && SameType(p.First.Type, p.Second.Type)),
        _ => a == b,
    };

    /// <summary>Every change, e.g. <c>column 'age' is new (integer); column 'score' changed from integer to long</c>.</summary>
    public static string DescribeAll(StreamSchema previous, StreamSchema incoming)
    {
        var changes = Changes(previous, incoming).ToList();
        return changes.Count == 0 ? "columns reordered" : string.Join("; ", changes);
    }

    /// <summary>The first change, naming the column and its old and new type.</summary>
    public static string DescribeFirst(StreamSchema previous, StreamSchema incoming) =>
        Changes(previous, incoming).FirstOrDefault()
        ?? $"its columns were reordered (were: {string.Join(", ", previous.Columns.Select(c => c.Name))}; now: {string.Join(", ", incoming.Columns.Select(c => c.Name))})";

    private static IEnumerable<string> Changes(StreamSchema previous, StreamSchema incoming)
    {
        foreach (var c in incoming.Columns)
        {
            var old = Find(previous, c.Name);
            if (old is null)
            {
                yield return $"column '{c.Name}' is new ({c.Type.DisplayName})";
            }
            else if (!SameType(old.Type, c.Type))
            {
                yield return $"column '{c.Name}' changed from {old.Type.DisplayName} to {c.Type.DisplayName}";
            }
        }

        foreach (var c in previous.Columns)
        {
            if (Find(incoming, c.Name) is null)
            {
                yield return $"column '{c.Name}' ({c.Type.DisplayName}) is gone";
            }
        }
    }

    private static Field? Find(StreamSchema s, string name) =>
        s.Columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));
}
