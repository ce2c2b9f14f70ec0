using System.Text.Json;

namespace Ingest.Engine.Pipelines;

/// <summary>How a stream lands in its table.</summary>
public enum SinkMode
{
    /// <summary>Every change event as a row, with <c>_op</c>, <c>_position</c>, <c>_source_ts</c>, <c>_ingested_at</c>.</summary>
    Append,
    /// <summary>A mirror of the source: upsert and delete by primary key, newest position wins.</summary>
    Merge,
    /// <summary>
    /// A full refresh: the rows of one whole read are written to data files as they come and replace the table in one
    /// commit (Delta <c>WRITE</c>, mode Overwrite, with the txn and checkpoint like every sink commit) when the read
    /// catches up (CaughtUp) or ends by itself; until then readers see the previous table. A read that fails or is stopped
    /// on request replaces nothing (its files stay unreferenced until VACUUM). Rows after the replace, in the same read,
    /// are appended. The table's progress is never resumed from: every run reads the stream in full, and with it the
    /// rest of its connection (other tables skip what they hold). Not for CDC streams (refused by the binder).
    /// </summary>
    Overwrite,
    /// <summary>
    /// Slowly changing dimension type 2: every version of a row, with <c>_valid_from</c>, <c>_valid_to</c> and
    /// <c>_is_current</c> (one current row per key); a change closes the current row and adds the new one, a delete closes it.
    /// </summary>
    History,
}

/// <summary>What the sink does when the source's columns differ from the table's.</summary>
public enum SchemaPolicy
{
    /// <summary>Add new columns (nullable) and widen types where the table allows it (typeWidening); refuse the rest.</summary>
    Evolve,
    /// <summary>Stop the stream, naming the column and both types.</summary>
    Fail,
    /// <summary>Keep the table's columns; values of columns it lacks (or whose type no longer fits) go, as JSON, to <c>_rescued_data</c>.</summary>
    Rescue,
}

/// <summary>Where a node sits in the pipeline file.</summary>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
public readonly record struct TextLocation(int Line, int Column);

/// <summary>A parsed pipeline file (not yet checked against the connectors).</summary>
/// <param name="FilePath">The file's full path.</param>
/// <param name="LakePath">The lake's root folder (full path).</param>
/// <param name="Commit">How often the sink commits.</param>
/// <param name="Connections">The connections, in file order.</param>
/// <param name="Kafka">The Kafka transport, or null for the embedded (in-process) transport.</param>
/// <param name="Inputs">Existing Kafka topics the sink role writes to tables (none when null).</param>
public sealed record PipelineDefinition(string FilePath, string LakePath, CommitPolicy Commit, IReadOnlyList<ConnectionDefinition> Connections, KafkaTransport? Kafka = null, IReadOnlyList<InputDefinition>? Inputs = null)
{
    /// <summary>The file name used in messages.</summary>
    public string FileName => Path.GetFileName(FilePath);
}

/// <summary>How the records of a Kafka input are written.</summary>
public enum InputFormat
{
    /// <summary>Debezium's JSON envelopes (Postgres, MySQL, SQL Server connectors), with or without the <c>schema</c> part; records are ordered by offset.</summary>
    Debezium,
    /// <summary>This engine's envelopes (topics of another Ingest pipeline); records are ordered by <c>source.position</c>.</summary>
    Ingest,
}

/// <summary>
/// An existing Kafka topic, or every topic matching a pattern, written by the sink role to a table per topic
/// (<c>inputs:</c> in the pipeline file; needs the Kafka transport).
/// </summary>
/// <param name="Name">Unique name (<c>[a-z0-9_-]+</c>); names the consumer group and the tables' commits.</param>
/// <param name="Topic">The topic, or null when <paramref name="Pattern"/> is set.</param>
/// <param name="Pattern">A regular expression a whole topic name matches, or null.</param>
/// <param name="Format">The records' format.</param>
/// <param name="Mode">append, merge or history.</param>
/// <param name="Table">
/// The table path inside the lake; <c>{topic}</c> stands for the topic's name and <c>{table}</c> for its last dot-separated part.
/// </param>
/// <param name="SchemaPolicy">What to do when the records' columns differ from the table's.</param>
/// <param name="Index">Position in <c>inputs</c>.</param>
/// <param name="Location">Where the entry is.</param>
public sealed record InputDefinition(string Name, string? Topic, string? Pattern, InputFormat Format, SinkMode Mode, string Table, SchemaPolicy SchemaPolicy, int Index, TextLocation Location)
{
    /// <summary>The table's full path for one topic.</summary>
    public string TablePath(string lakePath, string topic)
    {
        var last = topic[(topic.LastIndexOf('.') + 1)..];
        var relative = Table.Replace("{topic}", topic, StringComparison.Ordinal).Replace("{table}", last, StringComparison.Ordinal);
        return LakePaths.Join(lakePath, relative);
    }

