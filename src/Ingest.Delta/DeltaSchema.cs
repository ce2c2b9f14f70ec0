using Apache.Arrow;
using Ingest.Delta.Read;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta;

/// <summary>How an incoming schema (a source's) differs from a table's, column by column (names ignore case).</summary>
/// <param name="Added">Incoming columns the table lacks.</param>
/// <param name="Widened">Columns whose incoming type is wider than the table's (PROTOCOL.md "Type Widening").</param>
/// <param name="Incompatible">Columns whose types neither are equal nor widen one way or the other.</param>
/// <param name="Missing">Table columns the incoming schema lacks (written as null).</param>
public sealed record SchemaDifference(
    IReadOnlyList<Field> Added,
    IReadOnlyList<(Field Table, Field Incoming)> Widened,
    IReadOnlyList<(Field Table, Field Incoming)> Incompatible,
    IReadOnlyList<Field> Missing)
{
    /// <summary>
    /// Struct columns whose incoming type has fields the table's lacks (nested struct evolution): every common field is
    /// the same type, narrower, or itself a struct that grows. Schema evolution appends the new fields, nullable.
    /// </summary>
    public IReadOnlyList<(Field Table, Field Incoming)> StructsGrown { get; init; } = [];

    /// <summary>Whether the table must change to take the incoming rows as they are (columns added, widened or grown, or an incompatible type).</summary>
    public bool NeedsChange => Added.Count > 0 || Widened.Count > 0 || Incompatible.Count > 0 || StructsGrown.Count > 0;
}

/// <summary>Schema comparison and batch conformance for writers whose sources change shape.</summary>
public static class DeltaSchema
{
    /// <summary>Compares an incoming schema with a table's. An incoming type narrower than the table's fits as it is.</summary>
    public static SchemaDifference Compare(StreamSchema table, StreamSchema incoming)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(incoming);
        var added = new List<Field>();
        var widened = new List<(Field, Field)>();
        var incompatible = new List<(Field, Field)>();
        var grown = new List<(Field, Field)>();
        foreach (var c in incoming.Columns)
        {
            var t = Find(table, c.Name);
            if (t is null)
            {
                added.Add(c);
            }
            else if (SameType(t.Type, c.Type) || CanWiden(c.Type, t.Type))
            {
                continue;
            }
            else if (CanWiden(t.Type, c.Type))
            {
                widened.Add((t, c));
            }
            else if (t.Type is StructType ts && c.Type is StructType cs && StructFit(ts, cs) == StructFitKind.Grows)
            {
                grown.Add((t, c));
            }
            else
            {
                incompatible.Add((t, c));
            }
        }

