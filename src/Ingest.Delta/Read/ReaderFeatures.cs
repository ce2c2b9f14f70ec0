using Ingest.Delta.Log;

namespace Ingest.Delta.Read;

/// <summary>What a table needs of its readers (PROTOCOL.md "Protocol Evolution", "Table Features") against what this library implements.</summary>
internal static class ReaderFeatures
{
    /// <summary>Reader features this library applies when scanning.</summary>
    public static readonly IReadOnlySet<string> Supported = new HashSet<string>(StringComparer.Ordinal)
    {
        "deletionVectors",
        "columnMapping",
        "timestampNtz",
        "v2Checkpoint",
        "typeWidening",
        "typeWidening-preview",
        // Only constrains VACUUM; a reader need not do anything.
        "vacuumProtocolCheck",
    };

    /// <summary>The first reader feature of <paramref name="protocol"/> this library lacks, or null when it can read the table.</summary>
    public static string? FirstUnsupported(ProtocolAction protocol)
    {
        // Legacy reader versions: 1 plain, 2 adds column mapping; 3 lists features explicitly.
        if (protocol.MinReaderVersion > 3)
        {
            return $"reader version {protocol.MinReaderVersion}";
        }

        if (protocol.MinReaderVersion == 3)
        {
            foreach (var f in protocol.ReaderFeatures ?? [])
            {
                if (!Supported.Contains(f))
                {
                    return $"reader feature '{f}'";
                }
            }
        }

        return null;
    }

    /// <summary>Throws <see cref="NotSupportedException"/> naming the feature when the table needs one this library lacks.</summary>
    public static void Check(ProtocolAction protocol, string table)
    {
        if (FirstUnsupported(protocol) is { } missing)
        {
            throw new NotSupportedException($"Delta table '{table}' cannot be read: {missing} is not supported by this library (it reads {string.Join(", ", Supported.Order(StringComparer.Ordinal))}).");
        }
    }
}
