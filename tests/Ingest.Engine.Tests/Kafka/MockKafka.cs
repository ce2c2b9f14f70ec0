using Confluent.Kafka;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>librdkafka's in-process mock cluster (3 brokers): a producer created with <c>test.mock.num.brokers</c> hosts it.</summary>
internal sealed class MockKafka : IDisposable
{
    private readonly IProducer<Null, Null> _host;

    public MockKafka()
    {
        _host = new ProducerBuilder<Null, Null>(new ProducerConfig(new Dictionary<string, string> { ["bootstrap.servers"] = "localhost:1", ["test.mock.num.brokers"] = "3" })).Build();
        using var admin = new DependentAdminClientBuilder(_host.Handle).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        BootstrapServers = string.Join(",", metadata.Brokers.Select(b => $"{b.Host}:{b.Port}"));
        Assert.False(string.IsNullOrEmpty(BootstrapServers), "the mock cluster reported no brokers");
        Prefix = "t" + Guid.NewGuid().ToString("N")[..8];
    }

    public string BootstrapServers { get; }

    /// <summary>A topic prefix of its own per test.</summary>
    public string Prefix { get; }

    public string Transport => $"{{kind: kafka, bootstrapServers: \"{BootstrapServers}\", topicPrefix: {Prefix}, settings: {{linger.ms: \"5\", session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}}}";

    public void Dispose() => _host.Dispose();
}
