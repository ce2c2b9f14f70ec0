using System.Globalization;
using System.Text;
using Apache.Arrow;
using Ingest.Delta.Parquet;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Delta.Operations;

/// <summary>Partition value strings (PROTOCOL.md "Partition Value Serialization") and Hive-style paths.</summary>
internal static class Partitioning
{
    public const string HiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__";

    /// <summary>The partition value string of row <paramref name="row"/>; null for null (and for the empty string, as Spark does).</summary>
    public static string? Format(IArrowArray array, int row, DataType type, string column)
    {
        if (array.IsNull(row))
        {
            return null;
        }

        return (type, array) switch
        {
            (_, StringArray s) => s.GetString(row) is { Length: > 0 } text ? text : null,
            (_, BinaryArray b) => Encoding.UTF8.GetString(b.GetBytes(row)),
            (_, BooleanArray b) => b.GetValue(row)!.Value ? "true" : "false",
            (_, Int8Array a) => a.Values[row].ToString(CultureInfo.InvariantCulture),
            (_, Int16Array a) => a.Values[row].ToString(CultureInfo.InvariantCulture),
            (_, Int32Array a) => a.Values[row].ToString(CultureInfo.InvariantCulture),
            (_, Int64Array a) => a.Values[row].ToString(CultureInfo.InvariantCulture),
            (_, FloatArray a) => JavaDouble(a.Values[row], true),
            (_, DoubleArray a) => JavaDouble(a.Values[row], false),
            (_, Date32Array a) => DateOnly.FromDayNumber(EpochDay + a.Values[row]).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            (PrimitiveType { Kind: PrimitiveKind.Timestamp }, TimestampArray a) =>
                DateTime.UnixEpoch.AddTicks(a.Values[row] * 10).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            (PrimitiveType { Kind: PrimitiveKind.TimestampNtz }, TimestampArray a) => FormatNtz(a.Values[row]),
            (DecimalType d, Decimal128Array a) => DecimalMath.ToText(ArrowKernels.DecimalAt(a, row), d.Scale),
            _ => throw new NotSupportedException($"Partition column '{column}' has type {type}, which cannot be a partition column."),
        };
    }

    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    private static string FormatNtz(long micros)
    {
        var dt = DateTime.UnixEpoch.AddTicks(micros * 10);
        return micros % 1_000_000 == 0
            ? dt.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            : dt.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
    }

    private static string JavaDouble(double v, bool isFloat)
    {
        if (double.IsNaN(v))
        {
            return "NaN";
        }

        if (double.IsInfinity(v))
        {
            return v > 0 ? "Infinity" : "-Infinity";
        }

        var text = isFloat ? ((float)v).ToString("R", CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.', StringComparison.Ordinal) || text.Contains('E', StringComparison.Ordinal) ? text : text + ".0";
    }

    /// <summary>An array of <paramref name="length"/> copies of a partition value parsed from its string.</summary>
    public static IArrowArray Constant(DataType type, string? value, int length, string column)
    {
        var arrowType = type.ToArrowType();
        if (value is null || (value.Length == 0 && type is not PrimitiveType { Kind: PrimitiveKind.String }))
        {
            return ArrowKernels.NullArray(arrowType, length);
        }

        try
        {
            switch (type)
            {
                case PrimitiveType { Kind: PrimitiveKind.String }:
                {
                    var b = new StringArray.Builder();
                    for (var i = 0; i < length; i++)
                    {
                        b.Append(value);
                    }

                    return b.Build();
                }

                case PrimitiveType { Kind: PrimitiveKind.Binary }:
                {
                    var b = new BinaryArray.Builder();
                    var bytes = Encoding.UTF8.GetBytes(value);
                    for (var i = 0; i < length; i++)
                    {
                        b.Append(bytes.AsSpan());
                    }

                    return b.Build();
                }

                case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                {
                    var v = bool.Parse(value);
                    var b = new BooleanArray.Builder();
                    for (var i = 0; i < length; i++)
                    {
                        b.Append(v);
                    }

                    return b.Build();
                }

                case PrimitiveType { Kind: PrimitiveKind.Int8 }:
                    return Fill<sbyte>(arrowType, sbyte.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Int16 }:
                    return Fill<short>(arrowType, short.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Int32 }:
                    return Fill<int>(arrowType, int.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Int64 }:
                    return Fill<long>(arrowType, long.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Float }:
                    return Fill<float>(arrowType, float.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Double }:
                    return Fill<double>(arrowType, double.Parse(value, CultureInfo.InvariantCulture), length);
                case PrimitiveType { Kind: PrimitiveKind.Date }:
                    return Fill<int>(arrowType, DateOnly.ParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture).DayNumber - EpochDay, length);
                case PrimitiveType { Kind: PrimitiveKind.Timestamp or PrimitiveKind.TimestampNtz }:
                    return Fill<long>(arrowType, ParseTimestampMicros(value), length);
                case DecimalType d:
                {
                    var unscaled = ParseDecimal(value, d.Scale);
                    var bytes = new byte[length * 16];
                    for (var i = 0; i < length; i++)
                    {
                        System.Buffers.Binary.BinaryPrimitives.WriteInt128LittleEndian(bytes.AsSpan(i * 16), unscaled);
                    }

                    return ArrowArrayFactory.BuildArray(new ArrayData(arrowType, length, 0, 0, [ArrowBuffer.Empty, new ArrowBuffer(bytes)]));
                }

                default:
                    throw new NotSupportedException($"Partition column '{column}' has type {type}, which cannot be a partition column.");
            }
        }
        catch (FormatException ex)
        {
            throw new InvalidDataException($"Partition value '{value}' of column '{column}' is not a valid {type}.", ex);
        }
    }

