using System.Text.Json.Nodes;
using Ingest.Sdk.Types;
using SdkField = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Tests;

public class DataTypeTests
{
    public static TheoryData<string> TypeJson() => new()
    {
        "\"boolean\"", "\"byte\"", "\"short\"", "\"integer\"", "\"long\"", "\"float\"", "\"double\"", "\"string\"",
        "\"binary\"", "\"date\"", "\"timestamp\"", "\"timestamp_ntz\"", "\"decimal(38,10)\"", "\"decimal(1,0)\"",
        "{\"type\":\"array\",\"elementType\":\"integer\",\"containsNull\":false}",
        "{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":{\"type\":\"array\",\"elementType\":\"long\",\"containsNull\":true},\"valueContainsNull\":true}",
        "{\"type\":\"struct\",\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},{\"name\":\"b\",\"type\":{\"type\":\"struct\",\"fields\":[{\"name\":\"c\",\"type\":\"date\",\"nullable\":false,\"metadata\":{\"comment\":\"when\"}}]},\"nullable\":true,\"metadata\":{}}]}",
    };

    [Theory]
    [MemberData(nameof(TypeJson))]
    public void Delta_json_round_trips(string json)
    {
        var type = DataType.FromDeltaJson(JsonNode.Parse(json)!);

        Assert.Equal(json, type.ToDeltaJson().ToJsonString());
    }

    [Theory]
    [MemberData(nameof(TypeJson))]
    public void Arrow_type_round_trips(string json)
    {
        var type = DataType.FromDeltaJson(JsonNode.Parse(json)!);

        // Field descriptions are not carried by Arrow types; compare without them.
        Assert.Equal(StripDescriptions(type), DataType.FromArrowType(type.ToArrowType()));
    }

    [Fact]
    public void Unknown_delta_type_is_rejected_with_its_name()
    {
        var ex = Assert.Throws<FormatException>(() => DataType.FromDeltaName("varchar(10)"));
        Assert.Contains("varchar(10)", ex.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => DataType.FromDeltaJson(JsonNode.Parse("{\"type\":\"array\"}")!));
    }

    [Fact]
    public void Decimal_precision_and_scale_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DataType.Decimal(39, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DataType.Decimal(5, 6));
        Assert.Equal("decimal(12,2)", DataType.Decimal(12, 2).DisplayName);
    }

    [Fact]
    public void Struct_rejects_duplicate_field_names_ignoring_case()
    {
        Assert.Throws<ArgumentException>(() => new StructType([new SdkField("Id", DataType.Int64), new SdkField("id", DataType.Int64)]));
        Assert.Throws<ArgumentException>(() => new StreamSchema([new SdkField("Id", DataType.Int64), new SdkField("ID", DataType.Int64)]));
    }

    [Fact]
    public void Stream_schema_converts_to_delta_json_and_arrow()
    {
        var schema = new StreamSchema([new SdkField("id", DataType.Int64, false), new SdkField("tags", new ArrayType(DataType.String))]);

        Assert.Equal(1, schema.IndexOf("TAGS"));
        Assert.Equal(-1, schema.IndexOf("missing"));
        Assert.Equal(schema, StreamSchema.FromArrow(schema.ToArrowSchema()));
        var parsed = (StructType)DataType.FromDeltaJson(schema.ToDeltaJson());
        Assert.Equal(schema.Columns, parsed.Fields);
    }

    private static DataType StripDescriptions(DataType type) => type switch
    {
        StructType s => new StructType(s.Fields.Select(f => f with { Description = null, Type = StripDescriptions(f.Type) }).ToList()),
        ArrayType a => a with { ElementType = StripDescriptions(a.ElementType) },
        MapType m => m with { KeyType = StripDescriptions(m.KeyType), ValueType = StripDescriptions(m.ValueType) },
        _ => type,
    };
}
