using System.Diagnostics;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Ingest.Delta;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Engine.Sink;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The sink half of a connection on the Kafka transport, kafka-delta-ingest's scheme (DESIGN.md section 4): a read_committed
/// consumer group per connection, per-table micro-batches, one txn <c>kafka:&lt;topic&gt;:&lt;partition&gt;</c> per partition in each
/// Delta commit with version = the last offset written, and on every assignment a seek to the tables' txn versions + 1.
/// Consumer offsets are committed after the Delta commit, for lag monitoring only. Revocation drops uncommitted rows
/// (the next owner re-reads them from the tables' txn versions). A record that cannot be decoded or does not fit the table goes
/// to the dead-letter table beside it (<see cref="DeadLetterTable"/>) and the stream goes on. Records are decoded by the schema they
/// name (<see cref="ChangeEnvelope.SchemaHeader"/>, resolved in the schemas topic, <see cref="SchemaCache"/>): exact types, and a
/// schema the source changed mid-read changes the table by its schema policy, as on the embedded transport; an id the schemas topic
/// does not have sends the record to the dead-letter table.
/// </summary>
internal sealed partial class KafkaSink(BoundConnection connection, KafkaTransport transport, CommitPolicy commit, RunOptions options, ILogger logger, ConnectionStatus status, Task? sourceDone)
{
    private readonly Dictionary<string, TopicState> _topics = new(StringComparer.Ordinal);
    // Partitions at their end, with the offset there. Under --once the end that counts is the one after the source
    // finished: a partition whose end was reached before the source's last transactions is not done (a run stopped
    // with whole topics unread when an early end was taken for the last one).
    private readonly Dictionary<TopicPartition, Offset> _eof = [];
    private readonly Dictionary<TopicPartition, Offset> _ends = [];
    private bool _reassigned;

    /// <summary>The consumer group of a connection's sink.</summary>
    public static string GroupId(KafkaTransport transport, string connection) => $"{transport.TopicPrefix}.sink.{connection}";

    /// <summary>Runs the sink until it caught up (<see cref="RunOptions.Once"/>) or is stopped; transient failures restart it (<see cref="KafkaRetry"/>).</summary>
    public async Task<ConnectionState> RunAsync(CancellationToken stop)
    {
        if (connection.Failure is { } failure)
        {
            status.State = ConnectionState.Failed;
            status.Error = ConnectionRunner.Describe(failure);
            LogFailed(logger, connection.Name, status.Error);
            return ConnectionState.Failed;
        }

        return await KafkaRetry.RunAsync(connection.Name, "kafka sink", async (progressed, ct) =>
        {
            try
            {
                return await Task.Run(() => RunCoreAsync(progressed, ct), CancellationToken.None);
            }
            finally
            {
                foreach (var t in _topics.Values.SelectMany(t => t.Tables))
                {
                    t.Reset();
                }
            }
        }, options, status, logger, stop);
    }

