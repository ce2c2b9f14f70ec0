using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ingest.Engine.Pipelines;

/// <summary>
/// Reads a pipeline file. Shape:
/// <code>
/// lake: ./lake                      # relative to the file
/// transport: embedded               # or {kind: kafka, bootstrapServers: "host:9092", topicPrefix: ingest, settings: {...}}
///                                   # (createOffsetsTopic: false skips creating &lt;prefix&gt;.offsets compacted when absent)
/// commit: {interval: 2s, maxRows: 200000}
/// connections:
///   - name: shop
///     connector: sample
///     config: {seed: 42}
///     streams:                      # omitted: every stream
///       - {name: orders, mode: merge, table: shop/orders, schemaPolicy: evolve, columns: [id, status]}
///       # mode: append | merge | overwrite | history; schemaPolicy: evolve (default) | fail | rescue
///       # columns: the columns written, in the stream's order (omitted: every column); merge and history keep the key
/// inputs:                           # existing Kafka topics for the sink role (Kafka transport only)
///   - name: inventory
///     pattern: 'dbserver1\.inventory\..*'   # or topic: dbserver1.inventory.customers
///     format: debezium              # debezium | ingest
///     mode: merge                   # append | merge (default) | history
///     table: inventory/{table}      # {topic}: the topic's name, {table}: its last dot-separated part; default &lt;name&gt;/{topic}
/// </code>
/// <c>connections</c> may be omitted when <c>inputs</c> lists something.
/// </summary>
public static partial class PipelineFile
{
    private static readonly string[] RootKeys = ["lake", "transport", "commit", "connections", "inputs"];
    private static readonly string[] InputKeys = ["name", "topic", "pattern", "format", "mode", "table", "schemaPolicy"];
    private static readonly string[] CommitKeys = ["interval", "maxRows"];
    private static readonly string[] TransportKeys = ["kind", "bootstrapServers", "topicPrefix", "settings", "createOffsetsTopic"];
    private static readonly string[] ConnectionKeys = ["name", "connector", "config", "streams"];
    private static readonly string[] StreamKeys = ["name", "mode", "table", "schemaPolicy", "columns"];

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[A-Za-z0-9._-]+$")]
    private static partial Regex TopicPattern();

    [GeneratedRegex(@"^([0-9]+(\.[0-9]+)?)(ms|s|m|h)$")]
    private static partial Regex DurationPattern();

    /// <summary>Reads and checks the file's shape.</summary>
    /// <param name="path">The file.</param>
    /// <param name="lakeOverride">A lake folder that replaces the file's <c>lake</c>.</param>
    /// <exception cref="PipelineException">The file cannot be read or has errors.</exception>
    public static PipelineDefinition Load(string path, string? lakeOverride = null)
    {
        var fullPath = System.IO.Path.GetFullPath(path);
        var fileName = System.IO.Path.GetFileName(fullPath);
        string text;
        try
        {
            text = File.ReadAllText(fullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineException([new PipelineError(path, 0, 0, "", $"cannot read the pipeline file: {e.Message}")]);
        }

        return Parse(text, fullPath, lakeOverride);
    }

    /// <summary>Parses pipeline text; <paramref name="filePath"/> names it in messages and anchors relative paths.</summary>
    /// <exception cref="PipelineException">The text has errors.</exception>
    public static PipelineDefinition Parse(string text, string filePath, string? lakeOverride = null)
    {
        var p = new Parser(System.IO.Path.GetFileName(filePath));
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            var message = e.InnerException is YamlException inner ? inner.Message : e.Message;
            throw new PipelineException([new PipelineError(p.File, (int)e.Start.Line, (int)e.Start.Column, "", $"invalid YAML: {Trim(message)}")]);
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            var at = stream.Documents.Count == 0 ? new TextLocation(1, 1) : YamlJson.At(stream.Documents[0].RootNode);
            throw new PipelineException([new PipelineError(p.File, at.Line, at.Column, "", "expected a mapping with 'lake' and 'connections'")]);
        }

        var dir = System.IO.Path.GetDirectoryName(filePath) ?? ".";
        var definition = p.Root(root, dir, lakeOverride);
        if (p.Errors.Count > 0)
        {
            throw new PipelineException(p.Errors);
        }

        return definition with { FilePath = filePath };
    }

