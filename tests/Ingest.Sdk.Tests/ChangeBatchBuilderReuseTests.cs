using System.Globalization;
using System.Text;
using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using SdkField = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Tests;

/// <summary>
/// One <see cref="ChangeBatchBuilder"/> kept across many batches, as connectors use it: the builder keeps and clears
/// its buffers between batches, so every batch built earlier must stay intact while later ones are built.
/// </summary>
public class ChangeBatchBuilderReuseTests
{
    private static readonly StreamSchema Schema = new(
    [
        new SdkField("id", DataType.Int64, false),
        new SdkField("flag", DataType.Boolean),
        new SdkField("b", DataType.Int8),
        new SdkField("s", DataType.Int16),
        new SdkField("i", DataType.Int32),
        new SdkField("f", DataType.Float),
        new SdkField("d", DataType.Double),
        new SdkField("name", DataType.String),
        new SdkField("raw", DataType.Binary),
        new SdkField("day", DataType.Date),
        new SdkField("at", DataType.Timestamp),
        new SdkField("local", DataType.TimestampNtz),
        new SdkField("price", DataType.Decimal(18, 2)),
        new SdkField("tags", new ArrayType(DataType.String)),
        new SdkField("attrs", new MapType(DataType.String, DataType.Int64)),
        new SdkField("addr", new StructType([new SdkField("city", DataType.String, false), new SdkField("zip", DataType.Int32)])),
    ]);

