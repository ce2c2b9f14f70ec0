using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;
using ArrowTypes = Apache.Arrow.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

public sealed class RoundTripTests
{
    internal static readonly StreamSchema AllTypes = new([
        new Field("b", DataType.Boolean),
        new Field("i8", DataType.Int8),
        new Field("i16", DataType.Int16),
        new Field("i32", DataType.Int32),
        new Field("i64", DataType.Int64),
        new Field("f32", DataType.Float),
        new Field("f64", DataType.Double),
        new Field("s", DataType.String),
        new Field("bin", DataType.Binary),
        new Field("d", DataType.Date),
        new Field("ts", DataType.Timestamp),
        new Field("ntz", DataType.TimestampNtz),
        new Field("dec", DataType.Decimal(38, 10)),
        new Field("dec_small", DataType.Decimal(9, 2)),
        new Field("arr", new ArrayType(DataType.Int32)),
        new Field("st", new StructType([new Field("x", DataType.String), new Field("y", DataType.Decimal(20, 4)), new Field("inner", new StructType([new Field("z", DataType.Int64)]))])),
        new Field("m", new MapType(DataType.String, DataType.Int64)),
    ]);

    /// <summary>Three rows: typical values, extremes, and all nulls.</summary>
    internal static RecordBatch AllTypesBatch()
    {
        const int n = 3;
        var b = new BooleanArray.Builder().Append(true).Append(false).AppendNull().Build();
        var i8 = new Int8Array.Builder().Append(1).Append(sbyte.MinValue).AppendNull().Build();
        var i16 = new Int16Array.Builder().Append(2).Append(short.MaxValue).AppendNull().Build();
        var i32 = new Int32Array.Builder().Append(3).Append(int.MinValue).AppendNull().Build();
        var i64 = new Int64Array.Builder().Append(4).Append(long.MaxValue).AppendNull().Build();
        var f32 = new FloatArray.Builder().Append(1.5f).Append(-3.25e10f).AppendNull().Build();
        var f64 = new DoubleArray.Builder().Append(2.5).Append(-1e300).AppendNull().Build();
        var s = new StringArray.Builder().Append("héllo").Append("").AppendNull().Build();
        var bin = new BinaryArray.Builder().Append([1, 2, 255]).Append([]).AppendNull().Build();
        var d = new Date32Array.Builder().Append(new DateTime(2024, 2, 29)).Append(new DateTime(1900, 1, 1)).AppendNull().Build();
        var tsType = (ArrowTypes.TimestampType)DataType.Timestamp.ToArrowType();
        var ntzType = (ArrowTypes.TimestampType)DataType.TimestampNtz.ToArrowType();
        var ts = Micros(tsType, [1_700_000_000_123_456L, -1_000_001L, null]);
        var ntz = Micros(ntzType, [1_637_202_600_123_000L, 0L, null]);
        var dec = Decimals(new ArrowTypes.Decimal128Type(38, 10), [Int128.Parse("9999999999999999999999999999.9999999999".Replace(".", "", StringComparison.Ordinal)), -12345678901234567, null]);
        var decSmall = Decimals(new ArrowTypes.Decimal128Type(9, 2), [12345, -1, null]);

        var arrType = (ArrowTypes.ListType)AllTypes["arr"].Type.ToArrowType();
        var arrBuilder = new ListArray.Builder(arrType.ValueField);
        var arrValues = (Int32Array.Builder)arrBuilder.ValueBuilder;
        arrBuilder.Append();
        arrValues.Append(1).AppendNull().Append(3);
        arrBuilder.Append();
        arrBuilder.AppendNull();
        var arr = arrBuilder.Build();

        var stType = (ArrowTypes.StructType)AllTypes["st"].Type.ToArrowType();
        var innerType = (ArrowTypes.StructType)stType.Fields[2].DataType;
        var inner = new StructArray(innerType, n, [new Int64Array.Builder().Append(7).AppendNull().Append(0).Build()], BuildBitmap(true, true, false), 1);
        var st = new StructArray(stType, n, [
            new StringArray.Builder().Append("x1").AppendNull().Append("ignored").Build(),
            Decimals(new ArrowTypes.Decimal128Type(20, 4), [15000, null, 0]),
            inner,
        ], BuildBitmap(true, true, false), 1);

        var mType = (ArrowTypes.MapType)AllTypes["m"].Type.ToArrowType();
        var mBuilder = new MapArray.Builder(mType);
        var keys = (StringArray.Builder)mBuilder.KeyBuilder;
        var vals = (Int64Array.Builder)mBuilder.ValueBuilder;
        mBuilder.Append();
        keys.Append("a");
        vals.Append(1);
        keys.Append("b");
        vals.AppendNull();
        mBuilder.Append();
        mBuilder.AppendNull();
        var m = mBuilder.Build();

        return new RecordBatch(AllTypes.ToArrowSchema(), [b, i8, i16, i32, i64, f32, f64, s, bin, d, ts, ntz, dec, decSmall, arr, st, m], n);
    }

