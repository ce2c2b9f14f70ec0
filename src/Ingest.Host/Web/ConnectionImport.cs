using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;

namespace Ingest.Host.Web;

/// <summary>What an import created.</summary>
/// <param name="Connections">The new connections (not started).</param>
/// <param name="Warnings">What still needs doing (a secret the file left out), by field.</param>
public sealed record ImportResult(IReadOnlyList<ConnectionView> Connections, IReadOnlyList<ConfigProblem> Warnings);

/// <summary>Export to and import from the pipeline file shape.</summary>
internal sealed partial class ConnectionService
{
    /// <summary>The connection as a pipeline file (secrets left out, a comment where each was); null when it does not exist.</summary>
    public async Task<string?> ExportAsync(string name, CancellationToken cancellationToken) =>
        await _store.GetAsync(name, cancellationToken) is { } c
            ? PipelineYaml.Write([c], Secrets, _lake, DateTimeOffset.UtcNow)
            : null;

    /// <summary>
    /// Creates the connections of a pipeline file (its <c>lake</c> and <c>transport</c> are this host's own). Nothing is
    /// created unless every connection is valid; each problem names its field and where it is in the file. A secret the file
    /// leaves out (an export never has them) is a warning: the connection is saved and asks for it before it starts.
    /// </summary>
    /// <param name="yaml">The file's text.</param>
    /// <param name="fileName">The file's name, for messages.</param>
    /// <param name="cancellationToken">Cancels the import.</param>
    public async Task<Outcome<ImportResult>> ImportAsync(string yaml, string? fileName, CancellationToken cancellationToken)
    {
        var file = string.IsNullOrWhiteSpace(fileName) ? "import.yaml" : Path.GetFileName(fileName);
        PipelineDefinition definition;
        try
        {
            definition = PipelineFile.Parse(yaml ?? "", Path.Combine(_lake, file), _lake);
        }
        catch (PipelineException e)
        {
            return Fail<ImportResult>(e.Errors.Select(x => Located(x.Path, file, x.Line, x.Column, x.Message)).ToList(), 400);
        }

        var problems = new List<ConfigProblem>();
        var warnings = new List<ConfigProblem>();
        var now = DateTimeOffset.UtcNow;
        var toCreate = new List<StoredConnection>();
        var existing = (await _store.ListAsync(cancellationToken)).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var conflict = false;
        foreach (var c in definition.Connections)
        {
            var path = $"connections[{c.Index}]";
            if (existing.Contains(c.Name))
            {
                problems.Add(Located(path + ".name", file, c.Location.Line, c.Location.Column, $"a connection named '{c.Name}' exists already"));
                conflict = true;
            }

            var plugin = _plugins.Find(c.Connector);
            if (plugin is null)
            {
                problems.Add(Located(path + ".connector", file, c.ConnectorLocation.Line, c.ConnectorLocation.Column,
                    $"unknown connector '{c.Connector}'; loaded connectors: {string.Join(", ", _plugins.Plugins.Select(p => p.Name).Order(StringComparer.Ordinal))}"));
                continue;
            }

            var secrets = plugin.Connector.Spec.SecretPaths();
            var config = JsonNode.Parse(c.Config.GetRawText()) as JsonObject ?? [];

            // Required secrets the file leaves out: validated as if set, saved unset, asked for before the connection starts.
            var unset = SecretFields.Slots(config, secrets).Where(p => SecretFields.Get(config, p) is null).ToHashSet(StringComparer.Ordinal);
            List<string> missing;
            using (var raw = JsonDocument.Parse(config.ToJsonString()))
            {
                missing = ConfigValidator.Validate(c.Connector, plugin.Connector.Spec, raw.RootElement)
                    .Where(p => p.Message.StartsWith("required", StringComparison.Ordinal) && unset.Contains(SecretFields.Pointer(p.Field)))
                    .Select(p => SecretFields.Pointer(p.Field))
                    .Distinct(StringComparer.Ordinal)
                    .ToList();
            }

            var probe = (JsonObject)config.DeepClone();
            foreach (var p in missing)
            {
                SecretFields.Set(probe, p, JsonValue.Create(ConnectionSecrets.Mask));
            }

            using (var doc = JsonDocument.Parse(probe.ToJsonString()))
            {
                foreach (var p in ConfigValidator.Validate(c.Connector, plugin.Connector.Spec, doc.RootElement))
                {
                    var at = LocationOf(c, p.Field);
                    problems.Add(Located($"{path}.{p.Field}", file, at.Line, at.Column, p.Message));
                }
            }

            foreach (var p in missing)
            {
                var at = LocationOf(c, SecretFields.Field(p));
                warnings.Add(new ConfigProblem($"{c.Name}.{SecretFields.Field(p)}", $"secret not set ({file}:{at.Line}:{at.Column}): set it before starting the connection"));
            }

            List<StreamChoice>? streams = null;
            if (c.Streams is { } chosen)
            {
                streams = [];
                foreach (var s in chosen)
                {
                    var sp = $"{path}.streams[{s.Index}]";
                    if (s.Mode is not { } mode)
                    {
                        problems.Add(Located(sp + ".mode", file, s.Location.Line, s.Location.Column, "missing: a stored connection keeps each stream's mode; add mode: append, merge, history or overwrite"));
                        continue;
                    }

                    if (s.Table is not null && TableProblem(s.Table) is { } tp)
                    {
                        problems.Add(Located(sp + ".table", file, s.Location.Line, s.Location.Column, tp));
                    }

                    if (s.SchemaPolicy != SchemaPolicy.Evolve)
                    {
                        problems.Add(Located(sp + ".schemaPolicy", file, s.Location.Line, s.Location.Column, "stored connections evolve their schema; remove 'schemaPolicy' (or run this file with ingest run)"));
                    }

                    if (ColumnsProblem(s.Columns) is { } cp)
                    {
                        problems.Add(Located(sp + ".columns" + cp.Index, file, s.ColumnsLocation.Line, s.ColumnsLocation.Column, cp.Message));
                    }

                    streams.Add(new StreamChoice(s.Name, mode, s.Table, s.Columns));
                }
            }

            toCreate.Add(new StoredConnection(c.Name, c.Connector, config, streams, _lake, false, now, now));
        }

        if (problems.Count > 0)
        {
            return Fail<ImportResult>(problems, conflict && problems.All(p => p.Message.Contains("exists already", StringComparison.Ordinal)) ? 409 : 400);
        }

        var created = new List<ConnectionView>();
        foreach (var c in toCreate)
        {
            if (!await SaveNewAsync(c, "import", cancellationToken))
            {
                // Created by someone else since the check above.
                return Fail<ImportResult>([new ConfigProblem($"connections[{created.Count}].name", $"a connection named '{c.Name}' exists already (imported before it: {string.Join(", ", created.Select(x => x.Name))})")], 409);
            }

            created.Add(View(c));
        }

        return new Outcome<ImportResult>(new ImportResult(created, warnings), [], 201);
    }

    private static ConfigProblem Located(string field, string file, int line, int column, string message) =>
        new(field, line > 0 ? $"{file}:{line}:{column}: {message}" : $"{file}: {message}");

    // Where a config field is in the file: the field's own node, else its nearest parent's (a missing setting is its parent's).
    private static TextLocation LocationOf(ConnectionDefinition c, string field)
    {
        var pointer = SecretFields.Pointer(field);
        while (true)
        {
            if (c.ConfigLocations.TryGetValue(pointer, out var at))
            {
                return at;
            }

            if (pointer.Length == 0)
            {
                return c.Location;
            }

            pointer = pointer[..pointer.LastIndexOf('/')];
        }
    }
}
