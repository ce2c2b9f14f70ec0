using Ingest.Sdk.Types;

namespace Ingest.Connectors.Postgres;

/// <summary>How the connector reads a column's values (in the snapshot's binary COPY and from pgoutput's text form).</summary>
internal enum ColumnKind
{
    Boolean,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    /// <summary>numeric mapped to decimal(p,s): read as text, converted exactly to the unscaled value.</summary>
    Decimal,
    /// <summary>text, varchar, char, name: a string in both text and binary form.</summary>
    Text,
    /// <summary>Any type kept as PostgreSQL's text output (uuid, json, interval, enums, unknown types): the snapshot selects <c>col::text</c>.</summary>
    TextCast,
    Binary,
    Date,
    Timestamp,
    TimestampTz,
    /// <summary>A one-dimensional array of a scalar kind: PostgreSQL's array literal, parsed.</summary>
    Array,
}

/// <summary>A column of a captured table and how it maps.</summary>
/// <param name="Name">The column name.</param>
/// <param name="PgType">PostgreSQL's spelling of its type (format_type).</param>
/// <param name="Kind">How values are read.</param>
/// <param name="ElementKind">For arrays, how elements are read.</param>
/// <param name="Scale">For decimals (and arrays of them), the scale.</param>
/// <param name="Type">The SDK type.</param>
/// <param name="Nullable">Whether the column may be null.</param>
internal sealed record PgColumn(string Name, string PgType, ColumnKind Kind, ColumnKind ElementKind, int Scale, DataType Type, bool Nullable)
{
    /// <summary>Whether the snapshot reads it as <c>::text</c> rather than in its binary form.</summary>
    public bool ReadsAsText => Kind is ColumnKind.TextCast or ColumnKind.Array || (Kind == ColumnKind.Decimal && !FitsClrDecimal);

    /// <summary>A decimal of at most 28 digits: exact as a CLR decimal, so the snapshot reads it in binary form.</summary>
    public bool FitsClrDecimal => Type is DecimalType { Precision: <= 28 };
}

/// <summary>Maps PostgreSQL types to SDK types (the table in the connector's README).</summary>
internal static class PgTypes
{
    /// <summary>Types kept as their text form on purpose (no warning).</summary>
    private static readonly HashSet<string> KnownText = new(StringComparer.Ordinal)
    {
        "uuid", "json", "jsonb", "inet", "cidr", "macaddr", "macaddr8", "interval", "time", "timetz", "xml", "money",
        "bit", "varbit", "tsvector", "tsquery", "oid", "char", "citext", "point", "line", "lseg", "box", "path", "polygon", "circle",
        "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange", "pg_lsn",
    };

    /// <summary>Maps one column.</summary>
    /// <param name="name">Column name.</param>
    /// <param name="pgType">format_type of the column.</param>
    /// <param name="typeName">The (base) type's typname.</param>
    /// <param name="typeKind">pg_type.typtype of the (base) type ('e' enum, 'b' base, ...).</param>
    /// <param name="typmod">The (base) type's modifier.</param>
    /// <param name="elementName">For arrays (typcategory 'A'), the element typname; else null.</param>
    /// <param name="elementKind">For arrays, the element's typtype.</param>
    /// <param name="nullable">Whether the column may be null.</param>
    /// <param name="numeric">How unconstrained numeric maps.</param>
    /// <param name="warnings">Receives a line for each type mapped to string for want of a better mapping.</param>
    public static PgColumn Map(string name, string pgType, string typeName, char typeKind, int typmod, string? elementName, char elementKind, bool nullable, NumericMapping numeric, List<string> warnings)
    {
        if (elementName is not null)
        {
            var (ek, et, es) = Scalar(elementName, elementKind, typmod, numeric, out var known);
            if (!known || ek == ColumnKind.TextCast && !KnownText.Contains(elementName) && elementKind != 'e')
            {
                warnings.Add($"column {name} has type {pgType}, which the connector does not know: its elements are kept as text");
            }

            return new PgColumn(name, pgType, ColumnKind.Array, ek, es, new ArrayType(et), nullable);
        }

        var (kind, type, scale) = Scalar(typeName, typeKind, typmod, numeric, out var isKnown);
        if (!isKnown)
        {
            warnings.Add($"column {name} has type {pgType}, which the connector does not know: it is kept as text");
        }

        return new PgColumn(name, pgType, kind, kind, scale, type, nullable);
    }

    private static (ColumnKind Kind, DataType Type, int Scale) Scalar(string typeName, char typeKind, int typmod, NumericMapping numeric, out bool known)
    {
        known = true;
        switch (typeName)
        {
            case "bool": return (ColumnKind.Boolean, DataType.Boolean, 0);
            case "int2": return (ColumnKind.Int16, DataType.Int16, 0);
            case "int4": return (ColumnKind.Int32, DataType.Int32, 0);
            case "int8": return (ColumnKind.Int64, DataType.Int64, 0);
            case "float4": return (ColumnKind.Float, DataType.Float, 0);
            case "float8": return (ColumnKind.Double, DataType.Double, 0);
            case "text" or "varchar" or "bpchar" or "name": return (ColumnKind.Text, DataType.String, 0);
            case "bytea": return (ColumnKind.Binary, DataType.Binary, 0);
            case "date": return (ColumnKind.Date, DataType.Date, 0);
            case "timestamp": return (ColumnKind.Timestamp, DataType.TimestampNtz, 0);
            case "timestamptz": return (ColumnKind.TimestampTz, DataType.Timestamp, 0);
            case "numeric":
                if (typmod >= 4)
                {
                    // typmod = ((precision << 16) | scale) + 4; PostgreSQL 15 allows a negative scale (low 11 bits, signed).
                    var p = ((typmod - 4) >> 16) & 0xffff;
                    var s = (typmod - 4) & 0x7ff;
                    if (s >= 1024)
                    {
                        s -= 2048;
                    }

                    return p is >= 1 and <= 38 && s >= 0 && s <= p
                        ? (ColumnKind.Decimal, DataType.Decimal(p, s), s)
                        : (ColumnKind.TextCast, DataType.String, 0);
                }

                return numeric == NumericMapping.Decimal
                    ? (ColumnKind.Decimal, DataType.Decimal(38, 18), 18)
                    : (ColumnKind.TextCast, DataType.String, 0);
        }

        known = typeKind == 'e' || KnownText.Contains(typeName);
        return (ColumnKind.TextCast, DataType.String, 0);
    }

    /// <summary>A quoted identifier.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A quoted string literal (standard_conforming_strings is on since PostgreSQL 9.1).</summary>
    public static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
