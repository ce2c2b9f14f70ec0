using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Sdk.Connectors;
using static Ingest.Connectors.Sample.Tests.SampleReads;

namespace Ingest.Connectors.Sample.Tests;

public class SampleOptionsTests
{
    [Fact]
    public void Missing_settings_take_the_defaults_the_spec_declares()
    {
        var options = SampleOptions.Parse(Config("{}"));
        var properties = new SampleConnector().Spec.ConfigSchema["properties"]!.AsObject();

        Assert.Equal(new SampleOptions(42, 1000, 200, 5000, 10_000, 10, 5000, SampleClock.Wall), options);
        Assert.Equal(42, properties["seed"]!["default"]!.GetValue<long>());
        Assert.Equal(options.Customers, properties["customers"]!["default"]!.GetValue<int>());
        Assert.Equal(options.Products, properties["products"]!["default"]!.GetValue<int>());
        Assert.Equal(options.Orders, properties["orders"]!["default"]!.GetValue<int>());
        Assert.Equal(options.Changes, properties["changes"]!["default"]!.GetValue<long>());
        Assert.Equal(options.ChangesPerSecond, properties["changesPerSecond"]!["default"]!.GetValue<double>());
        Assert.Equal(options.BatchSize, properties["batchSize"]!["default"]!.GetValue<int>());
        Assert.Equal("wall", properties["clock"]!["default"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("wall", "Wall")]
    [InlineData("synthetic", "Synthetic")]
    public void Clock_setting_picks_the_source_of_timestamps(string value, string clock)
    {
        var expected = Enum.Parse<SampleClock>(clock);
        var options = SampleOptions.Parse(Config($$"""{"clock":"{{value}}"}"""));
        var allowed = new SampleConnector().Spec.ConfigSchema["properties"]!["clock"]!["enum"]!.AsArray().Select(n => n!.GetValue<string>());

        Assert.Equal(expected, options.Clock);
        Assert.Contains(value, allowed);
    }

    [Fact]
    public void Spec_is_draft_2020_12_with_titles_descriptions_and_minimums()
    {
        var schema = new SampleConnector().Spec.ConfigSchema;

        Assert.Equal("https://json-schema.org/draft/2020-12/schema", schema["$schema"]!.GetValue<string>());
        foreach (var (name, node) in schema["properties"]!.AsObject())
        {
            Assert.NotNull(node!["title"]);
            Assert.NotNull(node["description"]);
            Assert.NotNull(node["default"]);
            if (node["type"]!.GetValue<string>() is "integer" or "number" && name != "seed")
            {
                Assert.NotNull(node["minimum"]);
            }
        }

        Assert.Empty(new SampleConnector().Spec.SecretPaths());
    }

    [Theory]
    [InlineData("""{"customers":-1}""", "/customers")]
    [InlineData("""{"products":1.5}""", "/products")]
    [InlineData("""{"orders":"many"}""", "/orders")]
    [InlineData("""{"changes":-5}""", "/changes")]
    [InlineData("""{"changesPerSecond":-0.5}""", "/changesPerSecond")]
    [InlineData("""{"batchSize":0}""", "/batchSize")]
    [InlineData("""{"seed":"x"}""", "/seed")]
    [InlineData("""{"customer":5}""", "/customer")]
    [InlineData("""{"customers":0,"orders":5}""", "/orders")]
    [InlineData("""{"clock":"utc"}""", "/clock")]
    [InlineData("""{"clock":1}""", "/clock")]
    public async Task Bad_values_fail_check_naming_the_field(string json, string field)
    {
        var connector = new SampleConnector();

        var result = await connector.CheckAsync(Config(json), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal(field, result.Field);
        var ex = Assert.Throws<ConnectorException>(() => connector.OpenReader(Context(Config(json))));
        Assert.Equal(ErrorKind.Configuration, ex.Kind);
        Assert.Equal(field, ex.Field);
    }

    [Fact]
    public async Task Good_config_passes_check_with_a_summary()
    {
        var result = await new SampleConnector().CheckAsync(SmallConfig(), CancellationToken.None);

        Assert.True(result.Succeeded, result.Message);
        Assert.Contains("400 backlog changes", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Connector_is_marked_with_its_name()
    {
        var attribute = (IngestConnectorAttribute)Attribute.GetCustomAttribute(typeof(SampleConnector), typeof(IngestConnectorAttribute))!;

        Assert.Equal("sample", attribute.Name);
        Assert.False(string.IsNullOrEmpty(attribute.Description));
        Assert.False(string.IsNullOrEmpty(attribute.DocumentationUrl));
        Assert.Single(typeof(SampleConnector).Assembly.GetExportedTypes());
    }
}
