using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Ingest.Delta;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Engine.Sink;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The sink of one <c>inputs:</c> entry: existing topics (Debezium's, or another pipeline's) into a table per topic, with
/// <see cref="KafkaSink"/>'s exactly-once scheme (one txn per partition, seek to the table's versions + 1 on assignment).
/// A table's columns come from the records: the stream's schema our own topics name in <see cref="ChangeEnvelope.SchemaHeader"/>
/// (resolved in the schemas topic of the pipeline that wrote them, <see cref="SchemasTopic.For"/>) or carry in
/// <see cref="ChangeEnvelope.SchemaJsonHeader"/>, else Kafka Connect's schema when they carry one, else their JSON values; new
/// columns evolve the table (by the input's schema policy) after what came before them is committed. The primary key of
/// merge and history tables is the record key's fields. Records that cannot be decoded, lack a key, or do not fit the
/// table go to the dead-letter table beside it (<see cref="DeadLetterTable"/>), and the stream goes on.
/// </summary>
internal sealed partial class KafkaInputSink(InputDefinition input, string lakePath, KafkaTransport transport, CommitPolicy commit, RunOptions options, ILogger logger, ConnectionStatus status)
{
    private static readonly string[] LakeColumnNames =
        [LakeColumns.Op, LakeColumns.Position, LakeColumns.SourceTs, LakeColumns.IngestedAt, LakeColumns.RescuedData, ScdColumns.ValidFrom, ScdColumns.ValidTo, ScdColumns.IsCurrent];

    private readonly Dictionary<string, TopicTable> _topics = new(StringComparer.Ordinal);
    private readonly Dictionary<TopicPartition, Offset> _handedOut = [];
    private readonly HashSet<TopicPartition> _eof = [];
    private readonly Dictionary<string, SchemaCache> _schemas = new(StringComparer.Ordinal);
    private HashSet<string> _clusterTopics = new(StringComparer.Ordinal);
    private IAdminClient? _admin;
    private bool _reassigned;
    private StreamSchema? _lastSchema;
    private List<TopicColumn>? _lastSchemaColumns;

    /// <summary>The consumer group of an input.</summary>
    public static string GroupId(KafkaTransport transport, string input) => $"{transport.TopicPrefix}.input.{input}";

    /// <summary>Records sent to dead-letter tables by this process.</summary>
    public long DeadLetters => _topics.Values.Sum(t => t.Dead.Committed);

    public Task<ConnectionState> RunAsync(CancellationToken stop) =>
        KafkaRetry.RunAsync(input.Name, "kafka input", (progressed, ct) => Task.Run(() => AttemptAsync(progressed, ct), CancellationToken.None), options, status, logger, stop);

    private async Task<ConnectionState> AttemptAsync(StrongBox<bool> progressed, CancellationToken stop)
    {
        _topics.Clear();
        _handedOut.Clear();
        _eof.Clear();
        status.State = ConnectionState.Starting;
        var config = KafkaClients.Consumer(transport, GroupId(transport, input.Name));
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetPartitionsAssignedHandler((_, parts) =>
            {
                _reassigned = true;
                _eof.Clear();
                var offsets = parts.Select(tp => new TopicPartitionOffset(tp, StartOffset(tp))).ToList();
                foreach (var o in offsets)
                {
                    _handedOut[o.TopicPartition] = o.Offset;
                }

                return offsets;
            })
            .SetPartitionsRevokedHandler((_, parts) =>
            {
                _eof.Clear();
                foreach (var t in _topics.Values)
                {
                    t.Reset();
                }
            })
            .Build();

        // Tables of topics that exist now are read before the first assignment, so it starts where they are.
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        _admin = admin;
        var metadata = await Task.Run(() => admin.GetMetadata(TimeSpan.FromSeconds(30)), stop);
        _clusterTopics = metadata.Topics.Select(t => t.Topic).ToHashSet(StringComparer.Ordinal);
        foreach (var topic in metadata.Topics.Select(t => t.Topic).Where(Wanted))
        {
            await TableAsync(topic, stop);
        }

        if (options.Once && _topics.Count == 0)
        {
            // No topic matches yet: nothing to catch up with.
            status.CaughtUp = true;
            return ConnectionState.Completed;
        }

        consumer.Subscribe(input.Topic ?? "^(" + input.Pattern + ")$");
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
                    r = null;
                }

