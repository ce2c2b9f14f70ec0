using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;
using Ingest.Delta;

namespace Ingest.Benchmarks;

/// <summary>
/// The Kafka path (issue 5): a sample-connector snapshot of about N rows through librdkafka's mock cluster (hosted here) into
/// Delta merge tables, as two `ingest run --once` children, `--role source` then `--role sink`, each timed on its own; then the
/// same snapshot on the embedded transport as the in-process yardstick. The mock keeps only ~5 MiB per partition, so the
/// stream topics are created with many partitions up front (rd_kafka_mock_topic_create) to hold the whole snapshot; the row
/// counts of the tables are checked against the embedded run's.
/// </summary>
internal static class KafkaBenchmark
{
    private static readonly string[] Streams = ["customers", "products", "orders", "order_lines"];

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 1_000_000L;
        var partitions = 128;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--rows" && i + 1 < args.Length)
            {
                rows = long.Parse(args[++i], CultureInfo.InvariantCulture);
            }
            else if (args[i] == "--partitions" && i + 1 < args.Length)
            {
                partitions = int.Parse(args[++i], CultureInfo.InvariantCulture);
            }
        }

        var meta = typeof(KafkaBenchmark).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value);
        var root = meta["IngestRepoRoot"]!;
        var configuration = meta["IngestConfiguration"]!;
        var ingestDll = Path.Combine(root, "src", "Ingest.Host", "bin", configuration, "net10.0", "ingest.dll");
        var plugins = Path.Combine(root, "artifacts", "plugins");
        if (!File.Exists(ingestDll))
        {
            Console.Error.WriteLine($"ingest.dll not found at {ingestDll}: build the solution first.");
            return 1;
        }

        var orders = Math.Max(1, rows * 10 / 46);
        var customers = Math.Max(1, rows / 10);
        var products = Math.Max(1, rows / 100);
        var config = $"{{seed: 7, customers: {customers}, products: {products}, orders: {orders}, changes: 0, changesPerSecond: 0, batchSize: 10000}}";

        using var host = new ProducerBuilder<Null, Null>(new ProducerConfig(new Dictionary<string, string> { ["bootstrap.servers"] = "localhost:1", ["test.mock.num.brokers"] = "3" })).Build();
        string bootstrap;
        using (var admin = new DependentAdminClientBuilder(host.Handle).Build())
        {
            bootstrap = string.Join(",", admin.GetMetadata(TimeSpan.FromSeconds(10)).Brokers.Select(b => $"{b.Host}:{b.Port}"));
        }

        var prefix = "bench" + Guid.NewGuid().ToString("N")[..6];
        foreach (var s in Streams)
        {
            MockTopics.Create(host.Handle, $"{prefix}.shop.{s}", partitions);
        }

        Console.WriteLine($"Kafka benchmark: sample snapshot (customers {customers}, products {products}, orders {orders} + lines) -> librdkafka mock cluster (3 brokers, {partitions} partitions per topic) -> Delta merge; configuration {configuration}, {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| run                          | rows      | seconds | rows/s    | peak RSS MiB |");
        Console.WriteLine("|------------------------------|-----------|---------|-----------|--------------|");
        var dir = Directory.CreateTempSubdirectory("ingest-kafka-bench-");
        try
        {
            var streams = string.Join("\n", Streams.Select(s => $"      - {{name: {s}, mode: merge}}"));
            var kafka = Path.Combine(dir.FullName, "kafka.yaml");
            await File.WriteAllTextAsync(kafka, $"""
                lake: ./lake-kafka
                transport: {"{"}kind: kafka, bootstrapServers: "{bootstrap}", topicPrefix: {prefix}, createOffsetsTopic: false, settings: {"{"}linger.ms: "20", batch.size: "1000000", session.timeout.ms: "6000", heartbeat.interval.ms: "500"{"}"}{"}"}
                commit: {"{"}interval: 5s, maxRows: 500000{"}"}
                connections:
                  - name: shop
                    connector: sample
                    config: {config}
                    streams:
                {streams}
                """);
            var embedded = Path.Combine(dir.FullName, "embedded.yaml");
            await File.WriteAllTextAsync(embedded, $"""
                lake: ./lake-embedded
                transport: embedded
                commit: {"{"}interval: 5s, maxRows: 500000{"}"}
                connections:
                  - name: shop
                    connector: sample
                    config: {config}
                    streams:
                {streams}
                """);

            var expected = -1L;
            foreach (var (label, pipeline, role, lake) in new[]
            {
                ("embedded (in-process)", embedded, (string?)null, "lake-embedded"),
                ("kafka source half", kafka, "source", (string?)null),
                ("kafka sink half", kafka, "sink", "lake-kafka"),
            })
            {
                var (seconds, peakKib, exit) = await IngestChild.RunOnceAsync(ingestDll, pipeline, plugins, [.. new[] { "--data", Path.Combine(Path.GetDirectoryName(pipeline)!, "state") }, .. (role is null ? Array.Empty<string>() : ["--role", role])]);
                if (exit != 0)
                {
                    Console.Error.WriteLine($"{label}: ingest exited with {exit}");
                    return 1;
                }

                var total = lake is null ? expected : await CountAsync(Path.Combine(dir.FullName, lake));
                if (label.StartsWith("embedded", StringComparison.Ordinal))
                {
                    expected = total;
                }
                else if (lake is not null && total != expected)
                {
                    Console.Error.WriteLine($"{label}: the tables hold {total} rows, the embedded run {expected}");
                    return 1;
                }

                Console.WriteLine($"| {label,-28} | {total,9} | {seconds,7:F2} | {total / seconds,9:F0} | {peakKib / 1024.0,12:F0} |");
                if (role == "source")
                {
                    // The baseline the issue names: a bare Confluent.Kafka producer loop sending the same bytes (keys, values,
                    // headers) the source half wrote, with the same linger and batch settings, no transactions.
                    var records = ReadAll(bootstrap, Streams.Select(st => $"{prefix}.shop.{st}").ToList());
                    foreach (var st in Streams)
                    {
                        MockTopics.Create(host.Handle, $"{prefix}.bare.{st}", partitions);
                    }

                    var (bareSeconds, sent) = ProduceAll(bootstrap, records, prefix);
                    Console.WriteLine($"| {"bare producer (same bytes)",-28} | {sent,9} | {bareSeconds,7:F2} | {sent / bareSeconds,9:F0} | {"-",12} |");
                    records.Clear();
                }
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }

        return 0;
    }

    private static List<(string Topic, byte[]? Key, byte[]? Value, Headers Headers)> ReadAll(string bootstrap, List<string> topics)
    {
        var records = new List<(string, byte[]?, byte[]?, Headers)>();
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "bench-read-" + Guid.NewGuid().ToString("N")[..6],
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
            EnableAutoCommit = false,
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        var partitions = metadata.Topics.Where(t => topics.Contains(t.Topic))
            .SelectMany(t => t.Partitions.Select(p => new TopicPartitionOffset(t.Topic, p.PartitionId, Offset.Beginning))).ToList();
        consumer.Assign(partitions);
        var open = partitions.Count;
        while (open > 0)
        {
            var r = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("no record within 10 s while reading the source's topics back");
            if (r.IsPartitionEOF)
            {
                open--;
                continue;
            }

            records.Add((r.Topic.Replace(".shop.", ".bare.", StringComparison.Ordinal), r.Message.Key, r.Message.Value, r.Message.Headers));
        }

        return records;
    }

    private static (double Seconds, long Sent) ProduceAll(string bootstrap, List<(string Topic, byte[]? Key, byte[]? Value, Headers Headers)> records, string prefix)
    {
        var config = new ProducerConfig(new Dictionary<string, string> { ["bootstrap.servers"] = bootstrap, ["linger.ms"] = "20", ["batch.size"] = "1000000" });
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(config).Build();
        long delivered = 0;
        long failed = 0;
        var clock = Stopwatch.StartNew();
        foreach (var (topic, key, value, headers) in records)
        {
            while (true)
            {
                try
                {
                    producer.Produce(topic, new Message<byte[]?, byte[]?> { Key = key, Value = value, Headers = headers }, d =>
                    {
                        if (d.Error.IsError)
                        {
                            Interlocked.Increment(ref failed);
                        }
                        else
                        {
                            Interlocked.Increment(ref delivered);
                        }
                    });
                    break;
                }
                catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(50));
                }
            }
        }

        producer.Flush(TimeSpan.FromMinutes(5));
        var seconds = clock.Elapsed.TotalSeconds;
        if (failed > 0)
        {
            throw new InvalidOperationException($"{failed} records of the bare producer run ({prefix}.bare.*) failed");
        }

        return (seconds, delivered);
    }

    private static async Task<long> CountAsync(string lake)
    {
        long total = 0;
        foreach (var s in Streams)
        {
            var table = await DeltaTable.TryOpenAsync(Path.Combine(lake, "shop", s), CancellationToken.None) ?? throw new InvalidOperationException($"table {s} missing");
            total += table.Snapshot.RowCount ?? 0;
        }

        return total;
    }

    /// <summary>librdkafka's mock cluster API (not wrapped by Confluent.Kafka), on the library Confluent.Kafka loaded.</summary>
    private static class MockTopics
    {
        static MockTopics()
        {
            NativeLibrary.SetDllImportResolver(typeof(MockTopics).Assembly, (name, _, _) =>
            {
                if (name != "librdkafka")
                {
                    return IntPtr.Zero;
                }

                var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6)
                    .Select(f => f[5]).FirstOrDefault(f => f.EndsWith("librdkafka.so", StringComparison.Ordinal));
                return path is not null && NativeLibrary.TryLoad(path, out var h) ? h : IntPtr.Zero;
            });
        }

        public static void Create(Handle handle, string topic, int partitions)
        {
            var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)!;
            var rk = ((SafeHandle)property.GetValue(handle)!).DangerousGetHandle();
            var err = rd_kafka_mock_topic_create(rd_kafka_handle_mock_cluster(rk), [.. System.Text.Encoding.UTF8.GetBytes(topic), 0], partitions, 1);
            if (err != 0)
            {
                throw new InvalidOperationException($"rd_kafka_mock_topic_create {topic}: error {err}");
            }
        }

#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code in the project; these signatures are blittable.
        [DllImport("librdkafka")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

        [DllImport("librdkafka")]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern int rd_kafka_mock_topic_create(IntPtr cluster, byte[] topic, int partitions, int replicationFactor);
#pragma warning restore SYSLIB1054
    }
}
