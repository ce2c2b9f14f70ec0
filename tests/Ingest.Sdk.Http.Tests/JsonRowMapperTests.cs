using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Http.Tests;

public sealed class JsonRowMapperTests
{
    private static readonly StreamSchema Schema = new(
    [
        new Field("id", PrimitiveType.String),
        new Field("count", PrimitiveType.Int64),
        new Field("ratio", PrimitiveType.Double),
        new Field("created", PrimitiveType.Timestamp),
        new Field("tags", new ArrayType(PrimitiveType.String, true)),
        new Field("metadata", new MapType(PrimitiveType.String, PrimitiveType.String, true)),
        new Field("missing", PrimitiveType.Boolean),
        new Field("_raw", PrimitiveType.String),
    ]);

    private static readonly JsonRowMapper Iso = new() { Api = "Test", RawColumn = "_raw", Timestamp = JsonRowMapper.Iso8601 };

    private static ChangeBatch Map(JsonRowMapper mapper, string json)
    {
        var b = new ChangeBatchBuilder("s", Schema);
        using var doc = JsonDocument.Parse(json);
        b.BeginRow(ChangeOp.Insert, new SourcePosition(0, 1), 0);
        mapper.Write(b, Schema, doc.RootElement, "thing");
        b.EndRow();
        return b.Build();
    }

    [Fact]
    public void Maps_each_column_by_name_and_keeps_the_whole_object_in_the_raw_column()
    {
        const string Json = """{"id":"a1","count":"42","ratio":0.5,"created":"2026-01-02T03:04:05Z","tags":["x","y"],"metadata":{"k":"v"}}""";
        using var batch = Map(Iso, Json);
        var row = Enumerable.Range(0, Schema.Columns.Count).Select(c => ArrowValues.GetValue(batch.Data.Column(c), 0)).ToArray();
        Assert.Equal("a1", row[0]);
        Assert.Equal(42L, row[1]);
        Assert.Equal(0.5, row[2]);
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), row[3]);
        Assert.Equal(["x", "y"], Assert.IsAssignableFrom<IEnumerable<object?>>(row[4]).Cast<string>());
        Assert.Null(row[6]);
        Assert.Equal(Json, row[7]);
    }

    [Fact]
    public void Unix_seconds_timestamps_and_a_custom_string_reading()
    {
        var mapper = new JsonRowMapper
        {
            Api = "Test",
            Timestamp = JsonRowMapper.UnixSeconds,
            AsString = v => v.ValueKind == JsonValueKind.Object ? v.GetProperty("id").GetString()! : JsonRowMapper.DefaultString(v),
        };
        using var batch = Map(mapper, """{"id":{"id":"cus_1","object":"customer"},"created":1767322800}""");
        Assert.Equal("cus_1", ArrowValues.GetValue(batch.Data.Column(0), 0));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1767322800), ArrowValues.GetValue(batch.Data.Column(3), 0));
    }

    [Fact]
    public void A_value_that_does_not_fit_names_the_api_the_object_and_the_field()
    {
        var mapper = new JsonRowMapper { Api = "Test", Timestamp = JsonRowMapper.Iso8601, IdFields = ["id", "email_id"] };
        var e = Assert.Throws<FormatException>(() => Map(mapper, """{"email_id":"e9","count":"many"}"""));
        Assert.Equal("Test thing e9: field 'count' is String, not long.", e.Message);
        var t = Assert.Throws<FormatException>(() => Map(mapper, """{"id":"a","created":"yesterday"}"""));
        Assert.Contains("field 'created'", t.Message, StringComparison.Ordinal);
    }
}