                if (_reassigned)
                {
                    _reassigned = false;

                    // Another member may have written the tables while it owned these partitions: reread them, then seek.
                    foreach (var topic in consumer.Assignment.Select(tp => tp.Topic).Distinct(StringComparer.Ordinal))
                    {
                        if (await TableAsync(topic, stop) is { } t)
                        {
                            await t.RefreshAsync(stop);
                        }
                    }

                    foreach (var tp in consumer.Assignment.Where(tp => _topics.ContainsKey(tp.Topic)))
                    {
                        var offset = StartOffset(tp);
                        if (!_handedOut.TryGetValue(tp, out var given) || given != offset)
                        {
                            consumer.Seek(new TopicPartitionOffset(tp, offset));
                            _handedOut[tp] = offset;
                            _eof.Remove(tp);
                        }
                    }

                    if (r is not null && !r.IsPartitionEOF && StartOffset(r.TopicPartition) is { Value: >= 0 } start && r.Offset < start)
                    {
                        r = null;
                    }
                }

                if (r is not null)
                {
                    if (r.IsPartitionEOF)
                    {
                        _eof.Add(r.TopicPartition);
                    }
                    else
                    {
                        _eof.Remove(r.TopicPartition);
                        if (await TableAsync(r.Topic, stop) is { } t)
                        {
                            await AcceptAsync(t, r, stop);
                            pending++;
                        }
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
                if (options.Once && (r is null || r.IsPartitionEOF) && consumer.Assignment is { Count: > 0 } assignment && assignment.All(_eof.Contains))
                {
                    await FlushAsync(consumer, stop);
                    status.CaughtUp = true;
                    return ConnectionState.Completed;
                }
            }
        }
        finally
        {
            foreach (var t in _topics.Values)
            {
                t.Reset();
            }

            foreach (var cache in _schemas.Values)
            {
                cache.Dispose();
            }

            _schemas.Clear();
            _admin = null;

            try
            {
                consumer.Close();
            }
            catch (KafkaException e)
            {
                LogCloseFailed(logger, input.Name, e.Error.Reason);
            }
        }
    }

    private bool Wanted(string topic) => !topic.StartsWith("__", StringComparison.Ordinal) && input.Matches(topic);

    private async Task<TopicTable?> TableAsync(string topic, CancellationToken stop)
    {
        if (_topics.TryGetValue(topic, out var t))
        {
            return t;
        }

        if (!Wanted(topic))
        {
            return null;
        }

        var path = input.TablePath(lakePath, topic);
        if (_topics.Values.FirstOrDefault(x => x.TablePath == path) is { } other)
        {
            throw new ConnectorException(ErrorKind.Configuration,
                $"topics {other.Topic} and {topic} would both write table {path}; put {{topic}} in the input's table path");
        }

        t = new TopicTable(topic, path, await DeadLetterTable.OpenAsync(path, stop), SchemasOf(topic));
        await t.RefreshAsync(stop);
        _topics[topic] = t;
        return t;
    }

    private Offset StartOffset(TopicPartition tp) =>
        _topics.TryGetValue(tp.Topic, out var t) && t.Versions.TryGetValue(AppId(tp), out var v) ? new Offset(v + 1) : Offset.Beginning;

    private static string AppId(TopicPartition tp) => $"kafka:{tp.Topic}:{tp.Partition.Value}";

    private async Task AcceptAsync(TopicTable t, ConsumeResult<byte[]?, byte[]?> r, CancellationToken stop)
    {
        if (t.Versions.TryGetValue(AppId(r.TopicPartition), out var v) && r.Offset.Value <= v)
        {
            return;
        }

        try
        {
            using var envelope = Envelope.Parse(r.Message.Value);
            if (envelope is not null)
            {
                await DecodeAsync(t, envelope, r, stop);
            }
        }
        catch (FormatException e)
        {
            t.Dead.Add(r, e.Message);
            LogDeadLetter(logger, input.Name, r.Topic, r.Partition.Value, r.Offset.Value, e.Message);
        }

        t.Last[r.Partition.Value] = r.Offset.Value;
    }

    private async Task DecodeAsync(TopicTable t, Envelope envelope, ConsumeResult<byte[]?, byte[]?> r, CancellationToken stop)
    {
        using var keyDoc = KeyDocument(r.Message.Key);
        var key = keyDoc is null ? default : keyDoc.RootElement;
        if (key.ValueKind == JsonValueKind.Object && key.TryGetProperty("payload", out var payload) && key.TryGetProperty("schema", out _))
        {
            key = payload;
        }

        if (key.ValueKind is not (JsonValueKind.Object or JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw new FormatException($"the key is not a JSON object of the primary key's columns: {key.GetRawText()}");
        }

        var keyNames = key.ValueKind == JsonValueKind.Object ? key.EnumerateObject().Select(p => p.Name).ToList() : [];
        if (input.Mode != SinkMode.Append && envelope.Op != ChangeOp.Truncate)
        {
            if (keyNames.Count == 0)
            {
                throw new FormatException($"missing key: {input.Mode.ToString().ToLowerInvariant()} tables need the record key (the primary key's columns as JSON)");
            }

            if (t.Key is { } known && !known.SequenceEqual(keyNames, StringComparer.Ordinal))
            {
                throw new FormatException($"the key's columns ({string.Join(", ", keyNames)}) differ from the table's key ({string.Join(", ", known)})");
            }
        }

        if (input.Format == InputFormat.Ingest && envelope.Position is null)
        {
            throw new FormatException("no source.position: not an envelope of an Ingest pipeline (use format: debezium)");
        }

        var header = HeaderColumns(t, r.Message.Headers, stop);
        var columns = header ?? (envelope.Schema is { } schema
            ? TopicColumns.FromConnectSchema(schema) ?? TopicColumns.Infer(envelope.Image, key)
            : TopicColumns.Infer(envelope.Image, key));
        var exact = header is not null || envelope.Schema is not null;
        foreach (var name in keyNames)
        {
            if (input.Mode != SinkMode.Append && columns.All(c => c.Field.Name != name) && t.Columns.IndexOf(name) < 0)
            {
                throw new FormatException($"the key's column '{name}' is not in the record");
            }
        }

        if (t.NeedsChange(columns, exact))
        {
            // Commit what came before the new columns, then write on with the wider table.
            await FlushTableAsync(t, stop);
            t.Evolve(columns, exact);
        }

        if (t.Key is null && keyNames.Count > 0 && input.Mode != SinkMode.Append)
        {
            t.Key = keyNames;
            t.Sink = null;
        }

        // Debezium's records are ordered by (partition, offset): every change of a key is in one partition.
        ChangeEnvelope.DecodeRow(envelope, t.Builder(), new SourcePosition((ulong)r.Partition.Value, (ulong)r.Offset.Value), t.Encodings(columns), key);
    }

    /// <summary>
    /// The columns of the stream's schema a record of our own topics names (<see cref="ChangeEnvelope.SchemaHeader"/>, or in full
    /// <see cref="ChangeEnvelope.SchemaJsonHeader"/>): exact types (timestamps, decimals, dates, binary, nested); null when the
    /// record names none. Built once per schema.
    /// </summary>
    /// <exception cref="FormatException">The schema id is not in the schemas topic, or the schema is not valid.</exception>
    private List<TopicColumn>? HeaderColumns(TopicTable t, Headers? headers, CancellationToken stop)
    {
        if (t.Schemas.Of(headers, stop) is not { } schema)
        {
            return null;
        }

        if (!ReferenceEquals(schema, _lastSchema))
        {
            _lastSchemaColumns = schema.Columns.Select(f => new TopicColumn(f, default)).ToList();
            _lastSchema = schema;
        }

        return _lastSchemaColumns;
    }

    /// <summary>
    /// The schema cache of a topic: <c>P.schemas</c> for the longest prefix <c>P</c> of the topic that has one (topics another pipeline
    /// wrote under its own prefix), else this transport's schemas topic. The cluster's topics are read again for a topic not seen yet.
    /// </summary>
    private SchemaCache SchemasOf(string topic)
    {
        if (!_clusterTopics.Contains(topic) && _admin is { } admin)
        {
            _clusterTopics = admin.GetMetadata(TimeSpan.FromSeconds(30)).Topics.Select(x => x.Topic).ToHashSet(StringComparer.Ordinal);
        }

        var name = SchemasTopic.For(topic, _clusterTopics, SchemasTopic.Name(transport));
        if (!_schemas.TryGetValue(name, out var cache))
        {
            _schemas[name] = cache = new SchemaCache(transport, name, logger);
        }

        return cache;
    }

    private static JsonDocument? KeyDocument(byte[]? key)
    {
        if (key is null || key.Length == 0)
        {
            return null;
        }

        try
        {
            return JsonDocument.Parse(key);
        }
        catch (JsonException e)
        {
            throw new FormatException($"the key is not JSON: {e.Message}", e);
        }
    }

    private async Task FlushAsync(IConsumer<byte[]?, byte[]?> consumer, CancellationToken stop)
    {
        var committed = new List<TopicPartitionOffset>();
        foreach (var t in _topics.Values.Where(t => t.Last.Count > 0 || t.Dead.Pending))
        {
            committed.AddRange(t.Last.Select(kv => new TopicPartitionOffset(t.Topic, kv.Key, kv.Value + 1)));
            await FlushTableAsync(t, stop);
        }

        if (committed.Count > 0)
        {
            try
            {
                consumer.Commit(committed);
            }
            catch (KafkaException e)
            {
                LogOffsetCommitFailed(logger, input.Name, e.Error.Reason);
            }
        }
    }

    private async Task FlushTableAsync(TopicTable t, CancellationToken stop)
    {
        await t.Dead.FlushAsync(input.Name, stop);
        if (t.Last.Count == 0)
        {
            return;
        }

        if (t.Columns.Count == 0 || (input.Mode != SinkMode.Append && t.Key is null))
        {
            // Only tombstones and dead letters so far: nothing for the table (the dead-letter table has its own versions).
            t.Last.Clear();
            return;
        }

        var batch = t.Builder().Build();
        try
        {
            t.Sink ??= await TableSink.OpenAsync(input.Name, t.Target(input), stop);
            var sink = t.Sink;
            sink.Accept(batch, (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10, copy: false);
            sink.Cover();
            var txns = t.Last.OrderBy(kv => kv.Key).Select(kv => new TxnAction($"kafka:{t.Topic}:{kv.Key}", kv.Value)).ToList();
            var offsets = new JsonObject();
            foreach (var (p, o) in t.Last.OrderBy(kv => kv.Key))
            {
                offsets[p.ToString(System.Globalization.CultureInfo.InvariantCulture)] = o;
            }

            var before = sink.RowsCommitted;
            var result = await sink.CommitTxnsAsync(txns, new JsonObject { ["input"] = input.Name, ["topic"] = t.Topic, ["offsets"] = offsets }, stop);
            var ss = status.Stream(t.Topic);
            ss.AddCommitted(sink.RowsCommitted - before);
            ss.LastCommitVersion = result.Version;
            ss.LastCommitAt = DateTimeOffset.UtcNow;
            foreach (var txn in txns)
            {
                t.Versions[txn.AppId] = txn.Version;
            }

            t.Last.Clear();
        }
        finally
        {
            batch.Dispose();
        }
    }

    /// <summary>One topic's table: its columns so far, the rows not yet committed, and its txn versions.</summary>
    private sealed class TopicTable(string topic, string tablePath, DeadLetterTable dead, SchemaCache schemas)
    {
        /// <summary>The schemas topic our records of this topic name their schemas in.</summary>
        public SchemaCache Schemas { get; } = schemas;

        private readonly Dictionary<string, ColumnEncoding> _encodingByName = new(StringComparer.Ordinal);
        private ChangeBatchBuilder? _builder;
        private ColumnEncoding[]? _aligned;
        private List<TopicColumn>? _alignedFor;

        public string Topic { get; } = topic;

        public string TablePath { get; } = tablePath;

        public DeadLetterTable Dead { get; } = dead;

        /// <summary>The table's data columns (the lake's own columns excluded).</summary>
        public StreamSchema Columns { get; private set; } = new([]);

        /// <summary>The primary key (the record key's fields), once a keyed record came.</summary>
        public List<string>? Key { get; set; }

        public TableSink? Sink { get; set; }

        public Dictionary<string, long> Versions { get; private set; } = new(StringComparer.Ordinal);

        /// <summary>The last offset in the builder (or dead-lettered, or a tombstone) per partition.</summary>
        public Dictionary<int, long> Last { get; } = [];

        /// <summary>Rereads the table's columns and txn versions and drops uncommitted rows.</summary>
        public async Task RefreshAsync(CancellationToken stop)
        {
            Reset();
            await Dead.RefreshAsync(stop);
            var table = await DeltaTable.TryOpenAsync(TablePath, stop);
            if (table is null)
            {
                return;
            }

            Versions = table.Snapshot.TxnVersions.Where(kv => kv.Key.StartsWith("kafka:", StringComparison.Ordinal)).ToDictionary(StringComparer.Ordinal);
            var data = table.Snapshot.Schema.Columns.Where(c => !LakeColumnNames.Contains(c.Name)).ToList();
            if (!data.SequenceEqual(Columns.Columns))
            {
                Columns = new StreamSchema(data);
                _builder = null;
                _aligned = null;
                Sink = null;
            }
        }

        public ChangeBatchBuilder Builder() => _builder ??= new ChangeBatchBuilder(Topic, Columns);

        /// <summary>True when the record brings columns the table lacks (or, with an exact schema, a column of another type).</summary>
        public bool NeedsChange(List<TopicColumn> columns, bool exact) =>
            columns.Any(c => Columns.IndexOf(c.Field.Name) is var i && (i < 0 || (exact && Columns.Columns[i].Type != c.Field.Type)));

        /// <summary>Adds the new columns (and, with an exact schema, takes the record's types); the next flush evolves the table.</summary>
        public void Evolve(List<TopicColumn> columns, bool exact)
        {
            var merged = Columns.Columns.ToList();
            foreach (var c in columns)
            {
                var i = merged.FindIndex(m => m.Name == c.Field.Name);
                if (i < 0)
                {
                    merged.Add(c.Field with { Nullable = true });
                }
                else if (exact && merged[i].Type != c.Field.Type)
                {
                    merged[i] = merged[i] with { Type = c.Field.Type };
                }
            }

            Columns = new StreamSchema(merged);
            _builder = null;
            _aligned = null;
            Sink = null;
        }

        /// <summary>The record's encodings aligned with <see cref="Columns"/> (plain where the record says nothing).</summary>
        public ColumnEncoding[] Encodings(List<TopicColumn> columns)
        {
            if (_aligned is not null && (ReferenceEquals(_alignedFor, columns) || SameEncodings(columns)))
            {
                return _aligned;
            }

            _encodingByName.Clear();
            foreach (var c in columns)
            {
                _encodingByName[c.Field.Name] = c.Encoding;
            }

            _aligned = Columns.Columns.Select(c => _encodingByName.TryGetValue(c.Name, out var e) ? e : default).ToArray();
            _alignedFor = columns;
            return _aligned;
        }

        private bool SameEncodings(List<TopicColumn> columns) =>
            _alignedFor is not null && _alignedFor.Count == columns.Count && _alignedFor.Zip(columns).All(p => p.First.Field.Name == p.Second.Field.Name && p.First.Encoding == p.Second.Encoding);

        public SinkTarget Target(InputDefinition input) =>
            new(new StreamDescriptor(Topic, Columns, Key ?? [], [], [SyncMode.Cdc]), input.Mode, TablePath, input.SchemaPolicy);

        /// <summary>Drops rows not yet committed.</summary>
        public void Reset()
        {
            if (_builder is { Count: > 0 })
            {
                _builder.Build().Dispose();
            }

            Last.Clear();
            Dead.Reset();
            Sink?.Discard();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Input} (kafka input): {Topic} partition {Partition} offset {Offset} went to the dead-letter table: {Error}")]
    private static partial void LogDeadLetter(ILogger logger, string input, string topic, int partition, long offset, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Input} (kafka input): closing the consumer failed: {Error}")]
    private static partial void LogCloseFailed(ILogger logger, string input, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Input} (kafka input): committing consumer offsets failed: {Error}")]
    private static partial void LogOffsetCommitFailed(ILogger logger, string input, string error);
}
