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

    /// <summary>What marks an encrypted secret value (the rest is the protector's output).</summary>
    public const string EncryptedPrefix = "enc:v1:";

    /// <summary>A copy of <paramref name="config"/> with each secret that has a text value encrypted (for the store and the bus).</summary>
    public static JsonObject Protected(JsonObject config, IReadOnlyList<string> secretPaths, ISecretProtector protector)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(secretPaths);
        ArgumentNullException.ThrowIfNull(protector);
        var copy = (JsonObject)config.DeepClone();
        foreach (var pointer in secretPaths)
        {
            if (JsonPointers.Get(copy, pointer) is JsonValue v && v.TryGetValue<string>(out var secret) && !secret.StartsWith(EncryptedPrefix, StringComparison.Ordinal))
            {
                JsonPointers.Set(copy, pointer, JsonValue.Create(EncryptedPrefix + protector.Protect(secret)));
            }
        }

        return copy;
    }

    /// <summary>
    /// A copy of <paramref name="config"/> with every encrypted value decrypted. It walks the whole object: which values
    /// were secret is recorded by the prefix, so a schema change cannot leave one encrypted.
    /// </summary>
    public static JsonObject Unprotected(JsonObject config, ISecretProtector protector)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(protector);
        var copy = (JsonObject)config.DeepClone();
        Decrypt(copy, protector);
        return copy;
    }

    private static void Decrypt(JsonNode node, ISecretProtector protector)
    {
        if (node is JsonObject o)
        {
            foreach (var (key, child) in o.ToList())
            {
                if (child is JsonValue v && v.TryGetValue<string>(out var s) && s.StartsWith(EncryptedPrefix, StringComparison.Ordinal))
                {
                    o[key] = JsonValue.Create(protector.Unprotect(s[EncryptedPrefix.Length..]));
                }
                else if (child is not null)
                {
                    Decrypt(child, protector);
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (var i = 0; i < a.Count; i++)
            {
                if (a[i] is JsonValue v && v.TryGetValue<string>(out var s) && s.StartsWith(EncryptedPrefix, StringComparison.Ordinal))
                {
                    a[i] = JsonValue.Create(protector.Unprotect(s[EncryptedPrefix.Length..]));
                }
                else if (a[i] is { } child)
                {
                    Decrypt(child, protector);
                }
            }
        }
    }
}
