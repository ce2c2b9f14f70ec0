using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Sdk.Connectors;
using Json.Schema;

namespace Ingest.Engine.Pipelines;

/// <summary>Where one stream of a connection lands.</summary>
/// <param name="Stream">The stream as discovered.</param>
/// <param name="Mode">append, merge, overwrite or history.</param>
/// <param name="TablePath">The table's full path.</param>
/// <param name="SchemaPolicy">What to do when the stream's columns differ from the table's.</param>
/// <param name="Columns">
/// The selected columns in the stream's order (<see cref="Stream"/>'s schema is then exactly these), or null for every
/// column. The runner drops the other columns from each batch before writing.
/// </param>
public sealed record SinkTarget(StreamDescriptor Stream, SinkMode Mode, string TablePath, SchemaPolicy SchemaPolicy = SchemaPolicy.Evolve, IReadOnlyList<string>? Columns = null)
{
    /// <summary>The txn appId of this stream's commits (DESIGN.md section 4).</summary>
    public string AppId(string connection) => $"ingest:{connection}:{Stream.Name}";
}

/// <summary>A connection checked against its connector.</summary>
/// <param name="Definition">The connection as written.</param>
/// <param name="Connector">The plugin's connector.</param>
/// <param name="Targets">The selected streams and their tables (empty when discovery failed).</param>
/// <param name="Failure">Why the connection cannot run (discovery failed at the source), or null.</param>
public sealed record BoundConnection(ConnectionDefinition Definition, ISourceConnector Connector, IReadOnlyList<SinkTarget> Targets, Exception? Failure)
{
    /// <summary>The connection's name.</summary>
    public string Name => Definition.Name;
}

/// <summary>A pipeline whose connections were matched to connectors, configurations validated and streams discovered.</summary>
public sealed record BoundPipeline(PipelineDefinition Definition, IReadOnlyList<BoundConnection> Connections);

/// <summary>Checks a pipeline against the loaded connectors: names, configuration schemas, streams, modes.</summary>
public static class PipelineBinder
{
    /// <summary>Binds every connection.</summary>
    /// <param name="pipeline">The parsed file.</param>
    /// <param name="connectors">The loaded connectors by name.</param>
    /// <param name="cancellationToken">Cancels discovery.</param>
    /// <exception cref="PipelineException">Something in the file does not fit the connectors.</exception>
    public static async Task<BoundPipeline> BindAsync(PipelineDefinition pipeline, IReadOnlyDictionary<string, ISourceConnector> connectors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(connectors);
        var errors = new List<PipelineError>();
        var bound = new List<BoundConnection>();
        var tables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in pipeline.Connections)
        {
            var path = $"connections[{c.Index}]";
            if (!connectors.TryGetValue(c.Connector, out var connector))
            {
                var hint = YamlJson.DidYouMean(c.Connector, connectors.Keys);
                errors.Add(new PipelineError(pipeline.FileName, c.ConnectorLocation.Line, c.ConnectorLocation.Column, path + ".connector",
                    $"unknown connector '{c.Connector}'" + (hint is null ? "" : $" (did you mean '{hint}'?)") + $"; loaded connectors: {YamlJson.List(connectors.Keys.Order(StringComparer.Ordinal))}"));
                continue;
            }

            var configErrors = ValidateConfig(pipeline.FileName, c, connector.Spec);
            if (configErrors.Count > 0)
            {
                errors.AddRange(configErrors);
                continue;
            }

            SourceCatalog catalog;
            try
            {
                catalog = await connector.DiscoverAsync(c.Config, cancellationToken);
            }
            catch (ConnectorException e) when (e.Kind == ErrorKind.Configuration)
            {
                var at = Locate(c, e.Field ?? "");
                errors.Add(new PipelineError(pipeline.FileName, at.Line, at.Column, path + ".config" + FieldPath(e.Field ?? ""), e.Message));
                continue;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                bound.Add(new BoundConnection(c, connector, [], e));
                continue;
            }

            var targets = Targets(pipeline, c, catalog, errors);
            foreach (var t in targets)
            {
                if (!tables.TryAdd(t.TablePath, $"{c.Name}.{t.Stream.Name}"))
                {
                    errors.Add(new PipelineError(pipeline.FileName, c.Location.Line, c.Location.Column, path + ".streams",
                        $"stream '{t.Stream.Name}' would write to table {t.TablePath}, which {tables[t.TablePath]} writes already; give it its own 'table'"));
                }
            }

            bound.Add(new BoundConnection(c, connector, targets, null));
        }

