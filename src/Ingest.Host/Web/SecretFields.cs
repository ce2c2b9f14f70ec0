using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Engine.Config;

namespace Ingest.Host.Web;

/// <summary>
/// Where a configuration's secrets are, and what the host does with them on the way out (masked), back in (the mask keeps
/// the saved value) and into the store and onto the bus (encrypted). The connector's secret paths are JSON pointers whose
/// <c>*</c> segment stands for every item of an array (<see cref="Ingest.Sdk.Connectors.ConnectorSpec.SecretPaths"/>);
/// here they become the concrete pointers of one configuration (<c>/replicas/0/password</c>).
/// </summary>
internal static class SecretFields
{
    /// <summary>The concrete pointers of the secrets <paramref name="config"/> has a value for.</summary>
    public static IReadOnlyList<string> In(JsonNode? config, IReadOnlyList<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var found = new List<string>();
        foreach (var pattern in patterns)
        {
            Expand(config, Segments(pattern), 0, "", found, includeMissing: false);
        }

        return found.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The concrete pointers of the secrets whose parent exists in <paramref name="config"/>, set or not.</summary>
    public static IReadOnlyList<string> Slots(JsonNode? config, IReadOnlyList<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var found = new List<string>();
        foreach (var pattern in patterns)
        {
            Expand(config, Segments(pattern), 0, "", found, includeMissing: true);
        }

        return found.Distinct(StringComparer.Ordinal).ToList();
    }

    private static void Expand(JsonNode? node, List<string> segs, int i, string prefix, List<string> found, bool includeMissing)
    {
        if (i == segs.Count)
        {
            if (node is not null && node.GetValueKind() != JsonValueKind.Null)
            {
                found.Add(prefix);
            }

            return;
        }

        if (segs[i] == "*")
        {
            if (node is JsonArray a)
            {
                for (var k = 0; k < a.Count; k++)
                {
                    Expand(a[k], segs, i + 1, prefix + "/" + k.ToString(System.Globalization.CultureInfo.InvariantCulture), found, includeMissing);
                }
            }

            return;
        }

        if (node is JsonObject o)
        {
            var child = o[segs[i]];
            var path = prefix + "/" + Escape(segs[i]);
            if (child is null && includeMissing && i == segs.Count - 1)
            {
                found.Add(path);
                return;
            }

            Expand(child, segs, i + 1, path, found, includeMissing);
        }
    }

    /// <summary>The node at a concrete pointer (through objects and array indices), or null.</summary>
    public static JsonNode? Get(JsonNode? root, string pointer)
    {
        var node = root;
        foreach (var seg in Segments(pointer))
        {
            node = node switch
            {
                JsonObject o => o[seg],
                JsonArray a when int.TryParse(seg, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k) && k < a.Count => a[k],
                _ => null,
            };
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    /// <summary>Sets (or, with a null value, removes) the object property or array item at a concrete pointer; false when its parent is missing.</summary>
    public static bool Set(JsonNode root, string pointer, JsonNode? value)
    {
        var segs = Segments(pointer);
        if (segs.Count == 0)
        {
            return false;
        }

        switch (Get(root, Join(segs.Take(segs.Count - 1))))
        {
            case JsonObject parent:
                if (value is null)
                {
                    parent.Remove(segs[^1]);
                }
                else
                {
                    parent[segs[^1]] = value;
                }

                return true;
            case JsonArray array when int.TryParse(segs[^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k) && k < array.Count:
                if (value is null)
                {
                    array.RemoveAt(k);
                }
                else
                {
                    array[k] = value;
                }

                return true;
            default:
                return false;
        }
    }

    /// <summary>A copy with every secret that has a value replaced by the mask.</summary>
    public static JsonObject Masked(JsonObject config, IReadOnlyList<string> patterns)
    {
        var copy = (JsonObject)config.DeepClone();
        foreach (var pointer in In(copy, patterns))
        {
            Set(copy, pointer, JsonValue.Create(ConnectionSecrets.Mask));
        }

        return copy;
    }

    /// <summary>A copy without the secrets, and the pointers of those it left out.</summary>
    public static (JsonObject Config, IReadOnlyList<string> Omitted) Without(JsonObject config, IReadOnlyList<string> patterns)
    {
        var copy = (JsonObject)config.DeepClone();
        var omitted = In(copy, patterns);
        foreach (var pointer in omitted.Reverse())
        {
            Set(copy, pointer, null);
        }

        return (copy, omitted);
    }

    /// <summary>
    /// A copy of <paramref name="incoming"/> where each secret still equal to the mask takes its saved value. Inside an
    /// array the saved item is the one at the same index while the array kept its length, else the saved item whose
    /// other fields are equal (an item removed before it moved it); a mask with no such item is dropped, so a required
    /// secret is asked for again rather than saved as the mask.
    /// </summary>
    public static JsonObject Restore(JsonObject incoming, JsonObject? saved, IReadOnlyList<string> patterns)
    {
        var copy = (JsonObject)incoming.DeepClone();
        var restored = new List<(string Pointer, JsonNode? Value)>();
        foreach (var pointer in In(copy, patterns))
        {
            if (Get(copy, pointer) is JsonValue v && v.TryGetValue<string>(out var s) && s == ConnectionSecrets.Mask)
            {
                restored.Add((pointer, SavedFor(incoming, saved, pointer, patterns)?.DeepClone()));
            }
        }

        // Backwards, so that dropping an array item leaves the pointers before it valid.
        foreach (var (pointer, value) in Enumerable.Reverse(restored))
        {
            Set(copy, pointer, value);
        }

        return copy;
    }

    private static JsonNode? SavedFor(JsonObject incoming, JsonObject? saved, string pointer, IReadOnlyList<string> patterns)
    {
        if (saved is null)
        {
            return null;
        }

        var segs = Segments(pointer);
        var arrayAt = LastIndexSegment(incoming, segs);
        if (arrayAt < 0)
        {
            return Get(saved, pointer);
        }

        var arrayPointer = Join(segs.Take(arrayAt));
        return SavedItem(incoming, saved, arrayPointer, int.Parse(segs[arrayAt], System.Globalization.CultureInfo.InvariantCulture), Names(patterns)) is { } item
            ? Get(item, Join(segs.Skip(arrayAt + 1)))
            : null;
    }

    // The saved item the incoming item at arrayPointer/index stands for, or null when none does.
    private static JsonNode? SavedItem(JsonObject incoming, JsonObject saved, string arrayPointer, int index, HashSet<string> secretNames)
    {
        if (Get(incoming, arrayPointer) is not JsonArray now || index >= now.Count)
        {
            return null;
        }

        // The array may itself sit in an item of an outer array that moved: resolve that item first.
        var segs = Segments(arrayPointer);
        var outerAt = LastIndexSegment(incoming, segs);
        var before = outerAt < 0
            ? Get(saved, arrayPointer) as JsonArray
            : Get(SavedItem(incoming, saved, Join(segs.Take(outerAt)), int.Parse(segs[outerAt], System.Globalization.CultureInfo.InvariantCulture), secretNames), Join(segs.Skip(outerAt + 1))) as JsonArray;
        if (before is null)
        {
            return null;
        }

        if (before.Count == now.Count)
        {
            return before[index];
        }

        var plain = Plain(now[index], secretNames);
        var match = before.Where(b => JsonNode.DeepEquals(Plain(b, secretNames), plain)).ToList();
        return match.Count == 1 ? match[0] : null;
    }

    // The property names that hold secrets (for /a/*/keys/* that is "keys").
    private static HashSet<string> Names(IReadOnlyList<string> patterns) =>
        patterns.Select(p => Segments(p)).Select(segs => segs.LastOrDefault(x => x != "*")).OfType<string>().ToHashSet(StringComparer.Ordinal);

    // The position of the last segment that indexes an array in root (-1 when none does).
    private static int LastIndexSegment(JsonNode root, List<string> segs)
    {
        var last = -1;
        JsonNode? node = root;
        for (var i = 0; i < segs.Count && node is not null; i++)
        {
            if (node is JsonArray a && int.TryParse(segs[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k) && k < a.Count)
            {
                last = i;
                node = a[k];
            }
            else
            {
                node = node is JsonObject o ? o[segs[i]] : null;
            }
        }

        return last;
    }

    private static string Join(IEnumerable<string> segs) => string.Concat(segs.Select(s => "/" + Escape(s)));

    // An item without its secrets: what identifies it when the array changed around it.
    private static JsonNode? Plain(JsonNode? item, HashSet<string> secretNames) => item switch
    {
        JsonObject o => new JsonObject(o.Where(p => !secretNames.Contains(p.Key)).Select(p => KeyValuePair.Create(p.Key, Plain(p.Value, secretNames)))),
        JsonArray a => new JsonArray(a.Select(x => Plain(x, secretNames)).ToArray()),
        _ => item?.DeepClone(),
    };

    /// <summary>A copy with each secret that has a text value encrypted (what the store keeps and the bus carries).</summary>
    public static JsonObject Protected(JsonObject config, IReadOnlyList<string> patterns, ISecretProtector protector)
    {
        var copy = (JsonObject)config.DeepClone();
        foreach (var pointer in In(copy, patterns))
        {
            if (Get(copy, pointer) is JsonValue v && v.TryGetValue<string>(out var secret) && !secret.StartsWith(ConnectionSecrets.EncryptedPrefix, StringComparison.Ordinal))
            {
                Set(copy, pointer, JsonValue.Create(ConnectionSecrets.EncryptedPrefix + protector.Protect(secret)));
            }
        }

        return copy;
    }

    /// <summary>
    /// Copies of two configurations for the audit log's diff: secrets inside arrays (which the diff shows whole) become the
    /// mask, or <c>******** (changed)</c> on the new side when they changed, so neither value is ever written.
    /// </summary>
    public static (JsonObject? Before, JsonObject? After) ForAudit(JsonObject? before, JsonObject? after, IReadOnlyList<string> patterns)
    {
        var b = (JsonObject?)before?.DeepClone();
        var a = (JsonObject?)after?.DeepClone();
        var inArrays = (b is null ? [] : In(b, patterns)).Union(a is null ? [] : In(a, patterns), StringComparer.Ordinal)
            .Where(p => LastIndexSegment((JsonNode?)b ?? a!, Segments(p)) >= 0 || LastIndexSegment((JsonNode?)a ?? b!, Segments(p)) >= 0)
            .ToList();
        foreach (var pointer in inArrays)
        {
            var was = b is null ? null : Get(b, pointer);
            var now = a is null ? null : Get(a, pointer);
            var changed = !JsonNode.DeepEquals(was, now);
            if (b is not null && was is not null)
            {
                Set(b, pointer, JsonValue.Create(ConnectionSecrets.Mask));
            }

            if (a is not null && now is not null)
            {
                Set(a, pointer, JsonValue.Create(changed ? ConnectionSecrets.Mask + " (changed)" : ConnectionSecrets.Mask));
            }
        }

        return (b, a);
    }

    /// <summary>The form's field name of a concrete pointer: <c>/replicas/0/password</c> is <c>config.replicas[0].password</c>.</summary>
    public static string Field(string pointer) =>
        "config" + string.Concat(Segments(pointer).Select(s => s.Length > 0 && s.All(char.IsAsciiDigit) ? $"[{s}]" : "." + s));

    /// <summary>The pointer of a form field name: <c>config.replicas[0].password</c> is <c>/replicas/0/password</c>.</summary>
    public static string Pointer(string field)
    {
        var f = field.StartsWith("config", StringComparison.Ordinal) ? field["config".Length..] : field;
        var sb = new System.Text.StringBuilder();
        foreach (var part in f.Replace("[", ".", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal).Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            sb.Append('/').Append(Escape(part));
        }

        return sb.ToString();
    }

    private static List<string> Segments(string pointer) =>
        pointer.Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))
            .ToList();

    private static string Escape(string segment) => segment.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}
