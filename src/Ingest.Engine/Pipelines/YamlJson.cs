using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Ingest.Engine.Pipelines;

/// <summary>Converts YAML nodes to JSON with YAML 1.2 core-schema typing, remembering where each value came from.</summary>
internal static partial class YamlJson
{
    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex FloatPattern();

    /// <summary>The location of a node (1-based).</summary>
    public static TextLocation At(YamlNode node) => new((int)node.Start.Line, (int)node.Start.Column);

    /// <summary>True when the scalar is YAML null (<c>~</c>, <c>null</c>, empty, plain).</summary>
    public static bool IsNull(YamlScalarNode s) =>
        s.Style == ScalarStyle.Plain && s.Tag.IsEmpty && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    /// <summary>The JSON value of a node, with locations by JSON pointer.</summary>
    public static JsonElement ToJson(YamlNode node, Dictionary<string, TextLocation> locations)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            Write(writer, node, "", locations);
        }

        using var doc = JsonDocument.Parse(stream.ToArray());
        return doc.RootElement.Clone();
    }

    private static void Write(Utf8JsonWriter writer, YamlNode node, string pointer, Dictionary<string, TextLocation> locations)
    {
        locations[pointer] = At(node);
        switch (node)
        {
            case YamlMappingNode map:
                writer.WriteStartObject();
                foreach (var (key, value) in map.Children)
                {
                    var name = key is YamlScalarNode k ? k.Value ?? "" : throw new YamlException(key.Start, key.End, "Keys must be plain values.");
                    writer.WritePropertyName(name);
                    Write(writer, value, pointer + "/" + name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal), locations);
                }

                writer.WriteEndObject();
                break;
            case YamlSequenceNode seq:
                writer.WriteStartArray();
                for (var i = 0; i < seq.Children.Count; i++)
                {
                    Write(writer, seq.Children[i], pointer + "/" + i.ToString(CultureInfo.InvariantCulture), locations);
                }

                writer.WriteEndArray();
                break;
            case YamlScalarNode s:
                WriteScalar(writer, s);
                break;
            default:
                throw new YamlException(node.Start, node.End, "Aliases are not supported here.");
        }
    }

    private static void WriteScalar(Utf8JsonWriter writer, YamlScalarNode s)
    {
        var text = s.Value ?? "";
        var tag = s.Tag.IsEmpty ? "" : s.Tag.Value;
        if (tag is "tag:yaml.org,2002:str" || (s.Style != ScalarStyle.Plain && tag.Length == 0))
        {
            writer.WriteStringValue(text);
            return;
        }

        if (IsNull(s))
        {
            writer.WriteNullValue();
            return;
        }

        switch (text)
        {
            case "true" or "True" or "TRUE":
                writer.WriteBooleanValue(true);
                return;
            case "false" or "False" or "FALSE":
                writer.WriteBooleanValue(false);
                return;
        }

        if (IntPattern().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            writer.WriteNumberValue(l);
            return;
        }

        if (text.StartsWith("0x", StringComparison.Ordinal) && long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            writer.WriteNumberValue(hex);
            return;
        }

        if (FloatPattern().IsMatch(text) && decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var dec))
        {
            // Written from the text so that no digit is lost on the way to JSON.
            writer.WriteRawValue(text.TrimStart('+').StartsWith('.') ? "0" + text.TrimStart('+') : NormalizeNumber(text, dec));
            return;
        }

        writer.WriteStringValue(text);
    }

    private static string NormalizeNumber(string text, decimal value)
    {
        var t = text.TrimStart('+');
        if (t.StartsWith("-.", StringComparison.Ordinal))
        {
            return "-0" + t[1..];
        }

        // "1." is valid YAML but not JSON.
        return t.EndsWith('.') ? value.ToString(CultureInfo.InvariantCulture) : t.Replace(".e", ".0e", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A short human form of a scalar for messages: strings quoted, others as written.</summary>
    public static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s when IsNull(s) => "null",
        YamlScalarNode s => s.Style == ScalarStyle.Plain ? s.Value ?? "" : JsonSerializer.Serialize(s.Value),
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        _ => "an alias",
    };

    /// <summary>A short human form of a JSON value for messages.</summary>
    public static string Describe(JsonElement e)
    {
        var raw = e.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "a list",
            _ => e.GetRawText(),
        };
        return raw.Length > 60 ? raw[..57] + "..." : raw;
    }

    /// <summary>The closest of <paramref name="candidates"/> to <paramref name="word"/> within a small edit distance, or null.</summary>
    public static string? DidYouMean(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            var dist = Distance(word.ToLowerInvariant(), c.ToLowerInvariant());
            if (dist < bestDistance)
            {
                bestDistance = dist;
                best = c;
            }
        }

        return bestDistance <= Math.Max(1, word.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        // Optimal string alignment distance: a swap of two neighbours counts as one edit.
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    /// <summary>Joins names for a message: <c>a, b, c</c>.</summary>
    public static string List(IEnumerable<string> names)
    {
        var sb = new StringBuilder();
        foreach (var n in names)
        {
            if (sb.Length > 0)
            {
                sb.Append(", ");
            }

            sb.Append(n);
        }

        return sb.Length == 0 ? "(none)" : sb.ToString();
    }
}
