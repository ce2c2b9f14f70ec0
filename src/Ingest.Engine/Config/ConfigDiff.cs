using System.Text.Json.Nodes;

namespace Ingest.Engine.Config;

/// <summary>One changed setting of a connection, as the audit log keeps it.</summary>
/// <param name="Field">The field (<c>config.port</c>, <c>config.tls.clientKey</c>, <c>streams</c>, <c>connector</c>).</param>
/// <param name="Kind">added, removed or changed.</param>
/// <param name="From">The old value as JSON text; null when it was absent or is a secret.</param>
/// <param name="To">The new value as JSON text; null when it is absent or a secret.</param>
/// <param name="Secret">Whether the field is a secret: the entry says that it changed, never its value.</param>
public sealed record ConfigChange(string Field, string Kind, string? From, string? To, bool Secret);

/// <summary>What changed between two configurations, with secrets elided.</summary>
public static class ConfigDiff
{
    /// <summary>
    /// The changed leaves (values and arrays) of <paramref name="before"/> and <paramref name="after"/> (either may be null),
    /// named <c>config.a.b</c>; the values of <paramref name="secretPaths"/> never appear.
    /// </summary>
    public static IReadOnlyList<ConfigChange> Compare(JsonObject? before, JsonObject? after, IReadOnlyList<string> secretPaths)
    {
        ArgumentNullException.ThrowIfNull(secretPaths);
        var secrets = secretPaths.ToHashSet(StringComparer.Ordinal);
        var changes = new List<ConfigChange>();
        Walk(before, after, "", secrets, changes);
        return changes;
    }

    /// <summary>A change of a whole non-secret value (e.g. <c>streams</c>), or null when it did not change.</summary>
    public static ConfigChange? Value(string field, JsonNode? before, JsonNode? after)
    {
        if (JsonNode.DeepEquals(before, after))
        {
            return null;
        }

        return new ConfigChange(field, before is null ? "added" : after is null ? "removed" : "changed", before?.ToJsonString(), after?.ToJsonString(), false);
    }

    private static void Walk(JsonNode? before, JsonNode? after, string pointer, HashSet<string> secrets, List<ConfigChange> changes)
    {
        var secret = secrets.Contains(pointer);
        if (!secret && before is JsonObject bo && after is JsonObject ao)
        {
            foreach (var key in bo.Select(p => p.Key).Union(ao.Select(p => p.Key), StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                Walk(bo[key], ao[key], pointer + "/" + key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal), secrets, changes);
            }

            return;
        }

        if (!secret && (before is JsonObject || after is JsonObject))
        {
            // An object appeared or went: each of its leaves is a change (secrets inside stay elided).
            Walk(before as JsonObject ?? [], after as JsonObject ?? [], pointer, secrets, changes);
            if (before is not JsonObject && before is not null || after is not JsonObject && after is not null)
            {
                changes.Add(new ConfigChange(Field(pointer), "changed", before is JsonObject ? null : before?.ToJsonString(), after is JsonObject ? null : after?.ToJsonString(), false));
            }

            return;
        }

        if (JsonNode.DeepEquals(before, after))
        {
            return;
        }

        var kind = before is null ? "added" : after is null ? "removed" : "changed";
        changes.Add(secret
            ? new ConfigChange(Field(pointer), kind, null, null, true)
            : new ConfigChange(Field(pointer), kind, before?.ToJsonString(), after?.ToJsonString(), false));
    }

    private static string Field(string pointer) =>
        "config" + string.Concat(pointer.Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal))
            .Select(s => "." + s));
}