    private async Task<ConnectionState> RunCoreAsync(System.Runtime.CompilerServices.StrongBox<bool> progressed, CancellationToken stop)
    {
        _topics.Clear();
        _eof.Clear();
        _reassigned = false;
        status.State = ConnectionState.Starting;
        foreach (var target in connection.Targets)
        {
            if (target.Mode == SinkMode.Overwrite)
            {
                throw new Sdk.Connectors.ConnectorException(Sdk.Connectors.ErrorKind.Configuration,
                    $"stream '{target.Stream.Name}': mode overwrite is not available on the kafka transport (a topic has no whole reads); use append, merge or history");
            }

            var topic = transport.Topic(connection.Name, target.Stream.Name);
            if (!_topics.TryGetValue(topic, out var ts))
            {
                _topics[topic] = ts = new TopicState(topic);
            }

            ts.Tables.Add(new TableState(target));
        }

        if (_topics.Count == 0)
        {
            return ConnectionState.Completed;
        }

        await ReopenAsync(stop);
        using var schemas = new SchemaCache(transport, SchemasTopic.Name(transport), logger);
        var config = KafkaClients.Consumer(transport, GroupId(transport, connection.Name));
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetPartitionsAssignedHandler((_, parts) =>
            {
                _reassigned = true;
                _eof.Clear();
                if (parts.Count > 0)
                {
                    LogAssigned(logger, connection.Name, Describe(parts));
                }

                return parts.Select(tp => new TopicPartitionOffset(tp, StartOffset(tp))).ToList();
            })
            .SetPartitionsRevokedHandler((_, _) =>
            {
                _eof.Clear();
                foreach (var t in _topics.Values.SelectMany(t => t.Tables))
                {
                    t.Reset();
                }
            })
            .Build();
        consumer.Subscribe(_topics.Keys);
        status.State = ConnectionState.Running;
        var sinceFlush = Stopwatch.StartNew();
        long pending = 0;
        try
        {
            while (true)
            {
                stop.ThrowIfCancellationRequested();
                ConsumeResult<byte[]?, byte[]?>? r;
                try
                {
                    r = consumer.Consume(TimeSpan.FromMilliseconds(100));
                }
                catch (ConsumeException e) when (e.Error.Code is ErrorCode.UnknownTopicOrPart or ErrorCode.Local_UnknownTopic)
                {
                    // The source half has not created the stream's topic yet.
                    r = null;
                }

                if (_reassigned)
                {
                    // The table may have moved on while another member owned a partition: seek where the lake says.
                    _reassigned = false;
                    var before = consumer.Assignment.ToDictionary(tp => tp, StartOffset);
                    await ReopenAsync(stop);
                    foreach (var tp in consumer.Assignment)
                    {
                        var offset = StartOffset(tp);
                        if (offset != before[tp])
                        {
                            consumer.Seek(new TopicPartitionOffset(tp, offset));
                            _eof.Remove(tp);
                        }
                    }

                    if (r is not null && !r.IsPartitionEOF && r.Offset < StartOffset(r.TopicPartition))
                    {
                        r = null;
                    }
                }

                if (r is not null)
                {
                    if (r.IsPartitionEOF)
                    {
                        _eof[r.TopicPartition] = r.Offset;
                    }
                    else
                    {
                        _eof.Remove(r.TopicPartition);
                        pending += await AcceptAsync(r, schemas, stop);
                    }
                }

                if (pending >= commit.MaxRows || (sinceFlush.Elapsed >= commit.Interval && pending > 0))
                {
                    await FlushAsync(consumer, stop);
                    progressed.Value = true;
                    pending = 0;
                    sinceFlush.Restart();
                }

                // Only when a partition reached its end or nothing came: the assignment is a native call building a list (per record it costs more than the record).
                if (options.Once && (r is null || r.IsPartitionEOF) && (sourceDone?.IsCompleted ?? true) && consumer.Assignment is { Count: > 0 } assignment
                    && assignment.All(_eof.ContainsKey) && ReachedEnds(consumer, assignment))
                {
                    await FlushAsync(consumer, stop);
                    status.CaughtUp = true;
                    return ConnectionState.Completed;
                }
            }
        }
        finally
        {
            try
            {
                consumer.Close();
            }
            catch (KafkaException e)
            {
                LogCloseFailed(logger, connection.Name, e.Error.Reason);
            }
        }
    }

    /// <summary>
    /// Whether every partition's end reached is at least its end as the broker reports it now (asked once per partition,
    /// once the source is done: what it wrote is all there is).
    /// </summary>
    private bool ReachedEnds(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> assignment)
    {
        foreach (var tp in assignment)
        {
            if (!_ends.TryGetValue(tp, out var end))
            {
                end = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10)).High;
                _ends[tp] = end;
            }

