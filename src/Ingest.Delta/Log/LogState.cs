using System.Globalization;
using System.Text.Json.Nodes;
using Ingest.Sdk.Types;

namespace Ingest.Delta.Log;

/// <summary>The reconciled table state at one version (PROTOCOL.md "Action Reconciliation").</summary>
internal sealed class LogState
{
    public long Version { get; set; } = -1;

    public ProtocolAction? Protocol { get; set; }

    public MetadataAction? Metadata { get; set; }

    public Dictionary<string, AddFile> Files { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, RemoveAction> Tombstones { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, TxnEntry> Txns { get; } = new(StringComparer.Ordinal);

    /// <summary>The latest commit's <c>commitInfo.inCommitTimestamp</c>, when known (not after a checkpoint load).</summary>
    public long? LastInCommitTimestamp { get; set; }

    /// <summary>
    /// Applies a commit's actions. <paramref name="reconciled"/> marks checkpoint content: its removes are tombstones only
    /// (a checkpoint may hold remove(path, oldDV) beside the live add(path, newDV), in any order across parts).
    /// </summary>
    public void Apply(CommitActions c, long version, bool reconciled = false)
    {
        if (c.Protocol is not null)
        {
            Protocol = c.Protocol;
        }

        if (c.Metadata is not null)
        {
            Metadata = c.Metadata;
        }

        // Like Spark's InMemoryLogReplay, the reconciled state (and so a checkpoint) carries dataChange=false:
        // the flag describes a commit, not a table state. A file's key is (path, deletion vector id): a remove takes out
        // the live file only when its DV matches (a remove without DV, as this library's writer commits, takes out any).
        foreach (var r in c.Removes)
        {
            if (!reconciled && Files.TryGetValue(r.Path, out var live)
                && (r.DeletionVector is null || live.DeletionVector?.UniqueId == r.DeletionVector.UniqueId))
            {
                Files.Remove(r.Path);
            }

            Tombstones[TombstoneKey(r.Path, r.DeletionVector)] = r.DataChange ? r with { DataChange = false } : r;
        }

        foreach (var a in c.Adds)
        {
            Files[a.Path] = a.DataChange ? a with { DataChange = false } : a;
            if (!reconciled)
            {
                Tombstones.Remove(TombstoneKey(a.Path, a.DeletionVector));
            }
        }

        foreach (var t in c.Txns)
        {
            Txns[t.AppId] = t;
        }

        if (!reconciled)
        {
            LastInCommitTimestamp = c.CommitInfo?["inCommitTimestamp"] is JsonValue ict && ict.TryGetValue<long>(out var ms) ? ms : null;
        }

        Version = version;
    }

    /// <summary>
    /// Tombstones are keyed like files, by (path, deletion vector id): replacing a file's DV leaves the old one's tombstone
    /// in place, so VACUUM keeps the old DV file for readers of older versions until the retention passes.
    /// </summary>
    private static string TombstoneKey(string path, DeletionVectorDescriptor? dv) => dv is null ? path : path + "\n" + dv.UniqueId;

    public LogState Clone()
    {
        var s = new LogState { Version = Version, Protocol = Protocol, Metadata = Metadata, LastInCommitTimestamp = LastInCommitTimestamp };
        foreach (var (k, v) in Files)
        {
            s.Files[k] = v;
        }

        foreach (var (k, v) in Tombstones)
        {
            s.Tombstones[k] = v;
        }

        foreach (var (k, v) in Txns)
        {
            s.Txns[k] = v;
        }

        return s;
    }

    public DeltaSnapshot ToSnapshot(string tablePath)
    {
        var meta = Metadata ?? throw new InvalidDataException($"Delta table '{tablePath}' has no metaData action at version {Version}.");
        if (Protocol is null)
        {
            throw new InvalidDataException($"Delta table '{tablePath}' has no protocol action at version {Version}.");
        }

        StreamSchema schema;
        try
        {
            var st = (StructType)DataType.FromDeltaJson(JsonNode.Parse(meta.SchemaString)!);
            schema = new StreamSchema(st.Fields);
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException or InvalidCastException)
        {
            // A type this library lacks usually comes with a reader feature (variantType, ...): name the feature.
            Read.ReaderFeatures.Check(Protocol, tablePath);
            throw new InvalidDataException($"Delta table '{tablePath}' has a schemaString this library cannot read: {ex.Message}", ex);
        }

        long? rows = 0;
        foreach (var f in Files.Values)
        {
            // numRecords counts the file's physical rows; its deletion vector hides cardinality of them.
            var n = NumRecords(f.Stats);
            rows = n is null || rows is null ? null : rows + n - (f.DeletionVector?.Cardinality ?? 0);
        }

        return new DeltaSnapshot
        {
            Version = Version,
            Schema = schema,
            PartitionColumns = meta.PartitionColumns,
            Configuration = meta.Configuration,
            Files = Files.Values.ToList(),
            TxnVersions = Txns.ToDictionary(t => t.Key, t => t.Value.Version, StringComparer.Ordinal),
            RowCount = rows,
            State = this,
        };
    }

    public static long? NumRecords(string? stats)
    {
        if (stats is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(stats)?["numRecords"]?.GetValue<long>();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary><c>delta.deletedFileRetentionDuration</c> (default one week): how long tombstones stay in checkpoints.</summary>
    public TimeSpan TombstoneRetention()
    {
        var text = Metadata?.Configuration.GetValueOrDefault("delta.deletedFileRetentionDuration");
        if (text is not null)
        {
            var parts = text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && parts[0] == "interval" && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            {
                var unit = parts[2].TrimEnd('s').ToLowerInvariant();
                switch (unit)
                {
                    case "week": return TimeSpan.FromDays(7 * n);
                    case "day": return TimeSpan.FromDays(n);
                    case "hour": return TimeSpan.FromHours(n);
                    case "minute": return TimeSpan.FromMinutes(n);
                    case "second": return TimeSpan.FromSeconds(n);
                }
            }
        }

        return TimeSpan.FromDays(7);
    }
}