        var missing = table.Columns.Where(t => Find(incoming, t.Name) is null).ToList();
        return new SchemaDifference(added, widened, incompatible, missing) { StructsGrown = grown };
    }

    private enum StructFitKind
    {
        Fits,
        Grows,
        Incompatible,
    }

    /// <summary>How an incoming struct relates to a table's: fits as it is, has new fields (possibly nested), or does not fit.</summary>
    private static StructFitKind StructFit(StructType table, StructType incoming)
    {
        var kind = StructFitKind.Fits;
        foreach (var f in incoming.Fields)
        {
            var t = table.Fields.FirstOrDefault(x => string.Equals(x.Name, f.Name, StringComparison.OrdinalIgnoreCase));
            if (t is null)
            {
                kind = StructFitKind.Grows;
            }
            else if (SameType(t.Type, f.Type) || CanWiden(f.Type, t.Type))
            {
                continue;
            }
            else if (t.Type is StructType ts && f.Type is StructType fs && StructFit(ts, fs) is var nested and not StructFitKind.Incompatible)
            {
                kind = nested == StructFitKind.Grows ? StructFitKind.Grows : kind;
            }
            else
            {
                return StructFitKind.Incompatible;
            }
        }

        return kind;
    }

    /// <summary>
    /// Appends to a struct type's Delta JSON (<c>{"type":"struct","fields":[...]}</c>) the fields of
    /// <paramref name="incoming"/> it lacks, as nullable, recursing into common struct fields; existing fields keep their
    /// metadata. Delta's nested struct evolution, as Spark's <c>mergeSchema</c> does it.
    /// </summary>
    internal static void GrowStructJson(System.Text.Json.Nodes.JsonObject typeNode, StructType incoming)
    {
        var fields = typeNode["fields"]!.AsArray();
        foreach (var f in incoming.Fields)
        {
            var existing = fields.FirstOrDefault(x => string.Equals(x!["name"]!.GetValue<string>(), f.Name, StringComparison.OrdinalIgnoreCase));
            if (existing is null)
            {
                fields.Add((f with { Nullable = true }).ToDeltaJson());
            }
            else if (f.Type is StructType fs && existing["type"] is System.Text.Json.Nodes.JsonObject nested)
            {
                GrowStructJson(nested, fs);
            }
        }
    }

    private static Field? Find(StreamSchema s, string name) =>
        s.Columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));

    private static bool SameType(DataType a, DataType b) => (a, b) switch
    {
        (ArrayType x, ArrayType y) => SameType(x.ElementType, y.ElementType),
        (MapType x, MapType y) => SameType(x.KeyType, y.KeyType) && SameType(x.ValueType, y.ValueType),
        (StructType x, StructType y) => x.Fields.Count == y.Fields.Count
            && x.Fields.Zip(y.Fields).All(p => string.Equals(p.First.Name, p.Second.Name, StringComparison.OrdinalIgnoreCase) && SameType(p.First.Type, p.Second.Type)),
        _ => a == b,
    };

    /// <summary>
    /// Whether values of <paramref name="from"/> widen losslessly to <paramref name="to"/> under the typeWidening feature:
    /// byte &lt; short &lt; int &lt; long, float &lt; double, byte/short/int to double, integers to a decimal wide
    /// enough, decimal(p,s) to decimal(p',s') with s' ≥ s and p'-s' ≥ p-s, date to timestamp_ntz.
    /// </summary>
    public static bool CanWiden(DataType from, DataType to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        static int IntRank(PrimitiveKind k) => k switch
        {
            PrimitiveKind.Int8 => 1,
            PrimitiveKind.Int16 => 2,
            PrimitiveKind.Int32 => 3,
            PrimitiveKind.Int64 => 4,
            _ => 0,
        };

        static int IntDigits(PrimitiveKind k) => k switch
        {
            PrimitiveKind.Int8 => 3,
            PrimitiveKind.Int16 => 5,
            PrimitiveKind.Int32 => 10,
            _ => 20,
        };

        return (from, to) switch
        {
            (PrimitiveType f, PrimitiveType t) when IntRank(f.Kind) > 0 && IntRank(t.Kind) > 0 => IntRank(f.Kind) < IntRank(t.Kind),
            (PrimitiveType { Kind: PrimitiveKind.Float }, PrimitiveType { Kind: PrimitiveKind.Double }) => true,
            (PrimitiveType f, PrimitiveType { Kind: PrimitiveKind.Double }) => IntRank(f.Kind) is > 0 and < 4,
            (PrimitiveType { Kind: PrimitiveKind.Date }, PrimitiveType { Kind: PrimitiveKind.TimestampNtz }) => true,
            (PrimitiveType f, DecimalType t) when IntRank(f.Kind) > 0 => t.Precision - t.Scale >= IntDigits(f.Kind),
            (DecimalType f, DecimalType t) => (f.Precision != t.Precision || f.Scale != t.Scale) && t.Scale >= f.Scale && t.Precision - t.Scale >= f.Precision - f.Scale,
            _ => false,
        };
    }

    /// <summary>
    /// The batch with the table's columns in the table's order (matched by name, ignoring case): columns the batch lacks are
    /// null, narrower types are widened. Columns the table lacks must have been dealt with before (evolved or rescued).
    /// </summary>
    /// <exception cref="ArgumentException">A column the table lacks, a non-null table column the batch lacks, or a type that does not fit.</exception>
    public static RecordBatch Conform(RecordBatch batch, StreamSchema table)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(table);
        var arrowSchema = table.ToArrowSchema();
        var incoming = batch.Schema.FieldsList;
        foreach (var f in incoming)
        {
            if (table.IndexOf(f.Name) < 0 && Find(table, f.Name) is null)
            {
                throw new ArgumentException($"Column '{f.Name}' of the batch is not a column of the table ({table}).");
            }
        }

        var fields = ReadField.Parse(table.ToDeltaJson().ToJsonString(), ColumnMappingMode.None, "table");
        var columns = new IArrowArray[table.Count];
        for (var i = 0; i < table.Count; i++)
        {
            var column = table.Columns[i];
            var idx = -1;
            for (var j = 0; j < incoming.Count; j++)
            {
                if (string.Equals(incoming[j].Name, column.Name, StringComparison.OrdinalIgnoreCase))
                {
                    idx = j;
                    break;
                }
            }

            if (idx < 0)
            {
                if (!column.Nullable)
                {
                    throw new ArgumentException($"Column '{column.Name}' is NOT NULL in the table but the batch lacks it.");
                }

                columns[i] = Parquet.ArrowKernels.NullArray(arrowSchema.FieldsList[i].DataType, batch.Length);
                continue;
            }

            var array = batch.Column(idx);
            try
            {
                columns[i] = array.Data.DataType.Equals(arrowSchema.FieldsList[i].DataType) || SameArrow(array.Data.DataType, arrowSchema.FieldsList[i].DataType)
                    ? array
                    : ColumnConform.Conform(array, fields[i], ColumnMappingMode.None, column.Name);
            }
            catch (InvalidDataException ex)
            {
                throw new ArgumentException($"Column '{column.Name}' of the batch does not fit the table's type {column.Type.DisplayName}: {ex.Message}", ex);
            }
        }

        return new RecordBatch(arrowSchema, columns, batch.Length);
    }

    private static bool SameArrow(Apache.Arrow.Types.IArrowType a, Apache.Arrow.Types.IArrowType b)
    {
        try
        {
            return DataType.FromArrowType(a) == DataType.FromArrowType(b) && a is not Apache.Arrow.Types.NestedType;
        }
        catch (NotSupportedException)
        {
            return false;
        }
    }
}