            if (_eof[tp] < end)
            {
                return false;
            }
        }

        return true;
    }

    private Offset StartOffset(TopicPartition tp)
    {
        if (!_topics.TryGetValue(tp.Topic, out var ts))
        {
            return Offset.Beginning;
        }

        var appId = AppId(tp);
        long min = long.MaxValue;
        foreach (var t in ts.Tables)
        {
            min = Math.Min(min, t.Versions.TryGetValue(appId, out var v) ? v : -1);
        }

        return min < 0 ? Offset.Beginning : new Offset(min + 1);
    }

    /// <summary>Partitions as <c>topic[0,2] topic2[1]</c>.</summary>
    internal static string Describe(IEnumerable<TopicPartition> parts) =>
        string.Join(" ", parts.GroupBy(tp => tp.Topic, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key}[{string.Join(",", g.Select(tp => tp.Partition.Value).Order())}]"));

    private static string AppId(TopicPartition tp) => $"kafka:{tp.Topic}:{tp.Partition.Value}";

    private async Task ReopenAsync(CancellationToken stop)
    {
        foreach (var ts in _topics.Values)
        {
            foreach (var t in ts.Tables)
            {
                t.Reset();
                t.Sink = await TableSink.OpenAsync(connection.Name, t.Target, stop);
                t.Builder = new ChangeBatchBuilder(t.Target.Stream.Name, t.Target.Stream.Schema);
                t.Shape = null;
                t.Dead = await DeadLetterTable.OpenAsync(t.Target.TablePath, stop);
                t.Versions = t.Sink.Table.Snapshot.TxnVersions.Where(kv => kv.Key.StartsWith("kafka:", StringComparison.Ordinal)).ToDictionary(StringComparer.Ordinal);
            }
        }
    }

    private async ValueTask<int> AcceptAsync(ConsumeResult<byte[]?, byte[]?> r, SchemaCache schemas, CancellationToken stop)
    {
        var ts = _topics[r.Topic];
        var appId = AppId(r.TopicPartition);
        StreamSchema? schema = null;
        string? unresolved = null;
        if (r.Message.Value is not null)
        {
            try
            {
                schema = schemas.Of(r.Message.Headers, stop);
            }
            catch (FormatException e)
            {
                unresolved = e.Message;
            }
        }

        var added = 0;
        foreach (var t in ts.Tables)
        {
            if (t.Versions.TryGetValue(appId, out var v) && r.Offset.Value <= v)
            {
                continue;
            }

            try
            {
                if (unresolved is not null)
                {
                    throw new FormatException(unresolved);
                }

                if (schema is not null && !ReferenceEquals(schema, t.Shape))
                {
                    await TakeSchemaAsync(t, schema, stop);
                }

                if (ChangeEnvelope.Decode(r.Message.Value, t.Builder, new SourcePosition(0, (ulong)r.Offset.Value)))
                {
                    added++;
                }
            }
            catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
            {
                // A poison record: to the dead-letter table beside the table, and the stream goes on.
                t.Dead!.Add(r, e.Message);
                LogDeadLetter(logger, connection.Name, r.Topic, r.Partition.Value, r.Offset.Value, e.Message);
            }

            t.Last[r.Partition.Value] = r.Offset.Value;
        }

        return added;
    }

    /// <summary>
    /// A record names a schema other than the table's rows so far: rows of the old shape go to the sink (which converts them when
    /// the table changes), the table takes the new shape by its schema policy (<see cref="TableSink.ChangeSchemaAsync"/>), and later
    /// rows are decoded in it.
    /// </summary>
    private async Task TakeSchemaAsync(TableState t, StreamSchema named, CancellationToken stop)
    {
        var incoming = t.Target.Columns is { } selected ? Select(named, selected) : named;
        if (!SchemaChange.SameShape(incoming, t.Builder.Schema))
        {
            if (t.Builder.Count > 0)
            {
                // The sink reuses the batch's buffers until its commit: the table state holds it till then.
                var rows = t.Builder.Build();
                t.Held.Add(rows);
                t.Sink!.Accept(rows, (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10, copy: false);
            }

            await t.Sink!.ChangeSchemaAsync(incoming, stop);
            t.Builder = new ChangeBatchBuilder(t.Target.Stream.Name, incoming);
        }

        t.Shape = named;
    }

    /// <summary>The selected columns of a schema, in the selection's order (those it lacks left out, as <see cref="ColumnProjection"/> does).</summary>
    private static StreamSchema Select(StreamSchema schema, IReadOnlyList<string> columns) =>
        new(columns.Select(schema.IndexOf).Where(i => i >= 0).Select(i => schema.Columns[i]).ToList());

    private async Task FlushAsync(IConsumer<byte[]?, byte[]?> consumer, CancellationToken stop)
    {
        var committed = new Dictionary<TopicPartition, long>();
        foreach (var ts in _topics.Values)
        {
            foreach (var t in ts.Tables.Where(t => t.Last.Count > 0))
            {
                await t.Dead!.FlushAsync(connection.Name, stop);
                var batch = t.Builder.Build();
                try
                {
                    var sink = t.Sink!;
                    sink.Accept(batch, (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10, copy: false);
                    sink.Cover();
                    var txns = t.Last.OrderBy(kv => kv.Key).Select(kv => new TxnAction($"kafka:{ts.Topic}:{kv.Key}", kv.Value)).ToList();
                    var offsets = new JsonObject();
                    foreach (var (p, o) in t.Last.OrderBy(kv => kv.Key))
                    {
                        offsets[p.ToString(System.Globalization.CultureInfo.InvariantCulture)] = o;
                    }

                    var info = new JsonObject { ["connection"] = connection.Name, ["stream"] = t.Target.Stream.Name, ["topic"] = ts.Topic, ["offsets"] = offsets };
                    var before = sink.RowsCommitted;
                    var result = await sink.CommitTxnsAsync(txns, info, stop);
                    var ss = status.Stream(t.Target.Stream.Name);
                    ss.AddCommitted(sink.RowsCommitted - before);
                    ss.LastCommitVersion = result.Version;
                    ss.LastCommitAt = DateTimeOffset.UtcNow;
                    foreach (var txn in txns)
                    {
                        t.Versions[txn.AppId] = txn.Version;
                    }

                    foreach (var (p, o) in t.Last)
                    {
                        var tp = new TopicPartition(ts.Topic, p);
                        committed[tp] = committed.TryGetValue(tp, out var c) ? Math.Min(c, o) : o;
                    }

                    t.Last.Clear();
                }
                finally
                {
                    batch.Dispose();
                    t.ReleaseHeld();
                }
            }
        }

        if (committed.Count > 0)
        {
            try
            {
                consumer.Commit(committed.Select(kv => new TopicPartitionOffset(kv.Key, kv.Value + 1)));
            }
            catch (KafkaException e)
            {
                // Offsets in the group are for lag monitoring only: the tables' txn versions say where to resume.
                LogOffsetCommitFailed(logger, connection.Name, e.Error.Reason);
            }
        }
    }

    private sealed class TopicState(string topic)
    {
        public string Topic { get; } = topic;

        public List<TableState> Tables { get; } = [];
    }

    private sealed class TableState(SinkTarget target)
    {
        public SinkTarget Target { get; } = target;

        public TableSink? Sink { get; set; }

        public Dictionary<string, long> Versions { get; set; } = new(StringComparer.Ordinal);

        /// <summary>The rows not yet handed to the sink, in the shape of the stream's schema now.</summary>
        public ChangeBatchBuilder Builder { get; set; } = new(target.Stream.Name, target.Stream.Schema);

        /// <summary>The last schema a record named that this table took (by reference: the cache hands out one object per id).</summary>
        public StreamSchema? Shape { get; set; }

        /// <summary>The table's dead letters (open once the table is).</summary>
        public DeadLetterTable? Dead { get; set; }

        /// <summary>The last offset in <see cref="Builder"/> per partition.</summary>
        public Dictionary<int, long> Last { get; } = [];

        /// <summary>Batches handed to <see cref="Sink"/> before a schema change, whose buffers it uses until its commit.</summary>
        public List<ChangeBatch> Held { get; } = [];

        /// <summary>Drops rows not yet committed.</summary>
        public void Reset()
        {
            if (Builder.Count > 0)
            {
                Builder.Build().Dispose();
            }

            Last.Clear();
            Dead?.Reset();
            Sink?.Discard();
            ReleaseHeld();
        }

        public void ReleaseHeld()
        {
            foreach (var b in Held)
            {
                b.Dispose();
            }

            Held.Clear();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Connection} (kafka sink): failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection} (kafka sink): {Topic} partition {Partition} offset {Offset} went to the dead-letter table: {Error}")]
    private static partial void LogDeadLetter(ILogger logger, string connection, string topic, int partition, long offset, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection} (kafka sink): assigned {Partitions}")]
    private static partial void LogAssigned(ILogger logger, string connection, string partitions);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection} (kafka sink): closing the consumer failed: {Error}")]
    private static partial void LogCloseFailed(ILogger logger, string connection, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Connection} (kafka sink): committing consumer offsets failed: {Error}")]
    private static partial void LogOffsetCommitFailed(ILogger logger, string connection, string error);
}
