using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// Parses PostgreSQL's text output (the form pgoutput sends, and <c>::text</c> in the snapshot) into typed
/// values. The session settings of <see cref="PostgresOptions.ConnectionString"/> fix the forms: ISO dates,
/// UTC, shortest exact floats, hex bytea.
/// </summary>
internal static class PgText
{
    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
    private const long MicrosPerDay = 86_400_000_000L;

    /// <summary>Npgsql maps ±infinity timestamps to DateTime.MaxValue/MinValue; the text path does the same so both agree.</summary>
    public static readonly long InfinityMicros = (DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks) / 10;
    public static readonly long MinusInfinityMicros = (DateTime.MinValue.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>Sets column <paramref name="ordinal"/> from its text form.</summary>
    public static void Set(ChangeBatchBuilder builder, int ordinal, PgColumn column, string text)
    {
        switch (column.Kind)
        {
            case ColumnKind.Boolean: builder.SetBoolean(ordinal, ParseBool(text, column)); break;
            case ColumnKind.Int16: builder.SetInt16(ordinal, short.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)); break;
            case ColumnKind.Int32: builder.SetInt32(ordinal, int.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)); break;
            case ColumnKind.Int64: builder.SetInt64(ordinal, long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)); break;
            case ColumnKind.Float: builder.SetFloat(ordinal, float.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)); break;
            case ColumnKind.Double: builder.SetDouble(ordinal, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)); break;
            case ColumnKind.Decimal: builder.SetDecimalUnscaled(ordinal, Unscaled(text, column)); break;
            case ColumnKind.Text or ColumnKind.TextCast: builder.SetString(ordinal, text); break;
            case ColumnKind.Binary: builder.SetBinary(ordinal, Bytea(text, column)); break;
            case ColumnKind.Date: builder.SetDate(ordinal, Days(text, column)); break;
            case ColumnKind.Timestamp or ColumnKind.TimestampTz: builder.SetTimestampMicros(ordinal, Micros(text, column)); break;
            case ColumnKind.Array: builder.SetValue(ordinal, Array(text, column)); break;
            default: throw new InvalidOperationException($"Unknown column kind {column.Kind}.");
        }
    }

    /// <summary>
    /// Sets column <paramref name="ordinal"/> from its text form in UTF-8 (as pgoutput sends it): strings, integers,
    /// decimals and timestamps without allocating a string; other kinds through <see cref="Set(ChangeBatchBuilder, int, PgColumn, string)"/>.
    /// </summary>
    public static void SetUtf8(ChangeBatchBuilder builder, int ordinal, PgColumn column, ReadOnlySpan<byte> utf8)
    {
        switch (column.Kind)
        {
            case ColumnKind.Text or ColumnKind.TextCast:
                builder.SetStringUtf8(ordinal, utf8);
                return;
            case ColumnKind.Int16 when Utf8Parser.TryParse(utf8, out short i16, out var n16) && n16 == utf8.Length:
                builder.SetInt16(ordinal, i16);
                return;
            case ColumnKind.Int32 when Utf8Parser.TryParse(utf8, out int i32, out var n32) && n32 == utf8.Length:
                builder.SetInt32(ordinal, i32);
                return;
            case ColumnKind.Int64 when Utf8Parser.TryParse(utf8, out long i64, out var n64) && n64 == utf8.Length:
                builder.SetInt64(ordinal, i64);
                return;
            case ColumnKind.Boolean when utf8.Length == 1 && utf8[0] is (byte)'t' or (byte)'f':
                builder.SetBoolean(ordinal, utf8[0] == (byte)'t');
                return;
            case ColumnKind.Decimal or ColumnKind.Timestamp or ColumnKind.TimestampTz when utf8.Length <= 128:
                Span<char> chars = stackalloc char[utf8.Length];
                var count = Encoding.UTF8.GetChars(utf8, chars);
                if (column.Kind == ColumnKind.Decimal)
                {
                    builder.SetDecimalUnscaled(ordinal, Unscaled(chars[..count], column));
                }
                else
                {
                    builder.SetTimestampMicros(ordinal, Micros(chars[..count], column));
                }

                return;
            default:
                Set(builder, ordinal, column, Encoding.UTF8.GetString(utf8));
                return;
        }
    }

    private static bool ParseBool(string text, PgColumn column) => text switch
    {
        "t" => true,
        "f" => false,
        _ => throw Bad(text, column),
    };

    /// <summary>The unscaled value of a numeric text at the column's scale, rounded half away from zero (PostgreSQL's rule).</summary>
    public static Int128 Unscaled(string text, PgColumn column) => Unscaled(text.AsSpan(), column);

    /// <summary>The unscaled value of a numeric text at the column's scale, rounded half away from zero (PostgreSQL's rule).</summary>
    public static Int128 Unscaled(ReadOnlySpan<char> text, PgColumn column)
    {
        var s = text;
        var negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s.Length == 0 || s.Contains('e') || s.Contains('E') || !char.IsAsciiDigit(s[0]) && s[0] != '.')
        {
            throw new ConnectorException(ErrorKind.Fatal,
                $"column {column.Name} ({column.PgType}) holds '{text.ToString()}', which {column.Type} cannot represent; set numericMapping to string or change the column type");
        }

        Int128 value = 0;
        var scale = column.Scale;
        var fraction = -1;
        var roundUp = false;
        try
        {
            foreach (var ch in s)
            {
                if (ch == '.')
                {
                    fraction = 0;
                    continue;
                }

                if (!char.IsAsciiDigit(ch))
                {
                    throw Bad(text.ToString(), column);
                }

                if (fraction >= 0)
                {
                    if (fraction == scale)
                    {
                        roundUp = ch >= '5';
                        break;
                    }

                    fraction++;
                }

                value = checked((value * 10) + (ch - '0'));
            }

            for (var f = Math.Max(fraction, 0); f < scale; f++)
            {
                value = checked(value * 10);
            }

            if (roundUp)
            {
                value = checked(value + 1);
            }
        }
        catch (OverflowException)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"column {column.Name} ({column.PgType}) holds {text.ToString()}, which does not fit {column.Type}; set numericMapping to string");
        }

        return negative ? -value : value;
    }

    private static byte[] Bytea(string text, PgColumn column) =>
        text.StartsWith("\\x", StringComparison.Ordinal) ? Convert.FromHexString(text.AsSpan(2)) : throw Bad(text, column);

    public static int Days(string text, PgColumn column)
    {
        switch (text)
        {
            case "infinity": return DateOnly.MaxValue.DayNumber - EpochDay;
            case "-infinity": return DateOnly.MinValue.DayNumber - EpochDay;
        }

        return DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? d.DayNumber - EpochDay
            : throw Bad(text, column);
    }

    /// <summary>Microseconds since 1970-01-01 (UTC for timestamptz, wall clock for timestamp).</summary>
    public static long Micros(string text, PgColumn column) => Micros(text.AsSpan(), column);

    /// <summary>Microseconds since 1970-01-01 (UTC for timestamptz, wall clock for timestamp).</summary>
    public static long Micros(ReadOnlySpan<char> text, PgColumn column)
    {
        if (text.SequenceEqual("infinity"))
        {
            return InfinityMicros;
        }

        if (text.SequenceEqual("-infinity"))
        {
            return MinusInfinityMicros;
        }

        // yyyy-MM-dd HH:mm:ss[.ffffff][(+|-)HH[:MM[:SS]]]
        var s = text;
        if (s.Length < 19 || s[10] != ' ' || IsoDay(s) is not { } day)
        {
            throw Bad(text.ToString(), column);
        }

        var micros = ((day - EpochDay) * MicrosPerDay)
            + (Two(s, 11, column) * 3_600_000_000L) + (Two(s, 14, column) * 60_000_000L) + (Two(s, 17, column) * 1_000_000L);
        var i = 19;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            var digits = 0;
            long frac = 0;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                frac = (frac * 10) + (s[i] - '0');
                digits++;
                i++;
            }

            for (; digits < 6; digits++)
            {
                frac *= 10;
            }

            micros += frac;
        }

        if (i < s.Length && (s[i] == '+' || s[i] == '-'))
        {
            var sign = s[i] == '-' ? -1 : 1;
            var offset = Two(s, i + 1, column) * 3_600_000_000L;
            i += 3;
            if (i < s.Length && s[i] == ':')
            {
                offset += Two(s, i + 1, column) * 60_000_000L;
                i += 3;
            }

            if (i < s.Length && s[i] == ':')
            {
                offset += Two(s, i + 1, column) * 1_000_000L;
                i += 3;
            }

            micros -= sign * offset;
        }

        return i == s.Length ? micros : throw Bad(text.ToString(), column);
    }

    /// <summary>The day number of a <c>yyyy-MM-dd</c> prefix (years 1-9999), or null when it is not one.</summary>
    private static int? IsoDay(ReadOnlySpan<char> s)
    {
        if (s.Length < 10 || s[4] != '-' || s[7] != '-')
        {
            return null;
        }

        var year = 0;
        for (var i = 0; i < 4; i++)
        {
            if (!char.IsAsciiDigit(s[i]))
            {
                return null;
            }

            year = (year * 10) + (s[i] - '0');
        }

        if (!char.IsAsciiDigit(s[5]) || !char.IsAsciiDigit(s[6]) || !char.IsAsciiDigit(s[8]) || !char.IsAsciiDigit(s[9]))
        {
            return null;
        }

        var month = ((s[5] - '0') * 10) + (s[6] - '0');
        var dayOfMonth = ((s[8] - '0') * 10) + (s[9] - '0');
        return year >= 1 && month is >= 1 and <= 12 && dayOfMonth >= 1 && dayOfMonth <= DateTime.DaysInMonth(year, month)
            ? new DateOnly(year, month, dayOfMonth).DayNumber
            : null;
    }

    private static long Two(ReadOnlySpan<char> s, int at, PgColumn column) =>
        at + 2 <= s.Length && char.IsAsciiDigit(s[at]) && char.IsAsciiDigit(s[at + 1]) ? ((s[at] - '0') * 10) + (s[at + 1] - '0') : throw Bad(s.ToString(), column);

    /// <summary>A one-dimensional array literal (<c>{1,NULL,"a b"}</c>) as a list of CLR values for the SDK's array builder.</summary>
    public static List<object?> Array(string text, PgColumn column)
    {
        var s = text.AsSpan();
        if (s.Length > 0 && s[0] == '[')
        {
            // Explicit bounds: [0:2]={...}
            var eq = s.IndexOf('=');
            s = eq < 0 ? throw Bad(text, column) : s[(eq + 1)..];
        }

        if (s.Length < 2 || s[0] != '{' || s[^1] != '}')
        {
            throw Bad(text, column);
        }

        s = s[1..^1];
        var list = new List<object?>();
        if (s.Length == 0)
        {
            return list;
        }

        var sb = new System.Text.StringBuilder();
        var i = 0;
        while (true)
        {
            sb.Clear();
            var quoted = false;
            if (i < s.Length && s[i] == '{')
            {
                throw new ConnectorException(ErrorKind.Fatal, $"column {column.Name} ({column.PgType}) holds a multi-dimensional array, which the connector does not support yet");
            }

            if (i < s.Length && s[i] == '"')
            {
                quoted = true;
                i++;
                while (i < s.Length && s[i] != '"')
                {
                    if (s[i] == '\\')
                    {
                        i++;
                    }

                    if (i < s.Length)
                    {
                        sb.Append(s[i]);
                    }

                    i++;
                }

                i++;
            }
            else
            {
                while (i < s.Length && s[i] != ',')
                {
                    sb.Append(s[i]);
                    i++;
                }
            }

            var element = sb.ToString();
            list.Add(!quoted && string.Equals(element, "NULL", StringComparison.OrdinalIgnoreCase) ? null : Element(element, column));
            if (i >= s.Length)
            {
                break;
            }

            if (s[i] != ',')
            {
                throw Bad(text, column);
            }

            i++;
        }

        return list;
    }

    private static object Element(string text, PgColumn column) => column.ElementKind switch
    {
        ColumnKind.Boolean => ParseBool(text, column),
        ColumnKind.Int16 => short.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
        ColumnKind.Int32 => int.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
        ColumnKind.Int64 => long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
        ColumnKind.Float => float.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        ColumnKind.Double => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        ColumnKind.Decimal => decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture),
        ColumnKind.Binary => Bytea(text, column),
        ColumnKind.Date => DateOnly.FromDayNumber(Days(text, column) + EpochDay),
        ColumnKind.Timestamp => new DateTime(DateTime.UnixEpoch.Ticks + (Micros(text, column) * 10), DateTimeKind.Unspecified),
        ColumnKind.TimestampTz => new DateTime(DateTime.UnixEpoch.Ticks + (Micros(text, column) * 10), DateTimeKind.Utc),
        _ => text,
    };

    private static ConnectorException Bad(string text, PgColumn column) =>
        new(ErrorKind.Fatal, $"column {column.Name} ({column.PgType}): cannot read the value '{(text.Length > 60 ? text[..60] + "..." : text)}'");
}
