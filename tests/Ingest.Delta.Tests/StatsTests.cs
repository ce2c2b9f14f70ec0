using System.Globalization;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

public sealed class StatsTests
{
    private static async Task<(TempDir Dir, AddFile File, JsonNode Stats)> WriteAsync(StreamSchema schema, RecordBatch batch, IReadOnlyDictionary<string, string>? config = null)
    {
        var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, schema, [], config, CancellationToken.None);
        await table.AppendAsync([batch], new CommitOptions("WRITE"), CancellationToken.None);
        var file = Assert.Single(table.Snapshot.Files);
        return (dir, file, JsonNode.Parse(file.Stats!)!);
    }

    [Fact]
    public async Task Stats_match_duckdb_count_nulls_min_and_max_of_the_data_file()
    {
        var (dir, file, stats) = await WriteAsync(RoundTripTests.AllTypes, RoundTripTests.AllTypesBatch());
        using var _ = dir;
        var path = Path.Combine(dir.Path, file.Path);
        Assert.Equal(new FileInfo(path).Length, file.Size);
        using var db = TestData.DuckDb();
        var from = $"read_parquet('{path}')";

        Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select count(*) from {from}"), CultureInfo.InvariantCulture), stats["numRecords"]!.GetValue<long>());
        foreach (var col in new[] { "b", "i8", "i16", "i32", "i64", "f32", "f64", "s", "bin", "d", "ts", "ntz", "dec", "dec_small", "arr", "m" })
        {
            var nulls = Convert.ToInt64(TestData.Scalar(db, $"select count(*) - count(\"{col}\") from {from}"), CultureInfo.InvariantCulture);
            Assert.True(nulls == stats["nullCount"]![col]!.GetValue<long>(), $"nullCount of {col}");
        }

        Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select count(*) - count(st.x) from {from}"), CultureInfo.InvariantCulture), stats["nullCount"]!["st"]!["x"]!.GetValue<long>());
        Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select count(*) - count(st.inner.z) from {from}"), CultureInfo.InvariantCulture), stats["nullCount"]!["st"]!["inner"]!["z"]!.GetValue<long>());

        foreach (var col in new[] { "i8", "i16", "i32", "i64" })
        {
            Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select min(\"{col}\") from {from}"), CultureInfo.InvariantCulture), stats["minValues"]![col]!.GetValue<long>());
            Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select max(\"{col}\") from {from}"), CultureInfo.InvariantCulture), stats["maxValues"]![col]!.GetValue<long>());
        }

        // A float statistic is the float's shortest spelling: read it back as a float.
        Assert.Equal(Convert.ToSingle(TestData.Scalar(db, $"select min(f32) from {from}"), CultureInfo.InvariantCulture), stats["minValues"]!["f32"]!.GetValue<float>());
        Assert.Equal(Convert.ToSingle(TestData.Scalar(db, $"select max(f32) from {from}"), CultureInfo.InvariantCulture), stats["maxValues"]!["f32"]!.GetValue<float>());
        Assert.Equal(Convert.ToDouble(TestData.Scalar(db, $"select min(f64) from {from}"), CultureInfo.InvariantCulture), stats["minValues"]!["f64"]!.GetValue<double>());
        Assert.Equal(Convert.ToDouble(TestData.Scalar(db, $"select max(f64) from {from}"), CultureInfo.InvariantCulture), stats["maxValues"]!["f64"]!.GetValue<double>());

        foreach (var col in new[] { "dec", "dec_small" })
        {
            Assert.Equal(TestData.Scalar(db, $"select min(\"{col}\")::varchar from {from}"), stats["minValues"]![col]!.ToJsonString());
            Assert.Equal(TestData.Scalar(db, $"select max(\"{col}\")::varchar from {from}"), stats["maxValues"]![col]!.ToJsonString());
        }

        Assert.Equal(TestData.Scalar(db, $"select min(s) from {from}"), stats["minValues"]!["s"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select max(s) from {from}"), stats["maxValues"]!["s"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select strftime(min(d), '%Y-%m-%d') from {from}"), stats["minValues"]!["d"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select strftime(max(d), '%Y-%m-%d') from {from}"), stats["maxValues"]!["d"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select strftime(min(ts) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') from {from}"), stats["minValues"]!["ts"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select strftime(max(ts) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') from {from}"), stats["maxValues"]!["ts"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select strftime(max(ntz), '%Y-%m-%dT%H:%M:%S.%g') from {from}"), stats["maxValues"]!["ntz"]!.GetValue<string>());
        Assert.Equal(TestData.Scalar(db, $"select min(st.x) from {from}"), stats["minValues"]!["st"]!["x"]!.GetValue<string>());
        Assert.Equal(Convert.ToInt64(TestData.Scalar(db, $"select max(st.inner.z) from {from}"), CultureInfo.InvariantCulture), stats["maxValues"]!["st"]!["inner"]!["z"]!.GetValue<long>());

        // Timestamps are INT64 micros, adjusted to UTC for timestamp and not for timestamp_ntz (PROTOCOL.md "Primitive Types").
        Assert.Contains("isAdjustedToUTC=1", TestData.Scalar(db, $"select logical_type from parquet_schema('{path}') where name = 'ts'")!.ToString(), StringComparison.Ordinal);
        Assert.Contains("isAdjustedToUTC=0", TestData.Scalar(db, $"select logical_type from parquet_schema('{path}') where name = 'ntz'")!.ToString(), StringComparison.Ordinal);
        Assert.Contains("MICROS", TestData.Scalar(db, $"select logical_type from parquet_schema('{path}') where name = 'ts'")!.ToString(), StringComparison.Ordinal);
        Assert.Equal("SNAPPY", TestData.Scalar(db, $"select distinct compression from parquet_metadata('{path}') where path_in_schema = 'i64'"));

        // Booleans, binary, arrays and maps get only a null count.
        foreach (var col in new[] { "b", "bin", "arr", "m" })
        {
            Assert.Null(stats["minValues"]![col]);
            Assert.Null(stats["maxValues"]![col]);
        }
    }

    [Fact]
    public async Task Timestamp_stats_are_written_at_millisecond_precision_the_way_spark_writes_them()
    {
        var (dir, _, stats) = await WriteAsync(RoundTripTests.AllTypes, RoundTripTests.AllTypesBatch());
        using var _ = dir;

        // -1,000,001 µs is 23:59:58.999999: floored to the millisecond.
        Assert.Equal("1969-12-31T23:59:58.999Z", stats["minValues"]!["ts"]!.GetValue<string>());
        Assert.Equal("2023-11-14T22:13:20.123Z", stats["maxValues"]!["ts"]!.GetValue<string>());
        Assert.Equal("2021-11-18T02:30:00.123", stats["maxValues"]!["ntz"]!.GetValue<string>());
        Assert.Equal("2024-02-29", stats["maxValues"]!["d"]!.GetValue<string>());
        Assert.Equal("9999999999999999999999999999.9999999999", stats["maxValues"]!["dec"]!.ToJsonString());
        Assert.Equal("1.5", stats["maxValues"]!["f32"]!.ToJsonString());
    }

    [Fact]
    public async Task Strings_longer_than_32_chars_are_truncated_with_a_tie_breaker_on_the_max()
    {
        var schema = new StreamSchema([new Field("s", DataType.String)]);
        var low = "a" + new string('b', 40);
        var high = "z" + new string('y', 31) + "é and more";
        var highAscii = "zz" + new string('q', 40);
        var batch = new RecordBatch(schema.ToArrowSchema(), [new StringArray.Builder().Append(low).Append(high).Build()], 2);
        var (dir, _, stats) = await WriteAsync(schema, batch);
        using var _ = dir;

        Assert.Equal(low[..32], stats["minValues"]!["s"]!.GetValue<string>());
        Assert.Equal(high[..32] + char.ConvertFromUtf32(0x10FFFF), stats["maxValues"]!["s"]!.GetValue<string>());

        var batch2 = new RecordBatch(schema.ToArrowSchema(), [new StringArray.Builder().Append(highAscii).Build()], 1);
        var (dir2, _, stats2) = await WriteAsync(schema, batch2);
        using var __ = dir2;
        Assert.Equal(highAscii[..32] + "\u007F", stats2["maxValues"]!["s"]!.GetValue<string>());
    }

    [Fact]
    public async Task Only_the_first_num_indexed_cols_leaf_columns_get_stats()
    {
        var schema = new StreamSchema([
            new Field("a", DataType.Int64),
            new Field("st", new StructType([new Field("x", DataType.Int64), new Field("y", DataType.Int64)])),
            new Field("c", DataType.Int64),
        ]);
        var st = new StructArray((Apache.Arrow.Types.StructType)schema["st"].Type.ToArrowType(), 1, [new Int64Array.Builder().Append(2).Build(), new Int64Array.Builder().Append(3).Build()], ArrowBuffer.Empty, 0);
        var batch = new RecordBatch(schema.ToArrowSchema(), [new Int64Array.Builder().Append(1).Build(), st, new Int64Array.Builder().Append(4).Build()], 1);
        var (dir, _, stats) = await WriteAsync(schema, batch, new Dictionary<string, string> { ["delta.dataSkippingNumIndexedCols"] = "2" });
        using var _ = dir;

        Assert.Equal("""{"a":1,"st":{"x":2}}""", stats["minValues"]!.ToJsonString());
        Assert.Equal("""{"a":0,"st":{"x":0}}""", stats["nullCount"]!.ToJsonString());
    }
}
