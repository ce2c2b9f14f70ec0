using System.Globalization;
using Confluent.Kafka;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests.Kafka;

public sealed class KafkaInputTests
{
    private static readonly Customer C1V1 = new(1, "Ada", 12.50m, new DateTime(2025, 3, 4, 5, 6, 7, 123), new DateOnly(1990, 1, 2), new DateTimeOffset(2026, 1, 1, 10, 0, 0, 500, TimeSpan.Zero));
    private static readonly Customer C1V2 = C1V1 with { Name = "Ada L.", Balance = 20.00m };
    private static readonly Customer C1V3 = C1V2 with { Balance = -3.25m, UpdatedAt = C1V1.UpdatedAt.AddHours(2) };
    private static readonly Customer C2V1 = new(2, "Grace", 0.01m, new DateTime(2024, 12, 31, 23, 59, 59, 999), new DateOnly(1985, 6, 7), new DateTimeOffset(2026, 1, 2, 0, 0, 0, TimeSpan.Zero));
    private static readonly Customer C2V2 = C2V1 with { Name = "Grace H." };
    private static readonly Customer C3V1 = new(3, "Alan", 99999999.99m, new DateTime(2020, 1, 1), new DateOnly(1970, 1, 1), new DateTimeOffset(2026, 1, 3, 0, 0, 0, TimeSpan.Zero));
    private static readonly Customer C4V1 = new(4, "Edsger", 5m, new DateTime(2026, 1, 4, 8, 0, 0, 1), new DateOnly(2000, 2, 29), new DateTimeOffset(2026, 1, 4, 8, 0, 0, TimeSpan.Zero));
    private static readonly Customer C4V2 = C4V1 with { Balance = 6m, Vip = true };

    /// <summary>The expected merge table: the last image of every key not deleted.</summary>
    private static readonly Customer[] FinalState = [C1V3, C2V2, C4V2];

    /// <summary>Snapshot reads, an insert, updates, a delete with its tombstone, and a new column (vip) in the last update.</summary>
    private static List<(int Id, string? Value)> Events(DebeziumFlavor flavor, bool withSchema, string topic)
    {
        var n = 0L;
        string V(string op, Customer? before, Customer? after, bool keyOnly = false) => DebeziumEvents.Value(flavor, withSchema, topic, op, before, after, n++, keyOnly);
        return
        [
            (1, V("r", null, C1V1)),
            (2, V("r", null, C2V1)),
            (3, V("r", null, C3V1)),
            (4, V("c", null, C4V1)),
            (2, V("u", C2V1, C2V2)),
            (3, V("d", C3V1, null, keyOnly: flavor == DebeziumFlavor.Postgres)),
            (3, null),
            (1, V("u", C1V1, C1V2)),
            (1, V("u", C1V2, C1V3)),
            (4, V("u", C4V1, C4V2)),
        ];
    }

    private static string Short(DebeziumFlavor flavor) => flavor switch
    {
        DebeziumFlavor.Postgres => "pg",
        DebeziumFlavor.MySql => "mysql",
        _ => "mssql",
    };

