using Ingest.Delta.Log;

namespace Ingest.Delta.Operations;

/// <summary>
/// What a table needs of its writers (PROTOCOL.md "Protocol Evolution", "Table Features") against what this library
/// honours. A writer that ignores a feature it does not know corrupts the table for Spark (an unchecked constraint, a
/// missing row id), so every write refuses such a table by the feature's name.
/// </summary>
internal static class WriterFeatures
{
    /// <summary>
    /// Writer features this library honours on every write: appendOnly (removes refused when <c>delta.appendOnly</c>),
    /// timestampNtz, typeWidening (widened types recorded in <c>delta.typeChanges</c>), deletionVectors (read, removed
    /// with their descriptor, and written by merges), vacuumProtocolCheck (VACUUM checks the protocol); and, only while the
    /// table does not use them, invariants, columnMapping (mode none), generatedColumns and identityColumns (no column declares one), changeDataFeed (change data files for merges; whole-file overwrites and deletes
    /// need none); inCommitTimestamp (commitInfo first, with a strictly increasing
    /// <c>inCommitTimestamp</c>).
    /// </summary>
    public static readonly IReadOnlySet<string> Supported = new HashSet<string>(StringComparer.Ordinal)
    {
        "appendOnly", "invariants", "timestampNtz", "typeWidening", "typeWidening-preview", "deletionVectors",
        "vacuumProtocolCheck", "changeDataFeed", "columnMapping", "inCommitTimestamp",
    };

    /// <summary>Features a writer honours by their absence: no column or property of the table uses them (checked above).</summary>
    private static readonly IReadOnlySet<string> HonouredWhileUnused = new HashSet<string>(StringComparer.Ordinal)
    {
        "checkConstraints", "generatedColumns",
    };

    /// <summary>Whether this library can write a table at writer version 7 listing <paramref name="feature"/> (while unused, for some).</summary>
    public static bool CanWriteWith(string feature) => Supported.Contains(feature) || HonouredWhileUnused.Contains(feature);

    /// <summary>Why this library cannot change the table, or null when it can.</summary>
    /// <param name="state">The table.</param>
    /// <param name="removesData">The operation removes or changes rows.</param>
    /// <param name="writesChangeData">The operation writes change data files where the table asks for them (merges), or removes only whole files (the change feed then follows from the remove actions).</param>
    public static string? Refusal(LogState state, bool removesData, bool writesChangeData = false)
    {
        var protocol = state.Protocol;
        var meta = state.Metadata;
        if (protocol is null || meta is null)
        {
            return null;
        }

        if (protocol.MinWriterVersion > 7)
        {
            return $"writer version {protocol.MinWriterVersion} is newer than this library knows (7)";
        }

        var config = meta.Configuration;
        var schema = meta.SchemaString;
        var features = new List<string>();
        if (protocol.MinWriterVersion == 7)
        {
            features.AddRange(protocol.WriterFeatures ?? []);
        }
        else
        {
            // Legacy versions imply their features (PROTOCOL.md "Table Features": writer 2..6).
            if (protocol.MinWriterVersion >= 2)
            {
                features.AddRange(["appendOnly", "invariants"]);
            }

            if (protocol.MinWriterVersion >= 3)
            {
                features.Add("checkConstraints");
            }

            if (protocol.MinWriterVersion >= 4)
            {
                features.AddRange(["changeDataFeed", "generatedColumns"]);
            }

            if (protocol.MinWriterVersion >= 5)
            {
                features.Add("columnMapping");
            }

            if (protocol.MinWriterVersion >= 6)
            {
                features.Add("identityColumns");
            }
        }

        foreach (var f in features)
        {
            var used = f switch
            {
                "invariants" => schema.Contains("\"delta.invariants\"", StringComparison.Ordinal),
                "checkConstraints" => config.Keys.Any(k => k.StartsWith("delta.constraints.", StringComparison.OrdinalIgnoreCase)),
                "generatedColumns" => schema.Contains("\"delta.generationExpression\"", StringComparison.Ordinal),
                "identityColumns" => schema.Contains("\"delta.identity.", StringComparison.Ordinal),
                "columnMapping" => config.TryGetValue("delta.columnMapping.mode", out var mode) && !string.Equals(mode, "none", StringComparison.OrdinalIgnoreCase),
                "changeDataFeed" => removesData && !writesChangeData && IsTrue(config, "delta.enableChangeDataFeed"),
                _ => !Supported.Contains(f),
            };

            // Legacy versions imply features a table may not use; an explicit list may name them too (a table upgraded to
            // writer 7 lists every feature its legacy version implied, PROTOCOL.md "Table Features for New and Existing
            // Tables"): supported is not active, so those are refused only while in use.
            var refuse = protocol.MinWriterVersion == 7 ? used || !(Supported.Contains(f) || HonouredWhileUnused.Contains(f)) : used;
            if (refuse)
            {
                return f switch
                {
                    "invariants" => "writer feature 'invariants' is in use (a column declares delta.invariants, which this library does not evaluate)",
                    "changeDataFeed" => "writer feature 'changeDataFeed' is enabled (delta.enableChangeDataFeed) and this operation would need change data files, which this library writes for merges, overwrites and deletes of whole tables only",
                    "columnMapping" => "writer feature 'columnMapping' is in use (delta.columnMapping.mode), and this library writes only unmapped columns",
                    _ => $"writer feature '{f}' is not supported by this library",
                };
            }
        }

        if (removesData && IsTrue(config, "delta.appendOnly"))
        {
            return "the table is append-only (delta.appendOnly=true), so no data may be removed or changed";
        }

        return null;
    }

    /// <summary>Throws <see cref="NotSupportedException"/> when the table needs a writer feature this library lacks.</summary>
    public static void Check(LogState state, string table, string operation, bool removesData, bool writesChangeData = false)
    {
        if (Refusal(state, removesData, writesChangeData) is { } why)
        {
            throw new NotSupportedException($"Cannot {operation.ToLowerInvariant()} Delta table '{table}': {why}. Supported writer features: {string.Join(", ", Supported.Order(StringComparer.Ordinal))}.");
        }
    }

    public static bool IsTrue(IReadOnlyDictionary<string, string> config, string key) =>
        config.TryGetValue(key, out var v) && string.Equals(v.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}
