using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ingest.Engine.Config;

namespace Ingest.Host.Web;

/// <summary>
/// Writes stored connections as a pipeline file (the shape <see cref="Ingest.Engine.Pipelines.PipelineFile"/> reads and
/// <c>ingest run</c> runs). Secrets are left out: a comment stands where each one was.
/// </summary>
internal static partial class PipelineYaml
{
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_-]*$")]
    private static partial Regex PlainKey();

    /// <summary>The pipeline text of <paramref name="connections"/>; <paramref name="secrets"/> gives each connector's secret paths.</summary>
    public static string Write(IReadOnlyList<StoredConnection> connections, Func<string, IReadOnlyList<string>> secrets, string lake, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(secrets);
        var sb = new StringBuilder();
        sb.Append("# Exported from Ingest on ").Append(at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)).Append(" UTC: ")
            .Append(string.Join(", ", connections.Select(c => c.Name))).Append('\n');
        sb.Append("# Secrets are not exported: each one is a comment below; set it here (or in the UI after an import).\n");
        sb.Append("lake: ").Append(Scalar(JsonValue.Create(lake))).Append('\n');
        sb.Append("connections:\n");
        foreach (var c in connections)
        {
            sb.Append("  - name: ").Append(Scalar(JsonValue.Create(c.Name))).Append('\n');
            sb.Append("    connector: ").Append(Scalar(JsonValue.Create(c.Connector))).Append('\n');
            var (config, omitted) = SecretFields.Without(c.Config, secrets(c.Connector));
            sb.Append("    config:");
            Value(sb, config, "", 6, omitted);
            if (c.Streams is { } streams)
            {
                sb.Append("    streams:");
                if (streams.Count == 0)
                {
                    sb.Append(" []\n");
                }
                else
                {
                    sb.Append('\n');
                    foreach (var s in streams)
                    {
                        sb.Append("      - name: ").Append(Scalar(JsonValue.Create(s.Name))).Append('\n');
                        sb.Append("        mode: ").Append(s.Mode.ToString().ToLowerInvariant()).Append('\n');
                        if (s.Table is not null)
                        {
                            sb.Append("        table: ").Append(Scalar(JsonValue.Create(s.Table))).Append('\n');
                        }

                        if (s.Columns is { Count: > 0 } columns)
                        {
                            sb.Append("        columns: [").Append(string.Join(", ", columns.Select(x => Scalar(JsonValue.Create(x))))).Append("]\n");
                        }
                    }
                }
            }
        }

        return sb.ToString();
    }

    // Writes a value after "key:" (or "- "): scalars and empty containers on the same line, the rest in block style below.
    private static void Value(StringBuilder sb, JsonNode? node, string pointer, int indent, IReadOnlyList<string> omitted)
    {
        var comments = omitted.Where(p => Parent(p) == pointer).ToList();
        switch (node)
        {
            case JsonObject o when o.Count > 0:
                sb.Append('\n');
                foreach (var (key, child) in o)
                {
                    sb.Append(' ', indent).Append(Key(key)).Append(':');
                    Value(sb, child, pointer + "/" + Escape(key), indent + 2, omitted);
                }

                Comments(sb, comments, indent);
                break;
            case JsonArray a when a.Count > 0:
                sb.Append('\n');
                for (var i = 0; i < a.Count; i++)
                {
                    var itemPointer = pointer + "/" + i.ToString(CultureInfo.InvariantCulture);
                    sb.Append(' ', indent).Append('-');
                    if (a[i] is JsonObject item && item.Count > 0)
                    {
                        // "- key: value" then the item's other keys under the first.
                        var first = true;
                        foreach (var (key, child) in item)
                        {
                            sb.Append(' ', first ? 1 : indent + 2).Append(Key(key)).Append(':');
                            Value(sb, child, itemPointer + "/" + Escape(key), indent + 4, omitted);
                            first = false;
                        }

                        Comments(sb, omitted.Where(p => Parent(p) == itemPointer).ToList(), indent + 2);
                    }
                    else
                    {
                        Value(sb, a[i], itemPointer, indent + 2, omitted);
                    }
                }

                Comments(sb, comments, indent);
                break;
            case JsonObject:
                sb.Append(" {}\n");
                Comments(sb, comments, indent);
                break;
            case JsonArray:
                sb.Append(" []\n");
                Comments(sb, comments, indent);
                break;
            default:
                sb.Append(' ').Append(Scalar(node)).Append('\n');
                break;
        }
    }

    private static void Comments(StringBuilder sb, List<string> pointers, int indent)
    {
        foreach (var p in pointers)
        {
            var name = Unescape(p[(p.LastIndexOf('/') + 1)..]);
            sb.Append(' ', indent).Append("# ").Append(name.All(char.IsAsciiDigit) ? "an item" : Key(name)).Append(": secret, not exported\n");
        }
    }

    private static string Parent(string pointer) => pointer[..pointer.LastIndexOf('/')];

    private static string Key(string key) => PlainKey().IsMatch(key) && !IsReserved(key) ? key : Quote(key);

    // Words YAML 1.1 reads as booleans or null when unquoted.
    private static bool IsReserved(string s) => s.ToLowerInvariant() is "y" or "n" or "yes" or "no" or "on" or "off" or "true" or "false" or "null";

    private static string Scalar(JsonNode? node) => node switch
    {
        null => "null",
        JsonValue v when v.GetValueKind() is JsonValueKind.String => Quote(v.GetValue<string>()),
        JsonValue v when v.GetValueKind() is JsonValueKind.True => "true",
        JsonValue v when v.GetValueKind() is JsonValueKind.False => "false",
        JsonValue v when v.GetValueKind() is JsonValueKind.Null => "null",
        _ => node.ToJsonString(),
    };

    // A JSON string is a YAML double-quoted scalar.
    private static string Quote(string s) => JsonSerializer.Serialize(s, QuoteOptions);

    private static readonly JsonSerializerOptions QuoteOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Escape(string segment) => segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private static string Unescape(string segment) => segment.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
}
