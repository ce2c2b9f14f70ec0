using System.Globalization;
using System.Text.Json.Nodes;
using ArrowTypes = Apache.Arrow.Types;

namespace Ingest.Sdk.Types;

/// <summary>
/// The kinds of primitive values a column can hold. Each maps to one Delta/Spark type and one Arrow type.
/// </summary>
public enum PrimitiveKind
{
    /// <summary>true/false. Delta <c>boolean</c>, Arrow Boolean.</summary>
    Boolean,
    /// <summary>8-bit signed integer. Delta <c>byte</c>, Arrow Int8.</summary>
    Int8,
    /// <summary>16-bit signed integer. Delta <c>short</c>, Arrow Int16.</summary>
    Int16,
    /// <summary>32-bit signed integer. Delta <c>integer</c>, Arrow Int32.</summary>
    Int32,
    /// <summary>64-bit signed integer. Delta <c>long</c>, Arrow Int64.</summary>
    Int64,
    /// <summary>IEEE 754 single precision. Delta <c>float</c>, Arrow Float.</summary>
    Float,
    /// <summary>IEEE 754 double precision. Delta <c>double</c>, Arrow Double.</summary>
    Double,
    /// <summary>UTF-8 text. Delta <c>string</c>, Arrow Utf8.</summary>
    String,
    /// <summary>Opaque bytes. Delta <c>binary</c>, Arrow Binary.</summary>
    Binary,
    /// <summary>A calendar date without time. Delta <c>date</c>, Arrow Date32 (days since 1970-01-01).</summary>
    Date,
    /// <summary>An instant in UTC with microsecond precision. Delta <c>timestamp</c>, Arrow Timestamp(us, "UTC").</summary>
    Timestamp,
    /// <summary>A wall-clock date and time without zone, microsecond precision. Delta <c>timestamp_ntz</c>, Arrow Timestamp(us).</summary>
    TimestampNtz,
}

/// <summary>
/// The type of a column: a primitive, a decimal, or a nested array, struct or map of these.
/// Every type maps to exactly one Delta (Spark) type and one Apache Arrow type.
/// </summary>
public abstract record DataType
{
    /// <summary>The Spark/Delta JSON representation used in a Delta table's <c>schemaString</c>.</summary>
    public abstract JsonNode ToDeltaJson();

    /// <summary>The Arrow type that carries values of this type in a <see cref="Records.ChangeBatch"/>.</summary>
    public abstract ArrowTypes.IArrowType ToArrowType();

    /// <summary>A short human-readable name, the Spark SQL spelling (<c>bigint</c> is written <c>long</c>, as Delta does).</summary>
    public abstract string DisplayName { get; }

    /// <inheritdoc />
    public sealed override string ToString() => DisplayName;

    /// <summary>boolean</summary>
    public static PrimitiveType Boolean { get; } = new(PrimitiveKind.Boolean);
    /// <summary>byte (8-bit)</summary>
    public static PrimitiveType Int8 { get; } = new(PrimitiveKind.Int8);
    /// <summary>short (16-bit)</summary>
    public static PrimitiveType Int16 { get; } = new(PrimitiveKind.Int16);
    /// <summary>integer (32-bit)</summary>
    public static PrimitiveType Int32 { get; } = new(PrimitiveKind.Int32);
    /// <summary>long (64-bit)</summary>
    public static PrimitiveType Int64 { get; } = new(PrimitiveKind.Int64);
    /// <summary>float</summary>
    public static PrimitiveType Float { get; } = new(PrimitiveKind.Float);
    /// <summary>double</summary>
    public static PrimitiveType Double { get; } = new(PrimitiveKind.Double);
    /// <summary>string</summary>
    public static PrimitiveType String { get; } = new(PrimitiveKind.String);
    /// <summary>binary</summary>
    public static PrimitiveType Binary { get; } = new(PrimitiveKind.Binary);
    /// <summary>date</summary>
    public static PrimitiveType Date { get; } = new(PrimitiveKind.Date);
    /// <summary>timestamp (UTC, microseconds)</summary>
    public static PrimitiveType Timestamp { get; } = new(PrimitiveKind.Timestamp);
    /// <summary>timestamp_ntz (no zone, microseconds)</summary>
    public static PrimitiveType TimestampNtz { get; } = new(PrimitiveKind.TimestampNtz);

