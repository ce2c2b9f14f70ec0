using System.Text.Json.Nodes;
using Apache.Arrow;
using ArrowField = Apache.Arrow.Field;
using ArrowTypes = Apache.Arrow.Types;
using static Ingest.Delta.Tests.HandWrittenTable;

namespace Ingest.Delta.Tests;

public sealed class ReaderFeatureTests
{
    private static async Task<List<string>> RowsJsonAsync(string path)
    {
        var table = (await DeltaTable.TryOpenAsync(path, CancellationToken.None))!;
        var rows = new List<string>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                for (var i = 0; i < batch.Length; i++)
                {
                    using var ms = new MemoryStream();
                    using (var w = new System.Text.Json.Utf8JsonWriter(ms))
                    {
                        Ingest.Sdk.Records.ArrowValues.WriteRowJson(w, batch, i);
                    }

                    rows.Add(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                }
            }
        }

        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    private static ArrowField WithId(string name, ArrowTypes.IArrowType type, int id) =>
        new(name, type, true, [KeyValuePair.Create("PARQUET:field_id", id.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    [Fact]
    public async Task Column_mapping_id_mode_reads_columns_by_field_id_and_partitions_by_physical_name()
    {
        using var t = new HandWrittenTable();
        var schema = Schema(
            Field("id", "long", 1, "col-1"),
            Field("name", "string", 2, "col-2"),
            Field("st", new JsonObject { ["type"] = "struct", ["fields"] = new JsonArray(Field("x", "integer", 4, "col-4")) }, 3, "col-3"),
            Field("part", "string", 5, "col-5"));
        t.Commit(0, CommitInfo(), Protocol(2, 5), Metadata(schema, ["part"], new() { ["delta.columnMapping.mode"] = "id", ["delta.columnMapping.maxColumnId"] = "5" }));

        // Parquet names deliberately differ from the physical names (a rename by an id-mode writer): only ids match.
        var innerType = new ArrowTypes.StructType([WithId("renamed_x", ArrowTypes.Int32Type.Default, 4)]);
        var fileSchema = new Schema.Builder()
            .Field(WithId("dropped", ArrowTypes.Int64Type.Default, 99))
            .Field(WithId("b", ArrowTypes.StringType.Default, 2))
            .Field(WithId("a", ArrowTypes.Int64Type.Default, 1))
            .Field(WithId("c", innerType, 3))
            .Build();
        var inner = new StructArray(innerType, 2, [new Int32Array.Builder().Append(7).Append(8).Build()], ArrowBuffer.Empty, 0);
        var batch = new RecordBatch(fileSchema, [
            new Int64Array.Builder().Append(-1).Append(-2).Build(),
            new StringArray.Builder().Append("one").Append("two").Build(),
            new Int64Array.Builder().Append(1).Append(2).Build(),
            inner,
        ], 2);
        var size = t.WriteParquet("col-5=p1/f.parquet", batch);
        t.Commit(1, CommitInfo(), Add("col-5=p1/f.parquet", size, new JsonObject { ["col-5"] = "p1" }));

        Assert.Equal(
            [
                """{"id":1,"name":"one","st":{"x":7},"part":"p1"}""",
                """{"id":2,"name":"two","st":{"x":8},"part":"p1"}""",
            ],
            await RowsJsonAsync(t.Path));
    }

    [Fact]
    public async Task Type_widening_reads_narrower_file_types_as_the_table_type_and_added_columns_as_null()
    {
        using var t = new HandWrittenTable();
        var schema = Schema(
            Field("a", "long"), Field("b", "double"), Field("c", "double"), Field("d", "decimal(10,4)"),
            Field("e", "timestamp_ntz"), Field("f", "short"), Field("g", "string"), Field("h", "integer"));
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["typeWidening", "timestampNtz"], ["typeWidening", "timestampNtz"]), Metadata(schema, []));

        // Written before the widenings and before column g existed.
        var oldSchema = new Schema.Builder()
            .Field(new ArrowField("a", ArrowTypes.Int8Type.Default, true))
            .Field(new ArrowField("b", ArrowTypes.FloatType.Default, true))
            .Field(new ArrowField("c", ArrowTypes.Int32Type.Default, true))
            .Field(new ArrowField("d", new ArrowTypes.Decimal128Type(5, 2), true))
            .Field(new ArrowField("e", ArrowTypes.Date32Type.Default, true))
            .Field(new ArrowField("f", ArrowTypes.Int8Type.Default, true))
            .Field(new ArrowField("h", ArrowTypes.Int16Type.Default, true))
            .Build();
        var dec = new Decimal128Array.Builder(new ArrowTypes.Decimal128Type(5, 2)).Append(123.45m).AppendNull().Build();
        var old = new RecordBatch(oldSchema, [
            new Int8Array.Builder().Append(-5).AppendNull().Build(),
            new FloatArray.Builder().Append(1.5f).Append(-0.25f).Build(),
            new Int32Array.Builder().Append(2_000_000_000).Append(-3).Build(),
            dec,
            new Date32Array.Builder().Append(new DateTime(2024, 2, 29)).AppendNull().Build(),
            new Int8Array.Builder().Append(127).Append(-128).Build(),
            new Int16Array.Builder().Append(short.MaxValue).AppendNull().Build(),
        ], 2);
        var oldSize = t.WriteParquet("old.parquet", old);
        t.Commit(1, CommitInfo(), Add("old.parquet", oldSize));

        Assert.Equal(
            [
                """{"a":-5,"b":1.5,"c":2000000000.0,"d":123.4500,"e":"2024-02-29 00:00:00","f":127,"g":null,"h":32767}""",
                """{"a":null,"b":-0.25,"c":-3.0,"d":null,"e":null,"f":-128,"g":null,"h":null}""",
            ],
            await RowsJsonAsync(t.Path));
    }

    [Fact]
    public async Task Narrowing_type_change_is_refused_naming_file_and_column()
    {
        using var t = new HandWrittenTable();
        t.Commit(0, CommitInfo(), Protocol(1, 2), Metadata(Schema(Field("a", "integer")), []));
        var schema = new Schema.Builder().Field(new ArrowField("a", ArrowTypes.Int64Type.Default, true)).Build();
        var size = t.WriteParquet("f.parquet", new RecordBatch(schema, [new Int64Array.Builder().Append(1).Build()], 1));
        t.Commit(1, CommitInfo(), Add("f.parquet", size));

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => RowsJsonAsync(t.Path));
        Assert.Contains("f.parquet:a", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Table_needing_an_unknown_reader_feature_with_an_unknown_type_is_refused_naming_the_feature()
    {
        using var t = new HandWrittenTable();
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["variantType"], ["variantType"]), Metadata(Schema(Field("v", "variant")), []));

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => DeltaTable.TryOpenAsync(t.Path, CancellationToken.None));
        Assert.Contains("reader feature 'variantType' is not supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Scan_of_a_table_needing_an_unknown_reader_feature_is_refused_naming_the_feature()
    {
        using var t = new HandWrittenTable();
        t.Commit(0, CommitInfo(), Protocol(3, 7, ["deletionVectors", "someFutureFeature"], ["deletionVectors", "someFutureFeature"]), Metadata(Schema(Field("id", "long")), []));
        var size = t.WriteParquet("f.parquet", DeletionVectorTests.Ids(0, 3));
        t.Commit(1, CommitInfo(), Add("f.parquet", size));

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => t.ReadLongsAsync("id"));
        Assert.Contains("reader feature 'someFutureFeature' is not supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Legacy_reader_version_above_3_is_refused()
    {
        using var t = new HandWrittenTable();
        t.Commit(0, CommitInfo(), Protocol(4, 7), Metadata(Schema(Field("id", "long")), []));

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => t.ReadLongsAsync("id"));
        Assert.Contains("reader version 4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Time_travel_by_timestamp_uses_commit_file_times_and_refuses_times_before_the_first_commit()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        for (var v = 1; v <= 3; v++)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(v, "x", 1L)])], new CommitOptions("WRITE"), CancellationToken.None);
        }

        var t0 = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var v = 0; v <= 3; v++)
        {
            File.SetLastWriteTimeUtc(Path.Combine(dir.Path, "_delta_log", HandWrittenTable.CommitName(v)), t0.AddHours(v).UtcDateTime);
        }

        Assert.Equal(0, (await table.GetSnapshotAsOfAsync(t0, CancellationToken.None)).Version);
        var v1 = await table.GetSnapshotAsOfAsync(t0.AddMinutes(90), CancellationToken.None);
        Assert.Equal(1, v1.Version);
        Assert.Equal(1, await TestData.CountAsync(table, v1));
        Assert.Equal(3, (await table.GetSnapshotAsOfAsync(t0.AddHours(3), CancellationToken.None)).Version);
        Assert.Equal(3, (await table.GetSnapshotAsOfAsync(t0.AddDays(10), CancellationToken.None)).Version);
        var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => table.GetSnapshotAsOfAsync(t0.AddSeconds(-1), CancellationToken.None));
        Assert.Contains("first readable commit (version 0)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Time_travel_by_timestamp_uses_in_commit_timestamps_from_their_enablement_version()
    {
        using var t = new HandWrittenTable();
        var schema = Schema(Field("id", "long"));
        t.Commit(0, CommitInfo(), Protocol(1, 2), Metadata(schema, []));
        t.Commit(1, CommitInfo(), Add("f1.parquet", t.WriteParquet("f1.parquet", DeletionVectorTests.Ids(0, 1))));
        // ICT enabled at version 2: from then on commitInfo.inCommitTimestamp counts, not the file time.
        var ictConfig = new Dictionary<string, string> { ["delta.enableInCommitTimestamps"] = "true", ["delta.inCommitTimestampEnablementVersion"] = "2", ["delta.inCommitTimestampEnablementTimestamp"] = "1900000000000" };
        t.Commit(2, CommitInfo(1_900_000_000_000), Protocol(1, 7, null, ["inCommitTimestamp"]), Metadata(schema, [], ictConfig));
        t.Commit(3, CommitInfo(1_900_000_100_000), Add("f2.parquet", t.WriteParquet("f2.parquet", DeletionVectorTests.Ids(1, 1))));
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
        File.SetLastWriteTimeUtc(t.LogPath(CommitName(0)), t0.UtcDateTime);
        File.SetLastWriteTimeUtc(t.LogPath(CommitName(1)), t0.AddMinutes(1).UtcDateTime);
        // File times of ICT commits are irrelevant.
        File.SetLastWriteTimeUtc(t.LogPath(CommitName(2)), t0.UtcDateTime);
        File.SetLastWriteTimeUtc(t.LogPath(CommitName(3)), t0.UtcDateTime);
        var table = (await DeltaTable.TryOpenAsync(t.Path, CancellationToken.None))!;

        Assert.Equal(1, (await table.GetSnapshotAsOfAsync(t0.AddMinutes(2), CancellationToken.None)).Version);
        Assert.Equal(2, (await table.GetSnapshotAsOfAsync(DateTimeOffset.FromUnixTimeMilliseconds(1_900_000_050_000), CancellationToken.None)).Version);
        var v3 = await table.GetSnapshotAsOfAsync(DateTimeOffset.FromUnixTimeMilliseconds(1_900_000_100_000), CancellationToken.None);
        Assert.Equal(3, v3.Version);
        Assert.Equal(2, await TestData.CountAsync(table, v3));
    }

    [Fact]
    public async Task Golden_in_commit_timestamp_table_travels_by_its_commit_timestamps()
    {
        var path = Path.Combine(TestData.SharedDir(), "delta-golden", "tables", "cdc_ict_table");
        var table = (await DeltaTable.TryOpenAsync(path, CancellationToken.None))!;

        var v3 = await table.GetSnapshotAsOfAsync(DateTimeOffset.FromUnixTimeMilliseconds(1783874213881), CancellationToken.None);
        Assert.Equal(3, v3.Version);
        Assert.Equal(2, await TestData.CountAsync(table, v3));
        Assert.Equal(2, (await table.GetSnapshotAsOfAsync(DateTimeOffset.FromUnixTimeMilliseconds(1783874213880), CancellationToken.None)).Version);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => table.GetSnapshotAsOfAsync(DateTimeOffset.FromUnixTimeMilliseconds(1683874206882), CancellationToken.None));
    }
}
