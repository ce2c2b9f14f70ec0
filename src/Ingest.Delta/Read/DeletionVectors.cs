using System.Buffers.Binary;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Read;

/// <summary>
/// Loads deletion vectors (PROTOCOL.md "Deletion Vectors"): the descriptor locates the data (inline, or in a <c>.bin</c>
/// file: version byte 1, then per DV int32 BE size, data, int32 BE CRC-32); the data is magic 1681511377 (int32 LE)
/// followed by a RoaringBitmap64 in the "portable" serialization. Values are 0-based row positions in the data file.
/// </summary>
internal static class DeletionVectors
{
    public const int Magic = 1681511377;

    /// <summary>The table-relative or absolute path of an on-disk DV (<c>u</c>: prefix + z85 UUID; <c>p</c>: absolute URI).</summary>
    public static string FilePath(DeletionVectorDescriptor dv)
    {
        switch (dv.StorageType)
        {
            case "u":
            {
                var text = dv.PathOrInlineDv;
                if (text.Length < 20)
                {
                    throw new InvalidDataException($"Deletion vector path '{text}' is shorter than a z85-encoded UUID (20 characters).");
                }

                var prefix = text[..^20];
                var uuid = Z85.Decode(text.AsSpan(text.Length - 20));
                var hex = Convert.ToHexStringLower(uuid);
                var name = $"deletion_vector_{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}.bin";
                return prefix.Length == 0 ? name : prefix + "/" + name;
            }

            case "p":
                return Partitioning.DecodePath(dv.PathOrInlineDv);
            default:
                throw new InvalidDataException($"Deletion vector storage type '{dv.StorageType}' is not a file storage type.");
        }
    }

    /// <summary>The deleted row positions, ascending.</summary>
    public static async Task<long[]> LoadAsync(ILogStore store, DeletionVectorDescriptor dv, string dataFile, CancellationToken ct)
    {
        byte[] data;
        string source;
        if (dv.StorageType == "i")
        {
            source = "inline";
            var decoded = Z85.Decode(dv.PathOrInlineDv);
            if (dv.SizeInBytes > decoded.Length)
            {
                throw new InvalidDataException($"Inline deletion vector of '{dataFile}' decodes to {decoded.Length} bytes; sizeInBytes says {dv.SizeInBytes}.");
            }

            data = decoded.AsSpan(0, dv.SizeInBytes).ToArray();
        }
        else
        {
            var path = FilePath(dv);
            source = path;
            var offset = dv.Offset ?? 1;
            var header = await ReadRangeAsync(store, path, 0, 1, ct).ConfigureAwait(false)
                ?? throw new InvalidDataException($"Deletion vector file '{path}' of '{dataFile}' is missing.");
            if (header[0] != 1)
            {
                throw new InvalidDataException($"Deletion vector file '{path}' has format version {header[0]}; only version 1 exists.");
            }

            var framed = await ReadRangeAsync(store, path, offset, 4 + dv.SizeInBytes + 4, ct).ConfigureAwait(false)
                ?? throw new InvalidDataException($"Deletion vector file '{path}' of '{dataFile}' is missing.");
            var size = BinaryPrimitives.ReadInt32BigEndian(framed);
            if (size != dv.SizeInBytes)
            {
                throw new InvalidDataException($"Deletion vector in '{path}' at offset {offset} has size {size}; the descriptor of '{dataFile}' says {dv.SizeInBytes}.");
            }

            data = framed.AsSpan(4, size).ToArray();
            var crc = BinaryPrimitives.ReadUInt32BigEndian(framed.AsSpan(4 + size));
            if (crc != Crc32(data))
            {
                throw new InvalidDataException($"Deletion vector in '{path}' at offset {offset} fails its CRC-32 check.");
            }
        }

        var rows = Parse(data, source);
        if (rows.Length != dv.Cardinality)
        {
            throw new InvalidDataException($"Deletion vector ({source}) of '{dataFile}' holds {rows.Length} rows; its descriptor says cardinality {dv.Cardinality}.");
        }

        return rows;
    }