    /// <summary>decimal(precision, scale), precision 1..38.</summary>
    public static DecimalType Decimal(int precision, int scale) => new(precision, scale);

    /// <summary>Parses a Delta/Spark JSON type (a string such as <c>"long"</c> or <c>"decimal(10,2)"</c>, or an object for nested types).</summary>
    /// <exception cref="FormatException">The JSON is not a type this SDK knows.</exception>
    public static DataType FromDeltaJson(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is JsonValue value && value.TryGetValue<string>(out var name))
        {
            return FromDeltaName(name);
        }

        if (node is JsonObject obj)
        {
            var type = obj["type"]?.GetValue<string>();
            switch (type)
            {
                case "array":
                    return new ArrayType(FromDeltaJson(Required(obj, "elementType")), obj["containsNull"]?.GetValue<bool>() ?? true);
                case "map":
                    return new MapType(FromDeltaJson(Required(obj, "keyType")), FromDeltaJson(Required(obj, "valueType")), obj["valueContainsNull"]?.GetValue<bool>() ?? true);
                case "struct":
                    var fields = new List<Field>();
                    foreach (var f in obj["fields"]?.AsArray() ?? [])
                    {
                        fields.Add(Field.FromDeltaJson(f!));
                    }

                    return new StructType(fields);
                default:
                    throw new FormatException($"Unknown Delta type '{obj.ToJsonString()}'.");
            }
        }

        throw new FormatException($"Unknown Delta type '{node.ToJsonString()}'.");
    }

    private static JsonNode Required(JsonObject obj, string name) =>
        obj[name] ?? throw new FormatException($"Delta type '{obj.ToJsonString()}' lacks '{name}'.");

    /// <summary>Parses a primitive Delta type name such as <c>long</c> or <c>decimal(10,2)</c>.</summary>
    public static DataType FromDeltaName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        switch (name)
        {
            case "boolean": return Boolean;
            case "byte": return Int8;
            case "short": return Int16;
            case "integer": return Int32;
            case "long": return Int64;
            case "float": return Float;
            case "double": return Double;
            case "string": return String;
            case "binary": return Binary;
            case "date": return Date;
            case "timestamp": return Timestamp;
            case "timestamp_ntz": return TimestampNtz;
            case "decimal": return Decimal(10, 0);
        }

        if (name.StartsWith("decimal(", StringComparison.Ordinal) && name.EndsWith(')'))
        {
            var parts = name["decimal(".Length..^1].Split(',');
            if (parts.Length == 2
                && int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var p)
                && int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var s))
            {
                return Decimal(p, s);
            }
        }

        throw new FormatException($"Unknown Delta type '{name}'.");
    }

    /// <summary>Maps an Arrow type back to the SDK type (the inverse of <see cref="ToArrowType"/>).</summary>
    /// <exception cref="NotSupportedException">The Arrow type has no SDK equivalent.</exception>
    public static DataType FromArrowType(ArrowTypes.IArrowType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type switch
        {
            ArrowTypes.BooleanType => Boolean,
            ArrowTypes.Int8Type => Int8,
            ArrowTypes.Int16Type => Int16,
            ArrowTypes.Int32Type => Int32,
            ArrowTypes.Int64Type => Int64,
            ArrowTypes.FloatType => Float,
            ArrowTypes.DoubleType => Double,
            ArrowTypes.StringType => String,
            ArrowTypes.BinaryType => Binary,
            ArrowTypes.Date32Type => Date,
            ArrowTypes.TimestampType t => string.IsNullOrEmpty(t.Timezone) ? TimestampNtz : Timestamp,
            ArrowTypes.Decimal128Type d => Decimal(d.Precision, d.Scale),
            ArrowTypes.MapType m => new MapType(FromArrowType(m.KeyField.DataType), FromArrowType(m.ValueField.DataType), m.ValueField.IsNullable),
            ArrowTypes.ListType l => new ArrayType(FromArrowType(l.ValueDataType), l.ValueField.IsNullable),
            ArrowTypes.StructType s => new StructType(s.Fields.Select(f => new Field(f.Name, FromArrowType(f.DataType), f.IsNullable)).ToList()),
            _ => throw new NotSupportedException($"Arrow type {type.Name} has no Ingest equivalent."),
        };
    }
}