    private static ArrowBuffer BuildBitmap(params bool[] valid)
    {
        var b = new ArrowBuffer.BitmapBuilder(valid.Length);
        foreach (var v in valid)
        {
            b.Append(v);
        }

        return b.Build();
    }

    private static TimestampArray Micros(ArrowTypes.TimestampType type, long?[] values)
    {
        var buffer = new ArrowBuffer.Builder<long>();
        foreach (var v in values)
        {
            buffer.Append(v ?? 0);
        }

        var nulls = values.Count(v => v is null);
        return new TimestampArray(type, buffer.Build(), BuildBitmap(values.Select(v => v is not null).ToArray()), values.Length, nulls, 0);
    }

    private static Decimal128Array Decimals(ArrowTypes.Decimal128Type type, Int128?[] values)
    {
        var bytes = new byte[values.Length * 16];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt128LittleEndian(bytes.AsSpan(i * 16), values[i] ?? 0);
        }

        var nulls = values.Count(v => v is null);
        return new Decimal128Array(new ArrayData(type, values.Length, nulls, 0, [BuildBitmap(values.Select(v => v is not null).ToArray()), new ArrowBuffer(bytes)]));
    }

    [Fact]
    public async Task Every_sdk_type_round_trips_through_append_and_scan()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, AllTypes, [], null, CancellationToken.None);
        var batch = AllTypesBatch();

        await table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None);

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        Assert.Equal(AllTypes, reopened.Snapshot.Schema);
        var read = new List<string>();
        await foreach (var b in reopened.ScanAsync(reopened.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < b.Length; i++)
            {
                read.Add(ArrowRender.Row(b, i));
            }
        }

        var written = Enumerable.Range(0, batch.Length).Select(i => ArrowRender.Row(batch, i)).ToList();
        Assert.Equal(written, read);
    }

    [Fact]
    public async Task Table_with_timestamp_ntz_uses_the_timestampNtz_feature()
    {
        using var dir = new TempDir();
        await DeltaTable.OpenOrCreateAsync(dir.Path, AllTypes, [], null, CancellationToken.None);

        var lines = File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", "00000000000000000000.json"));
        var protocol = lines.Select(l => JsonNode.Parse(l)!).Single(n => n["protocol"] is not null)["protocol"]!;
        Assert.Equal(3, protocol["minReaderVersion"]!.GetValue<int>());
        Assert.Equal(7, protocol["minWriterVersion"]!.GetValue<int>());
        Assert.Equal("timestampNtz", protocol["readerFeatures"]![0]!.GetValue<string>());
        Assert.Equal("timestampNtz", protocol["writerFeatures"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task Partitioned_append_fills_partition_values_back_on_scan()
    {
        using var dir = new TempDir();
        var schema = new StreamSchema([new Field("id", DataType.Int64), new Field("day", DataType.Date), new Field("amount", DataType.Decimal(12, 5)), new Field("tag", DataType.String)]);
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, schema, ["day", "amount", "tag"], null, CancellationToken.None);
        var ids = new Int64Array.Builder().Append(1).Append(2).Append(3).Build();
        var days = new Date32Array.Builder().Append(new DateTime(2024, 1, 1)).Append(new DateTime(2024, 1, 1)).AppendNull().Build();
        var amounts = Decimals(new ArrowTypes.Decimal128Type(12, 5), [23400000, 23400000, -1]);
        var tags = new StringArray.Builder().Append("A/A").Append("A/A").Append("B B").Build();
        var batch = new RecordBatch(schema.ToArrowSchema(), [ids, days, amounts, tags], 3);

        await table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None);

        Assert.Equal(2, table.Snapshot.Files.Count);
        var first = table.Snapshot.Files.Single(f => f.PartitionValues["day"] == "2024-01-01");
        Assert.Equal("234.00000", first.PartitionValues["amount"]);
        Assert.Equal("A/A", first.PartitionValues["tag"]);
        Assert.StartsWith("day=2024-01-01/amount=234.00000/tag=A%252FA/part-00000-", first.Path, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir.Path, "day=2024-01-01", "amount=234.00000", "tag=A%2FA", Uri.UnescapeDataString(first.Path).Split('/')[^1])));
        var other = table.Snapshot.Files.Single(f => f.PartitionValues["day"] is null);
        Assert.StartsWith("day=__HIVE_DEFAULT_PARTITION__/amount=-0.00001/tag=B%20B/", other.Path, StringComparison.Ordinal);

        var rows = new List<string>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            for (var i = 0; i < b.Length; i++)
            {
                rows.Add(ArrowRender.Row(b, i));
            }
        }

        rows.Sort(StringComparer.Ordinal);
        Assert.Equal(
            [
                "id=1; day=d19723; amount=234.00000; tag='A/A'; ",
                "id=2; day=d19723; amount=234.00000; tag='A/A'; ",
                "id=3; day=null; amount=-0.00001; tag='B B'; ",
            ],
            rows);
    }

    [Fact]
    public async Task Append_splits_rows_into_files_of_at_most_MaxRowsPerFile()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        table.MaxRowsPerFile = 400;

        var result = await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(0, 1000).Select(i => ((long)i, (string?)"n", 1L)))], new CommitOptions("WRITE"), CancellationToken.None);

        Assert.Equal(3, result.FilesAdded);
        Assert.Equal(1000, result.RowsWritten);
        Assert.Equal(1000, table.Snapshot.RowCount);
        Assert.Equal(1000, await TestData.CountAsync(table, table.Snapshot));
        var history = await table.HistoryAsync(null, CancellationToken.None);
        Assert.Equal(2, history.Count);
        Assert.Equal("3", history[0].OperationMetrics!["numFiles"]!.GetValue<string>());
        Assert.Equal("1000", history[0].OperationMetrics!["numOutputRows"]!.GetValue<string>());
        Assert.StartsWith("Ingest/", history[0].CommitInfo["engineInfo"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Append_with_wrong_schema_names_the_column()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var other = new StreamSchema([new Field("id", DataType.Int32), new Field("name", DataType.String), new Field("version", DataType.Int64)]);
        var batch = new RecordBatch(other.ToArrowSchema(), [new Int32Array.Builder().Append(1).Build(), new StringArray.Builder().Append("a").Build(), new Int64Array.Builder().Append(1).Build()], 1);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None));
        Assert.Contains("'id'", ex.Message, StringComparison.Ordinal);
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "_delta_log")));
    }

    [Fact]
    public async Task Append_of_null_into_a_not_null_column_is_refused_and_leaves_no_file()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        var batch = new RecordBatch(TestData.IdNameVersion.ToArrowSchema(), [new Int64Array.Builder().AppendNull().Build(), new StringArray.Builder().Append("a").Build(), new Int64Array.Builder().Append(1).Build()], 1);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None));

        Assert.Contains("'id'", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.parquet", SearchOption.AllDirectories));
        Assert.Equal(0, table.Snapshot.Version);
    }
}
