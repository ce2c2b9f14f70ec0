using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Ingest.Engine.Pipelines;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The compacted <c>&lt;prefix&gt;.schemas</c> topic: one record per stream schema, key = its id (<see cref="ChangeEnvelope.SchemaId(StreamSchema)"/>,
/// a hash of the schema JSON), value = the schema JSON (<see cref="ChangeEnvelope.SchemaJson"/>, Delta's struct type). Data records name
/// their schema in the <see cref="ChangeEnvelope.SchemaHeader"/> header (16 bytes) instead of carrying it; the source writes the schema
/// record in the same transaction, before the first record naming it, so a read_committed consumer that sees the record can find the
/// schema. The id is content-addressed, so every writer of a schema writes the same record and compaction keeps one.
/// </summary>
internal static class SchemasTopic
{
    /// <summary>The schemas topic of a transport.</summary>
    public static string Name(KafkaTransport transport) => Name(transport.TopicPrefix);

    /// <summary>The schemas topic of a topic prefix.</summary>
    public static string Name(string prefix) => $"{prefix}.schemas";

    /// <summary>
    /// The schemas topic that describes <paramref name="topic"/> among <paramref name="topics"/> (the cluster's): <c>P.schemas</c> for the
    /// longest dot-separated prefix <c>P</c> of the topic that has one (the topics of another pipeline, whose prefix is not ours), else
    /// <paramref name="fallback"/>.
    /// </summary>
    public static string For(string topic, IEnumerable<string> topics, string fallback)
    {
        string? best = null;
        foreach (var t in topics)
        {
            if (t.EndsWith(".schemas", StringComparison.Ordinal) && t.Length > ".schemas".Length
                && topic.StartsWith(t[..^"schemas".Length], StringComparison.Ordinal) && (best is null || t.Length > best.Length))
            {
                best = t;
            }
        }

        return best ?? fallback;
    }
}

/// <summary>
/// The schemas of a schemas topic (<see cref="SchemasTopic"/>) by id, read with read_committed and cached. An id not yet cached makes the
/// reader catch up with the topic: every partition to the end the broker reports now (a record committed with its schema is behind it),
/// within <see cref="Wait"/>; an id still unknown then is an error naming it. Not thread-safe: one per consumer loop.
/// </summary>
internal sealed partial class SchemaCache(KafkaTransport transport, string topic, ILogger logger) : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private readonly Dictionary<string, StreamSchema> _schemas = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _invalid = new(StringComparer.Ordinal);
    private readonly Dictionary<int, long> _end = [];
    private readonly HashSet<string> _missing = new(StringComparer.Ordinal);
    private IConsumer<byte[]?, byte[]?>? _consumer;
    private byte[]? _lastId;
    private StreamSchema? _last;

    /// <summary>The schemas topic.</summary>
    public string Topic { get; } = topic;

    /// <summary>How long an unknown id waits for the topic to catch up (an id that was already missing once waits at most a second).</summary>
    public TimeSpan Wait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Schemas read so far.</summary>
    public int Count => _schemas.Count;

    /// <summary>
    /// The schema a record names: by <see cref="ChangeEnvelope.SchemaHeader"/> (resolved here), else by the full
    /// <see cref="ChangeEnvelope.SchemaJsonHeader"/> (older writers); null when the record has neither.
    /// </summary>
    /// <exception cref="FormatException">The id is not in the schemas topic (and no full schema header is there), or a schema is not valid.</exception>
    public StreamSchema? Of(Headers? headers, CancellationToken cancellationToken)
    {
        if (headers is null)
        {
            return null;
        }

        if (headers.TryGetLastBytes(ChangeEnvelope.SchemaHeader, out var id))
        {
            if (_lastId is not null && id.AsSpan().SequenceEqual(_lastId))
            {
                return _last;
            }

            var text = Encoding.UTF8.GetString(id);
            StreamSchema? schema;
            try
            {
                schema = Resolve(text, cancellationToken);
            }
            catch (FormatException) when (headers.TryGetLastBytes(ChangeEnvelope.SchemaJsonHeader, out _))
            {
                schema = null;
            }

            if (schema is not null)
            {
                (_lastId, _last) = (id, schema);
                return schema;
            }
        }

        if (headers.TryGetLastBytes(ChangeEnvelope.SchemaJsonHeader, out var json))
        {
            var id2 = Encoding.UTF8.GetBytes(ChangeEnvelope.SchemaId(json));
            if (_lastId is not null && id2.AsSpan().SequenceEqual(_lastId))
            {
                return _last;
            }

            var schema = ChangeEnvelope.ParseSchemaJson(json);
            (_lastId, _last) = (id2, schema);
            return schema;
        }

        return null;
    }

    /// <summary>The schema of an id, catching up with the topic when it is not cached.</summary>
    /// <exception cref="FormatException">The id is not in the topic after the wait, or its record is not a schema.</exception>
    public StreamSchema Resolve(string id, CancellationToken cancellationToken)
    {
        if (_schemas.TryGetValue(id, out var known))
        {
            return known;
        }

        var wait = _missing.Contains(id) ? TimeSpan.FromSeconds(Math.Min(1, Wait.TotalSeconds)) : Wait;
        var caughtUp = CatchUp(id, wait, cancellationToken);
        if (_schemas.TryGetValue(id, out known))
        {
            _missing.Remove(id);
            return known;
        }

        if (_invalid.TryGetValue(id, out var error))
        {
            throw new FormatException($"schema id '{id}' (header {ChangeEnvelope.SchemaHeader}): its record in the schemas topic {Topic} is not a schema: {error}");
        }

        _missing.Add(id);
        LogMissing(logger, Topic, id);
        throw new FormatException(caughtUp
            ? $"unknown schema id '{id}' (header {ChangeEnvelope.SchemaHeader}): it is not in the schemas topic {Topic} ({_schemas.Count} schemas read to its end)"
            : $"unknown schema id '{id}' (header {ChangeEnvelope.SchemaHeader}): the schemas topic {Topic} did not show it within {wait.TotalSeconds:0.#} s ({_schemas.Count} schemas read)");
    }

    /// <summary>Reads the topic until <paramref name="id"/> shows up or every partition reached the end the broker reports now; false when the wait ran out first.</summary>
    private bool CatchUp(string id, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        var consumer = _consumer ??= new ConsumerBuilder<byte[]?, byte[]?>(KafkaClients.Consumer(transport, $"{transport.TopicPrefix}.schemas-reader")).Build();
        using (var admin = new DependentAdminClientBuilder(consumer.Handle).Build())
        {
            // Metadata of all topics: asking for this one by name would auto-create it.
            var metadata = admin.GetMetadata(RequestTimeout);
            var partitions = metadata.Topics.Where(t => t.Topic == Topic && t.Error.Code == ErrorCode.NoError).SelectMany(t => t.Partitions).Select(p => p.PartitionId).ToList();
            var added = partitions.Where(p => !_end.ContainsKey(p)).ToList();
            if (added.Count > 0)
            {
                foreach (var p in added)
                {
                    _end[p] = -1;
                }

                consumer.IncrementalAssign(added.Select(p => new TopicPartitionOffset(Topic, p, Offset.Beginning)));
            }
        }

        if (_end.Count == 0)
        {
            return true;
        }

        // The end of each partition now: the record naming the id was committed before this, so its schema is below these offsets.
        var target = _end.Keys.ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(Topic, p), RequestTimeout).High.Value);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (target.All(kv => _end[kv.Key] >= kv.Value))
            {
                return true;
            }

            if (deadline.Elapsed >= wait)
            {
                return false;
            }

            var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (r is null)
            {
                continue;
            }

            if (r.IsPartitionEOF)
            {
                _end[r.Partition.Value] = r.Offset.Value;
                continue;
            }

            _end[r.Partition.Value] = r.Offset.Value + 1;
            Add(r.Message.Key, r.Message.Value);
            if (_schemas.ContainsKey(id))
            {
                return true;
            }
        }
    }

    private void Add(byte[]? key, byte[]? value)
    {
        if (key is null || value is null)
        {
            return;
        }

        var id = Encoding.UTF8.GetString(key);
        try
        {
            var schema = ChangeEnvelope.ParseSchemaJson(value, $"schema '{id}' of {Topic}");
            _schemas[id] = schema;
            _invalid.Remove(id);
        }
        catch (FormatException e)
        {
            _invalid[id] = e.Message;
            LogInvalid(logger, Topic, id, e.Message);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_consumer is null)
        {
            return;
        }

        try
        {
            _consumer.Close();
        }
        catch (KafkaException)
        {
            // Nothing to hand over: the reader has no group membership and commits nothing.
        }

        _consumer.Dispose();
        _consumer = null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schema id {Id} is not in the schemas topic {Topic}")]
    private static partial void LogMissing(ILogger logger, string topic, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The schemas topic {Topic} has a record {Id} that is not a schema: {Error}")]
    private static partial void LogInvalid(ILogger logger, string topic, string id, string error);
}
