using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Ingest.Delta;
using Ingest.Engine.Kafka;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>
/// The schemas topic (<c>&lt;prefix&gt;.schemas</c>): the source writes each stream schema once, keyed by its id, and every record names
/// its schema by id in a header; the transport's sink and <c>format: ingest</c> inputs resolve the ids and type columns exactly.
/// </summary>
public sealed class KafkaSchemasTopicTests
{
    private static readonly StructType Address = new([new Field("city", DataType.String), new Field("since", DataType.Date)]);

    private static readonly StreamSchema Typed = new(
    [
        new Field("id", DataType.Int64, Nullable: false),
        new Field("amount", DataType.Decimal(18, 4)),
        new Field("paid_at", DataType.Timestamp),
        new Field("local_at", DataType.TimestampNtz),
        new Field("day", DataType.Date),
        new Field("blob", DataType.Binary),
        new Field("tags", new ArrayType(DataType.String)),
        new Field("address", Address),
        new Field("scores", new MapType(DataType.String, DataType.Int64)),
    ]);

    /// <summary><see cref="Typed"/> plus a column the source added mid-read.</summary>
    private static readonly StreamSchema Widened = new([.. Typed.Columns, new Field("note", DataType.String)]);

    private static readonly DateTimeOffset PaidAt = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 891, TimeSpan.Zero).AddTicks(2340);

    private static object?[] Values(long id, decimal amount, string city, bool widened = false)
    {
        object?[] values =
        [
            id,
            amount,
            PaidAt.AddMinutes(id),
            new DateTime(2025, 12, 31, 23, 59, 58, 7, DateTimeKind.Unspecified).AddTicks(10 * id),
            new DateOnly(1999, 12, 31).AddDays((int)id),
            new byte[] { 0, 255, (byte)id, 0x80 },
            new List<object?> { "a" + id, null, "b" },
            new Dictionary<string, object?> { ["city"] = city, ["since"] = new DateOnly(2020, 2, 29) },
            new List<KeyValuePair<object, object?>> { new("x", id * 10), new("y", null) },
        ];
        return widened ? [.. values, $"note {id}"] : values;
    }

    private static TypedScript Connector() => new(Typed,
    [
        new TypedScript.Step(Typed,
            new TypedScript.Row(ChangeOp.Insert, 1, Values(1, 12.3456m, "Oslo")),
            new TypedScript.Row(ChangeOp.Insert, 2, Values(2, -0.0001m, "Lyon")),
            new TypedScript.Row(ChangeOp.Insert, 3, Values(3, 99999999999999.9999m, "Kyiv"))),
        new TypedScript.Step(Typed,
            new TypedScript.Row(ChangeOp.Update, 4, Values(2, 7.5m, "Lyon 2"))),
    ]);

    /// <summary>The same rows, then the source adds a column mid-read and updates a row and inserts one with it.</summary>
    private static TypedScript ChangingConnector() => new(Typed,
    [
        .. Connector().Steps,
        new TypedScript.Step(Widened,
            new TypedScript.Row(ChangeOp.Update, 5, Values(1, 1.0001m, "Oslo", widened: true)),
            new TypedScript.Row(ChangeOp.Insert, 6, Values(4, 4m, "Rome", widened: true))),
    ]);

    private static string Pipeline(TempDir dir, MockKafka kafka) => dir.Write("pipeline.yaml", $$"""
        lake: ./lake
        transport: {{kafka.Transport}}
        commit: {interval: 50ms}
        connections:
          - name: c
            connector: s
            config: {}
            streams:
              - {name: people, mode: merge}
        """);

    private static async Task<RunResult> RunAsync(string pipelinePath, ISourceConnector connector, RunRole role = RunRole.All)
    {
        var definition = PipelineFile.Load(pipelinePath);
        var bound = await PipelineBinder.BindAsync(definition, new Dictionary<string, ISourceConnector> { ["s"] = connector }, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var options = new RunOptions { Once = true, Role = role, RetryBaseDelay = TimeSpan.FromMilliseconds(100), MaxAttempts = 1 };
        var logs = new ExceptionLogs();
        var result = await PipelineRunner.RunAsync(bound, options, null, logs, new RunStatus(), timeout.Token);
        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")) + string.Join("\n", logs.Errors));
        return result;
    }

    private static async Task<StreamSchema> DataColumnsAsync(string tablePath)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        return new StreamSchema(table.Snapshot.Schema.Columns.Where(c => !c.Name.StartsWith('_')).ToList());
    }

    /// <summary>Each row of the table equals the expected values, scalars by type and value, nested values by their JSON.</summary>
    private static async Task AssertRowsAsync(string tablePath, StreamSchema schema, Dictionary<long, object?[]> expected)
    {
        var rows = await Lake.ReadAsync(tablePath);
        Assert.Equal(expected.Keys.Order(), rows.Select(r => (long)r["id"]!).Order());
        foreach (var row in rows)
        {
            var values = expected[(long)row["id"]!];
            for (var c = 0; c < schema.Count; c++)
            {
                var name = schema.Columns[c].Name;
                var e = c < values.Length ? values[c] : null;
                var a = row[name];
                var same = schema.Columns[c].Type is ArrayType or StructType or MapType
                    ? JsonSerializer.Serialize(e) == JsonSerializer.Serialize(a)
                    : Lake.SameValue(e, a);
                Assert.True(same, $"id {row["id"]} column {name}: expected {JsonSerializer.Serialize(e)} ({e?.GetType().Name}) but the table has {JsonSerializer.Serialize(a)} ({a?.GetType().Name})");
            }
        }
    }

    /// <summary>Every record of a topic (read_committed, all partitions): its key, value and schema id header.</summary>
    private static List<(string? Key, byte[]? Value, string? SchemaId)> ReadTopic(MockKafka kafka, string topic)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            GroupId = kafka.Prefix + ".check",
            EnablePartitionEof = true,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnableAutoCommit = false,
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var partitions = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Where(t => t.Topic == topic).SelectMany(t => t.Partitions).Select(p => p.PartitionId).ToList();
        var records = new List<(string?, byte[]?, string?)>();
        foreach (var p in partitions)
        {
            consumer.Assign(new TopicPartitionOffset(topic, p, Offset.Beginning));
            while (consumer.Consume(TimeSpan.FromSeconds(10)) is { IsPartitionEOF: false } r)
            {
                var id = r.Message.Headers is { } h && h.TryGetLastBytes(ChangeEnvelope.SchemaHeader, out var b) ? Encoding.UTF8.GetString(b) : null;
                records.Add((r.Message.Key is null ? null : Encoding.UTF8.GetString(r.Message.Key), r.Message.Value, id));
            }
        }

        return records;
    }

    [Fact]
    public async Task Decimal_timestamp_date_binary_and_nested_columns_through_kafka_have_the_streams_exact_types_and_values_and_an_ingest_input_gets_them_too()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        await RunAsync(Pipeline(dir, kafka), Connector());

        var table = dir.Combine("lake", "c", "people");
        Assert.Equal(Typed.Columns.Select(c => $"{c.Name} {c.Type}"), (await DataColumnsAsync(table)).Columns.Select(c => $"{c.Name} {c.Type}"));
        var expected = new Dictionary<long, object?[]> { [1] = Values(1, 12.3456m, "Oslo"), [2] = Values(2, 7.5m, "Lyon 2"), [3] = Values(3, 99999999999999.9999m, "Kyiv") };
        await AssertRowsAsync(table, Typed, expected);

        // One schema record, keyed by the id every data record names in its header; no record carries the schema itself.
        var schemas = ReadTopic(kafka, $"{kafka.Prefix}.schemas");
        var schema = Assert.Single(schemas);
        Assert.Equal(ChangeEnvelope.SchemaId(Typed), schema.Key);
        Assert.Equal(Typed, ChangeEnvelope.ParseSchemaJson(schema.Value!));
        var data = ReadTopic(kafka, $"{kafka.Prefix}.c.people");
        Assert.Equal(4, data.Count(d => d.Value is not null));
        Assert.All(data, d => Assert.Equal(schema.Key, d.SchemaId));

        // format: ingest, under another prefix: the ids resolve in the writer's schemas topic, and the columns are the stream's.
        var inputPath = dir.Write("input.yaml", $$"""
            lake: ./in
            transport: {{kafka.Transport.Replace($"topicPrefix: {kafka.Prefix}", $"topicPrefix: {kafka.Prefix}x", StringComparison.Ordinal)}}
            commit: {interval: 50ms}
            inputs:
              - {name: ours, topic: {{kafka.Prefix}}.c.people, format: ingest, mode: merge, table: people}
            """);
        var input = await KafkaInputTests.RunSinkAsync(inputPath);
        Assert.True(input.Succeeded, string.Join("; ", input.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));
        Assert.False(Directory.Exists(dir.Combine("in", "people_dead_letters")), "nothing was dead-lettered");
        Assert.Equal(Typed.Columns.Select(c => $"{c.Name} {c.Type}"), (await DataColumnsAsync(dir.Combine("in", "people"))).Columns.Select(c => $"{c.Name} {c.Type}"));
        await AssertRowsAsync(dir.Combine("in", "people"), Typed, expected);
    }

    [Fact]
    public async Task A_schema_changed_mid_read_gets_a_second_schema_id_and_the_sink_and_an_input_resolve_both()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var pipeline = Pipeline(dir, kafka);
        await RunAsync(pipeline, ChangingConnector(), RunRole.Source);

        var schemas = ReadTopic(kafka, $"{kafka.Prefix}.schemas");
        Assert.Equal(
            new[] { ChangeEnvelope.SchemaId(Typed), ChangeEnvelope.SchemaId(Widened) }.Order(StringComparer.Ordinal),
            schemas.Select(s => s.Key!).Order(StringComparer.Ordinal));
        Assert.Equal(Widened, ChangeEnvelope.ParseSchemaJson(Assert.Single(schemas, s => s.Key == ChangeEnvelope.SchemaId(Widened)).Value!));
        var data = ReadTopic(kafka, $"{kafka.Prefix}.c.people").Where(d => d.Value is not null).ToList();
        Assert.Equal(4, data.Count(d => d.SchemaId == ChangeEnvelope.SchemaId(Typed)));
        Assert.Equal(2, data.Count(d => d.SchemaId == ChangeEnvelope.SchemaId(Widened)));

        // The transport's sink: the table takes the new column (schemaPolicy evolve) and every row is exact.
        await RunAsync(pipeline, ChangingConnector(), RunRole.Sink);
        var table = dir.Combine("lake", "c", "people");
        Assert.Equal(Widened.Columns.Select(c => $"{c.Name} {c.Type}"), (await DataColumnsAsync(table)).Columns.Select(c => $"{c.Name} {c.Type}"));
        var expected = new Dictionary<long, object?[]>
        {
            [1] = Values(1, 1.0001m, "Oslo", widened: true),
            [2] = Values(2, 7.5m, "Lyon 2"),
            [3] = Values(3, 99999999999999.9999m, "Kyiv"),
            [4] = Values(4, 4m, "Rome", widened: true),
        };
        await AssertRowsAsync(table, Widened, expected);
        Assert.False(Directory.Exists(table + "_dead_letters"), "nothing was dead-lettered");

        // An ingest input of the same topic: both ids resolve, the columns are the widened schema's.
        var inputPath = dir.Write("input.yaml", $$"""
            lake: ./in
            transport: {{kafka.Transport}}
            commit: {interval: 50ms}
            inputs:
              - {name: ours, topic: {{kafka.Prefix}}.c.people, format: ingest, mode: merge, table: people}
            """);
        var input = await KafkaInputTests.RunSinkAsync(inputPath);
        Assert.True(input.Succeeded, string.Join("; ", input.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));
        Assert.False(Directory.Exists(dir.Combine("in", "people_dead_letters")), "nothing was dead-lettered");
        Assert.Equal(Widened.Columns.Select(c => $"{c.Name} {c.Type}"), (await DataColumnsAsync(dir.Combine("in", "people"))).Columns.Select(c => $"{c.Name} {c.Type}"));
        await AssertRowsAsync(dir.Combine("in", "people"), Widened, expected);
    }

    [Fact]
    public async Task A_record_naming_a_schema_id_the_schemas_topic_lacks_goes_to_the_dead_letter_table_with_the_id_named()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var pipeline = Pipeline(dir, kafka);
        await RunAsync(pipeline, Connector(), RunRole.Source);

        // A record of another writer naming a schema nobody wrote, among ours.
        const string Unknown = "00000000deadbeef";
        var value = """{"before":null,"after":{"id":9},"source":{"position":"00000000000000090000000000000000","ts_us":1},"op":"c","ts_ms":1}""";
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers }).Build())
        {
            await producer.ProduceAsync($"{kafka.Prefix}.c.people", new Message<string, string>
            {
                Key = """{"id":9}""",
                Value = value,
                Headers = [new Header(ChangeEnvelope.SchemaHeader, Encoding.UTF8.GetBytes(Unknown))],
            });
        }

        var started = System.Diagnostics.Stopwatch.StartNew();
        await RunAsync(pipeline, Connector(), RunRole.Sink);
        var table = dir.Combine("lake", "c", "people");
        Assert.Equal([1L, 2L, 3L], (await Lake.ReadAsync(table)).Select(r => (long)r["id"]!).Order());
        var dead = Assert.Single(await Lake.ReadAsync(table + "_dead_letters"));
        var error = (string)dead["error"]!;
        Assert.Contains($"unknown schema id '{Unknown}'", error, StringComparison.Ordinal);
        Assert.Contains($"{kafka.Prefix}.schemas", error, StringComparison.Ordinal);
        Assert.Equal("""{"id":9}""", dead["key"]);

        // The same through an ingest input.
        var inputPath = dir.Write("input.yaml", $$"""
            lake: ./in
            transport: {{kafka.Transport}}
            inputs:
              - {name: ours, topic: {{kafka.Prefix}}.c.people, format: ingest, mode: merge, table: people}
            """);
        var input = await KafkaInputTests.RunSinkAsync(inputPath);
        Assert.True(input.Succeeded, string.Join("; ", input.Connections.Select(c => $"{c.Name}: {c.State} {c.Error}")));
        Assert.Equal([1L, 2L, 3L], (await Lake.ReadAsync(dir.Combine("in", "people"))).Select(r => (long)r["id"]!).Order());
        var inputDead = Assert.Single(await Lake.ReadAsync(dir.Combine("in", "people_dead_letters")));
        Assert.Contains($"unknown schema id '{Unknown}'", (string)inputDead["error"]!, StringComparison.Ordinal);

        // The schemas topic was read to its end, not waited on for the full catch-up window.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(40), $"took {started.Elapsed}");
    }

    [Fact]
    public void The_schemas_topic_of_a_topic_is_the_one_of_its_longest_prefix_else_the_transports()
    {
        string[] topics = ["a.schemas", "a.b.schemas", "a.b.c.people", "a.offsets", "ab.schemas"];
        Assert.Equal("a.b.schemas", SchemasTopic.For("a.b.c.people", topics, "mine.schemas"));
        Assert.Equal("a.schemas", SchemasTopic.For("a.x.people", topics, "mine.schemas"));
        Assert.Equal("mine.schemas", SchemasTopic.For("z.c.people", topics, "mine.schemas"));
    }

    [Fact]
    public void A_schema_id_is_a_hash_of_the_schema_json_and_changes_with_any_column()
    {
        Assert.Equal(ChangeEnvelope.SchemaId(Typed), ChangeEnvelope.SchemaId(new StreamSchema([.. Typed.Columns])));
        Assert.Equal(16, ChangeEnvelope.SchemaId(Typed).Length);
        Assert.NotEqual(ChangeEnvelope.SchemaId(Typed), ChangeEnvelope.SchemaId(Widened));
        var narrower = new StreamSchema([.. Typed.Columns.Select(c => c.Name == "amount" ? c with { Type = DataType.Decimal(18, 2) } : c)]);
        Assert.NotEqual(ChangeEnvelope.SchemaId(Typed), ChangeEnvelope.SchemaId(narrower));
        Assert.Equal(Typed, ChangeEnvelope.ParseSchemaJson(ChangeEnvelope.SchemaJson(Typed)));
        var bad = Assert.Throws<FormatException>(() => ChangeEnvelope.ParseSchemaJson("""{"type":"array"}"""u8, "schema 'x' of t.schemas"));
        Assert.Contains("schema 'x' of t.schemas", bad.Message, StringComparison.Ordinal);
    }
}

