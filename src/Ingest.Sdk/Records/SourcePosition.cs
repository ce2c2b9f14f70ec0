using System.Globalization;

namespace Ingest.Sdk.Records;

/// <summary>
/// Where a change sits in its source, as two unsigned 64-bit numbers compared in order
/// (<see cref="High"/> first). Within one stream, positions strictly increase in the order the
/// connector emits changes, across restarts too: a change re-emitted after a resume carries the
/// same position as the first time. The sink relies on this to skip what a table already holds.
/// </summary>
/// <remarks>
/// Examples: the sample connector uses (event sequence, 0); a PostgreSQL connector
/// (commit LSN, index of the change within its transaction). In the lake the position is stored
/// as 32 hexadecimal digits, so string order equals position order.
/// </remarks>
/// <param name="High">The most significant part.</param>
/// <param name="Low">The least significant part.</param>
public readonly record struct SourcePosition(ulong High, ulong Low) : IComparable<SourcePosition>
{
    /// <summary>The position before every change.</summary>
    public static SourcePosition Zero => default;

    /// <inheritdoc />
    public int CompareTo(SourcePosition other)
    {
        var c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }

    /// <summary>Orders positions.</summary>
    public static bool operator <(SourcePosition a, SourcePosition b) => a.CompareTo(b) < 0;
    /// <summary>Orders positions.</summary>
    public static bool operator >(SourcePosition a, SourcePosition b) => a.CompareTo(b) > 0;
    /// <summary>Orders positions.</summary>
    public static bool operator <=(SourcePosition a, SourcePosition b) => a.CompareTo(b) <= 0;
    /// <summary>Orders positions.</summary>
    public static bool operator >=(SourcePosition a, SourcePosition b) => a.CompareTo(b) >= 0;

    /// <summary>32 lower-case hexadecimal digits; string order equals position order.</summary>
    public override string ToString() => string.Create(32, this, static (span, p) =>
    {
        p.High.TryFormat(span[..16], out _, "x16", CultureInfo.InvariantCulture);
        p.Low.TryFormat(span[16..], out _, "x16", CultureInfo.InvariantCulture);
    });

    /// <summary>Writes the 32 hexadecimal digits into <paramref name="destination"/> (at least 32 chars).</summary>
    public void Format(Span<char> destination)
    {
        High.TryFormat(destination[..16], out _, "x16", CultureInfo.InvariantCulture);
        Low.TryFormat(destination[16..32], out _, "x16", CultureInfo.InvariantCulture);
    }

    /// <summary>Parses the form written by <see cref="ToString"/>.</summary>
    /// <exception cref="FormatException">Not 32 hexadecimal digits.</exception>
    public static SourcePosition Parse(ReadOnlySpan<char> text)
    {
        if (text.Length != 32
            || !ulong.TryParse(text[..16], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var high)
            || !ulong.TryParse(text[16..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var low))
        {
            throw new FormatException($"'{text.ToString()}' is not a source position (32 hexadecimal digits).");
        }

        return new SourcePosition(high, low);
    }
}
