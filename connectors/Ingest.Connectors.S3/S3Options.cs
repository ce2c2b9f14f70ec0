using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.S3;

/// <summary>The s3 connector's configuration (JSON Schema in <see cref="SpecJson"/>).</summary>
/// <param name="Bucket">The bucket name.</param>
/// <param name="Prefix">The key prefix the tables' patterns are relative to: empty, or ending in <c>/</c>.</param>
/// <param name="Region">The bucket's region; null: the SDK's default (AWS_REGION, the profile).</param>
/// <param name="AccessKeyId">Static credentials; null: the standard AWS credential chain.</param>
/// <param name="SecretAccessKey">The secret of <paramref name="AccessKeyId"/>.</param>
/// <param name="SessionToken">For temporary static credentials.</param>
/// <param name="Endpoint">An S3-compatible store's URL (MinIO, R2, Ceph, moto); null: AWS.</param>
/// <param name="Tables">Tables: a glob and a format each.</param>
/// <param name="Read">Polling and ledger settings.</param>
internal sealed record S3Options(
    string Bucket,
    string Prefix,
    string? Region,
    string? AccessKeyId,
    string? SecretAccessKey,
    string? SessionToken,
    Uri? Endpoint,
    IReadOnlyList<FileTableOptions> Tables,
    FileReadOptions Read)
{
    public static string SpecJson { get; } = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Amazon S3",
          "description": "CSV, JSON lines and Parquet objects in an S3 bucket (or an S3-compatible store). Each new or changed object (key + ETag) is read once.",
          "type": "object",
          "additionalProperties": false,
          "required": ["bucket", "tables"],
          "properties": {
            "bucket": { "type": "string", "title": "Bucket", "minLength": 3 },
            "prefix": { "type": "string", "title": "Prefix", "description": "A folder-like key prefix (e.g. exports/2024); the tables' patterns are relative to it.", "default": "" },
            "region": { "type": "string", "title": "Region", "description": "e.g. eu-west-1. Default: AWS_REGION or the profile's region (us-east-1 with a custom endpoint)." },
            "accessKeyId": { "type": "string", "title": "Access key id", "description": "Static credentials; leave out to use the standard AWS chain (environment, profile, SSO, instance or pod role)." },
            "secretAccessKey": { "type": "string", "secret": true, "title": "Secret access key" },
            "sessionToken": { "type": "string", "secret": true, "title": "Session token", "description": "With temporary static credentials only." },
            "endpoint": { "type": "string", "title": "Endpoint", "description": "An S3-compatible store's URL, e.g. http://minio:9000 (path-style addressing is used)." },
            "tables": { "type": "array", "minItems": 1, "title": "Tables", "items": TABLE },
            "pollInterval": { "type": ["string", "number"], "title": "Poll interval", "description": "How often the prefix is listed for new objects after the first pass: seconds, or 30s, 5m, 1h.", "default": "30s" },
            "lookback": { "type": ["string", "number"], "title": "Late file window", "description": "Objects whose LastModified is older than this before a listing are assumed seen.", "default": "1h" },
            "schemaEvolution": { "type": "string", "enum": ["evolve", "rescue"], "default": "evolve" },
            "detectDeletions": { "type": "boolean", "default": false, "title": "Remove rows of deleted files", "description": "Compare every listing with the files already read: when one is gone, its table is truncated and the remaining files read again, so merge tables hold only the rows of files that exist. The checkpoint then lists every file read (it grows with the number of files); meant for merge tables." }
          }
        }
        """.Replace("TABLE", FileTableOptions.SpecJson, StringComparison.Ordinal);

    /// <exception cref="ConnectorException">Of kind configuration, naming the field.</exception>
    public static S3Options Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The s3 connector's configuration must be an object with 'bucket' and 'tables'.", "");
        }

        string? bucket = null, region = null, keyId = null, secret = null, token = null;
        var prefix = "";
        Uri? endpoint = null;
        IReadOnlyList<FileTableOptions>? tables = null;
        var poll = TimeSpan.FromSeconds(30);
        var lookback = TimeSpan.FromHours(1);
        var evolve = true;
        var detectDeletions = false;
        foreach (var p in config.EnumerateObject())
        {
            var f = "/" + p.Name;
            switch (p.Name)
            {
                case "bucket": bucket = Text(p, f).Trim(); break;
                case "prefix": prefix = Text(p, f).Trim().Trim('/'); break;
                case "region": region = Text(p, f).Trim(); break;
                case "accessKeyId": keyId = Text(p, f).Trim(); break;
                case "secretAccessKey": secret = Text(p, f); break;
                case "sessionToken": token = Text(p, f); break;
                case "endpoint":
                    endpoint = Uri.TryCreate(Text(p, f), UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
                        ? u
                        : throw new ConnectorException(ErrorKind.Configuration, "'endpoint' must be an http(s) URL such as http://minio:9000.", f);
                    break;
                case "tables": tables = FileTableOptions.ParseTables(p.Value); break;
                case "pollInterval": poll = FileDiscovery.ParseDuration(p.Value, f); break;
                case "lookback": lookback = FileDiscovery.ParseDuration(p.Value, f); break;
                case "schemaEvolution":
                    evolve = Text(p, f) switch
                    {
                        "evolve" => true,
                        "rescue" => false,
                        _ => throw new ConnectorException(ErrorKind.Configuration, "'schemaEvolution' must be evolve or rescue.", f),
                    };
                    break;
                case "detectDeletions":
                    detectDeletions = p.Value.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        _ => throw new ConnectorException(ErrorKind.Configuration, "'detectDeletions' must be true or false.", f),
                    };
                    break;
                default:
                    throw new ConnectorException(ErrorKind.Configuration, $"Unknown setting '{p.Name}': the s3 connector takes bucket, prefix, region, accessKeyId, secretAccessKey, sessionToken, endpoint, tables, pollInterval, lookback, schemaEvolution and detectDeletions.", f);
            }
        }

        if (string.IsNullOrEmpty(bucket))
        {
            throw new ConnectorException(ErrorKind.Configuration, "Missing 'bucket': the S3 bucket to read.", "/bucket");
        }

        if (bucket.Contains('/', StringComparison.Ordinal) || bucket.StartsWith("s3:", StringComparison.OrdinalIgnoreCase))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'bucket' must be a bucket name only (put the folder in 'prefix'), not '{bucket}'.", "/bucket");
        }

        if (tables is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Missing 'tables': at least one {name, pattern, format}.", "/tables");
        }

        if (string.IsNullOrEmpty(keyId) != string.IsNullOrEmpty(secret))
        {
            throw new ConnectorException(ErrorKind.Configuration, "Set both 'accessKeyId' and 'secretAccessKey', or neither (to use the standard AWS credential chain).", keyId is null ? "/accessKeyId" : "/secretAccessKey");
        }

        if (token is not null && keyId is null)
        {
            throw new ConnectorException(ErrorKind.Configuration, "'sessionToken' goes with 'accessKeyId' and 'secretAccessKey'.", "/sessionToken");
        }

        return new S3Options(bucket, prefix.Length == 0 ? "" : prefix + "/", region, keyId, secret, token, endpoint, tables, new FileReadOptions(poll, lookback, evolve, detectDeletions));
    }

    private static string Text(JsonProperty p, string field) =>
        p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a string.", field);
}
