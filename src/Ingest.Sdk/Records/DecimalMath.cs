using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Ingest.Sdk.Records;

/// <summary>Exact conversions between decimals and their unscaled 128-bit form (value = unscaled × 10^-scale).</summary>
public static class DecimalMath
{
    private static readonly Int128[] Powers = BuildPowers();

    private static Int128[] BuildPowers()
    {
        var p = new Int128[39];
        p[0] = 1;
        for (var i = 1; i < p.Length; i++)
        {
            p[i] = p[i - 1] * 10;
        }

        return p;
    }

    /// <summary>10^n for n in 0..38.</summary>
    public static Int128 Pow10(int n) => Powers[n];

    /// <summary>The unscaled value of <paramref name="value"/> at <paramref name="scale"/>, rounding half away from zero.</summary>
    public static Int128 ToUnscaled(decimal value, int scale)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        var mantissa = ((Int128)(uint)bits[2] << 64) | ((Int128)(uint)bits[1] << 32) | (uint)bits[0];
        var valueScale = (bits[3] >> 16) & 0xFF;
        var negative = bits[3] < 0;
        Int128 unscaled;
        if (valueScale <= scale)
        {
            unscaled = mantissa * Powers[scale - valueScale];
        }
        else
        {
            var div = Powers[valueScale - scale];
            unscaled = Int128.DivRem(mantissa, div) is var (q, r) && r * 2 >= div ? q + 1 : q;
        }

        return negative ? -unscaled : unscaled;
    }

    /// <summary>Reads a 16-byte little-endian two's complement unscaled value (Arrow's Decimal128 layout).</summary>
    public static Int128 ReadUnscaled(ReadOnlySpan<byte> littleEndian16) => BinaryPrimitives.ReadInt128LittleEndian(littleEndian16);

    /// <summary>The value as <see cref="decimal"/> when it fits (28 significant digits or fewer), else null.</summary>
    public static decimal? TryToDecimal(Int128 unscaled, int scale)
    {
        var negative = unscaled < 0;
        var mag = negative ? -unscaled : unscaled;
        while (scale > 28 || mag > (Int128)decimal.MaxValue)
        {
            // Only exact when trailing zeros are dropped.
            if (scale == 0 || mag % 10 != 0)
            {
                return null;
            }

            mag /= 10;
            scale--;
        }

        var lo = (int)(uint)(mag & 0xFFFFFFFF);
        var mid = (int)(uint)((mag >> 32) & 0xFFFFFFFF);
        var hi = (int)(uint)((mag >> 64) & 0xFFFFFFFF);
        return new decimal(lo, mid, hi, negative, (byte)scale);
    }

    /// <summary>The exact decimal text, invariant culture: <c>-12.340</c> for (-12340, 3).</summary>
    public static string ToText(Int128 unscaled, int scale)
    {
        var negative = unscaled < 0;
        // -(MinValue) overflows Int128, so take the magnitude through UInt128.
        var magnitude = negative ? (UInt128)(-(unscaled + 1)) + 1 : (UInt128)unscaled;
        var digits = magnitude.ToString(CultureInfo.InvariantCulture);

        var sb = new StringBuilder(digits.Length + 3);
        if (negative)
        {
            sb.Append('-');
        }

        if (scale == 0)
        {
            sb.Append(digits);
        }
        else if (digits.Length > scale)
        {
            sb.Append(digits, 0, digits.Length - scale).Append('.').Append(digits, digits.Length - scale, scale);
        }
        else
        {
            sb.Append("0.").Append('0', scale - digits.Length).Append(digits);
        }

        return sb.ToString();
    }
}
