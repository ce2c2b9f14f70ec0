using System.Globalization;
using Ingest.Delta;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>
/// <c>format: ingest</c> inputs: our own topics name the stream's schema in a header (its id in the schemas topic, or the schema in
/// full from older writers), which types the input's columns exactly.
/// </summary>
public sealed class KafkaIngestFormatTests
{
    private static async Task<StreamSchema> DataColumnsAsync(string tablePath)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        return new StreamSchema(table.Snapshot.Schema.Columns.Where(c => !c.Name.StartsWith('_')).ToList());
    }

    [Fact]
    public async Task An_ingest_input_of_the_sample_connectors_topics_has_the_embedded_runs_column_types_and_values()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();

        foreach (var sub in new[] { "kafka", "embedded", "input" })
        {
            Directory.CreateDirectory(dir.Combine(sub));
        }

        // The sample connector through our Kafka source (topics <prefix>.shop.<stream>), and the same source embedded.
        var viaKafka = dir.Write("kafka/pipeline.yaml", SampleLake.Pipeline().Replace("transport: embedded", "transport: " + kafka.Transport, StringComparison.Ordinal));
        var source = await Cli.RunAsync("run", viaKafka, "--once", "--role", "source", "--plugins", Repo.Plugins, "--data", dir.Combine("kafka", "state"));
        Assert.True(source.ExitCode == 0, source.Error);
        var embedded = dir.Write("embedded/pipeline.yaml", SampleLake.Pipeline());
        var run = await Cli.RunAsync("run", embedded, "--once", "--plugins", Repo.Plugins, "--data", dir.Combine("embedded", "state"));
        Assert.True(run.ExitCode == 0, run.Error);

        // The input reads the source's own topics, under a transport prefix of its own: the records' schema ids resolve in the
        // schemas topic of the prefix that wrote them.
        var catalog = await new Ingest.Connectors.Sample.SampleConnector().DiscoverAsync(SampleLake.YamlFlowToJson(SampleLake.SmallConfig), CancellationToken.None);
        var input = dir.Write("input/pipeline.yaml", $$"""
            lake: ./lake
            transport: {{kafka.Transport.Replace($"topicPrefix: {kafka.Prefix}", $"topicPrefix: {kafka.Prefix}in", StringComparison.Ordinal)}}
            commit: {interval: 200ms, maxRows: 50000}
            inputs:
              - {name: ours, pattern: '{{kafka.Prefix}}\.shop\..*', format: ingest, mode: merge, table: 'in/{topic}'}
            """);
        var result = await KafkaInputTests.RunSinkAsync(input);
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));

        foreach (var stream in SampleLake.Streams)
        {
            var expectedPath = dir.Combine("embedded", "lake", "shop", stream);
            var actualPath = dir.Combine("input", "lake", "in", $"{kafka.Prefix}.shop.{stream}");
            var expectedColumns = await DataColumnsAsync(expectedPath);
            var actualColumns = await DataColumnsAsync(actualPath);

            // Same names, order and types (timestamps, decimals with their precision and scale, dates, ints); an input's columns
            // are nullable, as a topic may later carry nulls.
            Assert.Equal(expectedColumns.Columns.Select(c => $"{c.Name} {c.Type}"), actualColumns.Columns.Select(c => $"{c.Name} {c.Type}"));
            if (stream != "order_lines")
            {
                Assert.Contains(actualColumns.Columns, c => c.Type == DataType.Timestamp);
            }

            var keys = catalog.Find(stream)!.PrimaryKey;
            var expected = (await Lake.ReadAsync(expectedPath)).ToDictionary(r => Lake.Key(r, keys));
            var actual = await Lake.ReadAsync(actualPath);
            Assert.Equal(expected.Count, actual.Count);
            foreach (var row in actual)
            {
                var key = Lake.Key(row, keys);
                Assert.True(expected.TryGetValue(key, out var e), $"{stream}: key {key} is not in the embedded run's table");
                var data = e!.Where(kv => !kv.Key.StartsWith('_')).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                Assert.Null(Lake.Diff($"{stream}[{key}]", data, row));
            }
        }

        foreach (var stream in SampleLake.Streams)
        {
            Assert.False(Directory.Exists(dir.Combine("input", "lake", "in", $"{kafka.Prefix}.shop.{stream}_dead_letters")), $"{stream}: nothing was dead-lettered");
        }
    }

    [Fact]
    public async Task An_ingest_input_types_nested_columns_from_the_header_and_guesses_when_the_header_is_absent()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var schema = new StreamSchema(
        [
            new Field("id", DataType.Int64, false),
            new Field("at", DataType.TimestampNtz),
            new Field("amount", DataType.Decimal(9, 3)),
            new Field("tags", new ArrayType(DataType.String)),
            new Field("address", new StructType([new Field("city", DataType.String), new Field("since", DataType.Date)])),
        ]);
        const string Value = """{"before":null,"after":{"id":7,"at":"2026-01-02T03:04:05.123456","amount":"12.345","tags":["a","b"],"address":{"city":"Oslo","since":20000}},"source":{"version":"ingest","connector":"x","name":"c","connection":"c","stream":"s","table":"s","position":"00000000000000000000000000000001","ts_ms":1,"ts_us":1000,"snapshot":"false"},"op":"c","ts_ms":1}""";
        var typed = $"{kafka.Prefix}.typed";
        var guessed = $"{kafka.Prefix}.guessed";
        using (var producer = new Confluent.Kafka.ProducerBuilder<string, string>(new Confluent.Kafka.ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            var headers = new Confluent.Kafka.Headers { { Ingest.Engine.Kafka.ChangeEnvelope.SchemaJsonHeader, Ingest.Engine.Kafka.ChangeEnvelope.SchemaJson(schema) } };
            await producer.ProduceAsync(typed, new Confluent.Kafka.Message<string, string> { Key = """{"id":7}""", Value = Value, Headers = headers });
            await producer.ProduceAsync(guessed, new Confluent.Kafka.Message<string, string> { Key = """{"id":7}""", Value = Value });
        }

        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            transport: {{kafka.Transport}}
            inputs:
              - {name: ours, pattern: '{{kafka.Prefix}}\.(typed|guessed)', format: ingest, mode: merge, table: '{topic}'}
            """);
        var result = await KafkaInputTests.RunSinkAsync(pipeline);
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));

        Assert.False(Directory.Exists(dir.Combine("lake", typed + "_dead_letters")), "dead letters: " + (Directory.Exists(dir.Combine("lake", typed + "_dead_letters"))
            ? string.Join("; ", (await Lake.ReadAsync(dir.Combine("lake", typed + "_dead_letters"))).Select(r => string.Join(", ", r.Select(kv => $"{kv.Key}={kv.Value}"))))
            : ""));
        var columns = await DataColumnsAsync(dir.Combine("lake", typed));
        Assert.Equal(schema.Columns.Select(c => $"{c.Name} {c.Type}"), columns.Columns.Select(c => $"{c.Name} {c.Type}"));
        var row = Assert.Single(await Lake.ReadAsync(dir.Combine("lake", typed)));
        Assert.Equal(7L, row["id"]);
        Assert.Equal(new DateTime(2026, 1, 2, 3, 4, 5, 123, DateTimeKind.Unspecified).AddTicks(4560), ToDateTime(row["at"]));
        Assert.Equal(12.345m, row["amount"]);
        Assert.Equal(["a", "b"], ((IEnumerable<object?>)row["tags"]!).Cast<string>());
        var address = (IReadOnlyDictionary<string, object?>)row["address"]!;
        Assert.Equal("Oslo", address["city"]);
        Assert.Equal(DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + 20000), address["since"]);

        // Without the header, the JSON values are all there is: the timestamp and the decimal are text, nested values JSON text.
        var plain = await DataColumnsAsync(dir.Combine("lake", guessed));
        Assert.Equal(DataType.String, plain["at"].Type);
        Assert.Equal(DataType.String, plain["amount"].Type);
        Assert.Equal(DataType.Int64, plain["id"].Type);
        var guessedRow = Assert.Single(await Lake.ReadAsync(dir.Combine("lake", guessed)));
        Assert.Equal("2026-01-02T03:04:05.123456", guessedRow["at"]);
    }

    private static DateTime ToDateTime(object? value) => value switch
    {
        DateTime d => d,
        DateTimeOffset o => o.UtcDateTime,
        _ => throw new InvalidOperationException($"not a timestamp: {Convert.ToString(value, CultureInfo.InvariantCulture)}"),
    };
}