/// <summary>
/// A connector with one keyed stream <c>people</c> whose steps each carry their own schema (a read can change shape midway), with
/// values of every type set through the builder's typed setters; each step is a batch then a checkpoint <c>{"step": n}</c>.
/// </summary>
internal sealed class TypedScript(StreamSchema discovered, IReadOnlyList<TypedScript.Step> steps) : ISourceConnector
{
    public sealed record Row(ChangeOp Op, ulong Position, object?[] Values);

    public sealed record Step(StreamSchema Schema, params Row[] Rows);

    public IReadOnlyList<Step> Steps => steps;

    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object","properties":{}}""");

    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(CheckResult.Ok());

    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([new StreamDescriptor("people", discovered, ["id"], [], [SyncMode.Cdc])]));

    public ISourceReader OpenReader(ReadContext context) => new Reader(steps, context.State is { } s ? s.GetProperty("step").GetInt32() : 0);

    private static ChangeBatch Build(Step step)
    {
        var b = new ChangeBatchBuilder("people", step.Schema);
        foreach (var r in step.Rows)
        {
            b.BeginRow(r.Op, new SourcePosition(r.Position, 0), 1_700_000_000_000_000 + (long)r.Position);
            for (var c = 0; c < step.Schema.Count; c++)
            {
                switch (r.Values[c])
                {
                    case null: b.SetNull(c); break;
                    case long l: b.SetInt64(c, l); break;
                    case string text: b.SetString(c, text); break;
                    case decimal m: b.SetDecimal(c, m); break;
                    case DateTimeOffset t: b.SetTimestamp(c, t); break;
                    case DateTime t: b.SetTimestampMicros(c, (t - DateTime.UnixEpoch).Ticks / 10); break;
                    case DateOnly d: b.SetDate(c, d); break;
                    case byte[] bytes: b.SetBinary(c, bytes); break;
                    case object o: b.SetValue(c, o); break;
                }
            }

            b.EndRow();
        }

        return b.Build();
    }

    private sealed class Reader(IReadOnlyList<Step> steps, int from) : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            for (var i = from; i < steps.Count; i++)
            {
                yield return Build(steps[i]);
                yield return Checkpoint.From(new { step = i + 1 });
                await Task.Yield();
            }

            yield return CaughtUp.Instance;
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Collects the exceptions logged (their stacks say where an unexpected failure came from).</summary>
internal sealed class ExceptionLogs : Microsoft.Extensions.Logging.ILoggerFactory, Microsoft.Extensions.Logging.ILogger
{
    public List<string> Errors { get; } = [];

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (exception is not null)
        {
            lock (Errors)
            {
                Errors.Add(exception.ToString());
            }
        }
    }

    public void Dispose()
    {
    }
}
