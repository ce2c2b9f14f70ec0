using System.Globalization;
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

    private static bool ParseBool(string text, PgColumn column) => text switch
    {
        "t" => true,
        "f" => false,
        _ => throw Bad(text, column),
    };

    /// <summary>The unscaled value of a numeric text at the column's scale, rounded half away from zero (PostgreSQL's rule).</summary>
    public static Int128 Unscaled(string text, PgColumn column)
    {
        var s = text.AsSpan();
        var negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s.Length == 0 || s.Contains('e') || s.Contains('E') || !char.IsAsciiDigit(s[0]) && s[0] != '.')
        {
            throw new ConnectorException(ErrorKind.Fatal,
                $"column {column.Name} ({column.PgType}) holds '{text}', which {column.Type} cannot represent; set numericMapping to string or change the column type");
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
                    throw Bad(text, column);
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
            throw new ConnectorException(ErrorKind.Fatal, $"column {column.Name} ({column.PgType}) holds {text}, which does not fit {column.Type}; set numericMapping to string");
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
    public static long Micros(string text, PgColumn column)
    {
        switch (text)
        {
            case "infinity": return InfinityMicros;
            case "-infinity": return MinusInfinityMicros;
        }

        // yyyy-MM-dd HH:mm:ss[.ffffff][(+|-)HH[:MM[:SS]]]
        var s = text.AsSpan();
        if (s.Length < 19 || s[10] != ' ' || !DateOnly.TryParseExact(s[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            throw Bad(text, column);
        }

        var micros = ((date.DayNumber - EpochDay) * MicrosPerDay)
            + (Two(s, 11, text, column) * 3_600_000_000L) + (Two(s, 14, text, column) * 60_000_000L) + (Two(s, 17, text, column) * 1_000_000L);
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
            var offset = Two(s, i + 1, text, column) * 3_600_000_000L;
            i += 3;
            if (i < s.Length && s[i] == ':')
            {
                offset += Two(s, i + 1, text, column) * 60_000_000L;
                i += 3;
            }

            if (i < s.Length && s[i] == ':')
            {
                offset += Two(s, i + 1, text, column) * 1_000_000L;
                i += 3;
            }

            micros -= sign * offset;
        }

        return i == s.Length ? micros : throw Bad(text, column);
    }

    private static long Two(ReadOnlySpan<char> s, int at, string text, PgColumn column) =>
        at + 2 <= s.Length && char.IsAsciiDigit(s[at]) && char.IsAsciiDigit(s[at + 1]) ? ((s[at] - '0') * 10) + (s[at + 1] - '0') : throw Bad(text, column);

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
