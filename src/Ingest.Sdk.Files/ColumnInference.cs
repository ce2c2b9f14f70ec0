using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>
/// Infers one column's type from sample values: booleans, integers (long), decimals (precision and scale
/// from the widest value), doubles, dates, timestamps with a zone, timestamps without, else string.
/// Null values (per the format's null markers) say nothing; a column of nulls only is a string.
/// </summary>
public sealed class ColumnInference
{
    private bool _bool = true;
    private bool _long = true;
    private bool _decimal = true;
    private bool _double = true;
    private bool _date = true;
    private bool _ntz = true;
    private bool _tz = true;
    private int _intDigits;
    private int _scale;
    private bool _forceString;

    /// <summary>Creates an inference for a column of this name.</summary>
    public ColumnInference(string name)
    {
        Name = name;
    }

    /// <summary>The column's name.</summary>
    public string Name { get; }

    /// <summary>Non-null values seen.</summary>
    public long Values { get; private set; }

    /// <summary>Takes a value's UTF-8 text.</summary>
    public void Observe(ReadOnlySpan<byte> text)
    {
        Values++;
        if (_forceString)
        {
            return;
        }

        if (_bool && !TextValues.TryBool(text, out _))
        {
            _bool = false;
        }

        if (_long && !TextValues.TryLong(text, out _))
        {
            _long = false;
        }

        if (_decimal)
        {
            if (TextValues.TryDecimal(text, out _, out var intDigits, out var scale) && Math.Max(_intDigits, intDigits) + Math.Max(_scale, scale) <= 38)
            {
                _intDigits = Math.Max(_intDigits, intDigits);
                _scale = Math.Max(_scale, scale);
            }
            else
            {
                _decimal = false;
            }
        }

        if (_double && !TextValues.TryDouble(text, out _))
        {
            _double = false;
        }

        if (_date && !TextValues.TryDate(text, out _))
        {
            _date = false;
        }

        if (_ntz && !TextValues.TryTimestampNtz(text, out _) && !TextValues.TryDate(text, out _))
        {
            _ntz = false;
        }

        if (_tz && !TextValues.TryTimestamp(text, out _))
        {
            _tz = false;
        }
    }

    /// <summary>Marks the column as text whatever comes (a JSON object or array value).</summary>
    public void ObserveString()
    {
        Values++;
        _forceString = true;
    }

    /// <summary>The inferred type.</summary>
    public DataType Result()
    {
        if (Values == 0 || _forceString)
        {
            return DataType.String;
        }

        if (_bool)
        {
            return DataType.Boolean;
        }

        if (_long)
        {
            return DataType.Int64;
        }

        if (_decimal && _scale > 0)
        {
            return DataType.Decimal(Math.Max(1, _intDigits + _scale), _scale);
        }

        if (_decimal || _double)
        {
            return DataType.Double;
        }

        if (_date)
        {
            return DataType.Date;
        }

        if (_ntz)
        {
            return DataType.TimestampNtz;
        }

        return _tz ? DataType.Timestamp : DataType.String;
    }
}

/// <summary>Widening of inferred types when later files need more (see the README for the rules).</summary>
public static class SchemaWidening
{
    /// <summary>
    /// The narrowest type holding every value of both: equal types stay; long and decimal widen to a decimal
    /// with room for both; numbers of different kinds otherwise to double; a date and a timestamp without zone
    /// to a timestamp without zone; anything else to string.
    /// </summary>
    public static DataType Widen(DataType a, DataType b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a == b)
        {
            return a;
        }

        if (IsInteger(a) && IsInteger(b))
        {
            return DataType.Int64;
        }

        if (Digits(a) is { } da && Digits(b) is { } db)
        {
            var scale = Math.Max(da.Scale, db.Scale);
            var intDigits = Math.Max(da.Int, db.Int);
            return intDigits + scale <= 38 ? DataType.Decimal(intDigits + scale, scale) : DataType.Double;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return DataType.Double;
        }

        if (IsKind(a, PrimitiveKind.Date, PrimitiveKind.TimestampNtz) && IsKind(b, PrimitiveKind.Date, PrimitiveKind.TimestampNtz))
        {
            return DataType.TimestampNtz;
        }