    internal static async Task ProduceAsync(MockKafka kafka, string topic, IEnumerable<(string? Key, string? Value)> records)
    {
        using var producer = new ProducerBuilder<string?, string?>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, LingerMs = 5 }).Build();
        foreach (var (key, value) in records)
        {
            await producer.ProduceAsync(topic, new Message<string?, string?> { Key = key, Value = value });
        }

        producer.Flush(TimeSpan.FromSeconds(10));
    }

    internal static async Task<RunResult> RunSinkAsync(string pipelinePath, RunStatus? status = null, RunOptions? options = null)
    {
        var definition = PipelineFile.Load(pipelinePath);
        var bound = await PipelineBinder.BindAsync(definition, new Dictionary<string, ISourceConnector>(), CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        return await PipelineRunner.RunAsync(bound, options ?? new RunOptions { Once = true, Role = RunRole.Sink }, null, NullLoggerFactory.Instance, status ?? new RunStatus(), timeout.Token);
    }

    private static Dictionary<string, object?> Expected(Customer c, DebeziumFlavor flavor, bool withSchema)
    {
        var micros = (c.CreatedAt - DateTime.UnixEpoch).Ticks / 10;
        var row = withSchema
            ? new Dictionary<string, object?>
            {
                ["id"] = c.Id,
                ["name"] = c.Name,
                ["balance"] = c.Balance,
                ["created_at"] = c.CreatedAt,
                ["birthday"] = c.Birthday,
                ["updated_at"] = c.UpdatedAt,
            }
            : new Dictionary<string, object?>
            {
                // Without Kafka Connect's schema the JSON says only number, text or boolean.
                ["id"] = (long)c.Id,
                ["name"] = c.Name,
                ["balance"] = c.Balance.ToString("0.00", CultureInfo.InvariantCulture),
                ["created_at"] = flavor switch { DebeziumFlavor.Postgres => micros, DebeziumFlavor.MySql => micros / 1000, _ => micros * 1000 },
                ["birthday"] = (long)(c.Birthday.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber),
                ["updated_at"] = c.UpdatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture),
            };
        row["vip"] = c.Vip;
        return row;
    }

    [Fact]
    public async Task Debezium_topics_of_three_connectors_with_and_without_schema_merge_to_the_source_state_and_a_pattern_picks_them_all()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var topics = new List<(string Topic, DebeziumFlavor Flavor, bool WithSchema)>();
        foreach (var flavor in Enum.GetValues<DebeziumFlavor>())
        {
            foreach (var withSchema in new[] { true, false })
            {
                var topic = $"{kafka.Prefix}.{Short(flavor)}{(withSchema ? "" : "raw")}.customers";
                topics.Add((topic, flavor, withSchema));
                await ProduceAsync(kafka, topic, Events(flavor, withSchema, topic).Select(e => ((string?)DebeziumEvents.Key(flavor, withSchema, e.Id, topic), e.Value)));
            }
        }

        // A topic the pattern does not match gets no table.
        await ProduceAsync(kafka, $"{kafka.Prefix}.other", [("{\"id\":1}", "not json")]);
        var pg = topics[0].Topic;
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            transport: {{kafka.Transport}}
            commit: {interval: 200ms, maxRows: 5000}
            inputs:
              - name: dbz
                pattern: '{{kafka.Prefix}}\.(pg|mysql|mssql)(raw)?\.customers'
                format: debezium
                mode: merge
                table: dbz/{topic}
              - {name: hist, topic: {{pg}}, format: debezium, mode: history, table: hist/customers}
            """);
        var result = await RunSinkAsync(pipeline);
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));

        foreach (var (topic, flavor, withSchema) in topics)
        {
            var rows = await Lake.ReadAsync(dir.Combine("lake", "dbz", topic));
            Assert.Equal(FinalState.Length, rows.Count);
            foreach (var c in FinalState)
            {
                var row = Assert.Single(rows, r => Convert.ToInt64(r["id"], CultureInfo.InvariantCulture) == c.Id);
                Assert.Null(Lake.Diff($"{topic} id {c.Id}", Expected(c, flavor, withSchema), row));
            }

            Assert.False(Directory.Exists(dir.Combine("lake", "dbz", topic + "_dead_letters")), $"{topic}: nothing was dead-lettered");
        }

        Assert.False(Directory.Exists(dir.Combine("lake", "dbz", $"{kafka.Prefix}.other")));

        // History: every version, one current per live key, the deleted key closed.
        var history = await Lake.ReadAsync(dir.Combine("lake", "hist", "customers"));
        Assert.Equal(8, history.Count);
        var current = history.Where(r => (bool)r["_is_current"]!).ToList();
        Assert.Equal([1, 2, 4], current.Select(r => (int)r["id"]!).Order());
        Assert.Equal("Ada L.", Assert.Single(current, r => (int)r["id"]! == 1)["name"]);
        Assert.Equal(-3.25m, Assert.Single(current, r => (int)r["id"]! == 1)["balance"]);
        Assert.All(history.Where(r => (int)r["id"]! == 3), r => Assert.NotNull(r["_valid_to"]));
    }

    [Fact]
    public async Task A_restarted_input_sink_writes_only_the_records_after_its_tables_versions()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var topic = $"{kafka.Prefix}.pg.customers";
        var events = Events(DebeziumFlavor.Postgres, true, topic);
        var records = events.Select(e => ((string?)DebeziumEvents.Key(DebeziumFlavor.Postgres, true, e.Id, topic), e.Value)).ToList();
        await ProduceAsync(kafka, topic, records.Take(5));
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            transport: {{kafka.Transport}}
            inputs:
              - {name: dbz, topic: {{topic}}, format: debezium, mode: append, table: log/customers}
            """);
        var first = await RunSinkAsync(pipeline);
        Assert.True(first.Succeeded, first.Connections[0].Error);
        Assert.Equal(5, (await Lake.ReadAsync(dir.Combine("lake", "log", "customers"))).Count);

        await ProduceAsync(kafka, topic, records.Skip(5));
        var second = await RunSinkAsync(pipeline);
        Assert.True(second.Succeeded, second.Connections[0].Error);
        var rows = await Lake.ReadAsync(dir.Combine("lake", "log", "customers"));

        // Append keeps every event once (the tombstone is no event): 9 of the 10 records, the vip column added by the last.
        Assert.Equal(9, rows.Count);
        Assert.Equal(9, rows.Select(r => r["_position"]).Distinct().Count());
        Assert.Equal("c1 d1 r3 u4", string.Join(" ", rows.GroupBy(r => (string)r["_op"]!).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}{g.Count()}")));
        Assert.Equal(true, Assert.Single(rows, r => r["vip"] is not null)["vip"]);
    }

    [Fact]
    public async Task Records_that_cannot_be_decoded_go_to_the_dead_letter_table_and_the_stream_goes_on()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var topic = $"{kafka.Prefix}.pg.customers";
        string Key(int id) => DebeziumEvents.Key(DebeziumFlavor.Postgres, true, id, topic);
        var good1 = DebeziumEvents.Value(DebeziumFlavor.Postgres, true, topic, "c", null, C1V1, 0);
        var good2 = DebeziumEvents.Value(DebeziumFlavor.Postgres, true, topic, "c", null, C2V1, 1);
        var wrongType = good2.Replace("\"id\":2", "\"id\":\"two\"", StringComparison.Ordinal);
        Assert.NotEqual(good2, wrongType);

        await ProduceAsync(kafka, topic,
        [
            (Key(1), good1),
            (Key(1), "{not json"),
            (null, good2),
            (Key(1), good1.Replace("\"op\":\"c\"", "\"op\":\"x\"", StringComparison.Ordinal)),
            (Key(1), wrongType),
            (Key(1), "{\"hello\": \"world\"}"),
            (Key(2), good2),
        ]);
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            transport: {{kafka.Transport}}
            inputs:
              - {name: dbz, topic: {{topic}}, format: debezium, table: inv/customers}
            """);
        var result = await RunSinkAsync(pipeline);
        Assert.True(result.Succeeded, result.Connections[0].Error);

        var rows = await Lake.ReadAsync(dir.Combine("lake", "inv", "customers"));
        Assert.Equal([1, 2], rows.Select(r => (int)r["id"]!).Order());
        var dead = await Lake.ReadAsync(dir.Combine("lake", "inv", "customers_dead_letters"));
        Assert.Equal(5, dead.Count);
        Assert.All(dead, d => Assert.Equal(topic, d["topic"]));
        Assert.Equal(5, dead.Select(d => $"{d["partition"]}:{d["offset"]}").Distinct().Count());
        Dictionary<string, object?> With(string error) => Assert.Single(dead, d => ((string)d["error"]!).Contains(error, StringComparison.Ordinal));
        Assert.Equal("{not json", With("not JSON")["value"]);
        Assert.Equal(Key(1), With("not JSON")["key"]);
        Assert.Null(With("missing key")["key"]);
        With("unknown op 'x'");
        Assert.Equal(wrongType, With("column 'id'")["value"]);
        With("not a change envelope");

        // A second run reads nothing new: the tables' versions cover every record, dead or not.
        var again = await RunSinkAsync(pipeline);
        Assert.True(again.Succeeded, again.Connections[0].Error);
        Assert.Equal(2, (await Lake.ReadAsync(dir.Combine("lake", "inv", "customers"))).Count);
        Assert.Equal(5, (await Lake.ReadAsync(dir.Combine("lake", "inv", "customers_dead_letters"))).Count);
    }

    [Theory]
    [InlineData("inputs:\n  - {name: a, topic: t1, pattern: 't.*', format: debezium}\n", 4, "inputs[0].pattern", "not both")]
    [InlineData("inputs:\n  - {name: a, format: debezium}\n", 4, "inputs[0].topic", "missing")]
    [InlineData("inputs:\n  - {name: a, pattern: 't[', format: debezium}\n", 4, "inputs[0].pattern", "not a valid regular expression")]
    [InlineData("inputs:\n  - {name: a, topic: t1, format: debezum}\n", 4, "inputs[0].format", "did you mean 'debezium'")]
    [InlineData("inputs:\n  - {name: a, topic: t1, format: debezium, mode: overwrite}\n", 4, "inputs[0].mode", "not available for Kafka inputs")]
    [InlineData("inputs:\n  - {name: a, pattern: 't.*', format: debezium, table: lake/one}\n", 4, "inputs[0].table", "put {topic} or {table}")]
    [InlineData("inputs:\n  - {name: a, topic: t1, format: debezium, table: ../out}\n", 4, "inputs[0].table", "a folder inside the lake")]
    [InlineData("inputs:\n  - {name: a, topic: t1, format: ingest}\n  - {name: a, topic: t2, format: ingest}\n", 5, "inputs[1].name", "names must be unique")]
    [InlineData("inputs:\n  - {name: a, topic: 'bad topic', format: debezium}\n", 4, "inputs[0].topic", "expected a topic name")]
    public void Input_errors_name_file_line_column_and_field(string inputs, int line, string path, string message)
    {
        var yaml = "lake: ./lake\ntransport: {kind: kafka, bootstrapServers: \"localhost:9092\"}\n" + inputs;
        var e = Assert.Throws<PipelineException>(() => PipelineFile.Parse(yaml, "/tmp/p/pipeline.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal(path, error.Path);
        Assert.Equal(line, error.Line);
        Assert.True(error.Column > 0);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"pipeline.yaml:{line}:", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Inputs_need_the_kafka_transport_and_parse_with_defaults()
    {
        var e = Assert.Throws<PipelineException>(() => PipelineFile.Parse("lake: ./lake\ninputs:\n  - {name: a, topic: t1, format: debezium}\n", "/tmp/p/pipeline.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal("inputs", error.Path);
        Assert.Contains("transport: {kind: kafka", error.Message, StringComparison.Ordinal);

        var def = PipelineFile.Parse("lake: ./lake\ntransport: {kind: kafka, bootstrapServers: \"b:9092\"}\ninputs:\n  - {name: inv, pattern: 'db1\\.inv\\..*', format: ingest}\n", "/tmp/p/pipeline.yaml");
        Assert.Empty(def.Connections);
        var input = Assert.Single(def.Inputs!);
        Assert.Equal(SinkMode.Merge, input.Mode);
        Assert.Equal(InputFormat.Ingest, input.Format);
        Assert.True(input.Matches("db1.inv.customers"));
        Assert.False(input.Matches("db1.invx.customers"));
        Assert.False(input.Matches("xdb1.inv.customers"));
        Assert.Equal("/tmp/p/lake/inv/db1.inv.customers", input.TablePath(def.LakePath, "db1.inv.customers"));
        Assert.Equal("/tmp/p/lake/x/customers", (input with { Table = "x/{table}" }).TablePath(def.LakePath, "db1.inv.customers"));
        Assert.True(def.Kafka!.CreateOffsetsTopic);

        var bad = Assert.Throws<PipelineException>(() => PipelineFile.Parse("lake: ./lake\ntransport: {kind: kafka, bootstrapServers: \"b:9092\", createOffsetsTopic: maybe}\ninputs: [{name: a, topic: t, format: ingest}]\n", "/tmp/p/pipeline.yaml"));
        Assert.Equal("transport.createOffsetsTopic", Assert.Single(bad.Errors).Path);
    }
}
