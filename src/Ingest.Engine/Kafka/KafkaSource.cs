using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The source half of a connection on the Kafka transport (DESIGN.md section 3): the connector's records go to one topic per
/// stream, and each transaction carries the records up to a checkpoint plus that checkpoint (to <c>&lt;prefix&gt;.offsets</c>,
/// keyed by connection). The connector is acknowledged only after its transaction committed; a restart resumes from the
/// last committed checkpoint (read with read_committed after <c>InitTransactions</c> fenced and aborted any older producer).
/// </summary>
internal sealed partial class KafkaSource(BoundConnection connection, KafkaTransport transport, CommitPolicy commit, RunOptions options, ILogger logger, ConnectionStatus status)
{
    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Runs the connector until its read ends (or caught up, under <see cref="RunOptions.Once"/>) or is stopped; transient failures
    /// (a broker down, a transaction that must be aborted) restart it from the last committed checkpoint (<see cref="KafkaRetry"/>).
    /// </summary>
    public async Task<ConnectionState> RunAsync(CancellationToken stop)
    {
        if (connection.Failure is { } failure)
        {
            status.State = ConnectionState.Failed;
            status.Error = ConnectionRunner.Describe(failure);
            LogFailed(logger, connection.Name, status.Error);
            return ConnectionState.Failed;
        }

        return await KafkaRetry.RunAsync(connection.Name, "kafka source", RunCoreAsync, options, status, logger, stop);
    }

