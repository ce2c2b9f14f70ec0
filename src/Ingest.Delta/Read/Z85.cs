namespace Ingest.Delta.Read;

/// <summary>Z85 (ZeroMQ RFC 32), the text encoding of inline deletion vectors and of the UUID in on-disk DV paths.</summary>
internal static class Z85
{
    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

    private static readonly sbyte[] Digits = BuildDigits();

    private static sbyte[] BuildDigits()
    {
        var d = new sbyte[128];
        Array.Fill(d, (sbyte)-1);
        for (var i = 0; i < Alphabet.Length; i++)
        {
            d[Alphabet[i]] = (sbyte)i;
        }

        return d;
    }

    /// <summary>Decodes <paramref name="text"/> (a multiple of 5 characters) into 4 bytes per 5 characters.</summary>
    public static byte[] Decode(ReadOnlySpan<char> text)
    {
        if (text.Length % 5 != 0)
        {
            throw new FormatException($"Z85 text has {text.Length} characters; it must be a multiple of 5.");
        }

        var result = new byte[text.Length / 5 * 4];
        for (int i = 0, o = 0; i < text.Length; i += 5, o += 4)
        {
            ulong value = 0;
            for (var j = 0; j < 5; j++)
            {
                var c = text[i + j];
                var digit = c < 128 ? Digits[c] : -1;
                if (digit < 0)
                {
                    throw new FormatException($"'{c}' at position {i + j} is not a Z85 character.");
                }

                value = (value * 85) + (ulong)digit;
            }

            if (value > uint.MaxValue)
            {
                throw new FormatException($"Z85 group at position {i} exceeds 32 bits.");
            }

            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(result.AsSpan(o), (uint)value);
        }

        return result;
    }

    /// <summary>Encodes bytes (a multiple of 4) as Z85; used by tests and writers of DV paths.</summary>
    public static string Encode(ReadOnlySpan<byte> data)
    {
        if (data.Length % 4 != 0)
        {
            throw new ArgumentException($"Z85 encodes multiples of 4 bytes; got {data.Length}.", nameof(data));
        }

        var chars = new char[data.Length / 4 * 5];
        for (int i = 0, o = 0; i < data.Length; i += 4, o += 5)
        {
            var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            for (var j = 4; j >= 0; j--)
            {
                chars[o + j] = Alphabet[(int)(value % 85)];
                value /= 85;
            }
        }

        return new string(chars);
    }
}