    private static string Trim(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: 3, Col: 6, Idx: 21): "; the location is already given.
        var i = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line", StringComparison.Ordinal) && i > 0 ? message[(i + 3)..] : message;
    }

    private sealed class Parser(string file)
    {
        public string File { get; } = file;

        public List<PipelineError> Errors { get; } = [];

        private void Error(YamlNode node, string path, string message)
        {
            var at = YamlJson.At(node);
            Errors.Add(new PipelineError(File, at.Line, at.Column, path, message));
        }

        private Dictionary<string, YamlNode> Keys(YamlMappingNode map, string path, string[] allowed)
        {
            var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (k, v) in map.Children)
            {
                var name = k is YamlScalarNode s ? s.Value ?? "" : "";
                var keyPath = path.Length == 0 ? name : path + "." + name;
                if (Array.IndexOf(allowed, name) < 0)
                {
                    var hint = YamlJson.DidYouMean(name, allowed);
                    Error(k, keyPath, $"unknown key '{name}'" + (hint is null ? $" (expected one of: {string.Join(", ", allowed)})" : $"; did you mean '{hint}'?"));
                    continue;
                }

                if (!result.TryAdd(name, v))
                {
                    Error(k, keyPath, "appears twice");
                }
            }

            return result;
        }

        private static readonly (string Name, SchemaPolicy Value)[] Policies =
            [("evolve", SchemaPolicy.Evolve), ("fail", SchemaPolicy.Fail), ("rescue", SchemaPolicy.Rescue)];

        /// <summary>
        /// A scalar that must be one of <paramref name="choices"/>: sets <paramref name="value"/> and returns true, or
        /// reports "expected a, b or c, got ..." with a did-you-mean hint and leaves <paramref name="value"/> as it was.
        /// </summary>
        private bool Choice<T>(YamlNode node, string path, (string Name, T Value)[] choices, ref T value)
        {
            var text = node is YamlScalarNode s ? s.Value : null;
            foreach (var (name, v) in choices)
            {
                if (text == name)
                {
                    value = v;
                    return true;
                }
            }

            var names = choices.Select(c => c.Name).ToArray();
            var expected = names.Length == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
            var hint = text is null ? null : YamlJson.DidYouMean(text, names);
            Error(node, path, $"expected {expected}, got {YamlJson.Describe(node)}" + (hint is null ? "" : $"; did you mean '{hint}'?"));
            return false;
        }

        private string? String(YamlNode node, string path)
        {
            if (node is YamlScalarNode s && !YamlJson.IsNull(s))
            {
                return s.Value ?? "";
            }

            Error(node, path, $"expected a text value, got {YamlJson.Describe(node)}");
            return null;
        }

        public PipelineDefinition Root(YamlMappingNode root, string dir, string? lakeOverride)
        {
            var keys = Keys(root, "", RootKeys);
            var lake = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, "lake"));
            if (lakeOverride is not null)
            {
                lake = LakePaths.IsObjectStore(lakeOverride) ? LakePaths.Normalize(lakeOverride) : System.IO.Path.GetFullPath(lakeOverride);
            }
            else if (keys.TryGetValue("lake", out var lakeNode) && String(lakeNode, "lake") is { } lakeText)
            {
                if (LakePaths.IsObjectStore(lakeText))
                {
                    if (LakePaths.Problem(lakeText) is { } problem)
                    {
                        Error(lakeNode, "lake", problem);
                    }
                    else
                    {
                        lake = LakePaths.Normalize(lakeText);
                    }
                }
                else if (lakeText.Contains("://", StringComparison.Ordinal))
                {
                    Error(lakeNode, "lake", $"expected a local folder or s3://bucket/prefix; '{lakeText[..lakeText.IndexOf(':', StringComparison.Ordinal)]}://' lakes are not supported");
                }
                else if (lakeText.Length == 0)
                {
                    Error(lakeNode, "lake", "expected a folder, got an empty value");
                }
                else
                {
                    lake = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, lakeText));
                }
            }

            KafkaTransport? kafka = null;
            if (keys.TryGetValue("transport", out var transport))
            {
                kafka = Transport(transport);
            }

            var commit = keys.TryGetValue("commit", out var commitNode) ? Commit(commitNode) : CommitPolicy.Default;
            var connections = new List<ConnectionDefinition>();
            var hasInputs = keys.TryGetValue("inputs", out var inputsNode) && inputsNode is YamlSequenceNode { Children.Count: > 0 };
            if (!keys.TryGetValue("connections", out var conns))
            {
                if (!hasInputs)
                {
                    Error(root, "connections", "missing: expected a list of connections (name, connector, config, streams)");
                }
            }
            else if (conns is not YamlSequenceNode seq || seq.Children.Count == 0)
            {
                Error(conns, "connections", $"expected a non-empty list of connections, got {YamlJson.Describe(conns)}");
            }
            else
            {
                var names = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < seq.Children.Count; i++)
                {
                    if (Connection(seq.Children[i], i) is { } c)
                    {
                        if (!names.Add(c.Name))
                        {
                            Error(seq.Children[i], $"connections[{i}].name", $"the name '{c.Name}' is used by an earlier connection; names must be unique");
                        }

                        connections.Add(c);
                    }
                }
            }

            List<InputDefinition>? inputs = null;
            if (inputsNode is not null)
            {
                inputs = Inputs(inputsNode, kafka, keys.TryGetValue("transport", out var t) ? t : null, connections.Select(c => c.Name));
            }

            return new PipelineDefinition("", lake, commit, connections, kafka, inputs);
        }

        private List<InputDefinition> Inputs(YamlNode node, KafkaTransport? kafka, YamlNode? transportNode, IEnumerable<string> connectionNames)
        {
            var inputs = new List<InputDefinition>();
            if (node is YamlScalarNode ns && YamlJson.IsNull(ns))
            {
                return inputs;
            }

            if (node is not YamlSequenceNode seq)
            {
                Error(node, "inputs", $"expected a list of Kafka inputs such as [{{name: inventory, topic: dbserver1.inventory.customers, format: debezium, mode: merge}}], got {YamlJson.Describe(node)}");
                return inputs;
            }

            if (kafka is null && seq.Children.Count > 0 && (transportNode is null || Errors.All(e => !e.Path.StartsWith("transport", StringComparison.Ordinal))))
            {
                Error(node, "inputs", "inputs are Kafka topics: set transport: {kind: kafka, bootstrapServers: \"host:9092\"} to read them");
            }

            var names = new HashSet<string>(connectionNames, StringComparer.Ordinal);
            for (var i = 0; i < seq.Children.Count; i++)
            {
                if (Input(seq.Children[i], i) is { } input)
                {
                    if (!names.Add(input.Name))
                    {
                        Error(seq.Children[i], $"inputs[{i}].name", $"the name '{input.Name}' is used by an earlier connection or input; names must be unique");
                    }

                    inputs.Add(input);
                }
            }

            return inputs;
        }

        private InputDefinition? Input(YamlNode node, int index)
        {
            var path = $"inputs[{index}]";
            if (node is not YamlMappingNode map)
            {
                Error(node, path, $"expected a mapping with name, topic or pattern, format, mode and table, got {YamlJson.Describe(node)}");
                return null;
            }

            var keys = Keys(map, path, InputKeys);
            var ok = true;
            string? name = null;
            if (!keys.TryGetValue("name", out var nameNode))
            {
                Error(map, path + ".name", "missing: expected a name of lower-case letters, digits, '_' or '-'");
            }
            else if (String(nameNode, path + ".name") is { } n)
            {
                if (NamePattern().IsMatch(n))
                {
                    name = n;
                }
                else
                {
                    Error(nameNode, path + ".name", $"expected lower-case letters, digits, '_' or '-', got {YamlJson.Describe(nameNode)}");
                }
            }

            keys.TryGetValue("topic", out var topicNode);
            keys.TryGetValue("pattern", out var patternNode);
            string? topic = null;
            string? pattern = null;
            if (topicNode is not null && patternNode is not null)
            {
                Error(patternNode, path + ".pattern", "give either 'topic' or 'pattern', not both");
                ok = false;
            }
            else if (topicNode is null && patternNode is null)
            {
                Error(map, path + ".topic", "missing: expected 'topic' (a topic's name) or 'pattern' (a regular expression matching whole topic names)");
                ok = false;
            }
            else if (topicNode is not null && String(topicNode, path + ".topic") is { } tp)
            {
                if (TopicPattern().IsMatch(tp))
                {
                    topic = tp;
                }
                else
                {
                    Error(topicNode, path + ".topic", $"expected a topic name of letters, digits, '.', '_' or '-', got {YamlJson.Describe(topicNode)}");
                    ok = false;
                }
            }
            else if (patternNode is not null && String(patternNode, path + ".pattern") is { } pt)
            {
                try
                {
                    _ = new Regex("^(?:" + pt + ")$", RegexOptions.None, TimeSpan.FromSeconds(1));
                    pattern = pt.Length > 0 ? pt : throw new ArgumentException("the pattern is empty");
                }
                catch (ArgumentException e)
                {
                    Error(patternNode, path + ".pattern", $"not a valid regular expression: {e.Message}");
                    ok = false;
                }
            }

            var format = InputFormat.Debezium;
            if (!keys.TryGetValue("format", out var formatNode))
            {
                Error(map, path + ".format", "missing: expected debezium or ingest");
                ok = false;
            }
            else
            {
                ok &= Choice(formatNode, path + ".format", [("debezium", InputFormat.Debezium), ("ingest", InputFormat.Ingest)], ref format);
            }

            var mode = SinkMode.Merge;
            if (keys.TryGetValue("mode", out var modeNode))
            {
                if (modeNode is YamlScalarNode { Value: "overwrite" })
                {
                    Error(modeNode, path + ".mode", "mode overwrite is not available for Kafka inputs (a topic has no whole reads); use append, merge or history");
                    ok = false;
                }
                else
                {
                    ok &= Choice(modeNode, path + ".mode", [("append", SinkMode.Append), ("merge", SinkMode.Merge), ("history", SinkMode.History)], ref mode);
                }
            }

            var policy = SchemaPolicy.Evolve;
            if (keys.TryGetValue("schemaPolicy", out var policyNode))
            {
                ok &= Choice(policyNode, path + ".schemaPolicy", Policies, ref policy);
            }

            var table = (name ?? "input") + "/{topic}";
            if (keys.TryGetValue("table", out var tableNode) && String(tableNode, path + ".table") is { } tt)
            {
                var sample = tt.Replace("{topic}", "t", StringComparison.Ordinal).Replace("{table}", "t", StringComparison.Ordinal);
                if (sample.Length == 0 || sample.Contains("://", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(sample) || sample.Split('/', '\\').Contains("..") || sample.Contains('{', StringComparison.Ordinal))
                {
                    Error(tableNode, path + ".table", $"expected a folder inside the lake such as inventory/{{table}} ({{topic}} and {{table}} are the only placeholders), got {YamlJson.Describe(tableNode)}");
                    ok = false;
                }
                else if (patternNode is not null && !tt.Contains("{topic}", StringComparison.Ordinal) && !tt.Contains("{table}", StringComparison.Ordinal))
                {
                    Error(tableNode, path + ".table", "a pattern matches several topics, each written to its own table: put {topic} or {table} in the path");
                    ok = false;
                }
                else
                {
                    table = tt;
                }
            }

            return name is null || !ok ? null : new InputDefinition(name, topic, pattern, format, mode, table, policy, index, YamlJson.At(map));
        }

        private KafkaTransport? Transport(YamlNode node)
        {
            if (node is YamlScalarNode { Value: "embedded" })
            {
                return null;
            }

            if (node is not YamlMappingNode map)
            {
                Error(node, "transport", $"expected 'embedded' or a mapping {{kind: kafka, bootstrapServers: ...}}, got {YamlJson.Describe(node)}");
                return null;
            }

            var keys = Keys(map, "transport", TransportKeys);
            var kind = keys.TryGetValue("kind", out var kindNode) ? String(kindNode, "transport.kind") : null;
            if (kind == "embedded")
            {
                return null;
            }

            if (kind != "kafka")
            {
                Error(kindNode ?? node, "transport.kind", $"expected 'embedded' or 'kafka', got {(kindNode is null ? "nothing" : YamlJson.Describe(kindNode))}");
                return null;
            }

            string? servers = keys.TryGetValue("bootstrapServers", out var serversNode) ? String(serversNode, "transport.bootstrapServers") : null;
            if (string.IsNullOrWhiteSpace(servers))
            {
                Error(serversNode ?? node, "transport.bootstrapServers", "missing: the Kafka bootstrap servers, e.g. \"broker1:9092,broker2:9092\"");
            }

            var prefix = keys.TryGetValue("topicPrefix", out var prefixNode) ? String(prefixNode, "transport.topicPrefix") ?? "ingest" : "ingest";
            if (prefixNode is not null && !TopicPattern().IsMatch(prefix))
            {
                Error(prefixNode, "transport.topicPrefix", $"expected letters, digits, '.', '_' or '-', got '{prefix}'");
            }

            var settings = new Dictionary<string, string>(StringComparer.Ordinal);
            if (keys.TryGetValue("settings", out var settingsNode))
            {
                if (settingsNode is not YamlMappingNode sm)
                {
                    Error(settingsNode, "transport.settings", $"expected a mapping of librdkafka settings (e.g. {{compression.type: zstd}}), got {YamlJson.Describe(settingsNode)}");
                }
                else
                {
                    foreach (var (k, v) in sm.Children)
                    {
                        var name = (k as YamlScalarNode)?.Value ?? "";
                        if (v is not YamlScalarNode sv || sv.Value is null)
                        {
                            Error(v, $"transport.settings.{name}", $"expected a scalar value, got {YamlJson.Describe(v)}");
                            continue;
                        }

                        settings[name] = sv.Value;
                    }
                }
            }

            var createOffsetsTopic = true;
            if (keys.TryGetValue("createOffsetsTopic", out var createNode))
            {
                if (createNode is YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "false" } b)
                {
                    createOffsetsTopic = b.Value == "true";
                }
                else
                {
                    Error(createNode, "transport.createOffsetsTopic", $"expected true or false, got {YamlJson.Describe(createNode)}");
                }
            }

            return new KafkaTransport(servers ?? "", prefix, settings, YamlJson.At(node), createOffsetsTopic);
        }

        private CommitPolicy Commit(YamlNode node)
        {
            var policy = CommitPolicy.Default;
            if (node is not YamlMappingNode map)
            {
                Error(node, "commit", $"expected a mapping such as {{interval: 2s, maxRows: 200000}}, got {YamlJson.Describe(node)}");
                return policy;
            }

            var keys = Keys(map, "commit", CommitKeys);
            if (keys.TryGetValue("interval", out var interval))
            {
                var text = interval is YamlScalarNode s ? s.Value ?? "" : "";
                var m = DurationPattern().Match(text);
                if (!m.Success || double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) <= 0)
                {
                    Error(interval, "commit.interval", $"expected a positive duration such as 500ms, 2s, 1m, got {YamlJson.Describe(interval)}");
                }
                else
                {
                    var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                    policy = policy with
                    {
                        Interval = m.Groups[3].Value switch
                        {
                            "ms" => TimeSpan.FromMilliseconds(n),
                            "s" => TimeSpan.FromSeconds(n),
                            "m" => TimeSpan.FromMinutes(n),
                            _ => TimeSpan.FromHours(n),
                        },
                    };
                }
            }

            if (keys.TryGetValue("maxRows", out var maxRows))
            {
                if (maxRows is YamlScalarNode s && s.Style == ScalarStyle.Plain && long.TryParse(s.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                {
                    policy = policy with { MaxRows = n };
                }
                else
                {
                    Error(maxRows, "commit.maxRows", $"expected a positive integer, got {YamlJson.Describe(maxRows)}");
                }
            }

            return policy;
        }

        private ConnectionDefinition? Connection(YamlNode node, int index)
        {
            var path = $"connections[{index}]";
            if (node is not YamlMappingNode map)
            {
                Error(node, path, $"expected a mapping with name, connector, config and streams, got {YamlJson.Describe(node)}");
                return null;
            }

            var keys = Keys(map, path, ConnectionKeys);
            string? name = null;
            if (!keys.TryGetValue("name", out var nameNode))
            {
                Error(map, path + ".name", "missing: expected a name of lower-case letters, digits, '_' or '-'");
            }
            else if (String(nameNode, path + ".name") is { } n)
            {
                if (NamePattern().IsMatch(n))
                {
                    name = n;
                }
                else
                {
                    Error(nameNode, path + ".name", $"expected lower-case letters, digits, '_' or '-', got {YamlJson.Describe(nameNode)}");
                }
            }

            string? connector = null;
            var connectorAt = YamlJson.At(map);
            if (!keys.TryGetValue("connector", out var connectorNode))
            {
                Error(map, path + ".connector", "missing: expected the name of a connector plugin");
            }
            else
            {
                connector = String(connectorNode, path + ".connector");
                connectorAt = YamlJson.At(connectorNode);
            }

            var locations = new Dictionary<string, TextLocation>(StringComparer.Ordinal) { [""] = YamlJson.At(map) };
            var config = JsonDocument.Parse("{}").RootElement.Clone();
            if (keys.TryGetValue("config", out var configNode))
            {
                if (configNode is YamlMappingNode)
                {
                    try
                    {
                        config = YamlJson.ToJson(configNode, locations);
                    }
                    catch (YamlException e)
                    {
                        Errors.Add(new PipelineError(File, (int)e.Start.Line, (int)e.Start.Column, path + ".config", e.Message));
                    }
                }
                else if (!(configNode is YamlScalarNode s && YamlJson.IsNull(s)))
                {
                    Error(configNode, path + ".config", $"expected a mapping of settings, got {YamlJson.Describe(configNode)}");
                }
            }

            List<StreamDefinition>? streams = null;
            if (keys.TryGetValue("streams", out var streamsNode) && !(streamsNode is YamlScalarNode ns && YamlJson.IsNull(ns)))
            {
                streams = [];
                if (streamsNode is not YamlSequenceNode seq)
                {
                    Error(streamsNode, path + ".streams", $"expected a list of streams such as [{{name: orders, mode: merge}}], got {YamlJson.Describe(streamsNode)}");
                }
                else
                {
                    for (var i = 0; i < seq.Children.Count; i++)
                    {
                        if (Stream(seq.Children[i], $"{path}.streams[{i}]", i) is { } s)
                        {
                            streams.Add(s);
                        }
                    }
                }
            }

            return name is null || connector is null
                ? null
                : new ConnectionDefinition(name, connector, config, streams, index, YamlJson.At(map), connectorAt, locations);
        }

        private StreamDefinition? Stream(YamlNode node, string path, int index)
        {
            if (node is YamlScalarNode scalar && !YamlJson.IsNull(scalar))
            {
                // A bare name: the default mode and table.
                return new StreamDefinition(scalar.Value ?? "", null, null, index, YamlJson.At(node), YamlJson.At(node), YamlJson.At(node));
            }

            if (node is not YamlMappingNode map)
            {
                Error(node, path, $"expected a stream name or a mapping with name, mode, table, schemaPolicy and columns, got {YamlJson.Describe(node)}");
                return null;
            }

            var keys = Keys(map, path, StreamKeys);
            string? name = null;
            var nameAt = YamlJson.At(map);
            if (!keys.TryGetValue("name", out var nameNode))
            {
                Error(map, path + ".name", "missing: expected the stream's name");
            }
            else
            {
                name = String(nameNode, path + ".name");
                nameAt = YamlJson.At(nameNode);
            }

            SinkMode? mode = null;
            var modeAt = YamlJson.At(map);
            if (keys.TryGetValue("mode", out var modeNode))
            {
                modeAt = YamlJson.At(modeNode);
                SinkMode chosen = default;
                if (Choice(modeNode, path + ".mode", [("append", SinkMode.Append), ("merge", SinkMode.Merge), ("overwrite", SinkMode.Overwrite), ("history", SinkMode.History)], ref chosen))
                {
                    mode = chosen;
                }
            }

            var policy = SchemaPolicy.Evolve;
            if (keys.TryGetValue("schemaPolicy", out var policyNode))
            {
                Choice(policyNode, path + ".schemaPolicy", Policies, ref policy);
            }

            string? table = null;
            if (keys.TryGetValue("table", out var tableNode) && String(tableNode, path + ".table") is { } t)
            {
                if (t.Length == 0 || t.Contains("://", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(t) || t.Split('/', '\\').Contains(".."))
                {
                    Error(tableNode, path + ".table", $"expected a folder inside the lake such as shop/orders_log, got {YamlJson.Describe(tableNode)}");
                }
                else
                {
                    table = t;
                }
            }

            List<string>? columns = null;
            List<TextLocation>? columnLocations = null;
            var columnsAt = YamlJson.At(map);
            if (keys.TryGetValue("columns", out var columnsNode) && !(columnsNode is YamlScalarNode cn && YamlJson.IsNull(cn)))
            {
                columnsAt = YamlJson.At(columnsNode);
                if (columnsNode is not YamlSequenceNode cols || cols.Children.Count == 0)
                {
                    Error(columnsNode, path + ".columns", $"expected a non-empty list of column names such as [id, status], got {YamlJson.Describe(columnsNode)}");
                }
                else
                {
                    columns = [];
                    columnLocations = [];
                    for (var i = 0; i < cols.Children.Count; i++)
                    {
                        var item = cols.Children[i];
                        if (item is YamlScalarNode { Value: { Length: > 0 } v } && !YamlJson.IsNull((YamlScalarNode)item))
                        {
                            columns.Add(v);
                            columnLocations.Add(YamlJson.At(item));
                        }
                        else
                        {
                            Error(item, $"{path}.columns[{i}]", $"expected a column name, got {YamlJson.Describe(item)}");
                        }
                    }
                }
            }

            return name is null ? null : new StreamDefinition(name, mode, table, index, YamlJson.At(map), nameAt, modeAt, policy, columns, columnsAt, columnLocations);
        }
    }
}