    /// <summary>True when records of <paramref name="topic"/> belong to this input.</summary>
    public bool Matches(string topic) =>
        Topic is not null ? Topic == topic : System.Text.RegularExpressions.Regex.IsMatch(topic, "^(?:" + Pattern + ")$", System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromSeconds(1));
}

/// <summary>When the sink commits buffered rows (at a checkpoint).</summary>
/// <param name="Interval">Commit when this much time passed since the last commit.</param>
/// <param name="MaxRows">Commit when this many rows are buffered.</param>
public sealed record CommitPolicy(TimeSpan Interval, long MaxRows)
{
    /// <summary>2 s or 200,000 rows.</summary>
    public static CommitPolicy Default { get; } = new(TimeSpan.FromSeconds(2), 200_000);
}

/// <summary>A connection: one connector with one configuration and a stream selection.</summary>
/// <param name="Name">Unique name (<c>[a-z0-9_-]+</c>).</param>
/// <param name="Connector">The plugin's connector name.</param>
/// <param name="Config">The configuration converted to JSON.</param>
/// <param name="Streams">The selected streams, or null for every stream.</param>
/// <param name="Index">Position in <c>connections</c>.</param>
/// <param name="Location">Where the connection starts.</param>
/// <param name="ConnectorLocation">Where <c>connector</c> is.</param>
/// <param name="ConfigLocations">Location of each config node by JSON pointer ("" = the config mapping).</param>
public sealed record ConnectionDefinition(
    string Name,
    string Connector,
    JsonElement Config,
    IReadOnlyList<StreamDefinition>? Streams,
    int Index,
    TextLocation Location,
    TextLocation ConnectorLocation,
    IReadOnlyDictionary<string, TextLocation> ConfigLocations);

/// <summary>A stream chosen in the pipeline file.</summary>
/// <param name="Name">The stream's name as discovered.</param>
/// <param name="Mode">append, merge, overwrite or history; null = merge where a key exists, else append.</param>
/// <param name="Table">The table path (relative to the lake), or null for <c>&lt;connection&gt;/&lt;stream&gt;</c>.</param>
/// <param name="Index">Position in <c>streams</c>.</param>
/// <param name="Location">Where the entry is.</param>
/// <param name="NameLocation">Where its name is.</param>
/// <param name="ModeLocation">Where its mode is.</param>
/// <param name="SchemaPolicy">What to do when the source's columns differ from the table's (default evolve).</param>
/// <param name="Columns">The columns written to the table (the rest are dropped), or null for every column.</param>
/// <param name="ColumnsLocation">Where <c>columns</c> is.</param>
/// <param name="ColumnLocations">Where each entry of <c>columns</c> is (same order), or null.</param>
public sealed record StreamDefinition(
    string Name,
    SinkMode? Mode,
    string? Table,
    int Index,
    TextLocation Location,
    TextLocation NameLocation,
    TextLocation ModeLocation,
    SchemaPolicy SchemaPolicy = SchemaPolicy.Evolve,
    IReadOnlyList<string>? Columns = null,
    TextLocation ColumnsLocation = default,
    IReadOnlyList<TextLocation>? ColumnLocations = null);

/// <summary>The Kafka transport (DESIGN.md section 3): topics <c>&lt;prefix&gt;.&lt;connection&gt;.&lt;stream&gt;</c>, <c>&lt;prefix&gt;.offsets</c> (checkpoints) and <c>&lt;prefix&gt;.schemas</c> (stream schemas by id).</summary>
/// <param name="BootstrapServers">The brokers, comma-separated.</param>
/// <param name="TopicPrefix">The first part of every topic name.</param>
/// <param name="Settings">librdkafka settings passed through to every client (SASL/SSL, compression, linger, batch size...).</param>
/// <param name="Location">Where <c>transport</c> is in the file.</param>
/// <param name="CreateOffsetsTopic">Create the offsets and schemas topics compacted when absent (<c>createOffsetsTopic</c>, default true).</param>
public sealed record KafkaTransport(string BootstrapServers, string TopicPrefix, IReadOnlyDictionary<string, string> Settings, TextLocation Location, bool CreateOffsetsTopic = true)
{
    /// <summary>The topic of one stream.</summary>
    public string Topic(string connection, string stream) => $"{TopicPrefix}.{connection}.{stream}";

    /// <summary>The compacted topic of the connectors' checkpoints, keyed by connection.</summary>
    public string OffsetsTopic => $"{TopicPrefix}.offsets";
}