    private static IArrowArray Fill<T>(Apache.Arrow.Types.IArrowType type, T value, int length)
        where T : struct
    {
        var b = new ArrowBuffer.Builder<T>(length);
        for (var i = 0; i < length; i++)
        {
            b.Append(value);
        }

        return ArrowArrayFactory.BuildArray(new ArrayData(type, length, 0, 0, [ArrowBuffer.Empty, b.Build()]));
    }

    /// <summary>
    /// Microseconds since the epoch of an ISO instant (<c>2024-01-01T10:00:00.000000Z</c>) or a zone-less
    /// <c>YYYY-MM-DD HH:MM:SS[.ffffff]</c>, which is read as UTC (see the golden tables' README).
    /// </summary>
    public static long ParseTimestampMicros(string value)
    {
        var styles = DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal;
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd HH:mm:ss.FFFFFFF", "yyyy-MM-dd HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF"];
        var dto = DateTimeOffset.ParseExact(value, formats, CultureInfo.InvariantCulture, styles);
        return (dto.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
    }

    public static Int128 ParseDecimal(string value, int scale)
    {
        var negative = value.StartsWith('-');
        var body = negative || value.StartsWith('+') ? value[1..] : value;
        var dot = body.IndexOf('.', StringComparison.Ordinal);
        var intPart = dot < 0 ? body : body[..dot];
        var frac = dot < 0 ? "" : body[(dot + 1)..];
        if (frac.Length > scale)
        {
            frac = frac[..scale];
        }

        var digits = (intPart + frac.PadRight(scale, '0')).TrimStart('0');
        var unscaled = digits.Length == 0 ? Int128.Zero : Int128.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        return negative ? -unscaled : unscaled;
    }

    /// <summary>Hive's FileUtils.escapePathName: the directory spelling of a partition value.</summary>
    public static string HiveEscape(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (c < 0x20 || c is '"' or '#' or '%' or '\'' or '*' or '/' or ':' or '=' or '?' or '\\' or '\u007F' or '{' or '[' or ']' or '^')
            {
                sb.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    /// <summary>The relative folder of a partition, e.g. <c>date=2024-01-01/country=DE</c>.</summary>
    public static string Directory(IReadOnlyList<string> columns, IReadOnlyList<string?> values)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < columns.Count; i++)
        {
            sb.Append(HiveEscape(columns[i])).Append('=').Append(values[i] is { } v ? HiveEscape(v) : HiveDefaultPartition).Append('/');
        }

        return sb.ToString();
    }

    /// <summary>Percent-encodes a relative path for the log (RFC 2396); the reverse of <see cref="DecodePath"/>.</summary>
    public static string EncodePath(string path)
    {
        var sb = new StringBuilder(path.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(path))
        {
            var c = (char)b;
            if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '.' or '_' or '~' or '/' or '=')
            {
                sb.Append(c);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    /// <summary>The table-relative file path of an add's <c>path</c> (percent-decoded; absolute file URIs kept absolute).</summary>
    public static string DecodePath(string logPath)
    {
        if (logPath.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            return new Uri(logPath).LocalPath;
        }

        return Uri.UnescapeDataString(logPath);
    }
}