/// <summary>A primitive type; see <see cref="PrimitiveKind"/> for the mapping.</summary>
public sealed record PrimitiveType(PrimitiveKind Kind) : DataType
{
    /// <inheritdoc />
    public override string DisplayName => Kind switch
    {
        PrimitiveKind.Boolean => "boolean",
        PrimitiveKind.Int8 => "byte",
        PrimitiveKind.Int16 => "short",
        PrimitiveKind.Int32 => "integer",
        PrimitiveKind.Int64 => "long",
        PrimitiveKind.Float => "float",
        PrimitiveKind.Double => "double",
        PrimitiveKind.String => "string",
        PrimitiveKind.Binary => "binary",
        PrimitiveKind.Date => "date",
        PrimitiveKind.Timestamp => "timestamp",
        PrimitiveKind.TimestampNtz => "timestamp_ntz",
        _ => throw new InvalidOperationException($"Unknown kind {Kind}."),
    };

    /// <inheritdoc />
    public override JsonNode ToDeltaJson() => JsonValue.Create(DisplayName);

    /// <inheritdoc />
    public override ArrowTypes.IArrowType ToArrowType() => Kind switch
    {
        PrimitiveKind.Boolean => ArrowTypes.BooleanType.Default,
        PrimitiveKind.Int8 => ArrowTypes.Int8Type.Default,
        PrimitiveKind.Int16 => ArrowTypes.Int16Type.Default,
        PrimitiveKind.Int32 => ArrowTypes.Int32Type.Default,
        PrimitiveKind.Int64 => ArrowTypes.Int64Type.Default,
        PrimitiveKind.Float => ArrowTypes.FloatType.Default,
        PrimitiveKind.Double => ArrowTypes.DoubleType.Default,
        PrimitiveKind.String => ArrowTypes.StringType.Default,
        PrimitiveKind.Binary => ArrowTypes.BinaryType.Default,
        PrimitiveKind.Date => ArrowTypes.Date32Type.Default,
        PrimitiveKind.Timestamp => ArrowTimestampUtc,
        PrimitiveKind.TimestampNtz => ArrowTimestampNtz,
        _ => throw new InvalidOperationException($"Unknown kind {Kind}."),
    };

    internal static readonly ArrowTypes.TimestampType ArrowTimestampUtc = new(ArrowTypes.TimeUnit.Microsecond, "UTC");
    internal static readonly ArrowTypes.TimestampType ArrowTimestampNtz = new(ArrowTypes.TimeUnit.Microsecond, (string?)null);
}

/// <summary>A fixed-point decimal: Precision digits (1..38), Scale of them after the point.</summary>
public sealed record DecimalType : DataType
{
    /// <summary>Creates decimal(precision, scale).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Precision outside 1..38 or scale outside 0..precision.</exception>
    public DecimalType(int Precision, int Scale)
    {
        if (Precision is < 1 or > 38)
        {
            throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "Decimal precision must be between 1 and 38.");
        }

        if (Scale < 0 || Scale > Precision)
        {
            throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "Decimal scale must be between 0 and the precision.");
        }

        this.Precision = Precision;
        this.Scale = Scale;
    }

    /// <summary>Total number of digits.</summary>
    public int Precision { get; }

    /// <summary>Digits after the decimal point.</summary>
    public int Scale { get; }

    /// <inheritdoc />
    public override string DisplayName => $"decimal({Precision},{Scale})";

    /// <inheritdoc />
    public override JsonNode ToDeltaJson() => JsonValue.Create(DisplayName);

    /// <inheritdoc />
    public override ArrowTypes.IArrowType ToArrowType() => new ArrowTypes.Decimal128Type(Precision, Scale);
}

/// <summary>An array of <paramref name="ElementType"/>. Delta <c>array</c>, Arrow List.</summary>
public sealed record ArrayType(DataType ElementType, bool ContainsNull = true) : DataType
{
    /// <inheritdoc />
    public override string DisplayName => $"array<{ElementType.DisplayName}>";

    /// <inheritdoc />
    public override JsonNode ToDeltaJson() => new JsonObject
    {
        ["type"] = "array",
        ["elementType"] = ElementType.ToDeltaJson(),
        ["containsNull"] = ContainsNull,
    };

