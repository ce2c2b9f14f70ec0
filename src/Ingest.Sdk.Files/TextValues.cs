using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>
/// Parses UTF-8 text into typed column values and writes them straight into a <see cref="ChangeBatchBuilder"/>
/// (no boxing). The same rules decide inference (<see cref="ColumnInference"/>): a value inferred as a type
/// always parses as that type.
/// </summary>
internal static class TextValues
{
    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    /// <summary>Writes <paramref name="text"/> into column <paramref name="column"/> of type <paramref name="type"/>; false (nothing written) when it does not fit.</summary>
    public static bool TryWrite(ChangeBatchBuilder builder, int column, DataType type, ReadOnlySpan<byte> text)
    {
        switch (type)
        {
            case PrimitiveType p:
                switch (p.Kind)
                {
                    case PrimitiveKind.String:
                        builder.SetStringUtf8(column, text);
                        return true;
                    case PrimitiveKind.Int64:
                        if (TryLong(text, out var l))
                        {
                            builder.SetInt64(column, l);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Int32:
                        if (TryLong(text, out var i) && i is >= int.MinValue and <= int.MaxValue)
                        {
                            builder.SetInt32(column, (int)i);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Int16:
                        if (TryLong(text, out var s) && s is >= short.MinValue and <= short.MaxValue)
                        {
                            builder.SetInt16(column, (short)s);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Int8:
                        if (TryLong(text, out var b) && b is >= sbyte.MinValue and <= sbyte.MaxValue)
                        {
                            builder.SetInt8(column, (sbyte)b);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Double:
                        if (TryDouble(text, out var d))
                        {
                            builder.SetDouble(column, d);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Float:
                        if (TryDouble(text, out var f) && (float.IsFinite((float)f) || !double.IsFinite(f)))
                        {
                            builder.SetFloat(column, (float)f);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Boolean:
                        if (TryBool(text, out var bo))
                        {
                            builder.SetBoolean(column, bo);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Date:
                        if (TryDate(text, out var day))
                        {
                            builder.SetDate(column, day);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Timestamp:
                        if (TryTimestamp(text, out var us))
                        {
                            builder.SetTimestampMicros(column, us);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.TimestampNtz:
                        if (TryTimestampNtz(text, out var ntz))
                        {
                            builder.SetTimestampMicros(column, ntz);
                            return true;
                        }

                        return false;
                    case PrimitiveKind.Binary:
                        builder.SetBinary(column, text);
                        return true;
                    default:
                        return false;
                }

            case DecimalType dt:
                if (TryDecimal(text, out var unscaled, out var intDigits, out var scale) && scale <= dt.Scale && intDigits <= dt.Precision - dt.Scale)
                {
                    builder.SetDecimalUnscaled(column, unscaled * DecimalPow10(dt.Scale - scale));
                    return true;
                }

                return false;
            default:
                // Nested types are not read from text: store them as strings (the schema never infers them).
                return false;
        }
    }

    private static Int128 DecimalPow10(int n)
    {
        Int128 r = 1;
        for (var i = 0; i < n; i++)
        {
            r *= 10;
        }

        return r;
    }

    public static bool TryLong(ReadOnlySpan<byte> text, out long value) =>
        Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length && text.Length > 0 && text[0] != (byte)'+';

    public static bool TryDouble(ReadOnlySpan<byte> text, out double value)
    {
        if (Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length && text.Length > 0)
        {
            return true;
        }

        // NaN and infinities as Spark writes them.
        if (text.SequenceEqual("NaN"u8))
        {
            value = double.NaN;
            return true;
        }

        if (text.SequenceEqual("Infinity"u8) || text.SequenceEqual("inf"u8))
        {
            value = double.PositiveInfinity;
            return true;
        }

        if (text.SequenceEqual("-Infinity"u8) || text.SequenceEqual("-inf"u8))
        {
            value = double.NegativeInfinity;
            return true;
        }

        return false;
    }

    public static bool TryBool(ReadOnlySpan<byte> text, out bool value)
    {
        if (Ascii.EqualsIgnoreCase(text, "true"u8))
        {
            value = true;
            return true;
        }

        value = false;
        return Ascii.EqualsIgnoreCase(text, "false"u8);
    }

    /// <summary>A plain decimal number: optional sign, digits, optional point and digits; at most 38 digits.</summary>
    public static bool TryDecimal(ReadOnlySpan<byte> text, out Int128 unscaled, out int intDigits, out int scale)
    {
        unscaled = 0;
        intDigits = 0;
        scale = 0;
        var i = 0;
        var negative = false;
        if (text.Length > 0 && text[0] == (byte)'-')
        {
            negative = true;
            i = 1;
        }

        var digits = 0;
        var point = false;
        var any = false;
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (c == (byte)'.' && !point)
            {
                point = true;
                continue;
            }

            var d = c - (byte)'0';
            if ((uint)d > 9)
            {
                return false;
            }

            any = true;
            if (digits == 0 && d == 0 && !point)
            {
                continue; // leading zeros carry no precision
            }

            if (++digits > 38)
            {
                return false;
            }

            unscaled = unscaled * 10 + d;
            if (point)
            {
                scale++;
            }
            else
            {
                intDigits++;
            }
        }

        if (!any)
        {
            return false;
        }

        if (negative)
        {
            unscaled = -unscaled;
        }

        return true;
    }

    /// <summary>yyyy-MM-dd.</summary>
    public static bool TryDate(ReadOnlySpan<byte> text, out int daysSinceEpoch)
    {
        daysSinceEpoch = 0;
        if (text.Length != 10 || text[4] != (byte)'-' || text[7] != (byte)'-'
            || !Digits(text[..4], out var y) || !Digits(text.Slice(5, 2), out var m) || !Digits(text.Slice(8, 2), out var d)
            || y < 1 || m is < 1 or > 12 || d < 1 || d > DateTime.DaysInMonth(y, m))
        {
            return false;
        }

        daysSinceEpoch = new DateOnly(y, m, d).DayNumber - EpochDay;
        return true;
    }

    /// <summary>An ISO 8601 date and time with <c>T</c> or a space, without zone: wall-clock microseconds since 1970-01-01.</summary>
    public static bool TryTimestampNtz(ReadOnlySpan<byte> text, out long micros)
    {
        micros = 0;
        if (!TryDateTime(text, out var ticks, out var rest) || rest.Length != 0)
        {
            return false;
        }

        micros = (ticks - DateTime.UnixEpoch.Ticks) / 10;
        return true;
    }

    /// <summary>An ISO 8601 date and time with a zone (<c>Z</c> or <c>±hh:mm</c>): UTC microseconds since 1970-01-01.</summary>
    public static bool TryTimestamp(ReadOnlySpan<byte> text, out long micros)
    {
        micros = 0;
        if (!TryDateTime(text, out var ticks, out var rest) || rest.Length == 0)
        {
            return false;
        }

        long offsetTicks;
        if (rest.Length == 1 && (rest[0] == (byte)'Z' || rest[0] == (byte)'z'))
        {
            offsetTicks = 0;
        }
        else if (rest.Length is 6 or 5 && (rest[0] == (byte)'+' || rest[0] == (byte)'-'))
        {
            var hh = rest.Slice(1, 2);
            var mm = rest.Length == 6 ? rest.Slice(4, 2) : rest.Slice(3, 2);
            if ((rest.Length == 6 && rest[3] != (byte)':') || !Digits(hh, out var h) || !Digits(mm, out var mi) || h > 18 || mi > 59)
            {
                return false;
            }

            offsetTicks = (h * 60L + mi) * TimeSpan.TicksPerMinute * (rest[0] == (byte)'-' ? -1 : 1);
        }
        else
        {
            return false;
        }

        micros = (ticks - offsetTicks - DateTime.UnixEpoch.Ticks) / 10;
        return true;
    }

    private static bool TryDateTime(ReadOnlySpan<byte> text, out long ticks, out ReadOnlySpan<byte> rest)
    {
        ticks = 0;
        rest = default;
        if (text.Length < 19 || (text[10] != (byte)'T' && text[10] != (byte)' ') || text[13] != (byte)':' || text[16] != (byte)':'
            || !TryDate(text[..10], out var days)
            || !Digits(text.Slice(11, 2), out var h) || !Digits(text.Slice(14, 2), out var mi) || !Digits(text.Slice(17, 2), out var s)
            || h > 23 || mi > 59 || s > 59)
        {
            return false;
        }

        long fraction = 0;
        var i = 19;
        if (i < text.Length && text[i] == (byte)'.')
        {
            i++;
            var start = i;
            long scale = TimeSpan.TicksPerSecond;
            while (i < text.Length && (uint)(text[i] - '0') <= 9)
            {
                if (i - start < 7)
                {
                    scale /= 10;
                    fraction += (text[i] - '0') * scale;
                }

                i++;
            }

            if (i == start)
            {
                return false;
            }
        }

        ticks = DateTime.UnixEpoch.Ticks + days * TimeSpan.TicksPerDay + ((h * 60L + mi) * 60 + s) * TimeSpan.TicksPerSecond + fraction;
        rest = text[i..];
        return true;
    }

    private static bool Digits(ReadOnlySpan<byte> text, out int value)
    {
        value = 0;
        foreach (var c in text)
        {
            var d = c - '0';
            if ((uint)d > 9)
            {
                return false;
            }

            value = value * 10 + d;
        }

        return text.Length > 0;
    }

    /// <summary>Invariant text of a number, for messages.</summary>
    public static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