    private async Task<ConnectionState> RunCoreAsync(System.Runtime.CompilerServices.StrongBox<bool> progressed, CancellationToken stop)
    {
        status.State = ConnectionState.Starting;
        var connector = connection.Connector;
        var config = connection.Definition.Config;
        var check = await connector.CheckAsync(config, stop);
        if (!check.Succeeded)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"check failed: {check.Message}", check.Field);
        }

        var streams = connection.Targets.GroupBy(t => t.Stream.Name, StringComparer.Ordinal).Select(g => g.First().Stream).ToDictionary(s => s.Name, StringComparer.Ordinal);
        if (streams.Count == 0)
        {
            return ConnectionState.Completed;
        }

        var topics = streams.Values.ToDictionary(s => s.Name, s => new StreamTopic(
            transport.Topic(connection.Name, s.Name),
            s.PrimaryKey.Select(k => s.Schema.IndexOf(k)).ToArray(),
            [new Header(ChangeEnvelope.SchemaHeader, Encoding.UTF8.GetBytes(ChangeEnvelope.SchemaId(s.Schema)))]), StringComparer.Ordinal);

        using var producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaClients.Producer(transport, $"{transport.TopicPrefix}.{connection.Name}")).Build();
        if (transport.CreateOffsetsTopic)
        {
            using var admin = new DependentAdminClientBuilder(producer.Handle).Build();
            await OffsetsTopic.EnsureAsync(admin, transport.OffsetsTopic, OffsetsTopic.DefaultTimeout, logger, stop);
        }

        await Task.Run(() => producer.InitTransactions(ClientTimeout), stop);
        var (sequence, resume) = ReadLastCheckpoint(producer, stop);
        if (resume is not null)
        {
            LogResume(logger, connection.Name, sequence);
        }

        var selections = streams.Values.Select(s => new StreamSelection(s.Name, PickSyncMode(s))).ToList();
        var source = new EnvelopeSource(connection.Definition.Connector, connection.Name, false);
        var buffer = new ArrayBufferWriter<byte>(4096);
        var keyBuffer = new ArrayBufferWriter<byte>(256);
        var inTransaction = false;
        Checkpoint? latest = null;
        long rows = 0;
        var sinceCommit = Stopwatch.StartNew();
        var reader = connector.OpenReader(new ReadContext(connection.Name, config, selections, resume, new ConnectorLogAdapter(logger, connection.Name)));
        try
        {
            status.State = ConnectionState.Running;
            await foreach (var message in reader.ReadAsync(stop).WithCancellation(stop))
            {
                switch (message)
                {
                    case ChangeBatch batch:
                        using (batch)
                        {
                            if (!topics.TryGetValue(batch.Stream, out var topic))
                            {
                                throw new ConnectorException(ErrorKind.Fatal, $"connector '{connection.Definition.Connector}' sent rows of stream '{batch.Stream}', which was not selected");
                            }

                            if (!inTransaction)
                            {
                                producer.BeginTransaction();
                                inTransaction = true;
                            }

                            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                            for (var i = 0; i < batch.Length; i++)
                            {
                                var key = ChangeEnvelope.Key(batch.Data, topic.KeyOrdinals, i, keyBuffer);
                                var value = ChangeEnvelope.Value(batch, i, source, now, buffer);
                                Produce(producer, topic.Name, new Message<byte[]?, byte[]?> { Key = key, Value = value, Headers = topic.Headers });
                                if (batch.Ops[i] == ChangeOp.Delete && key is not null)
                                {
                                    // A tombstone, so a compacted topic forgets the key.
                                    Produce(producer, topic.Name, new Message<byte[]?, byte[]?> { Key = key, Value = null, Headers = topic.Headers });
                                }
                            }

                            rows += batch.Length;
                            status.Stream(batch.Stream).AddRead(batch.Length);
                        }

                        break;
                    case Checkpoint checkpoint:
                        latest = checkpoint;
                        if (rows >= commit.MaxRows || sinceCommit.Elapsed >= commit.Interval)
                        {
                            sequence = await CommitAsync(producer, reader, latest, ++sequence, inTransaction, stop);
                            progressed.Value = true;
                            (inTransaction, latest, rows) = (false, null, 0);
                            sinceCommit.Restart();
                        }

                        break;
                    case CaughtUp:
                        if (latest is not null)
                        {
                            sequence = await CommitAsync(producer, reader, latest, ++sequence, inTransaction, stop);
                            progressed.Value = true;
                            (inTransaction, latest, rows) = (false, null, 0);
                            sinceCommit.Restart();
                        }

                        status.CaughtUp = true;
                        if (options.Once)
                        {
                            return ConnectionState.Completed;
                        }

                        break;
                }
            }

            if (latest is not null)
            {
                sequence = await CommitAsync(producer, reader, latest, ++sequence, inTransaction, stop);
                progressed.Value = true;
                inTransaction = false;
            }

            return ConnectionState.Completed;
        }
        finally
        {
            if (inTransaction)
            {
                try
                {
                    // Records after the last committed checkpoint are never seen by read_committed consumers.
                    producer.AbortTransaction(ClientTimeout);
                }
                catch (KafkaException e)
                {
                    LogAbortFailed(logger, connection.Name, e.Error.Reason);
                }
            }

            await reader.DisposeAsync();
        }
    }

    private static void Produce(IProducer<byte[]?, byte[]?> producer, string topic, Message<byte[]?, byte[]?> message)
    {
        while (true)
        {
            try
            {
                producer.Produce(topic, message);
                return;
            }
            catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(50));
            }
        }
    }

    private async Task<long> CommitAsync(IProducer<byte[]?, byte[]?> producer, ISourceReader reader, Checkpoint checkpoint, long sequence, bool inTransaction, CancellationToken stop)
    {
        if (!inTransaction)
        {
            producer.BeginTransaction();
        }

        var record = new JsonObject
        {
            ["connection"] = connection.Name,
            ["sequence"] = sequence,
            ["checkpoint"] = JsonNode.Parse(checkpoint.State.GetRawText()),
        };
        Produce(producer, transport.OffsetsTopic, new Message<byte[]?, byte[]?> { Key = Encoding.UTF8.GetBytes(connection.Name), Value = Encoding.UTF8.GetBytes(record.ToJsonString()) });
        await Task.Run(() => producer.CommitTransaction(ClientTimeout), CancellationToken.None);
        status.CheckpointSequence = sequence;
        await reader.AcknowledgeAsync(checkpoint, stop);
        LogCommitted(logger, connection.Name, sequence);
        return sequence;
    }

    /// <summary>The connection's last committed checkpoint in the offsets topic (read_committed, every partition to its end).</summary>
    private (long Sequence, JsonElement? State) ReadLastCheckpoint(IProducer<byte[]?, byte[]?> producer, CancellationToken stop)
    {
        using var admin = new DependentAdminClientBuilder(producer.Handle).Build();
        var metadata = admin.GetMetadata(transport.OffsetsTopic, ClientTimeout);
        var partitions = metadata.Topics.SelectMany(t => t.Partitions.Select(p => new TopicPartition(t.Topic, p.PartitionId))).ToList();
        if (partitions.Count == 0)
        {
            return (0, null);
        }

        var config = KafkaClients.Consumer(transport, $"{transport.TopicPrefix}.offsets-reader");
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(p, Offset.Beginning)));
        var pending = new HashSet<TopicPartition>(partitions);
        var key = connection.Name;
        long sequence = 0;
        JsonElement? state = null;
        var deadline = Stopwatch.StartNew();
        while (pending.Count > 0)
        {
            stop.ThrowIfCancellationRequested();
            if (deadline.Elapsed > ClientTimeout)
            {
                throw new TimeoutException($"reading the offsets topic {transport.OffsetsTopic} did not reach its end within {ClientTimeout.TotalSeconds} s");
            }

            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is null)
            {
                continue;
            }

            if (r.IsPartitionEOF)
            {
                pending.Remove(r.TopicPartition);
                continue;
            }

            if (r.Message.Key is null || Encoding.UTF8.GetString(r.Message.Key) != key || r.Message.Value is null)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(r.Message.Value);
            sequence = doc.RootElement.GetProperty("sequence").GetInt64();
            state = doc.RootElement.GetProperty("checkpoint").Clone();
        }

        consumer.Close();
        return (sequence, state);
    }

    private static SyncMode PickSyncMode(StreamDescriptor s) =>
        s.SupportedSyncModes.Contains(SyncMode.Cdc) ? SyncMode.Cdc
        : s.SupportedSyncModes.Contains(SyncMode.Incremental) ? SyncMode.Incremental
        : s.SupportedSyncModes.Count > 0 ? s.SupportedSyncModes[0] : SyncMode.FullRefresh;

    private sealed record StreamTopic(string Name, int[] KeyOrdinals, Headers Headers);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Connection} (kafka source): failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection} (kafka source): resuming from checkpoint #{Sequence} of the offsets topic")]
    private static partial void LogResume(ILogger logger, string connection, long sequence);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Connection} (kafka source): transaction of checkpoint #{Sequence} committed")]
    private static partial void LogCommitted(ILogger logger, string connection, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection} (kafka source): aborting the open transaction failed: {Error}")]
    private static partial void LogAbortFailed(ILogger logger, string connection, string error);
}
