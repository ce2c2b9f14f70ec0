using Confluent.Kafka;
using Ingest.Engine.Pipelines;

namespace Ingest.Engine.Kafka;

/// <summary>Client configurations: the pipeline's librdkafka settings first, then what exactly-once needs (which they cannot override).</summary>
internal static class KafkaClients
{
    /// <summary>A transactional producer; <paramref name="transactionalId"/> is stable per connection so a restart fences the old one.</summary>
    public static ProducerConfig Producer(KafkaTransport transport, string transactionalId) =>
        new(Base(transport))
        {
            TransactionalId = transactionalId,
            EnableIdempotence = true,
            Acks = Acks.All,
        };

    /// <summary>A read-committed consumer without automatic offset commits.</summary>
    public static ConsumerConfig Consumer(KafkaTransport transport, string groupId) =>
        new(Base(transport))
        {
            GroupId = groupId,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = true,
            AllowAutoCreateTopics = true,
        };

    private static Dictionary<string, string> Base(KafkaTransport transport)
    {
        var config = new Dictionary<string, string>(transport.Settings, StringComparer.Ordinal)
        {
            ["bootstrap.servers"] = transport.BootstrapServers,
        };
        return config;
    }
}
