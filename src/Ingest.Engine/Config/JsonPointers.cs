using System.Text.Json.Nodes;

namespace Ingest.Engine.Config;

/// <summary>Reads and writes object properties addressed by JSON pointers (<c>/auth/apiKey</c>, RFC 6901).</summary>
public static class JsonPointers
{
    /// <summary>The node at <paramref name="pointer"/>, or null.</summary>
    public static JsonNode? Get(JsonNode? root, string pointer)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        var node = root;
        foreach (var seg in Segments(pointer))
        {
            node = node is JsonObject o ? o[seg] : null;
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    /// <summary>Sets the property at <paramref name="pointer"/>; parents must exist. False when they do not.</summary>
    public static bool Set(JsonObject root, string pointer, JsonNode? value)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        var segs = Segments(pointer);
        if (segs.Count == 0)
        {
            return false;
        }

        JsonNode? parent = root;
        foreach (var seg in segs.Take(segs.Count - 1))
        {
            parent = parent is JsonObject o ? o[seg] : null;
        }

        if (parent is not JsonObject p)
        {
            return false;
        }

        p[segs[^1]] = value;
        return true;
    }

    private static List<string> Segments(string pointer) =>
        pointer.Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))
            .ToList();
}
