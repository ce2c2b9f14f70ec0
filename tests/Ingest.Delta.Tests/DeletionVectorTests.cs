using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Read;
using static Ingest.Delta.Tests.HandWrittenTable;

namespace Ingest.Delta.Tests;

public sealed class DeletionVectorTests
{
    [Fact]
    public void Z85_test_vector_decodes_to_the_deleted_rows_3_4_7_11_18_29()
    {
        var data = Z85.Decode("^Bg9^0rr910000000000iXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L");

        Assert.Equal(44, data.Length);
        Assert.Equal([3, 4, 7, 11, 18, 29], DeletionVectors.Parse(data, "test vector"));
    }

    [Fact]
    public void Z85_encode_and_decode_round_trip()
    {
        var bytes = Guid.NewGuid().ToByteArray();

        Assert.Equal(bytes, Z85.Decode(Z85.Encode(bytes)));
    }

    [Fact]
    public void Roaring_run_and_bitmap_containers_are_read()
    {
        // One run container (rows 10..19) and, in a second bucket, a bitmap container (5000 rows).
        var bitmapRows = Enumerable.Range(0, 5000).Select(i => (long)(i * 3)).ToArray();
        var data = new List<byte>();
        data.AddRange(Le32(DeletionVectors.Magic));
        data.AddRange(Le64(2));
        data.AddRange(Le32(0));
        // Cookie 12347 with one container; run bitmap; header (key 0, card-1 = 9); one run (start 10, length-1 9).
        data.AddRange(Le32(12347));
        data.Add(1);
        data.AddRange(Le16(0));
        data.AddRange(Le16(9));
        data.AddRange(Le16(1));
        data.AddRange(Le16(10));
        data.AddRange(Le16(9));
        data.AddRange(Le32(1));
        // Cookie 12346, one container with 5000 values -> bitmap of 1024 words.
        data.AddRange(Le32(12346));
        data.AddRange(Le32(1));
        data.AddRange(Le16(0));
        data.AddRange(Le16(4999));
        data.AddRange(Le32(16));
        var words = new ulong[1024];
        foreach (var r in bitmapRows)
        {
            words[r / 64] |= 1UL << (int)(r % 64);
        }

        foreach (var w in words)
        {
            data.AddRange(Le64((long)w));
        }

        var rows = DeletionVectors.Parse(data.ToArray(), "test");

        var expected = Enumerable.Range(10, 10).Select(i => (long)i).Concat(bitmapRows.Select(r => (1L << 32) | r)).ToArray();
        Assert.Equal(expected, rows);
    }

    [Fact]
    public async Task Scan_drops_rows_of_on_disk_inline_and_absolute_deletion_vectors_and_time_travel_sees_them_added()
    {
        using var t = new HandWrittenTable();
        var schema = Schema(Field("id", "long"));
        var s1 = t.WriteParquet("f1.parquet", Ids(0, 30));
        var s2 = t.WriteParquet("f2.parquet", Ids(100, 30));
        var s3 = t.WriteParquet("f3.parquet", Ids(200, 30));
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors"], ["deletionVectors"]), Metadata(schema, [], new() { ["delta.enableDeletionVectors"] = "true" }),
            Add("f1.parquet", s1, numRecords: 30), Add("f2.parquet", s2, numRecords: 30), Add("f3.parquet", s3, numRecords: 30));

        // f1: a .bin under prefix "ab" holding two DVs; f2: inline; f3: absolute path.
        var uuid = Guid.NewGuid();
        var first = Dv([3, 4, 7, 11, 18, 29]);
        var second = Dv([0, 3, 4, 7, 11, 18, 29]);
        var (bin, offsets) = Bin(first, second);
        Directory.CreateDirectory(Path.Combine(t.Path, "ab"));
        await File.WriteAllBytesAsync(Path.Combine(t.Path, "ab", $"deletion_vector_{uuid}.bin"), bin);
        var z85Uuid = Z85.Encode(Convert.FromHexString(uuid.ToString("N")));
        var dvU1 = Descriptor("u", "ab" + z85Uuid, offsets[0], first.Length, 6);
        var dvU2 = Descriptor("u", "ab" + z85Uuid, offsets[1], second.Length, 7);

        var inline = Dv([0, 29]);
        var padded = new byte[(inline.Length + 3) / 4 * 4];
        inline.CopyTo(padded, 0);
        var dvI = Descriptor("i", Z85.Encode(padded), null, inline.Length, 2);

