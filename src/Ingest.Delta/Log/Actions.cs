using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ingest.Delta.Log;

/// <summary>The <c>protocol</c> action (PROTOCOL.md "Protocol Evolution").</summary>
internal sealed record ProtocolAction(int MinReaderVersion, int MinWriterVersion, IReadOnlyList<string>? ReaderFeatures = null, IReadOnlyList<string>? WriterFeatures = null);

/// <summary>The <c>metaData</c> action (PROTOCOL.md "Change Metadata").</summary>
internal sealed record MetadataAction(
    string Id,
    string? Name,
    string? Description,
    string Provider,
    IReadOnlyDictionary<string, string> FormatOptions,
    string SchemaString,
    IReadOnlyList<string> PartitionColumns,
    IReadOnlyDictionary<string, string> Configuration,
    long? CreatedTime);

/// <summary>The <c>remove</c> action (PROTOCOL.md "Add File and Remove File").</summary>
internal sealed record RemoveAction(string Path, long? DeletionTimestamp, bool DataChange, bool ExtendedFileMetadata, IReadOnlyDictionary<string, string?>? PartitionValues, long? Size)
{
    /// <summary>The deletion vector of the file removed; with the path it is the key of the file (PROTOCOL.md "Reconciliation").</summary>
    public DeletionVectorDescriptor? DeletionVector { get; init; }
}

/// <summary>
/// A <c>deletionVector</c> descriptor (PROTOCOL.md "Deletion Vector Descriptor Schema"): storage type <c>u</c> (relative
/// path: optional prefix + z85-encoded UUID), <c>i</c> (inline z85 data) or <c>p</c> (absolute URI).
/// </summary>
internal sealed record DeletionVectorDescriptor(string StorageType, string PathOrInlineDv, int? Offset, int SizeInBytes, long Cardinality)
{
    /// <summary>The DV's identity within a file key: storage type + path or inline data (+ <c>@offset</c>).</summary>
    public string UniqueId => Offset is { } o ? $"{StorageType}{PathOrInlineDv}@{o.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : StorageType + PathOrInlineDv;

    public static DeletionVectorDescriptor Parse(JsonObject o) => new(
        o["storageType"]?.GetValue<string>() ?? throw new FormatException("deletionVector.storageType is missing."),
        o["pathOrInlineDv"]?.GetValue<string>() ?? throw new FormatException("deletionVector.pathOrInlineDv is missing."),
        o["offset"]?.GetValue<int>(),
        o["sizeInBytes"]?.GetValue<int>() ?? throw new FormatException("deletionVector.sizeInBytes is missing."),
        o["cardinality"]?.GetValue<long>() ?? throw new FormatException("deletionVector.cardinality is missing."));
}

/// <summary>A <c>sidecar</c> action of a v2 checkpoint (PROTOCOL.md "Sidecar File Information"): a file under <c>_delta_log/_sidecars/</c>.</summary>
internal sealed record SidecarAction(string Path, long SizeInBytes);

/// <summary>The <c>txn</c> action (PROTOCOL.md "Transaction Identifiers").</summary>
internal sealed record TxnEntry(string AppId, long Version, long? LastUpdated);

/// <summary>The actions of one commit file, as read.</summary>
internal sealed class CommitActions
{
    public JsonObject? CommitInfo { get; set; }
    public ProtocolAction? Protocol { get; set; }
    public MetadataAction? Metadata { get; set; }
    public List<AddFile> Adds { get; } = [];
    public List<RemoveAction> Removes { get; } = [];
    public List<TxnEntry> Txns { get; } = [];
    public List<SidecarAction> Sidecars { get; } = [];
    public bool HasCheckpointMetadata { get; set; }
}

/// <summary>Reads and writes the newline-delimited JSON actions of a commit file.</summary>
internal static class ActionJson
{
    public static CommitActions Parse(ReadOnlySpan<byte> content, string fileName)
    {
        var result = new CommitActions();
        var text = Encoding.UTF8.GetString(content);
        var lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            JsonObject obj;
            try
            {
                obj = JsonNode.Parse(line) as JsonObject ?? throw new FormatException("not a JSON object");
            }
            catch (Exception ex) when (ex is JsonException or FormatException)
            {
                throw new InvalidDataException($"Delta log file '{fileName}' line {lineNo} is not a valid action: {ex.Message}", ex);
            }

            try
            {
                ParseAction(obj, result);
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or KeyNotFoundException)
            {
                throw new InvalidDataException($"Delta log file '{fileName}' line {lineNo}: {ex.Message}", ex);
            }
        }

