using System.Text.Json.Nodes;
using Apache.Arrow;

namespace Ingest.Delta.Tests;

/// <summary>A Delta table written by hand (log lines and Parquet files), for protocol features the golden set lacks.</summary>
internal sealed class HandWrittenTable : IDisposable
{
    private readonly TempDir _dir = new();

    public string Path => _dir.Path;

    public string LogPath(string name) => System.IO.Path.Combine(Path, "_delta_log", name);

    public static string CommitName(long version) => version.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".json";

    /// <summary>Writes commit <paramref name="version"/> from action objects (one line each).</summary>
    public void Commit(long version, params JsonObject[] actions)
    {
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "_delta_log"));
        File.WriteAllLines(LogPath(CommitName(version)), actions.Select(a => a.ToJsonString()));
    }

    /// <summary>Writes a Parquet file (relative path) with the Arrow writer; returns its size.</summary>
    public long WriteParquet(string relative, RecordBatch batch)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        using (var writer = new ParquetSharp.Arrow.FileWriter(full, batch.Schema))
        {
            writer.WriteRecordBatch(batch);
            writer.Close();
        }

        return new FileInfo(full).Length;
    }

    public static JsonObject Protocol(int reader, int writer, string[]? readerFeatures = null, string[]? writerFeatures = null)
    {
        var p = new JsonObject { ["minReaderVersion"] = reader, ["minWriterVersion"] = writer };
        if (readerFeatures is not null)
        {
            p["readerFeatures"] = new JsonArray(readerFeatures.Select(f => (JsonNode)f).ToArray());
        }

        if (writerFeatures is not null)
        {
            p["writerFeatures"] = new JsonArray(writerFeatures.Select(f => (JsonNode)f).ToArray());
        }

        return new JsonObject { ["protocol"] = p };
    }

    public static JsonObject Metadata(JsonObject schema, string[] partitionColumns, Dictionary<string, string>? configuration = null) => new()
    {
        ["metaData"] = new JsonObject
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["format"] = new JsonObject { ["provider"] = "parquet", ["options"] = new JsonObject() },
            ["schemaString"] = schema.ToJsonString(),
            ["partitionColumns"] = new JsonArray(partitionColumns.Select(c => (JsonNode)c).ToArray()),
            ["configuration"] = new JsonObject((configuration ?? []).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["createdTime"] = 1_700_000_000_000,
        },
    };

    public static JsonObject Schema(params JsonObject[] fields) => new() { ["type"] = "struct", ["fields"] = new JsonArray(fields) };

    /// <summary>A schema field; with <paramref name="id"/>, column mapping metadata (id and physical name).</summary>
    public static JsonObject Field(string name, JsonNode type, int? id = null, string? physicalName = null)
    {
        var meta = new JsonObject();
        if (id is { } i)
        {
            meta["delta.columnMapping.id"] = i;
            meta["delta.columnMapping.physicalName"] = physicalName ?? $"col-{i}";
        }

        return new JsonObject { ["name"] = name, ["type"] = type, ["nullable"] = true, ["metadata"] = meta };
    }

    public static JsonObject Add(string path, long size, JsonObject? partitionValues = null, JsonObject? deletionVector = null, long? numRecords = null)
    {
        var add = new JsonObject
        {
            ["path"] = path,
            ["partitionValues"] = partitionValues ?? new JsonObject(),
            ["size"] = size,
            ["modificationTime"] = 1_700_000_000_000,
            ["dataChange"] = true,
        };
        if (numRecords is { } n)
        {
            add["stats"] = $"{{\"numRecords\":{n}}}";
        }

        if (deletionVector is not null)
        {
            add["deletionVector"] = deletionVector;
        }

        return new JsonObject { ["add"] = add };
    }

    public static JsonObject Remove(string path, JsonObject? deletionVector = null)
    {
        var remove = new JsonObject { ["path"] = path, ["deletionTimestamp"] = 1_700_000_000_001, ["dataChange"] = true };
        if (deletionVector is not null)
        {
            remove["deletionVector"] = deletionVector;
        }

        return new JsonObject { ["remove"] = remove };
    }

    public static JsonObject CommitInfo(long? inCommitTimestamp = null)
    {
        var info = new JsonObject { ["timestamp"] = 1_700_000_000_000, ["operation"] = "WRITE" };
        if (inCommitTimestamp is { } ict)
        {
            info["inCommitTimestamp"] = ict;
        }

        return new JsonObject { ["commitInfo"] = info };
    }

    public async Task<List<long>> ReadLongsAsync(string column, long? version = null)
    {
        var table = (await DeltaTable.TryOpenAsync(Path, CancellationToken.None))!;
        var snapshot = version is { } v ? await table.GetSnapshotAsync(v, CancellationToken.None) : table.Snapshot;
        var result = new List<long>();
        await foreach (var batch in table.ScanAsync(snapshot, CancellationToken.None))
        {
            using (batch)
            {
                var col = (Int64Array)batch.Column(batch.Schema.GetFieldIndex(column));
                for (var i = 0; i < batch.Length; i++)
                {
                    result.Add(col.GetValue(i)!.Value);
                }
            }
        }

        result.Sort();
        return result;
    }

    public void Dispose() => _dir.Dispose();
}