    /// <inheritdoc />
    public override ArrowTypes.IArrowType ToArrowType() =>
        new ArrowTypes.ListType(new Apache.Arrow.Field("element", ElementType.ToArrowType(), ContainsNull));
}

/// <summary>A map from <paramref name="KeyType"/> to <paramref name="ValueType"/>. Delta <c>map</c>, Arrow Map. Keys are never null.</summary>
public sealed record MapType(DataType KeyType, DataType ValueType, bool ValueContainsNull = true) : DataType
{
    /// <inheritdoc />
    public override string DisplayName => $"map<{KeyType.DisplayName},{ValueType.DisplayName}>";

    /// <inheritdoc />
    public override JsonNode ToDeltaJson() => new JsonObject
    {
        ["type"] = "map",
        ["keyType"] = KeyType.ToDeltaJson(),
        ["valueType"] = ValueType.ToDeltaJson(),
        ["valueContainsNull"] = ValueContainsNull,
    };

    /// <inheritdoc />
    public override ArrowTypes.IArrowType ToArrowType() =>
        new ArrowTypes.MapType(
            new Apache.Arrow.Field("key", KeyType.ToArrowType(), false),
            new Apache.Arrow.Field("value", ValueType.ToArrowType(), ValueContainsNull));
}

/// <summary>A struct of named fields. Delta <c>struct</c>, Arrow Struct.</summary>
public sealed record StructType : DataType
{
    /// <summary>Creates a struct type of the given fields (names unique, ignoring case, as Delta requires).</summary>
    public StructType(IReadOnlyList<Field> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var f in fields)
        {
            if (!seen.Add(f.Name))
            {
                throw new ArgumentException($"Field name '{f.Name}' appears twice (names are compared ignoring case).", nameof(fields));
            }
        }

        Fields = fields;
    }

    /// <summary>The fields, in order.</summary>
    public IReadOnlyList<Field> Fields { get; }

    /// <inheritdoc />
    public override string DisplayName => $"struct<{string.Join(",", Fields.Select(f => $"{f.Name}:{f.Type.DisplayName}"))}>";

    /// <inheritdoc />
    public override JsonNode ToDeltaJson()
    {
        var fields = new JsonArray();
        foreach (var f in Fields)
        {
            fields.Add(f.ToDeltaJson());
        }

        return new JsonObject { ["type"] = "struct", ["fields"] = fields };
    }

    /// <inheritdoc />
    public override ArrowTypes.IArrowType ToArrowType() =>
        new ArrowTypes.StructType(Fields.Select(f => f.ToArrowField()).ToList());

    /// <inheritdoc />
    public bool Equals(StructType? other) =>
        other is not null && Fields.SequenceEqual(other.Fields);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var f in Fields)
        {
            h.Add(f);
        }

        return h.ToHashCode();
    }
}

/// <summary>A named, typed field of a struct or a stream.</summary>
/// <param name="Name">The name as the source spells it.</param>
/// <param name="Type">The field's type.</param>
/// <param name="Nullable">Whether the field may be null.</param>
/// <param name="Description">Optional help text shown in the UI.</param>
public sealed record Field(string Name, DataType Type, bool Nullable = true, string? Description = null)
{
    /// <summary>The Spark StructField JSON: <c>{"name","type","nullable","metadata"}</c>.</summary>
    public JsonObject ToDeltaJson()
    {
        var metadata = new JsonObject();
        if (Description is not null)
        {
            metadata["comment"] = Description;
        }

        return new JsonObject
        {
            ["name"] = Name,
            ["type"] = Type.ToDeltaJson(),
            ["nullable"] = Nullable,
            ["metadata"] = metadata,
        };
    }

    /// <summary>Parses a Spark StructField JSON object.</summary>
    public static Field FromDeltaJson(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var name = node["name"]?.GetValue<string>() ?? throw new FormatException($"Field '{node.ToJsonString()}' has no name.");
        var type = DataType.FromDeltaJson(node["type"] ?? throw new FormatException($"Field '{name}' has no type."));
        var nullable = node["nullable"]?.GetValue<bool>() ?? true;
        var comment = node["metadata"]?["comment"]?.GetValue<string>();
        return new Field(name, type, nullable, comment);
    }

    /// <summary>The Arrow field carrying this field's values.</summary>
    public Apache.Arrow.Field ToArrowField() => new(Name, Type.ToArrowType(), Nullable);
}