        return result;
    }

    private static void ParseAction(JsonObject obj, CommitActions result)
    {
        foreach (var (name, node) in obj)
        {
            if (node is not JsonObject a)
            {
                continue;
            }

            switch (name)
            {
                case "commitInfo":
                    result.CommitInfo = a;
                    break;
                case "protocol":
                    result.Protocol = new ProtocolAction(
                        Int(a, "minReaderVersion"),
                        Int(a, "minWriterVersion"),
                        a["readerFeatures"] is JsonArray rf ? rf.Select(x => x!.GetValue<string>()).ToList() : null,
                        a["writerFeatures"] is JsonArray wf ? wf.Select(x => x!.GetValue<string>()).ToList() : null);
                    break;
                case "metaData":
                    result.Metadata = new MetadataAction(
                        Str(a, "id"),
                        a["name"]?.GetValue<string>(),
                        a["description"]?.GetValue<string>(),
                        a["format"]?["provider"]?.GetValue<string>() ?? "parquet",
                        StringMap(a["format"]?["options"] as JsonObject),
                        Str(a, "schemaString"),
                        (a["partitionColumns"] as JsonArray)?.Select(x => x!.GetValue<string>()).ToList() ?? [],
                        StringMap(a["configuration"] as JsonObject),
                        a["createdTime"]?.GetValue<long>());
                    break;
                case "add":
                    var add = new AddFile(
                        Str(a, "path"),
                        NullableStringMap(a["partitionValues"] as JsonObject),
                        a["size"]?.GetValue<long>() ?? 0,
                        a["modificationTime"]?.GetValue<long>() ?? 0,
                        a["dataChange"]?.GetValue<bool>() ?? true,
                        a["stats"]?.GetValue<string>())
                    {
                        DeletionVector = a["deletionVector"] is JsonObject dv ? DeletionVectorDescriptor.Parse(dv) : null,
                    };
                    result.Adds.Add(add);
                    break;
                case "remove":
                    result.Removes.Add(new RemoveAction(
                        Str(a, "path"),
                        a["deletionTimestamp"]?.GetValue<long>(),
                        a["dataChange"]?.GetValue<bool>() ?? true,
                        a["extendedFileMetadata"]?.GetValue<bool>() ?? false,
                        a["partitionValues"] is JsonObject pv ? NullableStringMap(pv) : null,
                        a["size"]?.GetValue<long>())
                    {
                        DeletionVector = a["deletionVector"] is JsonObject rdv ? DeletionVectorDescriptor.Parse(rdv) : null,
                    });
                    break;
                case "txn":
                    result.Txns.Add(new TxnEntry(Str(a, "appId"), a["version"]!.GetValue<long>(), a["lastUpdated"]?.GetValue<long>()));
                    break;
                case "sidecar":
                    result.Sidecars.Add(new SidecarAction(Str(a, "path"), a["sizeInBytes"]?.GetValue<long>() ?? 0));
                    break;
                case "checkpointMetadata":
                    result.HasCheckpointMetadata = true;
                    break;
                default:
                    // cdc (change data files are not table data), domainMetadata: not needed to build a snapshot.
                    break;
            }
        }
    }

    private static int Int(JsonObject a, string name) => a[name]?.GetValue<int>() ?? throw new FormatException($"'{name}' is missing.");

    private static string Str(JsonObject a, string name) => a[name]?.GetValue<string>() ?? throw new FormatException($"'{name}' is missing.");

    private static Dictionary<string, string> StringMap(JsonObject? obj)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (obj is not null)
        {
            foreach (var (k, v) in obj)
            {
                d[k] = v?.GetValue<string>() ?? "";
            }
        }

        return d;
    }

    private static Dictionary<string, string?> NullableStringMap(JsonObject? obj)
    {
        var d = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (obj is not null)
        {
            foreach (var (k, v) in obj)
            {
                d[k] = v?.GetValue<string>();
            }
        }

        return d;
    }

    public static void WriteProtocol(Utf8JsonWriter w, ProtocolAction p)
    {
        w.WriteStartObject();
        w.WriteStartObject("protocol");
        w.WriteNumber("minReaderVersion", p.MinReaderVersion);
        w.WriteNumber("minWriterVersion", p.MinWriterVersion);
        if (p.ReaderFeatures is not null)
        {
            WriteStringArray(w, "readerFeatures", p.ReaderFeatures);
        }

        if (p.WriterFeatures is not null)
        {
            WriteStringArray(w, "writerFeatures", p.WriterFeatures);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void WriteMetadata(Utf8JsonWriter w, MetadataAction m)
    {
        w.WriteStartObject();
        w.WriteStartObject("metaData");
        w.WriteString("id", m.Id);
        if (m.Name is not null)
        {
            w.WriteString("name", m.Name);
        }

        if (m.Description is not null)
        {
            w.WriteString("description", m.Description);
        }

        w.WriteStartObject("format");
        w.WriteString("provider", m.Provider);
        w.WriteStartObject("options");
        foreach (var (k, v) in m.FormatOptions)
        {
            w.WriteString(k, v);
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteString("schemaString", m.SchemaString);
        WriteStringArray(w, "partitionColumns", m.PartitionColumns);
        w.WriteStartObject("configuration");
        foreach (var (k, v) in m.Configuration)
        {
            w.WriteString(k, v);
        }

        w.WriteEndObject();
        if (m.CreatedTime is { } ct)
        {
            w.WriteNumber("createdTime", ct);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void WriteAdd(Utf8JsonWriter w, AddFile a)
    {
        w.WriteStartObject();
        w.WriteStartObject("add");
        w.WriteString("path", a.Path);
        WritePartitionValues(w, a.PartitionValues);
        w.WriteNumber("size", a.Size);
        w.WriteNumber("modificationTime", a.ModificationTime);
        w.WriteBoolean("dataChange", a.DataChange);
        if (a.Stats is not null)
        {
            w.WriteString("stats", a.Stats);
        }

        if (a.DeletionVector is not null)
        {
            WriteDeletionVector(w, a.DeletionVector);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A <c>cdc</c> action (PROTOCOL.md "Add CDC File"): path, partitionValues, size, dataChange false.</summary>
    public static void WriteCdc(Utf8JsonWriter w, AddFile c)
    {
        w.WriteStartObject();
        w.WriteStartObject("cdc");
        w.WriteString("path", c.Path);
        WritePartitionValues(w, c.PartitionValues);
        w.WriteNumber("size", c.Size);
        w.WriteBoolean("dataChange", false);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteDeletionVector(Utf8JsonWriter w, DeletionVectorDescriptor dv)
    {
        w.WriteStartObject("deletionVector");
        w.WriteString("storageType", dv.StorageType);
        w.WriteString("pathOrInlineDv", dv.PathOrInlineDv);
        if (dv.Offset is { } offset)
        {
            w.WriteNumber("offset", offset);
        }

        w.WriteNumber("sizeInBytes", dv.SizeInBytes);
        w.WriteNumber("cardinality", dv.Cardinality);
        w.WriteEndObject();
    }

    public static void WriteRemove(Utf8JsonWriter w, RemoveAction r)
    {
        w.WriteStartObject();
        w.WriteStartObject("remove");
        w.WriteString("path", r.Path);
        if (r.DeletionTimestamp is { } ts)
        {
            w.WriteNumber("deletionTimestamp", ts);
        }

        w.WriteBoolean("dataChange", r.DataChange);
        w.WriteBoolean("extendedFileMetadata", r.ExtendedFileMetadata);
        if (r.PartitionValues is not null)
        {
            WritePartitionValues(w, r.PartitionValues);
        }

        if (r.Size is { } size)
        {
            w.WriteNumber("size", size);
        }

        if (r.DeletionVector is not null)
        {
            WriteDeletionVector(w, r.DeletionVector);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void WriteTxn(Utf8JsonWriter w, TxnEntry t)
    {
        w.WriteStartObject();
        w.WriteStartObject("txn");
        w.WriteString("appId", t.AppId);
        w.WriteNumber("version", t.Version);
        if (t.LastUpdated is { } lu)
        {
            w.WriteNumber("lastUpdated", lu);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WritePartitionValues(Utf8JsonWriter w, IReadOnlyDictionary<string, string?> values)
    {
        w.WriteStartObject("partitionValues");
        foreach (var (k, v) in values)
        {
            if (v is null)
            {
                w.WriteNull(k);
            }
            else
            {
                w.WriteString(k, v);
            }
        }

        w.WriteEndObject();
    }

    private static void WriteStringArray(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }

    /// <summary>Writer options: Spark's log is plain UTF-8 (no \u escaping of non-ASCII or HTML characters).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
