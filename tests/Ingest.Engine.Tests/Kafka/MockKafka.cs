using System.Reflection;
using System.Runtime.InteropServices;
using Confluent.Kafka;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>
/// librdkafka's in-process mock cluster (3 brokers): a producer created with <c>test.mock.num.brokers</c> hosts it. Its fault
/// injection (brokers down and up, errors for the next requests of an API) is librdkafka's <c>rd_kafka_mock_*</c> C API, which
/// Confluent.Kafka does not wrap: called here directly on the same native library.
/// </summary>
internal sealed class MockKafka : IDisposable
{
    private const string Native = "librdkafka";
    private readonly IProducer<Null, Null> _host;

    static MockKafka()
    {
        // Resolve "librdkafka" to the very file Confluent.Kafka loaded, so both share one library (and one mock cluster).
        NativeLibrary.SetDllImportResolver(typeof(MockKafka).Assembly, (name, _, _) =>
        {
            if (name != Native)
            {
                return IntPtr.Zero;
            }

            // The file Confluent.Kafka picked among its builds (librdkafka.so, centos8-, alpine-) is already mapped.
            var path = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6)
                .Select(f => f[5]).FirstOrDefault(f => f.EndsWith("librdkafka.so", StringComparison.Ordinal));
            if (path is null)
            {
                return IntPtr.Zero;
            }

            return NativeLibrary.TryLoad(path, out var handle) ? handle : IntPtr.Zero;
        });
    }

    public MockKafka()
    {
        _host = new ProducerBuilder<Null, Null>(new ProducerConfig(new Dictionary<string, string> { ["bootstrap.servers"] = "localhost:1", ["test.mock.num.brokers"] = "3" })).Build();
        using var admin = new DependentAdminClientBuilder(_host.Handle).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        BootstrapServers = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
        BrokerIds = metadata.Brokers.Select(b => b.BrokerId).ToList();
        Assert.False(string.IsNullOrEmpty(BootstrapServers), "the mock cluster reported no brokers");
        Prefix = "t" + Guid.NewGuid().ToString("N")[..8];
    }

    public string BootstrapServers { get; }

    public IReadOnlyList<int> BrokerIds { get; }

    /// <summary>A topic prefix of its own per test.</summary>
    public string Prefix { get; }

    /// <summary>
    /// The transport of a pipeline on this cluster. The mock has neither CreateTopics nor DescribeConfigs (each would wait for its
    /// timeout), so the offsets topic is left to auto-creation (OffsetsTopicTests cover its creation).
    /// </summary>
    public string Transport => $"{{kind: kafka, bootstrapServers: \"{BootstrapServers}\", topicPrefix: {Prefix}, createOffsetsTopic: false, settings: {{linger.ms: \"5\", session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}}}";

    /// <summary>Takes a broker down (connections closed, new ones refused) or brings it back.</summary>
    public void SetBrokerUp(int brokerId, bool up)
    {
        var err = up ? rd_kafka_mock_broker_set_up(Cluster(), brokerId) : rd_kafka_mock_broker_set_down(Cluster(), brokerId);
        Assert.True(err == 0, $"rd_kafka_mock_broker_set_{(up ? "up" : "down")}: error {err}");
    }

    /// <summary>The next requests of an API (any broker) fail with these errors, one request each.</summary>
    public void PushRequestErrors(short apiKey, params ErrorCode[] errors)
    {
        var codes = errors.Select(e => (int)e).ToArray();
        rd_kafka_mock_push_request_errors_array(Cluster(), apiKey, (nuint)codes.Length, codes);
    }

    /// <summary>Creates a topic with a partition count of one's choosing (auto-created topics get 4).</summary>
    public void CreateTopic(string topic, int partitions)
    {
        var err = rd_kafka_mock_topic_create(Cluster(), [.. System.Text.Encoding.UTF8.GetBytes(topic), 0], partitions, 1);
        Assert.True(err == 0, $"rd_kafka_mock_topic_create: error {err}");
    }

    private IntPtr Cluster()
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka's Handle has no LibrdkafkaHandle");
        var rk = ((SafeHandle)property.GetValue(_host.Handle)!).DangerousGetHandle();
        var cluster = rd_kafka_handle_mock_cluster(rk);
        Assert.True(cluster != IntPtr.Zero, "the host producer has no mock cluster");
        return cluster;
    }

    public void Dispose() => _host.Dispose();

#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code in the project; these signatures are blittable.
    [DllImport(Native)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern IntPtr rd_kafka_handle_mock_cluster(IntPtr rk);

    [DllImport(Native)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int rd_kafka_mock_broker_set_down(IntPtr cluster, int brokerId);

    [DllImport(Native)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int rd_kafka_mock_broker_set_up(IntPtr cluster, int brokerId);

    [DllImport(Native)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern void rd_kafka_mock_push_request_errors_array(IntPtr cluster, short apiKey, nuint count, int[] errors);

    [DllImport(Native)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int rd_kafka_mock_topic_create(IntPtr cluster, byte[] topic, int partitions, int replicationFactor);
#pragma warning restore SYSLIB1054
}
