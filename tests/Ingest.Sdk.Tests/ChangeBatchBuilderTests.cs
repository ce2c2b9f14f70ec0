using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using SdkField = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Tests;

public class ChangeBatchBuilderTests
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
        new SdkField("price", DataType.Decimal(10, 2)),
        new SdkField("tags", new ArrayType(DataType.String)),
        new SdkField("attrs", new MapType(DataType.String, DataType.Int64)),
        new SdkField("addr", new StructType([new SdkField("city", DataType.String), new SdkField("zip", DataType.Int32)])),
    ]);

    [Fact]
    public void Typed_setters_store_values_and_unset_columns_are_null()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        var at = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero).AddTicks(1230);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 111);
        b.SetInt64(0, 10);
        b.SetBoolean(1, true);
        b.SetInt8(2, -3);
        b.SetInt16(3, 300);
        b.SetInt32(4, 70000);
        b.SetFloat(5, 1.25f);
        b.SetDouble(6, 2.5);
        b.SetString(7, "ann");
        b.SetBinary(8, [1, 2]);
        b.SetDate(9, new DateOnly(2024, 2, 29));
        b.SetTimestamp(10, at);
        b.SetTimestampMicros(11, 0);
        b.SetDecimal(12, 19.999m);
        b.SetValue(13, new List<object?> { "x", "y" });
        b.SetValue(14, new List<KeyValuePair<object, object?>> { new("k", 5L) });
        b.SetValue(15, new Dictionary<string, object?> { ["city"] = "Oslo", ["zip"] = 150 });
        b.EndRow();
        b.BeginRow(ChangeOp.Update, new SourcePosition(2, 0), 222);
        b.SetInt64(0, 11);
        b.EndRow();

        using var batch = b.Build();

        Assert.Equal(2, batch.Length);
        Assert.Equal([ChangeOp.Insert, ChangeOp.Update], batch.Ops);
        Assert.Equal([new SourcePosition(1, 0), new SourcePosition(2, 0)], batch.Positions);
        Assert.Equal([111L, 222L], batch.SourceTimestampsMicros);
        Assert.Equal(new SourcePosition(2, 0), batch.LastPosition);
        object?[] expected =
        [
            10L, true, (sbyte)-3, (short)300, 70000, 1.25f, 2.5, "ann", null, new DateOnly(2024, 2, 29), at,
            new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Unspecified), 20.00m,
        ];
        for (var c = 0; c < expected.Length; c++)
        {
            if (c == 8)
            {
                Assert.Equal(new byte[] { 1, 2 }, (byte[])ArrowValues.GetValue(batch.Data.Column(c), 0)!);
                continue;
            }

            Assert.Equal(expected[c], ArrowValues.GetValue(batch.Data.Column(c), 0));
        }

        Assert.Equal(new object?[] { "x", "y" }, ((IReadOnlyList<object?>)ArrowValues.GetValue(batch.Data.Column(13), 0)!).ToArray());
        Assert.Equal([new("k", 5L)], (IReadOnlyList<KeyValuePair<object, object?>>)ArrowValues.GetValue(batch.Data.Column(14), 0)!);
        var addr = (IReadOnlyDictionary<string, object?>)ArrowValues.GetValue(batch.Data.Column(15), 0)!;
        Assert.Equal("Oslo", addr["city"]);
        Assert.Equal(150, addr["zip"]);

        Assert.Equal(11L, ArrowValues.GetValue(batch.Data.Column(0), 1));
        for (var c = 1; c < Schema.Count; c++)
        {
            Assert.True(batch.Data.Column(c).IsNull(1), $"column {Schema.Columns[c].Name} should be null");
        }
    }

    [Fact]
    public void Non_nullable_column_left_unset_fails_naming_the_column()
    {
        var b = new ChangeBatchBuilder("orders", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);
        b.SetString(7, "x");

        var ex = Assert.Throws<InvalidOperationException>(b.EndRow);
        Assert.Contains("'id'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'orders'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delete_rows_may_leave_non_nullable_columns_unset()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Delete, new SourcePosition(1, 0), 0);
        b.EndRow();

        using var batch = b.Build();
        Assert.True(batch.Data.Column(0).IsNull(0));
    }

    [Fact]
    public void Builder_is_reusable_after_build_and_batches_are_independent()
    {
        var b = new ChangeBatchBuilder("t", Schema, initialCapacity: 1);
        for (var i = 0; i < 5; i++)
        {
            b.BeginRow(ChangeOp.Read, new SourcePosition((ulong)i + 1, 0), 0);
            b.SetInt64(0, i);
            b.SetDate(9, i);
            b.SetValue(13, new List<object?> { i.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            b.EndRow();
        }

        using var first = b.Build();
        Assert.Equal(0, b.Count);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(9, 0), 0);
        b.SetInt64(0, 99);
        b.SetDate(9, 1);
        b.EndRow();
        using var second = b.Build();

        Assert.Equal(5, first.Length);
        Assert.Equal(4L, ArrowValues.GetValue(first.Data.Column(0), 4));
        Assert.Equal(new DateOnly(1970, 1, 5), ArrowValues.GetValue(first.Data.Column(9), 4));
        Assert.Equal(new object?[] { "4" }, ((IReadOnlyList<object?>)ArrowValues.GetValue(first.Data.Column(13), 4)!).ToArray());
        Assert.Equal(1, second.Length);
        Assert.Equal(99L, ArrowValues.GetValue(second.Data.Column(0), 0));
        Assert.True(second.Data.Column(13).IsNull(0));
        Assert.Equal(first.Data.Schema.FieldsList.Count, second.Data.ColumnCount);
    }

    [Fact]
    public void Wrong_setter_for_the_column_type_fails()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);

        Assert.Throws<InvalidOperationException>(() => b.SetString(0, "x"));
        Assert.Throws<InvalidOperationException>(() => b.SetValue(1, true));
        Assert.Throws<InvalidOperationException>(() => b.SetDecimal(4, 1m));
    }

    [Fact]
    public void Setting_a_column_twice_in_a_row_fails()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);
        b.SetInt64(0, 1);

        Assert.Throws<InvalidOperationException>(() => b.SetInt64(0, 2));
    }

    [Fact]
    public void Decimal_that_exceeds_the_precision_overflows()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);

        Assert.Throws<OverflowException>(() => b.SetDecimal(12, 123456789.12m));
    }

    [Fact]
    public void Build_with_an_open_row_fails()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);

        Assert.Throws<InvalidOperationException>(() => b.Build());
        Assert.Throws<InvalidOperationException>(() => b.BeginRow(ChangeOp.Insert, new SourcePosition(2, 0), 0));
    }

    [Fact]
    public void Batch_schema_matches_the_stream_schema()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        using var batch = b.Build();

        Assert.Equal(0, batch.Length);
        Assert.Equal(SourcePosition.Zero, batch.LastPosition);
        Assert.Equal(Schema, StreamSchema.FromArrow(batch.Data.Schema));
    }
    [Fact]
    public void Fixed_width_columns_hold_no_validity_until_a_null_and_the_right_bits_after_it()
    {
        var schema = new StreamSchema([new SdkField("id", DataType.Int64, false), new SdkField("n", DataType.Int32), new SdkField("d", DataType.Double)]);
        var b = new ChangeBatchBuilder("t", schema);
        void Batch(params int?[] values)
        {
            for (var r = 0; r < values.Length; r++)
            {
                b.BeginRow(ChangeOp.Insert, new SourcePosition(1, (uint)r), 0);
                b.SetInt64(0, r);
                if (values[r] is { } v)
                {
                    b.SetInt32(1, v);
                    b.SetDouble(2, v / 2.0);
                }
                else
                {
                    b.SetNull(1);
                    b.SetNull(2);
                }

                b.EndRow();
            }
        }

        // Nulls from the 12th of 20 rows (past the first byte of the bitmap), then a batch without, then one starting with a null.
        Batch([.. Enumerable.Range(0, 20).Select(i => i >= 11 && i % 3 == 0 ? (int?)null : i)]);
        using var first = b.Build();
        Batch(7, 8, 9);
        using var second = b.Build();
        Batch(null, 5);
        using var third = b.Build();

        var n = (Int32Array)first.Data.Column(1);
        Assert.Equal(3, n.NullCount);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i >= 11 && i % 3 == 0 ? (int?)null : i), Enumerable.Range(0, 20).Select(n.GetValue));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i >= 11 && i % 3 == 0 ? (double?)null : i / 2.0), Enumerable.Range(0, 20).Select(((DoubleArray)first.Data.Column(2)).GetValue));
        Assert.Equal(0, second.Data.Column(1).NullCount);
        Assert.Equal(0, second.Data.Column(1).Data.Buffers[0].Length);
        Assert.Equal(new int?[] { 7, 8, 9 }, Enumerable.Range(0, 3).Select(((Int32Array)second.Data.Column(1)).GetValue));
        Assert.Equal(new int?[] { null, 5 }, Enumerable.Range(0, 2).Select(((Int32Array)third.Data.Column(1)).GetValue));
        Assert.Equal(0, ((Int64Array)third.Data.Column(0)).NullCount);
    }

    [Fact]
    public void Integer_and_timestamp_setters_refuse_each_others_columns()
    {
        var b = new ChangeBatchBuilder("t", Schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);

        Assert.Throws<InvalidOperationException>(() => b.SetTimestampMicros(0, 1));
        Assert.Throws<InvalidOperationException>(() => b.SetInt64(10, 1));
        Assert.Throws<InvalidOperationException>(() => b.SetInt32(9, 1));
        Assert.Throws<InvalidOperationException>(() => b.SetDate(4, 1));
        Assert.Throws<InvalidOperationException>(() => b.SetInt16(4, 1));
    }
}
