using System.Data.SqlTypes;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using SdkField = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Tests;

public class ArrowValuesTests
{
    public static TheoryData<string, object?[]> PrimitiveCases() => new()
    {
        { "boolean", [true, null, false] },
        { "byte", [(sbyte)-128, null, (sbyte)127] },
        { "short", [(short)-32768, null, (short)12] },
        { "integer", [int.MinValue, null, 42] },
        { "long", [long.MaxValue, null, -1L] },
        { "float", [1.5f, null, float.NaN] },
        { "double", [-2.25, null, double.PositiveInfinity] },
        { "string", ["héllo", null, ""] },
        { "date", [new DateOnly(1969, 12, 31), null, new DateOnly(2024, 2, 29)] },
        { "timestamp", [new DateTimeOffset(2020, 1, 1, 8, 9, 10, TimeSpan.Zero).AddTicks(10), null, new DateTimeOffset(1960, 5, 6, 7, 8, 9, TimeSpan.Zero)] },
        { "timestamp_ntz", [new DateTime(2021, 11, 18, 2, 30, 0, DateTimeKind.Unspecified).AddTicks(1234560), null, new DateTime(1900, 1, 1)] },
        { "decimal(10,2)", [12.34m, null, -0.01m] },
    };

    [Theory]
    [MemberData(nameof(PrimitiveCases))]
    public void Primitive_values_round_trip_through_an_arrow_array(string deltaType, object?[] values)
    {
        var type = DataType.FromDeltaName(deltaType);
        var array = ArrowValues.BuildArray(type, values);

        Assert.Equal(values.Length, array.Length);
        Assert.Equal(type.ToArrowType().TypeId, array.Data.DataType.TypeId);
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i], ArrowValues.GetValue(array, i));
        }

        Assert.Equal(1, array.NullCount);
    }

    [Fact]
    public void Binary_values_round_trip()
    {
        var array = ArrowValues.BuildArray(DataType.Binary, [new byte[] { 0, 1, 255 }, null, System.Array.Empty<byte>()]);

        Assert.Equal(new byte[] { 0, 1, 255 }, (byte[])ArrowValues.GetValue(array, 0)!);
        Assert.Null(ArrowValues.GetValue(array, 1));
        Assert.Empty((byte[])ArrowValues.GetValue(array, 2)!);
    }

    [Fact]
    public void Integral_values_of_other_widths_are_accepted_and_range_checked()
    {
        var array = ArrowValues.BuildArray(DataType.Int64, [1, (short)2, (byte)3, 4u]);
        Assert.Equal([1L, 2L, 3L, 4L], Enumerable.Range(0, 4).Select(i => (long)ArrowValues.GetValue(array, i)!));

        Assert.Throws<OverflowException>(() => ArrowValues.BuildArray(DataType.Int8, [300]));
        Assert.Throws<ArgumentException>(() => ArrowValues.BuildArray(DataType.Int32, ["12"]));
    }

    [Fact]
    public void Decimal_38_10_beyond_clr_decimal_round_trips_as_SqlDecimal()
    {
        var big = SqlDecimal.Parse("1234567890123456789012345678.0123456789");
        var negative = SqlDecimal.Parse("-9999999999999999999999999999.9999999999");
        var small = 1.5m;
        var type = DataType.Decimal(38, 10);

        var array = ArrowValues.BuildArray(type, [big, negative, small, null]);

        var v0 = Assert.IsType<SqlDecimal>(ArrowValues.GetValue(array, 0));
        var v1 = Assert.IsType<SqlDecimal>(ArrowValues.GetValue(array, 1));
        Assert.Equal(big.ToString(), v0.ToString());
        Assert.Equal(negative.ToString(), v1.ToString());
        Assert.Equal(1.5m, ArrowValues.GetValue(array, 2));
        Assert.Null(ArrowValues.GetValue(array, 3));
        Assert.Equal("{\"v\":1234567890123456789012345678.0123456789}", Json(array, 0));
    }

    [Fact]
    public void Decimal_too_wide_for_its_precision_is_rejected()
    {
        Assert.Throws<OverflowException>(() => ArrowValues.BuildArray(DataType.Decimal(5, 2), [1000m]));
        Assert.Throws<OverflowException>(() => ArrowValues.BuildArray(DataType.Decimal(38, 10), [SqlDecimal.Parse("99999999999999999999999999999.5")]));
    }

    [Fact]
    public void Nested_array_struct_and_map_values_round_trip()
    {
        var type = new StructType(
        [
            new SdkField("tags", new ArrayType(DataType.String)),
            new SdkField("attrs", new MapType(DataType.String, DataType.Int32)),
            new SdkField("inner", new StructType([new SdkField("x", DataType.Int64, false), new SdkField("when", DataType.Date)])),
            new SdkField("matrix", new ArrayType(new ArrayType(DataType.Decimal(5, 1)))),
        ]);
        var row0 = new Dictionary<string, object?>
        {
            ["tags"] = new List<object?> { "a", null, "c" },
            ["attrs"] = new List<KeyValuePair<object, object?>> { new("k1", 1), new("k2", null) },
            ["inner"] = new Dictionary<string, object?> { ["x"] = 7L, ["when"] = new DateOnly(2020, 1, 2) },
            ["matrix"] = new List<object?> { new List<object?> { 1.5m }, new List<object?>(), null },
        };
        var row2 = new Dictionary<string, object?>
        {
            ["tags"] = new List<object?>(),
            ["attrs"] = null,
            ["inner"] = null,
            ["matrix"] = null,
        };

        var array = ArrowValues.BuildArray(type, [row0, null, row2]);

        Assert.Equal(3, array.Length);
        Assert.Null(ArrowValues.GetValue(array, 1));
        var back0 = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(ArrowValues.GetValue(array, 0));
        Assert.Equal(new object?[] { "a", null, "c" }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(back0["tags"]).ToArray());
        var attrs = Assert.IsAssignableFrom<IReadOnlyList<KeyValuePair<object, object?>>>(back0["attrs"]);
        Assert.Equal([new("k1", 1), new("k2", null)], attrs);
        var inner = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(back0["inner"]);
        Assert.Equal(7L, inner["x"]);
        Assert.Equal(new DateOnly(2020, 1, 2), inner["when"]);
        var matrix = Assert.IsAssignableFrom<IReadOnlyList<object?>>(back0["matrix"]);
        Assert.Equal(new object?[] { 1.5m }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(matrix[0]).ToArray());
        Assert.Empty(Assert.IsAssignableFrom<IReadOnlyList<object?>>(matrix[1]));
        Assert.Null(matrix[2]);
        var back2 = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(ArrowValues.GetValue(array, 2));
        Assert.Empty(Assert.IsAssignableFrom<IReadOnlyList<object?>>(back2["tags"]));
        Assert.Null(back2["attrs"]);
        Assert.Null(back2["inner"]);

        Assert.Equal(
            "{\"v\":{\"tags\":[\"a\",null,\"c\"],\"attrs\":{\"k1\":1,\"k2\":null},\"inner\":{\"x\":7,\"when\":\"2020-01-02\"},\"matrix\":[[1.5],[],null]}}",
            Json(array, 0));
    }

    [Fact]
    public void Maps_accept_dictionaries_and_write_non_string_keys_as_text()
    {
        var type = new MapType(DataType.Float, DataType.Double);
        var array = ArrowValues.BuildArray(type, [new Dictionary<float, double> { [0f] = 0, [1.5f] = 2 }]);

        Assert.Equal("{\"v\":{\"0.0\":0.0,\"1.5\":2.0}}", Json(array, 0));
        Assert.Throws<ArgumentException>(() => ArrowValues.BuildArray(new MapType(DataType.String, DataType.Int32, false), [new Dictionary<string, int?> { ["a"] = null }]));
    }

    [Fact]
    public void Non_nullable_struct_field_without_value_is_rejected_naming_it()
    {
        var type = new StructType([new SdkField("id", DataType.Int64, false)]);
        var ex = Assert.Throws<ArgumentException>(() => ArrowValues.BuildArray(type, [new Dictionary<string, object?>()]));
        Assert.Contains("'id'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("timestamp", "2020-01-01T08:09:10.001Z", "\"2020-01-01 08:09:10.001+00\"")]
    [InlineData("timestamp", "2021-10-01T08:09:20Z", "\"2021-10-01 08:09:20+00\"")]
    [InlineData("timestamp", "1969-01-01T00:00:00.000001Z", "\"1969-01-01 00:00:00.000001+00\"")]
    [InlineData("timestamp_ntz", "2021-11-18T02:30:00.123456", "\"2021-11-18 02:30:00.123456\"")]
    public void Timestamps_are_written_in_the_golden_format(string deltaType, string iso, string expected)
    {
        var type = DataType.FromDeltaName(deltaType);
        object value = deltaType == "timestamp"
            ? DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture)
            : DateTime.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);
        var array = ArrowValues.BuildArray(type, [value]);

        Assert.Equal("{\"v\":" + expected + "}", Json(array, 0));
    }

    [Fact]
    public void Scalars_are_written_as_the_golden_files_write_them()
    {
        Assert.Equal("{\"v\":\"2000-01-01\"}", Json(ArrowValues.BuildArray(DataType.Date, [new DateOnly(2000, 1, 1)]), 0));
        Assert.Equal("{\"v\":1.0}", Json(ArrowValues.BuildArray(DataType.Float, [1f]), 0));
        Assert.Equal("{\"v\":0.1}", Json(ArrowValues.BuildArray(DataType.Float, [0.1f]), 0));
        Assert.Equal("{\"v\":\"NaN\"}", Json(ArrowValues.BuildArray(DataType.Double, [double.NaN]), 0));
        Assert.Equal("{\"v\":\"-Infinity\"}", Json(ArrowValues.BuildArray(DataType.Double, [double.NegativeInfinity]), 0));
        Assert.Equal("{\"v\":-0.000098}", Json(ArrowValues.BuildArray(DataType.Decimal(12, 6), [-0.000098m]), 0));
        Assert.Equal("{\"v\":\"\\\\x00\\\\x01a\\\\x5C\\\\xFF\"}", Json(ArrowValues.BuildArray(DataType.Binary, [new byte[] { 0, 1, (byte)'a', (byte)'\\', 255 }]), 0));
        Assert.Equal("{\"v\":null}", Json(ArrowValues.BuildArray(DataType.String, [null]), 0));
        Assert.Equal("{\"v\":true}", Json(ArrowValues.BuildArray(DataType.Boolean, [true]), 0));
    }

    [Fact]
    public void Row_json_writes_columns_in_schema_order()
    {
        var schema = new StreamSchema([new SdkField("id", DataType.Int64, false), new SdkField("name", DataType.String), new SdkField("price", DataType.Decimal(10, 2))]);
        var b = new ChangeBatchBuilder("t", schema);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(1, 0), 0);
        b.SetInt64(0, 5);
        b.SetString(1, "x\"y");
        b.SetDecimal(2, 9.5m);
        b.EndRow();
        using var batch = b.Build();

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Relaxed))
        {
            ArrowValues.WriteRowJson(w, batch.Data, 0);
        }

        Assert.Equal("{\"id\":5,\"name\":\"x\\\"y\",\"price\":9.50}", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Golden_rows_of_primitive_types_are_reproduced()
    {
        // The first row of data-reader-primitives, rebuilt and written.
        var schema = new StreamSchema(
        [
            new SdkField("as_int", DataType.Int32), new SdkField("as_long", DataType.Int64), new SdkField("as_byte", DataType.Int8),
            new SdkField("as_short", DataType.Int16), new SdkField("as_boolean", DataType.Boolean), new SdkField("as_float", DataType.Float),
            new SdkField("as_double", DataType.Double), new SdkField("as_string", DataType.String), new SdkField("as_binary", DataType.Binary),
        ]);
        object?[] row = [1, 1L, (sbyte)1, (short)1, false, 1f, 1d, "1", new byte[] { 1, 1 }];
        var arrays = schema.Columns.Select((c, i) => ArrowValues.BuildArray(c.Type, [row[i]])).ToList();
        using var batch = new RecordBatch(schema.ToArrowSchema(), arrays, 1);

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Relaxed))
        {
            ArrowValues.WriteRowJson(w, batch, 0);
        }

        Assert.Equal(
            "{\"as_int\":1,\"as_long\":1,\"as_byte\":1,\"as_short\":1,\"as_boolean\":false,\"as_float\":1.0,\"as_double\":1.0,\"as_string\":\"1\",\"as_binary\":\"\\\\x01\\\\x01\"}",
            Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Sliced_arrays_read_the_values_of_their_window()
    {
        var structType = new StructType([new SdkField("a", DataType.Int32), new SdkField("b", DataType.Decimal(10, 2))]);
        var cases = new (DataType Type, object?[] Values)[]
        {
            (DataType.Int64, [1L, 2L, null, 4L]),
            (DataType.Decimal(10, 2), [1.1m, 2.2m, null, 4.4m]),
            (DataType.Timestamp, [DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddDays(1), null, DateTimeOffset.UnixEpoch.AddDays(3)]),
            (new ArrayType(DataType.Int32), [new List<object?> { 1 }, new List<object?> { 2, 3 }, null, new List<object?> { 4 }]),
            (structType, Enumerable.Range(1, 4).Select(i => i == 3 ? null : (object)new Dictionary<string, object?> { ["a"] = i, ["b"] = i * 1.5m }).ToArray()),
        };

        foreach (var (type, values) in cases)
        {
            var sliced = ArrowArrayFactory.Slice(ArrowValues.BuildArray(type, values), 1, 3);
            for (var i = 0; i < 3; i++)
            {
                var expected = values[i + 1];
                var actual = ArrowValues.GetValue(sliced, i);
                switch (expected)
                {
                    case IReadOnlyList<object?> list:
                        Assert.Equal(list.ToArray(), ((IReadOnlyList<object?>)actual!).ToArray());
                        break;
                    case IReadOnlyDictionary<string, object?> dict:
                        Assert.Equal(dict.OrderBy(kv => kv.Key), ((IReadOnlyDictionary<string, object?>)actual!).OrderBy(kv => kv.Key));
                        break;
                    default:
                        Assert.Equal(expected, actual);
                        break;
                }
            }
        }
    }

    private static readonly JsonWriterOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Json(IArrowArray array, int index)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, Relaxed))
        {
            w.WriteStartObject();
            w.WritePropertyName("v");
            ArrowValues.WriteJson(w, array, index);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