        var absolute = Path.Combine(t.Path, "elsewhere", "dv.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(absolute)!);
        var pData = Dv([5]);
        await File.WriteAllBytesAsync(absolute, Bin(pData).Bin);
        var dvP = Descriptor("p", new Uri(absolute).AbsoluteUri, 1, pData.Length, 1);

        t.Commit(1, CommitInfo(),
            Remove("f1.parquet"), Add("f1.parquet", s1, deletionVector: dvU1, numRecords: 30),
            Remove("f2.parquet"), Add("f2.parquet", s2, deletionVector: dvI, numRecords: 30),
            Remove("f3.parquet"), Add("f3.parquet", s3, deletionVector: dvP, numRecords: 30));
        // The DV of f1 grows: remove and add keyed by (path, dvId).
        t.Commit(2, CommitInfo(), Remove("f1.parquet", dvU1.DeepClone().AsObject()), Add("f1.parquet", s1, deletionVector: dvU2, numRecords: 30));

        Assert.Equal(90, (await t.ReadLongsAsync("id", 0)).Count);
        var v1 = await t.ReadLongsAsync("id", 1);
        var expectedV1 = Enumerable.Range(0, 30).Where(i => i is not (3 or 4 or 7 or 11 or 18 or 29))
            .Concat(Enumerable.Range(101, 28)).Concat(Enumerable.Range(200, 30).Where(i => i != 205)).Select(i => (long)i).Order().ToList();
        Assert.Equal(expectedV1, v1);
        var v2 = await t.ReadLongsAsync("id");
        Assert.Equal(expectedV1.Where(i => i != 0).ToList(), v2);
    }

    [Fact]
    public async Task Remove_with_another_deletion_vector_keeps_the_live_file()
    {
        using var t = new HandWrittenTable();
        var size = t.WriteParquet("f.parquet", Ids(0, 10));
        var inline = Dv([1]);
        var padded = new byte[(inline.Length + 3) / 4 * 4];
        inline.CopyTo(padded, 0);
        var dv = Descriptor("i", Z85.Encode(padded), null, inline.Length, 1);
        var other = Descriptor("u", "0000000000000000000000", 1, 10, 1);
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors"], ["deletionVectors"]), Metadata(Schema(Field("id", "long")), []), Add("f.parquet", size, deletionVector: dv));
        t.Commit(1, CommitInfo(), Remove("f.parquet", other));

        Assert.Equal([0, 2, 3, 4, 5, 6, 7, 8, 9], await t.ReadLongsAsync("id"));
    }

