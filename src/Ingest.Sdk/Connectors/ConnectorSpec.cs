using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ingest.Sdk.Connectors;

/// <summary>
/// The configuration's JSON Schema (draft 2020-12). A property with <c>"secret": true</c> holds a
/// secret: the UI masks it, the API never returns it once saved, logs never print it.
/// </summary>
/// <param name="ConfigSchema">The schema object.</param>
public sealed record ConnectorSpec(JsonObject ConfigSchema)
{
    /// <summary>The keyword that marks a secret property.</summary>
    public const string SecretKeyword = "secret";

    /// <summary>Parses a spec from JSON text.</summary>
    public static ConnectorSpec Parse(string json) =>
        new(JsonNode.Parse(json) as JsonObject ?? throw new JsonException("A connector spec must be a JSON object."));

    /// <summary>
    /// JSON pointers (e.g. <c>/password</c>, <c>/auth/apiKey</c>) of the secret properties: nested objects, the items of
    /// arrays (a <c>*</c> segment stands for every item: <c>/replicas/*/password</c>) and the alternatives of <c>oneOf</c>,
    /// <c>anyOf</c> and <c>allOf</c> (their properties sit at the same pointer as the group: <c>/auth/token</c>) included.
    /// </summary>
    public IReadOnlyList<string> SecretPaths()
    {
        var paths = new List<string>();
        Collect(ConfigSchema, "", paths);
        return paths.Distinct(StringComparer.Ordinal).ToList();

        static void Collect(JsonObject schema, string prefix, List<string> paths)
        {
            if (schema["properties"] is JsonObject props)
            {
                foreach (var (name, node) in props)
                {
                    if (node is not JsonObject prop)
                    {
                        continue;
                    }

                    var path = prefix + "/" + name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
                    if (IsSecret(prop))
                    {
                        paths.Add(path);
                    }

                    Collect(prop, path, paths);
                }
            }

            if (schema["items"] is JsonObject items)
            {
                if (IsSecret(items))
                {
                    paths.Add(prefix + "/*");
                }

                Collect(items, prefix + "/*", paths);
            }

            foreach (var group in new[] { "oneOf", "anyOf", "allOf" })
            {
                if (schema[group] is JsonArray alternatives)
                {
                    foreach (var alternative in alternatives.OfType<JsonObject>())
                    {
                        Collect(alternative, prefix, paths);
                    }
                }
            }
        }

        static bool IsSecret(JsonObject prop) => prop[SecretKeyword] is JsonValue v && v.TryGetValue<bool>(out var secret) && secret;
    }
}

/// <summary>The outcome of <see cref="ISourceConnector.CheckAsync"/>.</summary>
/// <param name="Succeeded">Whether the connector can read with this configuration.</param>
/// <param name="Message">What was found; on failure, what to do about it (e.g. "set wal_level=logical and restart").</param>
/// <param name="Field">The configuration field at fault, as a JSON pointer, where one is.</param>
public sealed record CheckResult(bool Succeeded, string Message, string? Field = null)
{
    /// <summary>A success.</summary>
    public static CheckResult Ok(string message = "Connected.") => new(true, message);

    /// <summary>A failure with an actionable message.</summary>
    public static CheckResult Failed(string message, string? field = null) => new(false, message, field);
}
