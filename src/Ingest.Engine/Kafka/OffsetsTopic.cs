using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The <c>&lt;prefix&gt;.offsets</c> topic of the connectors' checkpoints: created compacted (<c>cleanup.policy=compact</c>, one
/// partition) when absent, so it keeps the last checkpoint of every connection forever; an existing one is left as it is (a
/// policy other than compact is logged). A cluster that refuses CreateTopics (no rights, or librdkafka's mock cluster, which has
/// no CreateTopics) leaves the topic to auto-creation with the broker's defaults, with a warning. <c>createOffsetsTopic: false</c>
/// on the transport skips this step (for clusters where topics are provisioned by other means). The schemas topic
/// (<see cref="SchemasTopic"/>) is made the same way.
/// </summary>
internal static partial class OffsetsTopic
{
    /// <summary>How long each admin request may take.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>What <see cref="EnsureAsync"/> found or did.</summary>
    public enum Outcome
    {
        /// <summary>Created, compacted.</summary>
        Created,
        /// <summary>There already, compacted.</summary>
        ExistsCompacted,
        /// <summary>There already with another cleanup policy (logged).</summary>
        ExistsNotCompacted,
        /// <summary>There already; its configuration could not be read.</summary>
        ExistsUnknown,
        /// <summary>Absent and CreateTopics refused: left to auto-creation.</summary>
        NotCreated,
    }

    /// <summary>Makes sure the offsets topic exists, compacted when this call creates it.</summary>
    public static Task<Outcome> EnsureAsync(IAdminClient admin, string topic, TimeSpan timeout, ILogger logger, CancellationToken cancellationToken) =>
        EnsureAsync(admin, topic, "offsets", timeout, logger, cancellationToken);

    /// <summary>Makes sure a compacted topic exists (<paramref name="kind"/>: <c>offsets</c>, <c>schemas</c>, named in the logs), compacted when this call creates it.</summary>
    public static async Task<Outcome> EnsureAsync(IAdminClient admin, string topic, string kind, TimeSpan timeout, ILogger logger, CancellationToken cancellationToken)
    {
        // Metadata of all topics: asking for this one by name would auto-create it with the broker's defaults.
        var metadata = await Task.Run(() => admin.GetMetadata(timeout), cancellationToken);
        var exists = metadata.Topics.Any(t => t.Topic == topic && t.Error.Code == ErrorCode.NoError);
        if (!exists)
        {
            try
            {
                await admin.CreateTopicsAsync(
                    [new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = -1, Configs = new Dictionary<string, string> { ["cleanup.policy"] = "compact" } }],
                    new CreateTopicsOptions { RequestTimeout = timeout, OperationTimeout = timeout });
                LogCreated(logger, kind, topic);
                return Outcome.Created;
            }
            catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code == ErrorCode.TopicAlreadyExists))
            {
                // Another process created it meanwhile: check it as an existing one.
            }
            catch (KafkaException e)
            {
                LogNotCreated(logger, kind, topic, e.Error.Reason);
                return Outcome.NotCreated;
            }
        }

        try
        {
            var results = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = topic }], new DescribeConfigsOptions { RequestTimeout = timeout });
            var policy = results.SelectMany(r => r.Entries.Values).FirstOrDefault(e => e.Name == "cleanup.policy")?.Value ?? "";
            if (policy.Split(',').Any(p => p.Trim() == "compact"))
            {
                return Outcome.ExistsCompacted;
            }

            LogNotCompacted(logger, kind, topic, policy);
            return Outcome.ExistsNotCompacted;
        }
        catch (KafkaException e)
        {
            LogNotDescribed(logger, kind, topic, e.Error.Reason);
            return Outcome.ExistsUnknown;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created the {Kind} topic {Topic} (cleanup.policy=compact)")]
    private static partial void LogCreated(ILogger logger, string kind, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not create the {Kind} topic {Topic} ({Error}); it will be auto-created with the broker's defaults: set cleanup.policy=compact on it")]
    private static partial void LogNotCreated(ILogger logger, string kind, string topic, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The {Kind} topic {Topic} has cleanup.policy={Policy}: with delete, its records (the last of each key) expire; set cleanup.policy=compact")]
    private static partial void LogNotCompacted(ILogger logger, string kind, string topic, string policy);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not read the configuration of the {Kind} topic {Topic}: {Error}")]
    private static partial void LogNotDescribed(ILogger logger, string kind, string topic, string error);
}