    [Fact]
    public async Task Deletion_vector_with_a_bad_checksum_is_refused_naming_the_file()
    {
        using var t = new HandWrittenTable();
        var size = t.WriteParquet("f.parquet", Ids(0, 10));
        var data = Dv([1, 2]);
        var (bin, offsets) = Bin(data);
        bin[^1] ^= 0xFF;
        var uuid = Guid.NewGuid();
        await File.WriteAllBytesAsync(Path.Combine(t.Path, $"deletion_vector_{uuid}.bin"), bin);
        var dv = Descriptor("u", Z85.Encode(Convert.FromHexString(uuid.ToString("N"))), offsets[0], data.Length, 2);
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors"], ["deletionVectors"]), Metadata(Schema(Field("id", "long")), []), Add("f.parquet", size, deletionVector: dv));

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => t.ReadLongsAsync("id"));
        Assert.Contains($"deletion_vector_{uuid}.bin", ex.Message, StringComparison.Ordinal);
        Assert.Contains("CRC-32", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deletion_vector_spanning_several_batches_and_containers_drops_exactly_its_rows()
    {
        using var t = new HandWrittenTable();
        const int n = 150_000;
        var size = t.WriteParquet("big.parquet", Ids(0, n));
        // Rows around the 65,536-row batch and container boundaries, a dense run, and every 997th row.
        var deleted = new SortedSet<int> { 0, 65_535, 65_536, 65_537, 131_071, 131_072, n - 1 };
        for (var r = 70_000; r < 73_000; r++)
        {
            deleted.Add(r);
        }

        for (var r = 0; r < n; r += 997)
        {
            deleted.Add(r);
        }

        var data = Dv(deleted.ToArray());
        var (bin, offsets) = Bin(data);
        var uuid = Guid.NewGuid();
        await File.WriteAllBytesAsync(Path.Combine(t.Path, $"deletion_vector_{uuid}.bin"), bin);
        var dv = Descriptor("u", Z85.Encode(Convert.FromHexString(uuid.ToString("N"))), offsets[0], data.Length, deleted.Count);
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors"], ["deletionVectors"]), Metadata(Schema(Field("id", "long")), []), Add("big.parquet", size, deletionVector: dv, numRecords: n));

        var ids = await t.ReadLongsAsync("id");

        Assert.Equal(Enumerable.Range(0, n).Where(i => !deleted.Contains(i)).Select(i => (long)i).ToList(), ids);
        var table = (await DeltaTable.TryOpenAsync(t.Path, CancellationToken.None))!;
        Assert.Equal(n - deleted.Count, table.Snapshot.RowCount);
    }

    [Fact]
    public async Task Checkpoint_written_by_this_library_keeps_deletion_vectors()
    {
        using var t = new HandWrittenTable();
        var size = t.WriteParquet("f.parquet", Ids(0, 10));
        var data = Dv([1, 5]);
        var (bin, offsets) = Bin(data);
        var uuid = Guid.NewGuid();
        await File.WriteAllBytesAsync(Path.Combine(t.Path, $"deletion_vector_{uuid}.bin"), bin);
        var dv = Descriptor("u", Z85.Encode(Convert.FromHexString(uuid.ToString("N"))), offsets[0], data.Length, 2);
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors"], ["deletionVectors"]), Metadata(Schema(Field("id", "long")), [], new() { ["delta.checkpointInterval"] = "1" }), Add("f.parquet", size, numRecords: 10));
        t.Commit(1, CommitInfo(), Remove("f.parquet"), Add("f.parquet", size, deletionVector: dv, numRecords: 10));
        var table = (await DeltaTable.TryOpenAsync(t.Path, CancellationToken.None))!;
        await table.AppendAsync([Ids(100, 1)], new CommitOptions("WRITE"), CancellationToken.None);
        Assert.True(File.Exists(t.LogPath("00000000000000000002.checkpoint.parquet")));
        for (var v = 0; v <= 2; v++)
        {
            File.Delete(t.LogPath(CommitName(v)));
        }

        Assert.Equal([0, 2, 3, 4, 6, 7, 8, 9, 100], await t.ReadLongsAsync("id"));
    }

    internal static RecordBatch Ids(long start, int count)
    {
        var b = new Int64Array.Builder();
        for (var i = 0; i < count; i++)
        {
            b.Append(start + i);
        }

        var schema = new Apache.Arrow.Schema.Builder().Field(new Apache.Arrow.Field("id", Apache.Arrow.Types.Int64Type.Default, true)).Build();
        return new RecordBatch(schema, [b.Build()], count);
    }

    /// <summary>DV data: magic, then a RoaringBitmap64 with one bucket of array containers (ascending rows, at most 4096 per 65,536).</summary>
    internal static byte[] Dv(int[] rows)
    {
        var containers = rows.GroupBy(r => r >> 16).Select(g => (Key: g.Key, Values: g.Select(r => r & 0xFFFF).ToArray())).ToList();
        var data = new List<byte>();
        data.AddRange(Le32(DeletionVectors.Magic));
        data.AddRange(Le64(1));
        data.AddRange(Le32(0));
        data.AddRange(Le32(12346));
        data.AddRange(Le32(containers.Count));
        foreach (var (key, values) in containers)
        {
            Assert.True(values.Length <= 4096, "an array container holds at most 4096 values");
            data.AddRange(Le16(key));
            data.AddRange(Le16(values.Length - 1));
        }

        var offset = 8 + (8 * containers.Count);
        foreach (var (_, values) in containers)
        {
            data.AddRange(Le32(offset));
            offset += values.Length * 2;
        }

        foreach (var (_, values) in containers)
        {
            foreach (var v in values)
            {
                data.AddRange(Le16(v));
            }
        }

        return data.ToArray();
    }

    /// <summary>A .bin file: version byte 1, then per DV int32 BE size, data, int32 BE CRC-32; returns each DV's offset.</summary>
    internal static (byte[] Bin, int[] Offsets) Bin(params byte[][] dvs)
    {
        var bin = new List<byte> { 1 };
        var offsets = new List<int>();
        foreach (var dv in dvs)
        {
            offsets.Add(bin.Count);
            var size = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(size, dv.Length);
            bin.AddRange(size);
            bin.AddRange(dv);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(crc, DeletionVectors.Crc32(dv));
            bin.AddRange(crc);
        }

        return (bin.ToArray(), offsets.ToArray());
    }

    internal static JsonObject Descriptor(string type, string pathOrInline, int? offset, int size, long cardinality)
    {
        var o = new JsonObject { ["storageType"] = type, ["pathOrInlineDv"] = pathOrInline, ["sizeInBytes"] = size, ["cardinality"] = cardinality };
        if (offset is { } off)
        {
            o["offset"] = off;
        }

        return o;
    }

    private static byte[] Le16(int v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v);
        return b;
    }

    private static byte[] Le32(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return b;
    }

    private static byte[] Le64(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return b;
    }
}