        return DataType.String;
    }

    /// <summary>
    /// Widens <paramref name="current"/> by <paramref name="other"/>: columns of both are widened in place,
    /// columns only in <paramref name="other"/> are added at the end (nullable). Null when nothing changes.
    /// </summary>
    public static StreamSchema? Widen(StreamSchema current, IReadOnlyList<Field> other)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(other);
        var columns = current.Columns.ToList();
        var changed = false;
        foreach (var f in other)
        {
            var i = current.IndexOf(f.Name);
            if (i < 0)
            {
                columns.Add(new Field(f.Name, f.Type, true));
                changed = true;
                continue;
            }

            var widened = Widen(columns[i].Type, f.Type);
            if (widened != columns[i].Type)
            {
                columns[i] = columns[i] with { Type = widened };
                changed = true;
            }
        }

        return changed ? new StreamSchema(columns) : null;
    }

    /// <summary>
    /// Widens <paramref name="current"/> by a later file's sample the way a live table can follow: new columns are
    /// added, and a column's type changes only along Delta's type-widening paths (integers to long or a wide enough
    /// decimal, decimals to wider decimals, integers and float to double, date to timestamp_ntz). A value that would
    /// need any other change (to string, say) keeps its column's type and is rescued. Null when nothing changes.
    /// </summary>
    public static StreamSchema? WidenForLaterFile(StreamSchema current, IReadOnlyList<Field> sample)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(sample);
        var columns = current.Columns.ToList();
        var changed = false;
        foreach (var f in sample)
        {
            var i = current.IndexOf(f.Name);
            if (i < 0)
            {
                columns.Add(new Field(f.Name, f.Type, true));
                changed = true;
                continue;
            }

            var widened = Widen(columns[i].Type, f.Type);
            if (widened != columns[i].Type && IsDeltaWidening(columns[i].Type, widened))
            {
                columns[i] = columns[i] with { Type = widened };
                changed = true;
            }
        }

        return changed ? new StreamSchema(columns) : null;
    }

    /// <summary>Whether Delta's type widening (PROTOCOL.md, "Type Widening") allows <paramref name="from"/> to become <paramref name="to"/>.</summary>
    public static bool IsDeltaWidening(DataType from, DataType to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        if (from == to)
        {
            return true;
        }

        return (from, to) switch
        {
            (PrimitiveType { Kind: PrimitiveKind.Int8 }, PrimitiveType { Kind: PrimitiveKind.Int16 or PrimitiveKind.Int32 or PrimitiveKind.Int64 or PrimitiveKind.Double }) => true,
            (PrimitiveType { Kind: PrimitiveKind.Int16 }, PrimitiveType { Kind: PrimitiveKind.Int32 or PrimitiveKind.Int64 or PrimitiveKind.Double }) => true,
            (PrimitiveType { Kind: PrimitiveKind.Int32 }, PrimitiveType { Kind: PrimitiveKind.Int64 or PrimitiveKind.Double }) => true,
            (PrimitiveType { Kind: PrimitiveKind.Float }, PrimitiveType { Kind: PrimitiveKind.Double }) => true,
            (PrimitiveType { Kind: PrimitiveKind.Date }, PrimitiveType { Kind: PrimitiveKind.TimestampNtz }) => true,
            (PrimitiveType p, DecimalType d) when Digits(p) is { } pd => d.Precision - d.Scale >= pd.Int,
            (DecimalType a, DecimalType b) => b.Scale >= a.Scale && b.Precision - b.Scale >= a.Precision - a.Scale,
            _ => false,
        };
    }

    private static bool IsInteger(DataType t) => IsKind(t, PrimitiveKind.Int8, PrimitiveKind.Int16, PrimitiveKind.Int32, PrimitiveKind.Int64);

    private static bool IsNumber(DataType t) => IsInteger(t) || t is DecimalType || IsKind(t, PrimitiveKind.Float, PrimitiveKind.Double);

    private static (int Int, int Scale)? Digits(DataType t) => t switch
    {
        DecimalType d => (d.Precision - d.Scale, d.Scale),
        PrimitiveType { Kind: PrimitiveKind.Int64 } => (19, 0),
        PrimitiveType { Kind: PrimitiveKind.Int32 } => (10, 0),
        PrimitiveType { Kind: PrimitiveKind.Int16 } => (5, 0),
        PrimitiveType { Kind: PrimitiveKind.Int8 } => (3, 0),
        _ => null,
    };

    private static bool IsKind(DataType t, params PrimitiveKind[] kinds) => t is PrimitiveType p && kinds.Contains(p.Kind);
}
