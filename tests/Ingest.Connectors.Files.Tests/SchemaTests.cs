using System.Text;
using Ingest.Sdk.Files;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Files.Tests;

public sealed class SchemaTests
{
    [Theory]
    [InlineData("long", "long", "long")]
    [InlineData("integer", "long", "long")]
    [InlineData("long", "decimal(4,2)", "decimal(21,2)")]
    [InlineData("decimal(5,1)", "decimal(4,3)", "decimal(7,3)")]
    [InlineData("long", "double", "double")]
    [InlineData("decimal(38,0)", "decimal(3,2)", "double")]
    [InlineData("date", "timestamp_ntz", "timestamp_ntz")]
    [InlineData("date", "timestamp", "string")]
    [InlineData("boolean", "long", "string")]
    public void Types_widen_to_the_narrowest_type_holding_both(string a, string b, string expected)
    {
        Assert.Equal(expected, SchemaWidening.Widen(DataType.FromDeltaName(a), DataType.FromDeltaName(b)).DisplayName);
        Assert.Equal(expected, SchemaWidening.Widen(DataType.FromDeltaName(b), DataType.FromDeltaName(a)).DisplayName);
    }

    [Theory]
    [InlineData("string", "1", "x")]
    [InlineData("long", "1", "-20")]
    [InlineData("decimal(5,3)", "1.5", "-10.125")]
    [InlineData("double", "1.5", "2e10")]
    [InlineData("boolean", "true", "False")]
    [InlineData("date", "2024-01-01", "1999-12-31")]
    [InlineData("timestamp_ntz", "2024-01-01T00:00:00", "2024-01-01")]
    [InlineData("timestamp", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00-05:00")]
    public void Inference_picks_the_narrowest_type_of_the_sample(string expected, string v1, string v2)
    {
        var c = new ColumnInference("c");
        c.Observe(Encoding.UTF8.GetBytes(v1));
        c.Observe(Encoding.UTF8.GetBytes(v2));

        Assert.Equal(expected, c.Result().DisplayName);
    }

    [Fact]
    public void A_column_of_nulls_only_is_a_string()
    {
        Assert.Equal(DataType.String, new ColumnInference("c").Result());
    }

    [Fact]
    public void Widening_a_schema_keeps_column_order_and_appends_new_columns()
    {
        var current = new StreamSchema([new Field("id", DataType.Int64), new Field("amount", DataType.Int64)]);

        var widened = SchemaWidening.Widen(current, [new Field("coupon", DataType.String), new Field("AMOUNT", DataType.Decimal(5, 2))]);

        Assert.Equal("id long, amount decimal(21,2), coupon string", Describe.Schema(widened!));
        Assert.Null(SchemaWidening.Widen(current, [new Field("id", DataType.Int64)]));
    }

    [Fact]
    public void A_later_file_widens_only_along_delta_type_widening_and_otherwise_keeps_the_type()
    {
        var current = new StreamSchema([new Field("id", DataType.Int64), new Field("amount", DataType.Decimal(4, 2)), new Field("day", DataType.Date)]);

        var widened = SchemaWidening.WidenForLaterFile(current, [new Field("id", DataType.String), new Field("amount", DataType.Decimal(6, 3)), new Field("day", DataType.TimestampNtz), new Field("note", DataType.String)]);

        Assert.Equal("id long, amount decimal(6,3), day timestamp_ntz, note string", Describe.Schema(widened!));
        Assert.Null(SchemaWidening.WidenForLaterFile(current, [new Field("id", DataType.Boolean)]));
    }

    [Theory]
    [InlineData("orders/**/*.csv.gz", "orders/2024/01/a.csv.gz", true)]
    [InlineData("orders/**/*.csv.gz", "orders/a.csv.gz", true)]
    [InlineData("orders/*.csv", "orders/sub/a.csv", false)]
    [InlineData("orders/*.{csv,csv.gz}", "orders/a.csv.gz", true)]
    [InlineData("orders/?.csv", "orders/ab.csv", false)]
    [InlineData("*.csv", "a.csv", true)]
    public void Globs_match_paths(string pattern, string path, bool matches)
    {
        Assert.Equal(matches, Glob.Compile(pattern).IsMatch(path));
    }

    [Fact]
    public void The_static_prefix_of_a_glob_is_the_folder_before_the_first_wildcard()
    {
        Assert.Equal("orders/2024/", Glob.StaticPrefix("orders/2024/**/*.csv"));
        Assert.Equal("", Glob.StaticPrefix("*.csv"));
    }
}