        if (errors.Count > 0)
        {
            throw new PipelineException(errors.OrderBy(e => e.Line).ThenBy(e => e.Column).ToList());
        }

        return new BoundPipeline(pipeline, bound);
    }

    private static List<SinkTarget> Targets(PipelineDefinition pipeline, ConnectionDefinition c, SourceCatalog catalog, List<PipelineError> errors)
    {
        var path = $"connections[{c.Index}]";
        var targets = new List<SinkTarget>();
        if (c.Streams is null)
        {
            foreach (var s in catalog.Streams)
            {
                var mode = s.PrimaryKey.Count > 0 ? SinkMode.Merge : SinkMode.Append;
                targets.Add(new SinkTarget(s, mode, TablePath(pipeline, c, s.Name, null)));
            }

            return targets;
        }

        foreach (var sd in c.Streams)
        {
            var spath = $"{path}.streams[{sd.Index}]";
            var s = catalog.Find(sd.Name);
            if (s is null)
            {
                var names = catalog.Streams.Select(x => x.Name).ToList();
                var hint = YamlJson.DidYouMean(sd.Name, names);
                errors.Add(new PipelineError(pipeline.FileName, sd.NameLocation.Line, sd.NameLocation.Column, spath + ".name",
                    $"unknown stream '{sd.Name}'" + (hint is null ? "" : $" (did you mean '{hint}'?)") + $"; connector '{c.Connector}' offers: {YamlJson.List(names)}"));
                continue;
            }

            var mode = sd.Mode ?? (s.PrimaryKey.Count > 0 ? SinkMode.Merge : SinkMode.Append);
            if (mode is SinkMode.Merge or SinkMode.History && s.PrimaryKey.Count == 0)
            {
                errors.Add(new PipelineError(pipeline.FileName, sd.ModeLocation.Line, sd.ModeLocation.Column, spath + ".mode",
                    $"stream '{s.Name}' has no primary key, so it cannot be {(mode == SinkMode.Merge ? "merged" : "kept as history")}; use mode: append or overwrite"));
                continue;
            }

            if (mode == SinkMode.Overwrite && s.SupportedSyncModes.Contains(SyncMode.Cdc))
            {
                // A CDC read never ends: after its snapshot come changes, not a full image to replace the table with.
                errors.Add(new PipelineError(pipeline.FileName, sd.ModeLocation.Line, sd.ModeLocation.Column, spath + ".mode",
                    $"stream '{s.Name}' is read by change data capture, so its reads are not full images to overwrite the table with; use mode: merge or history"));
                continue;
            }

            if (sd.Columns is null)
            {
                targets.Add(new SinkTarget(s, mode, TablePath(pipeline, c, s.Name, sd.Table), sd.SchemaPolicy));
                continue;
            }

            if (pipeline.Kafka is not null)
            {
                // The Kafka halves carry whole rows between processes and do not cut batches to a selection yet.
                errors.Add(new PipelineError(pipeline.FileName, sd.ColumnsLocation.Line, sd.ColumnsLocation.Column, spath + ".columns",
                    "column selection needs the embedded transport; with transport kafka every column is written (remove 'columns')"));
                continue;
            }

            if (SelectColumns(pipeline.FileName, spath, s, mode, sd, errors) is { } selected)
            {
                var names = selected.Columns.Select(f => f.Name).ToList();
                targets.Add(new SinkTarget(s with { Schema = selected }, mode, TablePath(pipeline, c, s.Name, sd.Table), sd.SchemaPolicy, names));
            }
        }

        // One read feeds every table of a stream, so its batches are cut to one column selection.
        foreach (var g in targets.GroupBy(t => t.Stream.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            var shapes = g.Select(t => t.Columns is null ? "*" : string.Join("\n", t.Columns)).Distinct(StringComparer.Ordinal).Count();
            if (shapes > 1)
            {
                var sd = c.Streams.Last(x => x.Name == g.Key);
                errors.Add(new PipelineError(pipeline.FileName, sd.ColumnsLocation.Line, sd.ColumnsLocation.Column, $"{path}.streams[{sd.Index}].columns",
                    $"stream '{g.Key}' is selected more than once with different columns; every table of one stream takes the same columns"));
            }
        }

        return targets;
    }

    /// <summary>The stream's schema cut to the selected columns (in the stream's order), or null after adding errors.</summary>
    private static Ingest.Sdk.Types.StreamSchema? SelectColumns(string file, string spath, StreamDescriptor s, SinkMode mode, StreamDefinition sd, List<PipelineError> errors)
    {
        var before = errors.Count;
        var chosen = new HashSet<int>();
        var names = s.Schema.Columns.Select(f => f.Name).ToList();
        for (var i = 0; i < sd.Columns!.Count; i++)
        {
            var name = sd.Columns[i];
            var at = sd.ColumnLocations is { } locs && i < locs.Count ? locs[i] : sd.ColumnsLocation;
            var ordinal = s.Schema.IndexOf(name);
            if (ordinal < 0)
            {
                var hint = YamlJson.DidYouMean(name, names);
                errors.Add(new PipelineError(file, at.Line, at.Column, $"{spath}.columns[{i}]",
                    $"unknown column '{name}' of stream '{s.Name}'" + (hint is null ? "" : $" (did you mean '{hint}'?)") + $"; its columns: {YamlJson.List(names)}"));
            }
            else if (!chosen.Add(ordinal))
            {
                errors.Add(new PipelineError(file, at.Line, at.Column, $"{spath}.columns[{i}]", $"column '{name}' is listed twice"));
            }
        }

        if (mode is SinkMode.Merge or SinkMode.History)
        {
            var missing = s.PrimaryKey.Where(k => s.Schema.IndexOf(k) is var o && o >= 0 && !chosen.Contains(o)).ToList();
            if (missing.Count > 0)
            {
                errors.Add(new PipelineError(file, sd.ColumnsLocation.Line, sd.ColumnsLocation.Column, spath + ".columns",
                    $"key column{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))} of stream '{s.Name}' cannot be left out: mode {(mode == SinkMode.Merge ? "merge" : "history")} matches rows by key"));
            }
        }

        if (errors.Count > before)
        {
            return null;
        }

        return new Ingest.Sdk.Types.StreamSchema(s.Schema.Columns.Where((_, i) => chosen.Contains(i)).ToList());
    }

    private static string TablePath(PipelineDefinition pipeline, ConnectionDefinition c, string stream, string? table) =>
        LakePaths.Join(pipeline.LakePath, table ?? c.Name + "/" + SafeFolder(stream));

    private static string SafeFolder(string stream)
    {
        var sb = new StringBuilder(stream.Length);
        foreach (var ch in stream)
        {
            sb.Append(char.IsLetterOrDigit(ch) || ch is '_' or '-' or '.' ? ch : '_');
        }

        return sb.ToString();
    }

    /// <summary>Validates a configuration against the connector's JSON Schema, mapping each error back to its YAML line.</summary>
    internal static List<PipelineError> ValidateConfig(string file, ConnectionDefinition c, ConnectorSpec spec)
    {
        var errors = new List<PipelineError>();
        var path = $"connections[{c.Index}].config";
        JsonSchema schema;
        try
        {
            schema = JsonSchema.Build(JsonDocument.Parse(spec.ConfigSchema.ToJsonString()).RootElement, new BuildOptions { SchemaRegistry = new SchemaRegistry() });
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            errors.Add(new PipelineError(file, c.ConnectorLocation.Line, c.ConnectorLocation.Column, $"connections[{c.Index}].connector",
                $"connector '{c.Connector}' has an unusable configuration schema: {e.Message}"));
            return errors;
        }

        var result = schema.Evaluate(c.Config, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
        {
            return errors;
        }

        var configNode = JsonNode.Parse(c.Config.GetRawText());
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in result.Details is { Count: > 0 } details ? details : [result])
        {
            if (d.IsValid || d.Errors is null || d.Errors.Count == 0)
            {
                continue;
            }

            var pointer = d.InstanceLocation.ToString();
            var evalPath = d.EvaluationPath.ToString();
            foreach (var (keyword, libMessage) in d.Errors)
            {
                var message = Describe(spec.ConfigSchema, configNode, pointer, evalPath, keyword, libMessage);
                if (!seen.Add(pointer + "\n" + message))
                {
                    continue;
                }

                var at = Locate(c, pointer);
                errors.Add(new PipelineError(file, at.Line, at.Column, path + FieldPath(pointer), message));
            }
        }

        if (errors.Count == 0)
        {
            var at = Locate(c, "");
            errors.Add(new PipelineError(file, at.Line, at.Column, path, "does not match the connector's configuration schema"));
        }

        return errors;
    }

    private static string Describe(JsonObject schema, JsonNode? config, string pointer, string evalPath, string keyword, string libMessage)
    {
        var value = At(config, pointer);
        var got = value is null ? "null" : Short(value.ToJsonString());
        if (keyword == "type" && At(schema, evalPath.EndsWith("/type", StringComparison.Ordinal) ? evalPath : evalPath + "/type") is { } expected)
        {
            var names = expected is JsonArray arr ? string.Join(" or ", arr.Select(x => x?.ToString())) : expected.ToString();
            return $"expected {names}, got {got}";
        }

        if (evalPath.Contains("/additionalProperties", StringComparison.Ordinal) || keyword == "additionalProperties")
        {
            var slash = pointer.LastIndexOf('/');
            var name = Unescape(pointer[(slash + 1)..]);
            var parentSchema = At(schema, evalPath[..evalPath.LastIndexOf("/additionalProperties", StringComparison.Ordinal)]);
            var known = (parentSchema?["properties"] as JsonObject)?.Select(p => p.Key).ToList() ?? [];
            var hint = YamlJson.DidYouMean(name, known);
            return $"unknown setting '{name}'" + (hint is null ? $"; known settings: {YamlJson.List(known)}" : $"; did you mean '{hint}'?");
        }

        if (keyword == "required" && At(schema, evalPath.EndsWith("/required", StringComparison.Ordinal) ? evalPath : evalPath + "/required") is JsonArray required)
        {
            var missing = required.Select(r => r?.GetValue<string>()).Where(r => r is not null && (value as JsonObject)?.ContainsKey(r) != true).ToList();
            if (missing.Count > 0)
            {
                return $"missing required setting{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))}";
            }
        }

        if (keyword == "enum" && At(schema, evalPath.EndsWith("/enum", StringComparison.Ordinal) ? evalPath : evalPath + "/enum") is JsonArray values)
        {
            return $"expected one of {string.Join(", ", values.Select(v => v?.ToJsonString()))}, got {got}";
        }

        if (keyword is "minimum" or "maximum" or "exclusiveMinimum" or "exclusiveMaximum" or "minLength" or "maxLength" or "pattern" or "const"
            && At(schema, evalPath.EndsWith("/" + keyword, StringComparison.Ordinal) ? evalPath : evalPath + "/" + keyword) is { } limit)
        {
            var what = keyword switch
            {
                "minimum" => $"a value >= {limit.ToJsonString()}",
                "maximum" => $"a value <= {limit.ToJsonString()}",
                "exclusiveMinimum" => $"a value > {limit.ToJsonString()}",
                "exclusiveMaximum" => $"a value < {limit.ToJsonString()}",
                "minLength" => $"at least {limit.ToJsonString()} characters",
                "maxLength" => $"at most {limit.ToJsonString()} characters",
                "pattern" => $"text matching {limit.ToJsonString()}",
                _ => limit.ToJsonString(),
            };
            return $"expected {what}, got {got}";
        }

        return libMessage;
    }

    private static string Short(string s) => s.Length > 60 ? s[..57] + "..." : s;

    private static JsonNode? At(JsonNode? root, string pointer)
    {
        if (pointer.Length == 0 || pointer == "#")
        {
            return root;
        }

        var node = root;
        foreach (var raw in pointer.TrimStart('#').TrimStart('/').Split('/'))
        {
            var seg = Unescape(raw);
            node = node switch
            {
                JsonObject o => o[seg],
                JsonArray a when int.TryParse(seg, out var i) && i >= 0 && i < a.Count => a[i],
                _ => null,
            };
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    private static string Unescape(string seg) => seg.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);

    /// <summary>The YAML location of a config node, or of its nearest ancestor.</summary>
    internal static TextLocation Locate(ConnectionDefinition c, string pointer)
    {
        var p = pointer.TrimStart('#');
        while (true)
        {
            if (c.ConfigLocations.TryGetValue(p, out var at))
            {
                return at;
            }

            if (p.Length == 0)
            {
                return c.Location;
            }

            p = p[..Math.Max(0, p.LastIndexOf('/'))];
        }
    }

    /// <summary><c>/auth/keys/0</c> as <c>.auth.keys[0]</c>.</summary>
    internal static string FieldPath(string pointer)
    {
        var sb = new StringBuilder();
        foreach (var raw in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var seg = Unescape(raw);
            if (int.TryParse(seg, out _))
            {
                sb.Append('[').Append(seg).Append(']');
            }
            else
            {
                sb.Append('.').Append(seg);
            }
        }

        return sb.ToString();
    }
}
