using System.Buffers;
using System.Buffers.Binary;
using Ingest.Delta.Log;
using Ingest.Delta.Read;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Operations;

/// <summary>
/// Writes deletion vectors (PROTOCOL.md "Deletion Vectors", "Deletion Vector Format"): the rows of each data file are
/// serialized as magic 1681511377 (int32 LE) + a RoaringBitmap64 in the portable format (int64 LE bucket count, then
/// per bucket the high 32 bits as uint32 LE and a 32-bit Roaring bitmap without run containers); all DVs of one commit
/// go into one <c>deletion_vector_&lt;uuid&gt;.bin</c> at the table root: version byte 1, then per DV int32 BE size, the
/// data, int32 BE CRC-32 of the data. Descriptors are storage type <c>u</c> (z85 of the UUID's 16 bytes) with the
/// offset of the DV's size field.
/// </summary>
internal sealed class DeletionVectorWriter
{
    private readonly ArrayBufferWriter<byte> _file = new();
    private readonly Guid _id = Guid.NewGuid();

    public DeletionVectorWriter() => _file.Write([(byte)1]);

    /// <summary>Whether any DV was added.</summary>
    public bool IsEmpty => _file.WrittenCount == 1;

    /// <summary>The table-relative path of the DV file.</summary>
    public string RelativePath => $"deletion_vector_{_id:D}.bin";

    /// <summary>Adds the DV of one data file (row positions, ascending, distinct); returns its descriptor.</summary>
    public DeletionVectorDescriptor Add(ReadOnlySpan<long> rows)
    {
        var data = Serialize(rows);
        var offset = _file.WrittenCount;
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        _file.Write(word);
        _file.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, DeletionVectors.Crc32(data));
        _file.Write(word);
        return new DeletionVectorDescriptor("u", Z85.Encode(_id.ToByteArray(bigEndian: true)), offset, data.Length, rows.Length);
    }

    /// <summary>Publishes the DV file (never overwriting: the name is new).</summary>
    public async Task WriteAsync(ILogStore store, CancellationToken ct)
    {
        if (!await store.PutIfAbsentAsync(RelativePath, _file.WrittenMemory, ct).ConfigureAwait(false))
        {
            throw new IOException($"Deletion vector file '{RelativePath}' exists already in '{store.Root}'.");
        }
    }

    /// <summary>The DV data of <paramref name="rows"/> (ascending, distinct, non-negative).</summary>
    public static byte[] Serialize(ReadOnlySpan<long> rows)
    {
        using var ms = new MemoryStream(16 + (rows.Length * 2));
        Span<byte> b8 = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(b8, DeletionVectors.Magic);
        ms.Write(b8[..4]);

        var buckets = 0L;
        var prevHigh = -1L;
        for (var i = 0; i < rows.Length; i++)
        {
            if (rows[i] < 0 || (i > 0 && rows[i] <= rows[i - 1]))
            {
                throw new ArgumentException($"Deletion vector rows must be ascending, distinct and non-negative (row {i}: {rows[i]}).", nameof(rows));
            }

            if (rows[i] >> 32 != prevHigh)
            {
                prevHigh = rows[i] >> 32;
                buckets++;
            }
        }

        BinaryPrimitives.WriteInt64LittleEndian(b8, buckets);
        ms.Write(b8);
        var start = 0;
        while (start < rows.Length)
        {
            var high = rows[start] >> 32;
            var end = start;
            while (end < rows.Length && rows[end] >> 32 == high)
            {
                end++;
            }

            BinaryPrimitives.WriteUInt32LittleEndian(b8, (uint)high);
            ms.Write(b8[..4]);
            WriteRoaring32(ms, rows[start..end]);
            start = end;
        }

        return ms.ToArray();
    }

    /// <summary>One 32-bit Roaring bitmap (RoaringFormatSpec, cookie 12346: array containers up to 4096 values, bitmap containers above).</summary>
    private static void WriteRoaring32(MemoryStream ms, ReadOnlySpan<long> rows)
    {
        const int SerialCookieNoRuns = 12346;
        var containers = new List<(ushort Key, int Start, int Count)>();
        for (var i = 0; i < rows.Length;)
        {
            var key = (ushort)((rows[i] >> 16) & 0xFFFF);
            var j = i;
            while (j < rows.Length && (ushort)((rows[j] >> 16) & 0xFFFF) == key)
            {
                j++;
            }

            containers.Add((key, i, j - i));
            i = j;
        }

        Span<byte> b4 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b4, SerialCookieNoRuns);
        ms.Write(b4);
        BinaryPrimitives.WriteInt32LittleEndian(b4, containers.Count);
        ms.Write(b4);
        foreach (var (key, _, count) in containers)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b4, key);
            BinaryPrimitives.WriteUInt16LittleEndian(b4[2..], (ushort)(count - 1));
            ms.Write(b4);
        }

        // Offsets from the start of this bitmap's serialization to each container.
        var offset = 8 + (containers.Count * 8);
        foreach (var (_, _, count) in containers)
        {
            BinaryPrimitives.WriteInt32LittleEndian(b4, offset);
            ms.Write(b4);
            offset += count <= 4096 ? count * 2 : 8192;
        }

        Span<byte> b2 = stackalloc byte[2];
        var bitmap = new ulong[1024];
        var bytes = new byte[8192];
        foreach (var (_, s, count) in containers)
        {
            if (count <= 4096)
            {
                for (var i = s; i < s + count; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(b2, (ushort)(rows[i] & 0xFFFF));
                    ms.Write(b2);
                }
            }
            else
            {
                Array.Clear(bitmap);
                for (var i = s; i < s + count; i++)
                {
                    var low = (int)(rows[i] & 0xFFFF);
                    bitmap[low >> 6] |= 1UL << (low & 63);
                }

                for (var w = 0; w < 1024; w++)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(w * 8), bitmap[w]);
                }

                ms.Write(bytes);
            }
        }
    }
}
