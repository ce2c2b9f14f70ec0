using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Files;

/// <summary>The files connector's configuration (JSON Schema in <see cref="SpecJson"/>).</summary>
/// <param name="Path">The folder (local or mounted).</param>
/// <param name="Tables">Tables: a glob and a format each.</param>
/// <param name="Read">Polling and ledger settings.</param>
internal sealed record FilesOptions(string Path, IReadOnlyList<FileTableOptions> Tables, FileReadOptions Read)
{
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DefaultLookback = TimeSpan.FromHours(1);

    public static string SpecJson { get; } = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Files in a folder",
          "description": "CSV, JSON lines and Parquet files (gzip and zstd by extension) in a local or mounted folder. Each new or changed file is read once.",
          "type": "object",
          "additionalProperties": false,
          "required": ["path", "tables"],
          "properties": {
            "path": { "type": "string", "title": "Folder", "minLength": 1, "description": "An absolute path, or one relative to the working directory." },
            "tables": { "type": "array", "minItems": 1, "title": "Tables", "items": TABLE },
            "pollInterval": { "type": ["string", "number"], "title": "Poll interval", "description": "How often the folder is listed for new files after the first pass: seconds, or 30s, 5m, 1h.", "default": "30s" },
            "lookback": { "type": ["string", "number"], "title": "Late file window", "description": "Files whose modification time is older than this before a listing are assumed seen; raise it when files land with old times (copies that preserve times).", "default": "1h" },
            "schemaEvolution": { "type": "string", "enum": ["evolve", "rescue"], "default": "evolve", "description": "evolve: widen inferred columns (and add new ones) when a later file needs it; rescue: keep the schema and put values that do not fit into _rescued_data." },
            "detectDeletions": { "type": "boolean", "default": false, "title": "Remove rows of deleted files", "description": "Compare every listing with the files already read: when one is gone, its table is truncated and the remaining files read again, so merge tables hold only the rows of files that exist. The checkpoint then lists every file read (it grows with the number of files); meant for merge tables." }
          }
        }
        """.Replace("TABLE", FileTableOptions.SpecJson, StringComparison.Ordinal);

    /// <exception cref="ConnectorException">Of kind configuration, naming the field.</exception>
    public static FilesOptions Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The files connector's configuration must be an object with 'path' and 'tables'.", "");
        }

        string? path = null;
        IReadOnlyList<FileTableOptions>? tables = null;
        var poll = DefaultPollInterval;
        var lookback = DefaultLookback;
        var evolve = true;
        var detectDeletions = false;
        foreach (var p in config.EnumerateObject())
        {
            switch (p.Name)
            {
                case "path":
                    path = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
                    if (string.IsNullOrWhiteSpace(path))
                    {
                        throw new ConnectorException(ErrorKind.Configuration, "'path' must name a folder.", "/path");
                    }

                    break;
                case "tables": tables = FileTableOptions.ParseTables(p.Value); break;
                case "pollInterval": poll = FileDiscovery.ParseDuration(p.Value, "/pollInterval"); break;
                case "lookback": lookback = FileDiscovery.ParseDuration(p.Value, "/lookback"); break;
                case "schemaEvolution":
                    evolve = p.Value.GetString() switch
                    {
                        "evolve" => true,
                        "rescue" => false,
                        _ => throw new ConnectorException(ErrorKind.Configuration, "'schemaEvolution' must be evolve or rescue.", "/schemaEvolution"),
                    };
                    break;
                case "detectDeletions":
                    detectDeletions = p.Value.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        _ => throw new ConnectorException(ErrorKind.Configuration, "'detectDeletions' must be true or false.", "/detectDeletions"),
                    };
                    break;
                default:
                    throw new ConnectorException(ErrorKind.Configuration, $"Unknown setting '{p.Name}': the files connector takes path, tables, pollInterval, lookback, schemaEvolution and detectDeletions.", "/" + p.Name);
            }
        }

        if (path is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Missing 'path': the folder to read.", "/path");
        }

        if (tables is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Missing 'tables': at least one {name, pattern, format}.", "/tables");
        }

        return new FilesOptions(System.IO.Path.GetFullPath(path), tables, new FileReadOptions(poll, lookback, evolve, detectDeletions));
    }
}
