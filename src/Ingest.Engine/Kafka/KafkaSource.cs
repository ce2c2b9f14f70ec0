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
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The source half of a connection on the Kafka transport (DESIGN.md section 3): the connector's records go to one topic per
/// stream, and each transaction carries the records up to a checkpoint plus that checkpoint (to <c>&lt;prefix&gt;.offsets</c>,
/// keyed by connection). The connector is acknowledged only after its transaction committed; a restart resumes from the
/// last committed checkpoint (read with read_committed after <c>InitTransactions</c> fenced and aborted any older producer).
/// Every record names its stream's schema by id (<see cref="ChangeEnvelope.SchemaHeader"/>); the schema itself goes to the
/// compacted <c>&lt;prefix&gt;.schemas</c> topic (<see cref="SchemasTopic"/>) in the same transaction, before the first record naming it:
/// once per schema and producer session, and again when the connector changes the stream's columns mid-read.
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
            s,
            connection.Targets.First(t => t.Stream.Name == s.Name).Columns), StringComparer.Ordinal);
        var schemasTopic = SchemasTopic.Name(transport);

        // Schema ids written in this producer's transactions (each schema once per session: a restart writes them again, so a
        // schema record never sits only in an aborted transaction; the topic is compacted by id).
        var written = new HashSet<string>(StringComparer.Ordinal);

        using var producer = new ProducerBuilder<byte[]?, byte[]?>(KafkaClients.Producer(transport, $"{transport.TopicPrefix}.{connection.Name}")).Build();
        if (transport.CreateOffsetsTopic)
        {
            using var admin = new DependentAdminClientBuilder(producer.Handle).Build();
            await OffsetsTopic.EnsureAsync(admin, transport.OffsetsTopic, OffsetsTopic.DefaultTimeout, logger, stop);
            await OffsetsTopic.EnsureAsync(admin, schemasTopic, "schemas", OffsetsTopic.DefaultTimeout, logger, stop);
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
                    case ChangeBatch received:
                        if (!topics.TryGetValue(received.Stream, out var topic))
                        {
                            received.Dispose();
                            throw new ConnectorException(ErrorKind.Fatal, $"connector '{connection.Definition.Connector}' sent rows of stream '{received.Stream}', which was not selected");
                        }

                        // The stream's column selection, as on the embedded transport: only these reach the topic (and its schema).
                        var batch = topic.Columns is { } selected ? ColumnProjection.Project(received, selected) : received;
                        using (batch)
                        {
                            if (!inTransaction)
                            {
                                producer.BeginTransaction();
                                inTransaction = true;
                            }

                            if (topic.Follow(batch.Data.Schema) is { } changed)
                            {
                                LogSchemaChanged(logger, connection.Name, batch.Stream, topic.SchemaId, changed);
                            }

                            if (written.Add(topic.SchemaId))
                            {
                                // Before the first record naming it, in the same transaction: a consumer that sees the record finds the schema.
                                Produce(producer, schemasTopic, new Message<byte[]?, byte[]?> { Key = Encoding.UTF8.GetBytes(topic.SchemaId), Value = topic.SchemaJson });
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

    /// <summary>A stream's topic and the schema its records carry now (its id in every record's header).</summary>
    private sealed class StreamTopic
    {
        private readonly StreamDescriptor _stream;
        private Apache.Arrow.Schema? _matched;

        public StreamTopic(string name, StreamDescriptor stream, IReadOnlyList<string>? columns)
        {
            Name = name;
            _stream = stream;
            Columns = columns;
            Use(stream.Schema);
        }

        public string Name { get; }

        /// <summary>The selected columns (<c>columns:</c>), or null for all.</summary>
        public IReadOnlyList<string>? Columns { get; }

        public StreamSchema Schema { get; private set; } = null!;

        public string SchemaId { get; private set; } = null!;

        public byte[] SchemaJson { get; private set; } = null!;

        public int[] KeyOrdinals { get; private set; } = null!;

        public Headers Headers { get; private set; } = null!;

        /// <summary>Takes a batch's columns: when they differ from <see cref="Schema"/> (the source changed the stream mid-read), they become the schema; returns the change then, else null.</summary>
        public string? Follow(Apache.Arrow.Schema batch)
        {
            if (ReferenceEquals(batch, _matched) || Sink.SchemaChange.Matches(batch, Schema))
            {
                _matched = batch;
                return null;
            }

            StreamSchema incoming;
            try
            {
                incoming = StreamSchema.FromArrow(batch);
            }
            catch (Exception e) when (e is NotSupportedException or ArgumentException)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"stream '{_stream.Name}': a batch has columns the SDK cannot describe ({e.Message})");
            }

            var change = Sink.SchemaChange.DescribeAll(Schema, incoming);
            Use(incoming);
            _matched = batch;
            return change;
        }

        private void Use(StreamSchema schema)
        {
            var keys = _stream.PrimaryKey.Select(schema.IndexOf).ToArray();
            if (Array.IndexOf(keys, -1) is var lost and >= 0)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"stream '{_stream.Name}' changed its schema during the read and no longer has its key column '{_stream.PrimaryKey[lost]}' (the record key of topic {Name})");
            }

            Schema = schema;
            SchemaJson = ChangeEnvelope.SchemaJson(schema);
            SchemaId = ChangeEnvelope.SchemaId(SchemaJson);
            KeyOrdinals = keys;
            Headers = [new Header(ChangeEnvelope.SchemaHeader, Encoding.UTF8.GetBytes(SchemaId))];
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}.{Stream} (kafka source): the source changed the stream's schema ({Change}); its records now name schema {SchemaId}")]
    private static partial void LogSchemaChanged(ILogger logger, string connection, string stream, string schemaId, string change);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Connection} (kafka source): failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection} (kafka source): resuming from checkpoint #{Sequence} of the offsets topic")]
    private static partial void LogResume(ILogger logger, string connection, long sequence);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Connection} (kafka source): transaction of checkpoint #{Sequence} committed")]
    private static partial void LogCommitted(ILogger logger, string connection, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection} (kafka source): aborting the open transaction failed: {Error}")]
    private static partial void LogAbortFailed(ILogger logger, string connection, string error);
}
