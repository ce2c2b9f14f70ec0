using System.Text.Json.Nodes;

namespace Ingest.Engine.Config;

/// <summary>Keeps secrets out of what leaves the host: masks them on the way out and restores them when a client sends the mask back.</summary>
public static class ConnectionSecrets
{
    /// <summary>What a saved secret looks like to a client.</summary>
    public const string Mask = "********";

    /// <summary>A copy of <paramref name="config"/> with every secret that has a value replaced by <see cref="Mask"/>.</summary>
    public static JsonObject Masked(JsonObject config, IReadOnlyList<string> secretPaths)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(secretPaths);
        var copy = (JsonObject)config.DeepClone();
        foreach (var pointer in secretPaths)
        {
            if (JsonPointers.Get(copy, pointer) is { } value && value.GetValueKind() != System.Text.Json.JsonValueKind.Null)
            {
                JsonPointers.Set(copy, pointer, JsonValue.Create(Mask));
            }
        }

        return copy;
    }

    /// <summary>
    /// A copy of <paramref name="incoming"/> where each secret still equal to <see cref="Mask"/> takes the saved value
    /// from <paramref name="saved"/> (a client that did not change a secret sends the mask back).
    /// </summary>
    public static JsonObject Restore(JsonObject incoming, JsonObject? saved, IReadOnlyList<string> secretPaths)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        ArgumentNullException.ThrowIfNull(secretPaths);
        var copy = (JsonObject)incoming.DeepClone();
        foreach (var pointer in secretPaths)
        {
            if (JsonPointers.Get(copy, pointer) is JsonValue v && v.TryGetValue<string>(out var s) && s == Mask)
            {
                JsonPointers.Set(copy, pointer, JsonPointers.Get(saved, pointer)?.DeepClone());
            }
        }

        return copy;
    }
}
