using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Dropbox;

/// <summary>The dropbox connector's configuration (JSON Schema in <see cref="SpecJson"/>).</summary>
internal sealed record DropboxOptions(
    string Path,
    IReadOnlyList<FileTableOptions> Tables,
    FileReadOptions Read,
    string? AccessToken,
    string? RefreshToken,
    string? AppKey,
    string? AppSecret,
    Uri ApiBase,
    Uri ContentBase)
{
    public static string SpecJson { get; } = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Dropbox",
          "description": "CSV, JSON lines and Parquet files in a Dropbox folder. Changes are listed with a cursor; each new or changed file is read once.",
          "type": "object",
          "additionalProperties": false,
          "required": ["tables"],
          "properties": {
            "path": { "type": "string", "title": "Folder", "description": "The Dropbox folder, e.g. /exports ('' for the whole Dropbox or app folder).", "default": "" },
            "tables": { "type": "array", "minItems": 1, "title": "Tables", "items": TABLE },
            "refreshToken": { "type": "string", "secret": true, "title": "Refresh token", "description": "An offline refresh token (with appKey and appSecret): short-lived access tokens are fetched and renewed." },
            "appKey": { "type": "string", "title": "App key" },
            "appSecret": { "type": "string", "secret": true, "title": "App secret" },
            "accessToken": { "type": "string", "secret": true, "title": "Access token", "description": "A plain access token instead of the refresh token (expires; for tests and short jobs)." },
            "apiBase": { "type": "string", "default": "https://api.dropboxapi.com" },
            "contentBase": { "type": "string", "default": "https://content.dropboxapi.com" },
            "pollInterval": { "type": ["string", "number"], "default": "30s", "description": "How often changes are listed after the first pass: seconds, or 30s, 5m, 1h." },
            "lookback": { "type": ["string", "number"], "default": "1h", "description": "Late file window of the file ledger (files are ordered by their server modification time)." },
            "schemaEvolution": { "type": "string", "enum": ["evolve", "rescue"], "default": "evolve" }
          }
        }
        """.Replace("TABLE", FileTableOptions.SpecJson, StringComparison.Ordinal);

    /// <exception cref="ConnectorException">Of kind configuration, naming the field.</exception>
    public static DropboxOptions Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The dropbox connector's configuration must be an object with 'tables' and credentials.", "");
        }

        var path = "";
        IReadOnlyList<FileTableOptions>? tables = null;
        string? access = null, refresh = null, key = null, secret = null;
        var api = new Uri("https://api.dropboxapi.com");
        var content = new Uri("https://content.dropboxapi.com");
        var poll = TimeSpan.FromSeconds(30);
        var lookback = TimeSpan.FromHours(1);
        var evolve = true;
        foreach (var p in config.EnumerateObject())
        {
            var f = "/" + p.Name;
            switch (p.Name)
            {
                case "path": path = Text(p, f).TrimEnd('/'); break;
                case "tables": tables = FileTableOptions.ParseTables(p.Value); break;
                case "accessToken": access = Text(p, f); break;
                case "refreshToken": refresh = Text(p, f); break;
                case "appKey": key = Text(p, f); break;
                case "appSecret": secret = Text(p, f); break;
                case "apiBase": api = Url(p, f); break;
                case "contentBase": content = Url(p, f); break;
                case "pollInterval": poll = FileDiscovery.ParseDuration(p.Value, f); break;
                case "lookback": lookback = FileDiscovery.ParseDuration(p.Value, f); break;
                case "schemaEvolution": evolve = Text(p, f) != "rescue"; break;
                default:
                    throw new ConnectorException(ErrorKind.Configuration, $"Unknown setting '{p.Name}'.", f);
            }
        }

        if (path.Length > 0 && !path.StartsWith('/'))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'path' must start with '/' (or be empty for the root), not '{path}'.", "/path");
        }

        if (tables is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Missing 'tables': at least one {name, pattern, format}.", "/tables");
        }

        if (refresh is not null && (key is null || secret is null))
        {
            throw new ConnectorException(ErrorKind.Configuration, "A refresh token needs 'appKey' and 'appSecret'.", key is null ? "/appKey" : "/appSecret");
        }

        if (refresh is null && access is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Set 'refreshToken' with 'appKey' and 'appSecret' (or a plain 'accessToken').", "/refreshToken");
        }

        return new DropboxOptions(path, tables, new FileReadOptions(poll, lookback, evolve), access, refresh, key, secret, api, content);
    }

    private static string Text(JsonProperty p, string field) =>
        p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a string.", field);

    private static Uri Url(JsonProperty p, string field) =>
        Uri.TryCreate(Text(p, field), UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
            ? u
            : throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be an http(s) URL.", field);
}
