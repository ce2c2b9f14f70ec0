using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.TestPlugins.Vault;

/// <summary>
/// A connector to a pretend key vault: Check succeeds only with the password "open-sesame" and names the
/// field otherwise. Its schema uses every construct the form generator renders. A read reports one figure about
/// the connection (<see cref="CacheBytes"/> bytes of key cache) and ends.
/// </summary>
[IngestConnector("vault", Description = "A pretend key vault (host tests).", DocumentationUrl = "https://example.invalid/vault")]
public sealed class VaultConnector : ISourceConnector
{
    /// <summary>The password Check accepts.</summary>
    public const string Password = "open-sesame";

    /// <summary>The <c>cache_bytes</c> figure a read reports: 12.4 MB.</summary>
    public const long CacheBytes = 13_002_342;

    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Vault",
          "type": "object",
          "additionalProperties": false,
          "required": ["host", "password"],
          "properties": {
            "host": { "type": "string", "title": "Host", "description": "The vault's host name.", "minLength": 1 },
            "port": { "type": "integer", "title": "Port", "default": 8200, "minimum": 1, "maximum": 65535 },
            "password": { "type": "string", "title": "Password", "secret": true, "description": "The vault's password." },
            "region": { "type": "string", "title": "Region", "enum": ["eu", "us"], "default": "eu" },
            "ratio": { "type": "number", "title": "Sample ratio", "default": 1.0 },
            "tags": { "type": "array", "title": "Tags", "description": "Labels the keys carry.", "items": { "type": "string", "minLength": 1 } },
            "timeouts": { "type": "array", "title": "Retry timeouts", "items": { "type": "integer", "minimum": 1 } },
            "replicas": {
              "type": "array", "title": "Replicas", "description": "Read replicas to spread the load over.",
              "items": {
                "type": "object", "title": "Replica", "additionalProperties": false, "required": ["host"],
                "properties": {
                  "host": { "type": "string", "title": "Replica host", "minLength": 1 },
                  "weight": { "type": "integer", "title": "Weight", "default": 1, "minimum": 1 },
                  "password": { "type": "string", "title": "Replica password", "secret": true, "description": "pw-<host> opens it." }
                }
              }
            },
            "mode": {
              "title": "Read mode", "description": "How keys are read.",
              "oneOf": [
                {
                  "title": "Full scan", "type": "object", "additionalProperties": false, "required": ["kind"],
                  "properties": { "kind": { "const": "full" }, "batch": { "type": "integer", "title": "Batch size", "default": 100, "minimum": 1 } }
                },
                {
                  "title": "Incremental", "type": "object", "additionalProperties": false, "required": ["kind", "cursor"],
                  "description": "Reads keys changed since the last run.",
                  "properties": {
                    "kind": { "const": "incremental" }, "cursor": { "type": "string", "title": "Cursor field", "minLength": 1 },
                    "token": { "type": "string", "title": "Change feed token", "secret": true }
                  }
                }
              ]
            },
            "tls": {
              "type": "object", "title": "TLS", "description": "Transport security.", "additionalProperties": false,
              "properties": {
                "enabled": { "type": "boolean", "title": "Use TLS", "default": true },
                "clientKey": { "type": "string", "title": "Client key", "secret": true }
              }
            }
          }
        }
        """);

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        var password = config.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        var host = config.TryGetProperty("host", out var h) ? h.GetString() : "?";
        if (password != Password)
        {
            return Task.FromResult(CheckResult.Failed($"The vault at {host} refused the password: check 'password'.", "/password"));
        }

        // A replica's password is "pw-<its host>"; an incremental read's token is "tok-<its cursor>".
        if (config.TryGetProperty("replicas", out var replicas) && replicas.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var r in replicas.EnumerateArray())
            {
                if (r.TryGetProperty("password", out var rp) && rp.GetString() != "pw-" + r.GetProperty("host").GetString())
                {
                    return Task.FromResult(CheckResult.Failed($"Replica {r.GetProperty("host").GetString()} refused its password.", $"/replicas/{i}/password"));
                }

                i++;
            }
        }

        if (config.TryGetProperty("mode", out var mode) && mode.ValueKind == JsonValueKind.Object && mode.TryGetProperty("token", out var token)
            && token.GetString() != "tok-" + (mode.TryGetProperty("cursor", out var cursor) ? cursor.GetString() : ""))
        {
            return Task.FromResult(CheckResult.Failed("The change feed refused the token.", "/mode/token"));
        }

        return Task.FromResult(CheckResult.Ok($"Connected to {host}."));
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([
            new StreamDescriptor("keys", new StreamSchema([new Field("id", DataType.Int64, Nullable: false), new Field("name", DataType.String)]), ["id"], [], [SyncMode.FullRefresh], "The keys."),
            new StreamDescriptor("audit", new StreamSchema([new Field("at", DataType.String), new Field("what", DataType.String)]), [], [], [SyncMode.FullRefresh], "The audit log."),
        ]));

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => new EmptyReader();

    private sealed class EmptyReader : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            yield return new SourceFigures(new ConnectorFigure("cache_bytes", "key cache", CacheBytes, FigureUnits.Bytes));
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