    [Fact]
    public void Builder_reused_across_batches_of_varying_sizes_keeps_every_batch_intact()
    {
        int[] sizes = [0, 1, 3, 700, 5000, 2, 0, 4096, 17, 9000, 1, 300];
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 16);
        var batches = new List<(ChangeBatch Batch, long First)>();
        long next = 0;
        try
        {
            foreach (var size in sizes)
            {
                var first = next;
                for (var r = 0; r < size; r++)
                {
                    WriteRow(b, next++);
                }

                batches.Add((b.Build(), first));
            }

            // Every batch is checked only after all were built: reusing the builder must not touch earlier batches.
            for (var k = 0; k < sizes.Length; k++)
            {
                var (batch, firstRow) = batches[k];
                Assert.Equal(sizes[k], batch.Length);
                Assert.Equal(sizes[k], batch.Ops.Length);
                Assert.Equal(sizes[k], batch.Positions.Length);
                Assert.Equal(sizes[k], batch.SourceTimestampsMicros.Length);
                Assert.Null(batch.Unchanged);
                for (var r = 0; r < batch.Length; r++)
                {
                    AssertRow(batch, r, firstRow + r);
                }

                for (var r = 1; r < batch.Length; r++)
                {
                    Assert.True(batch.Positions[r - 1].CompareTo(batch.Positions[r]) < 0, $"positions of batch {k} increase at row {r}");
                }
            }
        }
        finally
        {
            foreach (var (batch, _) in batches)
            {
                batch.Dispose();
            }
        }
    }

    [Fact]
    public void Batch_disposed_before_the_next_is_built_does_not_affect_it()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 4);
        for (long n = 0; n < 50; n++)
        {
            WriteRow(b, n);
        }

        b.Build().Dispose();
        for (long n = 50; n < 60; n++)
        {
            WriteRow(b, n);
        }

        using var second = b.Build();
        Assert.Equal(10, second.Length);
        for (var r = 0; r < second.Length; r++)
        {
            AssertRow(second, r, 50 + r);
        }
    }

    [Fact]
    public void Strings_and_binary_longer_than_the_reserved_bytes_are_stored_whole()
    {
        var schema = new StreamSchema([new SdkField("s", DataType.String), new SdkField("raw", DataType.Binary)]);
        var b = new ChangeBatchBuilder("t", schema, initialCapacity: 2);
        for (var i = 0; i < 3; i++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i + 1, 0), 0);
            b.SetString(0, "a");
            b.SetBinary(1, [(byte)i]);
            b.EndRow();
        }

        using var small = b.Build();
        var huge = string.Concat(Enumerable.Repeat("ünïcødé €😀 ", 40_000));
        var blob = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();
        b.BeginRow(ChangeOp.Insert, new SourcePosition(10, 0), 0);
        b.SetString(0, huge);
        b.SetBinary(1, blob);
        b.EndRow();
        b.BeginRow(ChangeOp.Insert, new SourcePosition(11, 0), 0);
        b.SetStringUtf8(0, Encoding.UTF8.GetBytes(huge + "!"));
        b.SetNull(1);
        b.EndRow();
        b.BeginRow(ChangeOp.Insert, new SourcePosition(12, 0), 0);
        b.SetString(0, string.Empty);
        b.SetBinary(1, []);
        b.EndRow();
        using var large = b.Build();
        b.BeginRow(ChangeOp.Insert, new SourcePosition(13, 0), 0);
        b.SetString(0, "after");
        b.EndRow();
        using var after = b.Build();

        Assert.Equal(["a", "a", "a"], Enumerable.Range(0, 3).Select(r => ((StringArray)small.Data.Column(0)).GetString(r)));
        var s = (StringArray)large.Data.Column(0);
        var raw = (BinaryArray)large.Data.Column(1);
        Assert.Equal(huge, s.GetString(0));
        Assert.Equal(huge + "!", s.GetString(1));
        Assert.Equal(string.Empty, s.GetString(2));
        Assert.False(s.IsNull(2));
        Assert.Equal(blob, raw.GetBytes(0).ToArray());
        Assert.True(raw.IsNull(1));
        Assert.False(raw.IsNull(2));
        Assert.Equal(0, raw.GetValueLength(2));
        Assert.Equal("after", ((StringArray)after.Data.Column(0)).GetString(0));
        Assert.True(after.Data.Column(1).IsNull(0));
        Assert.Equal(1, after.Data.Column(1).NullCount);
    }

    [Fact]
    public void Null_counts_are_per_batch()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 8);
        for (var i = 0; i < 20; i++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i + 1, 0), 0);
            b.SetInt64(0, i);
            b.EndRow();
        }

        using var allNull = b.Build();
        for (var i = 0; i < 5; i++)
        {
            WriteRow(b, i * 6);
        }

        using var someNull = b.Build();

        for (var c = 1; c < Schema.Count; c++)
        {
            Assert.Equal(20, allNull.Data.Column(c).NullCount);
            var expectedNulls = Enumerable.Range(0, 5).Count(i => IsNull(i * 6, c));
            Assert.Equal(expectedNulls, someNull.Data.Column(c).NullCount);
        }

        Assert.Equal(0, someNull.Data.Column(0).NullCount);
    }

    [Fact]
    public void Unchanged_columns_belong_to_their_batch_only()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 2);
        b.BeginRow(ChangeOp.Update, new SourcePosition(1, 0), 0);
        b.SetInt64(0, 1);
        b.SetUnchanged(7);
        b.SetUnchanged(4);
        b.EndRow();
        using var first = b.Build();
        b.BeginRow(ChangeOp.Update, new SourcePosition(2, 0), 0);
        b.SetInt64(0, 1);
        b.SetString(7, "now set");
        b.EndRow();
        using var second = b.Build();

        Assert.Equal([4, 7], first.Unchanged![0]);
        Assert.True(first.IsUnchanged(0, 7));
        Assert.Null(second.Unchanged);
        Assert.False(second.IsUnchanged(0, 7));
        Assert.Equal("now set", ((StringArray)second.Data.Column(7)).GetString(0));
    }

    [Fact]
    public void Failed_build_discards_the_rows_and_the_builder_stays_usable()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 2);
        WriteRow(b, 0);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(99, 0), 0);
        b.SetInt64(0, 99);
        b.SetValue(15, new Dictionary<string, object?> { ["zip"] = 1 });
        b.EndRow();

        var ex = Assert.Throws<ArgumentException>(() => b.Build());
        Assert.Contains("'city'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, b.Count);

        for (long n = 1; n < 40; n++)
        {
            WriteRow(b, n);
        }

        using var batch = b.Build();
        Assert.Equal(39, batch.Length);
        for (var r = 0; r < batch.Length; r++)
        {
            AssertRow(batch, r, r + 1);
        }
    }

    [Fact]
    public void TrimExcess_after_a_large_batch_keeps_the_builder_working()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 4);
        for (long n = 0; n < 3000; n++)
        {
            WriteRow(b, n);
        }

        using var large = b.Build();
        b.TrimExcess();
        for (long n = 3000; n < 3010; n++)
        {
            WriteRow(b, n);
        }

        // Rows not yet built survive a TrimExcess.
        b.TrimExcess();
        WriteRow(b, 3010);
        using var small = b.Build();

        Assert.Equal(3000, large.Length);
        AssertRow(large, 2999, 2999);
        Assert.Equal(11, small.Length);
        for (var r = 0; r < small.Length; r++)
        {
            AssertRow(small, r, 3000 + r);
        }
    }

    [Fact]
    public void Small_batches_after_a_large_one_are_built_correctly()
    {
        // The large batch leaves buffers far larger than the small ones need: they are released and sized anew.
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 1);
        long n = 0;
        var lengths = new List<int>();
        foreach (var size in new[] { 20_000, 1, 5, 1, 20_000, 3 })
        {
            var first = n;
            for (var r = 0; r < size; r++)
            {
                WriteRow(b, n++);
            }

            using var batch = b.Build();
            lengths.Add(batch.Length);
            AssertRow(batch, 0, first);
            AssertRow(batch, batch.Length - 1, n - 1);
        }

        Assert.Equal([20_000, 1, 5, 1, 20_000, 3], lengths);
    }

    [Fact]
    public void Reused_builder_allocates_little_more_than_the_batch_row_arrays_per_batch()
    {
        var schema = new StreamSchema(
        [
            new SdkField("id", DataType.Int64, false),
            new SdkField("status", DataType.String, false),
            new SdkField("total", DataType.Decimal(12, 2), false),
            new SdkField("at", DataType.Timestamp, false),
            new SdkField("day", DataType.Date),
            new SdkField("paid", DataType.Boolean),
            new SdkField("qty", DataType.Int32),
        ]);
        const int Rows = 5000;
        var b = new ChangeBatchBuilder("orders", schema, Rows);
        ulong seq = 0;
        long Batch()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < Rows; i++)
            {
                b.BeginRow(ChangeOp.Read, new SourcePosition(++seq, 0), i);
                b.SetInt64(0, i);
                b.SetStringUtf8(1, "paid and shipped"u8);
                b.SetDecimalUnscaled(2, i * 101);
                b.SetTimestampMicros(3, i * 1_000_000L);
                if (i % 4 != 0)
                {
                    b.SetDate(4, i);
                    b.SetBoolean(5, i % 2 == 0);
                    b.SetInt32(6, i);
                }

                b.EndRow();
            }

            using var batch = b.Build();
            Assert.Equal(Rows, batch.Length);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Batch();
        Batch();
        var steady = Batch();

        // The batch's own ops, positions and timestamps (25 bytes a row) plus small objects; the column buffers
        // (Arrow copies them into the batch's native memory) are reused, not grown again from empty.
        Assert.True(steady < (Rows * 25) + (16 * 1024), $"a reused builder allocated {steady} bytes for a batch of {Rows} rows");
    }

    private static bool IsNull(long n, int column) => column > 0 && (n + column) % 5 == 0;

    private static string Name(long n) => n % 97 == 0 ? new string('x', 5000 + (int)n % 13) : "név-" + n.ToString(CultureInfo.InvariantCulture);

    private static void WriteRow(ChangeBatchBuilder b, long n)
    {
        var op = (n % 3) switch
        {
            0 => ChangeOp.Insert,
            1 => ChangeOp.Update,
            _ => ChangeOp.Read,
        };
        b.BeginRow(op, new SourcePosition((ulong)n + 1, (ulong)n % 4), n * 10);
        b.SetInt64(0, n);
        for (var c = 1; c < Schema.Count; c++)
        {
            if (IsNull(n, c))
            {
                if (n % 2 == 0)
                {
                    b.SetNull(c);
                }

                continue;
            }

            switch (c)
            {
                case 1: b.SetBoolean(c, n % 2 == 0); break;
                case 2: b.SetInt8(c, (sbyte)(n % 100)); break;
                case 3: b.SetInt16(c, (short)(n % 30000)); break;
                case 4: b.SetInt32(c, (int)n * 3); break;
                case 5: b.SetFloat(c, n / 4f); break;
                case 6: b.SetDouble(c, n / 8.0); break;
                case 7: b.SetString(c, Name(n)); break;
                case 8: b.SetBinary(c, BitConverter.GetBytes(n).AsSpan(0, (int)(n % 9))); break;
                case 9: b.SetDate(c, (int)n); break;
                case 10: b.SetTimestampMicros(c, n * 1_000_000); break;
                case 11: b.SetTimestampMicros(c, -n); break;
                case 12: b.SetDecimalUnscaled(c, (Int128)n * 1_000_003); break;
                case 13: b.SetValue(c, Enumerable.Range(0, (int)(n % 3)).Select(k => (object?)(n + k).ToString(CultureInfo.InvariantCulture)).ToList()); break;
                case 14: b.SetValue(c, new List<KeyValuePair<object, object?>> { new("k", n) }); break;
                case 15: b.SetValue(c, new Dictionary<string, object?> { ["city"] = "c" + n.ToString(CultureInfo.InvariantCulture), ["zip"] = (int)n }); break;
                default: throw new InvalidOperationException($"column {c}");
            }
        }

        b.EndRow();
    }

    private static void AssertRow(ChangeBatch batch, int r, long n)
    {
        var op = (n % 3) switch
        {
            0 => ChangeOp.Insert,
            1 => ChangeOp.Update,
            _ => ChangeOp.Read,
        };
        Assert.Equal(op, batch.Ops[r]);
        Assert.Equal(new SourcePosition((ulong)n + 1, (ulong)n % 4), batch.Positions[r]);
        Assert.Equal(n * 10, batch.SourceTimestampsMicros[r]);
        Assert.Equal(n, ArrowValues.GetValue(batch.Data.Column(0), r));
        for (var c = 1; c < Schema.Count; c++)
        {
            var value = ArrowValues.GetValue(batch.Data.Column(c), r);
            if (IsNull(n, c))
            {
                Assert.True(value is null, $"row {n} column {c} should be null");
                continue;
            }

            switch (c)
            {
                case 1: Assert.Equal(n % 2 == 0, value); break;
                case 2: Assert.Equal((sbyte)(n % 100), value); break;
                case 3: Assert.Equal((short)(n % 30000), value); break;
                case 4: Assert.Equal((int)n * 3, value); break;
                case 5: Assert.Equal(n / 4f, value); break;
                case 6: Assert.Equal(n / 8.0, value); break;
                case 7: Assert.Equal(Name(n), value); break;
                case 8: Assert.Equal(BitConverter.GetBytes(n).AsSpan(0, (int)(n % 9)).ToArray(), (byte[])value!); break;
                case 9: Assert.Equal(DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)n), value); break;
                case 10: Assert.Equal(DateTimeOffset.UnixEpoch.AddSeconds(n), value); break;
                case 11: Assert.Equal(DateTime.UnixEpoch.AddTicks(-n * 10).Ticks, ((DateTime)value!).Ticks); break;
                case 12: Assert.Equal(n * 1_000_003 / 100m, value); break;
                case 13:
                    Assert.Equal(
                        Enumerable.Range(0, (int)(n % 3)).Select(k => (object?)(n + k).ToString(CultureInfo.InvariantCulture)),
                        (IReadOnlyList<object?>)value!);
                    break;
                case 14: Assert.Equal([new("k", n)], (IReadOnlyList<KeyValuePair<object, object?>>)value!); break;
                case 15:
                    var addr = (IReadOnlyDictionary<string, object?>)value!;
                    Assert.Equal("c" + n.ToString(CultureInfo.InvariantCulture), addr["city"]);
                    Assert.Equal((int)n, addr["zip"]);
                    break;
                default: throw new InvalidOperationException($"column {c}");
            }
        }
    }
}