    /// <summary>A byte range of a DV file: an absolute local path directly, else through the store.</summary>
    private static async Task<byte[]?> ReadRangeAsync(ILogStore store, string path, long offset, int length, CancellationToken ct)
    {
        try
        {
            return Path.IsPathRooted(path)
                ? await new LocalLogStore(Path.GetDirectoryName(path)!).ReadRangeAsync(Path.GetFileName(path), offset, length, ct).ConfigureAwait(false)
                : await store.ReadRangeAsync(path, offset, length, ct).ConfigureAwait(false);
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException($"Deletion vector file '{path}' is shorter than its descriptor says (offset {offset}, {length} bytes).", ex);
        }
    }

    /// <summary>Parses DV data: the magic number, then a portable RoaringBitmap64.</summary>
    public static long[] Parse(ReadOnlySpan<byte> data, string source)
    {
        try
        {
            if (BinaryPrimitives.ReadInt32LittleEndian(data) != Magic)
            {
                throw new InvalidDataException($"Deletion vector ({source}) does not start with the magic number {Magic}.");
            }

            var pos = 4;
            var buckets = BinaryPrimitives.ReadInt64LittleEndian(data[pos..]);
            pos += 8;
            var result = new List<long>();
            for (long b = 0; b < buckets; b++)
            {
                var high = (long)BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]) << 32;
                pos += 4;
                pos += ReadRoaring32(data[pos..], high, result);
            }

            return result.ToArray();
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new InvalidDataException($"Deletion vector ({source}) is truncated.", ex);
        }
    }

    /// <summary>Reads one 32-bit Roaring bitmap (RoaringFormatSpec, portable); returns the bytes consumed.</summary>
    private static int ReadRoaring32(ReadOnlySpan<byte> data, long high, List<long> into)
    {
        const int SerialCookieNoRuns = 12346;
        const int SerialCookie = 12347;
        const int NoOffsetThreshold = 4;

        var pos = 0;
        var cookie = BinaryPrimitives.ReadInt32LittleEndian(data);
        pos += 4;
        int size;
        ReadOnlySpan<byte> runBitmap = default;
        var hasRuns = (cookie & 0xFFFF) == SerialCookie;
        if (hasRuns)
        {
            size = (int)((uint)cookie >> 16) + 1;
            runBitmap = data.Slice(pos, (size + 7) / 8);
            pos += runBitmap.Length;
        }
        else if (cookie == SerialCookieNoRuns)
        {
            size = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
            pos += 4;
        }
        else
        {
            throw new InvalidDataException($"Roaring bitmap cookie {cookie} is neither {SerialCookieNoRuns} nor {SerialCookie}.");
        }

        var header = data.Slice(pos, size * 4);
        pos += size * 4;
        if (!hasRuns || size >= NoOffsetThreshold)
        {
            pos += size * 4;
        }

        for (var i = 0; i < size; i++)
        {
            var key = (long)BinaryPrimitives.ReadUInt16LittleEndian(header[(i * 4)..]) << 16;
            var cardinality = BinaryPrimitives.ReadUInt16LittleEndian(header[((i * 4) + 2)..]) + 1;
            var baseValue = high | key;
            if (hasRuns && (runBitmap[i / 8] & (1 << (i % 8))) != 0)
            {
                var runs = BinaryPrimitives.ReadUInt16LittleEndian(data[pos..]);
                pos += 2;
                for (var r = 0; r < runs; r++)
                {
                    var start = BinaryPrimitives.ReadUInt16LittleEndian(data[pos..]);
                    var length = BinaryPrimitives.ReadUInt16LittleEndian(data[(pos + 2)..]) + 1;
                    pos += 4;
                    for (var v = 0; v < length; v++)
                    {
                        into.Add(baseValue | (long)(start + v));
                    }
                }
            }
            else if (cardinality <= 4096)
            {
                for (var v = 0; v < cardinality; v++)
                {
                    into.Add(baseValue | BinaryPrimitives.ReadUInt16LittleEndian(data[(pos + (v * 2))..]));
                }

                pos += cardinality * 2;
            }
            else
            {
                for (var w = 0; w < 1024; w++)
                {
                    var word = BinaryPrimitives.ReadUInt64LittleEndian(data[(pos + (w * 8))..]);
                    while (word != 0)
                    {
                        var bit = System.Numerics.BitOperations.TrailingZeroCount(word);
                        into.Add(baseValue | (long)((w * 64) + bit));
                        word &= word - 1;
                    }
                }

                pos += 8192;
            }
        }

        return pos;
    }

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }

    /// <summary>CRC-32 (IEEE, java.util.zip.CRC32) of the DV data.</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }
}
