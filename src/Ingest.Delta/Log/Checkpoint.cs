using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;
using ArrowField = Apache.Arrow.Field;
using ArrowStruct = Apache.Arrow.Types.StructType;

namespace Ingest.Delta.Log;

/// <summary>
/// Reads checkpoints (PROTOCOL.md "Checkpoints"): classic single-file and multi-part Parquet, and v2 checkpoints
/// (<c>{v}.checkpoint.{uuid}.json|parquet</c>) whose <c>sidecar</c> actions point at Parquet files under
/// <c>_delta_log/_sidecars/</c>. Parquet checkpoints hold one action per row in nullable struct columns.
/// </summary>
internal static class CheckpointReader
{
    public const string SidecarFolder = LogReplay.LogFolder + "_sidecars/";

    public static async Task ReadAsync(ILogStore store, IReadOnlyList<string> parts, LogState state, CancellationToken ct)
    {
        var sidecars = new List<SidecarAction>();
        foreach (var part in parts)
        {
            if (part.EndsWith(".json", StringComparison.Ordinal))
            {
                var bytes = await store.ReadAsync(part, ct).ConfigureAwait(false)
                    ?? throw new InvalidDataException($"Checkpoint '{part}' vanished while reading.");
                var actions = ActionJson.Parse(bytes, part);
                sidecars.AddRange(actions.Sidecars);
                state.Apply(actions, state.Version, reconciled: true);
            }
            else
            {
                await ReadParquetAsync(store, part, state, sidecars, ct).ConfigureAwait(false);
            }
        }

        foreach (var sidecar in sidecars)
        {
            var path = SidecarPath(sidecar.Path);
            if (!Path.IsPathRooted(path) && await store.StatAsync(path, ct).ConfigureAwait(false) is null)
            {
                throw new InvalidDataException($"Sidecar file '{path}' referenced by the checkpoint of version {state.Version} is missing.");
            }

            await ReadParquetAsync(store, path, state, null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>A sidecar's <c>path</c>: relative to <c>_delta_log/_sidecars/</c>, or an absolute URI.</summary>
    private static string SidecarPath(string path) =>
        path.Contains("://", StringComparison.Ordinal) || path.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
            ? Operations.Partitioning.DecodePath(path)
            : SidecarFolder + Uri.UnescapeDataString(path);

    private static async Task ReadParquetAsync(ILogStore store, string part, LogState state, List<SidecarAction>? sidecars, CancellationToken ct)
    {
        using var local = Path.IsPathRooted(part) ? new LocalFile(part, temporary: false) : await store.OpenLocalAsync(part, ct).ConfigureAwait(false);
        using var reader = new ParquetSharp.Arrow.FileReader(local.FullPath);
        using var batches = reader.GetRecordBatchReader();
        while (await batches.ReadNextRecordBatchAsync(ct).ConfigureAwait(false) is { } batch)
        {
            using (batch)
            {
                try
                {
                    ReadBatch(batch, state, sidecars);
                }
                catch (Exception ex) when (ex is InvalidCastException or InvalidOperationException or NullReferenceException or FormatException)
                {
                    throw new InvalidDataException($"Checkpoint '{part}' does not have the checkpoint schema: {ex.Message}", ex);
                }
            }
        }
    }

    private static void ReadBatch(RecordBatch batch, LogState state, List<SidecarAction>? sidecars)
    {
        var actions = new CommitActions();
        if (Column(batch, "protocol") is { } protocol)
        {
            var minR = (Int32Array)Child(protocol, "minReaderVersion")!;
            var minW = (Int32Array)Child(protocol, "minWriterVersion")!;
            var rf = Child(protocol, "readerFeatures") as ListArray;
            var wf = Child(protocol, "writerFeatures") as ListArray;
            for (var i = 0; i < protocol.Length; i++)
            {
                if (protocol.IsValid(i))
                {
                    actions.Protocol = new ProtocolAction(minR.GetValue(i)!.Value, minW.GetValue(i)!.Value, StringList(rf, i), StringList(wf, i));
                }
            }
        }

        if (Column(batch, "metaData") is { } meta)
        {
            var id = (StringArray)Child(meta, "id")!;
            var name = Child(meta, "name") as StringArray;
            var desc = Child(meta, "description") as StringArray;
            var format = Child(meta, "format") as StructArray;
            var schema = (StringArray)Child(meta, "schemaString")!;
            var pcols = Child(meta, "partitionColumns") as ListArray;
            var conf = Child(meta, "configuration") as MapArray;
            var created = Child(meta, "createdTime") as Int64Array;
            for (var i = 0; i < meta.Length; i++)
            {
                if (!meta.IsValid(i))
                {
                    continue;
                }

                var provider = format is null ? null : (Child(format, "provider") as StringArray)?.GetString(i);
                var options = format is null ? null : StringMap(Child(format, "options") as MapArray, i);
                actions.Metadata = new MetadataAction(
                    id.GetString(i), name?.GetString(i), desc?.GetString(i), provider ?? "parquet",
                    options?.ToDictionary(k => k.Key, k => k.Value ?? "") ?? [],
                    schema.GetString(i), StringList(pcols, i) ?? [],
                    StringMap(conf, i)?.ToDictionary(k => k.Key, k => k.Value ?? "") ?? [],
                    created?.GetValue(i));
            }
        }

        if (Column(batch, "add") is { } add)
        {
            var path = (StringArray)Child(add, "path")!;
            var pv = Child(add, "partitionValues") as MapArray;
            var size = (Int64Array)Child(add, "size")!;
            var mtime = Child(add, "modificationTime") as Int64Array;
            var dataChange = Child(add, "dataChange") as BooleanArray;
            var stats = Child(add, "stats") as StringArray;
            var dv = DvColumns.Of(Child(add, "deletionVector") as StructArray);
            for (var i = 0; i < add.Length; i++)
            {
                if (!add.IsValid(i))
                {
                    continue;
                }

                actions.Adds.Add(new AddFile(path.GetString(i), StringMap(pv, i) ?? [], size.GetValue(i) ?? 0, mtime?.GetValue(i) ?? 0, dataChange?.GetValue(i) ?? false, stats?.GetString(i))
                {
                    DeletionVector = dv?.At(i),
                });
            }
        }

        if (Column(batch, "remove") is { } remove)
        {
            var path = (StringArray)Child(remove, "path")!;
            var ts = Child(remove, "deletionTimestamp") as Int64Array;
            var dataChange = Child(remove, "dataChange") as BooleanArray;
            var ext = Child(remove, "extendedFileMetadata") as BooleanArray;
            var pv = Child(remove, "partitionValues") as MapArray;
            var size = Child(remove, "size") as Int64Array;
            var dv = DvColumns.Of(Child(remove, "deletionVector") as StructArray);
            for (var i = 0; i < remove.Length; i++)
            {
                if (remove.IsValid(i))
                {
                    actions.Removes.Add(new RemoveAction(path.GetString(i), ts?.GetValue(i), dataChange?.GetValue(i) ?? false, ext?.GetValue(i) ?? false, StringMap(pv, i), size?.GetValue(i))
                    {
                        DeletionVector = dv?.At(i),
                    });
                }
            }
        }

        if (Column(batch, "txn") is { } txn)
        {
            var appId = (StringArray)Child(txn, "appId")!;
            var version = (Int64Array)Child(txn, "version")!;
            var lastUpdated = Child(txn, "lastUpdated") as Int64Array;
            for (var i = 0; i < txn.Length; i++)
            {
                if (txn.IsValid(i))
                {
                    actions.Txns.Add(new TxnEntry(appId.GetString(i), version.GetValue(i)!.Value, lastUpdated?.GetValue(i)));
                }
            }
        }

        if (Column(batch, "sidecar") is { } sidecar)
        {
            var path = (StringArray)Child(sidecar, "path")!;
            var size = Child(sidecar, "sizeInBytes") as Int64Array;
            for (var i = 0; i < sidecar.Length; i++)
            {
                if (sidecar.IsValid(i))
                {
                    if (sidecars is null)
                    {
                        throw new InvalidDataException("a sidecar file holds a sidecar action (only the top-level v2 checkpoint may).");
                    }

                    sidecars.Add(new SidecarAction(path.GetString(i), size?.GetValue(i) ?? 0));
                }
            }
        }

        // Checkpoint rows are already reconciled: removes are tombstones, whatever the order of rows and parts.
        state.Apply(actions, state.Version, reconciled: true);
    }

    /// <summary>The columns of a <c>deletionVector</c> struct (PROTOCOL.md "Deletion Vector Descriptor Schema").</summary>
    private sealed class DvColumns
    {
        private StructArray _dv = null!;
        private StringArray _type = null!;
        private StringArray _path = null!;
        private IArrowArray? _offset;
        private IArrowArray _size = null!;
        private IArrowArray? _cardinality;

        public static DvColumns? Of(StructArray? dv) => dv is null ? null : new DvColumns
        {
            _dv = dv,
            _type = (StringArray)Child(dv, "storageType")!,
            _path = (StringArray)Child(dv, "pathOrInlineDv")!,
            _offset = Child(dv, "offset"),
            _size = Child(dv, "sizeInBytes")!,
            _cardinality = Child(dv, "cardinality"),
        };

        public DeletionVectorDescriptor? At(int row) => _dv.IsValid(row)
            ? new DeletionVectorDescriptor(_type.GetString(row), _path.GetString(row), (int?)Long(_offset, row), (int)(Long(_size, row) ?? 0), Long(_cardinality, row) ?? 0)
            : null;

        private static long? Long(IArrowArray? a, int row) => a switch
        {
            Int32Array x => x.GetValue(row),
            Int64Array x => x.GetValue(row),
            _ => null,
        };
    }

    private static StructArray? Column(RecordBatch batch, string name)
    {
        var i = batch.Schema.GetFieldIndex(name);
        return i < 0 ? null : batch.Column(i) as StructArray;
    }

    private static IArrowArray? Child(StructArray s, string name)
    {
        var i = ((ArrowStruct)s.Data.DataType).GetFieldIndex(name);
        return i < 0 ? null : ArrowKernels.StructChild(s, i);
    }

    private static List<string>? StringList(ListArray? list, int row)
    {
        if (list is null || !list.IsValid(row))
        {
            return null;
        }

        var values = (StringArray)list.Values;
        var result = new List<string>();
        for (var j = list.ValueOffsets[row]; j < list.ValueOffsets[row + 1]; j++)
        {
            result.Add(values.GetString(j));
        }

        return result;
    }

    private static Dictionary<string, string?>? StringMap(MapArray? map, int row)
    {
        if (map is null || !map.IsValid(row))
        {
            return null;
        }

        var keys = (StringArray)map.Keys;
        var values = (StringArray)map.Values;
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var j = map.ValueOffsets[row]; j < map.ValueOffsets[row + 1]; j++)
        {
            result[keys.GetString(j)] = values.IsNull(j) ? null : values.GetString(j);
        }

        return result;
    }
}

/// <summary>Writes a classic single-file Parquet checkpoint with Spark's checkpoint schema, then <c>_last_checkpoint</c>.</summary>
internal static class CheckpointWriter
{
    private static readonly MapType StringStringMap = new(new ArrowField("key", StringType.Default, false), new ArrowField("value", StringType.Default, true));
    private static readonly ListType StringList = new(new ArrowField("element", StringType.Default, true));

    private static readonly ArrowStruct DvType = new([
        new ArrowField("storageType", StringType.Default, true),
        new ArrowField("pathOrInlineDv", StringType.Default, true),
        new ArrowField("offset", Int32Type.Default, true),
        new ArrowField("sizeInBytes", Int32Type.Default, true),
        new ArrowField("cardinality", Int64Type.Default, true),
        new ArrowField("maxRowIndex", Int64Type.Default, true),
    ]);

    private static readonly ArrowStruct TxnType = new([
        new ArrowField("appId", StringType.Default, true),
        new ArrowField("version", Int64Type.Default, true),
        new ArrowField("lastUpdated", Int64Type.Default, true),
    ]);

    private static readonly ArrowStruct AddType = new([
        new ArrowField("path", StringType.Default, true),
        new ArrowField("partitionValues", StringStringMap, true),
        new ArrowField("size", Int64Type.Default, true),
        new ArrowField("modificationTime", Int64Type.Default, true),
        new ArrowField("dataChange", BooleanType.Default, true),
        new ArrowField("tags", StringStringMap, true),
        new ArrowField("deletionVector", DvType, true),
        new ArrowField("baseRowId", Int64Type.Default, true),
        new ArrowField("defaultRowCommitVersion", Int64Type.Default, true),
        new ArrowField("stats", StringType.Default, true),
    ]);

    private static readonly ArrowStruct RemoveType = new([
        new ArrowField("path", StringType.Default, true),
        new ArrowField("deletionTimestamp", Int64Type.Default, true),
        new ArrowField("dataChange", BooleanType.Default, true),
        new ArrowField("extendedFileMetadata", BooleanType.Default, true),
        new ArrowField("partitionValues", StringStringMap, true),
        new ArrowField("size", Int64Type.Default, true),
        new ArrowField("deletionVector", DvType, true),
        new ArrowField("baseRowId", Int64Type.Default, true),
        new ArrowField("defaultRowCommitVersion", Int64Type.Default, true),
    ]);

    private static readonly ArrowStruct FormatType = new([
        new ArrowField("provider", StringType.Default, true),
        new ArrowField("options", StringStringMap, true),
    ]);

    private static readonly ArrowStruct MetaDataType = new([
        new ArrowField("id", StringType.Default, true),
        new ArrowField("name", StringType.Default, true),
        new ArrowField("description", StringType.Default, true),
        new ArrowField("format", FormatType, true),
        new ArrowField("schemaString", StringType.Default, true),
        new ArrowField("partitionColumns", StringList, true),
        new ArrowField("configuration", StringStringMap, true),
        new ArrowField("createdTime", Int64Type.Default, true),
    ]);

    private static readonly ArrowStruct ProtocolType = new([
        new ArrowField("minReaderVersion", Int32Type.Default, true),
        new ArrowField("minWriterVersion", Int32Type.Default, true),
        new ArrowField("readerFeatures", StringList, true),
        new ArrowField("writerFeatures", StringList, true),
    ]);

    public static readonly Schema CheckpointSchema = new Schema.Builder()
        .Field(new ArrowField("txn", TxnType, true))
        .Field(new ArrowField("add", AddType, true))
        .Field(new ArrowField("remove", RemoveType, true))
        .Field(new ArrowField("metaData", MetaDataType, true))
        .Field(new ArrowField("protocol", ProtocolType, true))
        .Build();

    /// <summary>Writes the checkpoint of <paramref name="state"/>; false when another writer already wrote it.</summary>
    public static async Task<bool> WriteAsync(ILogStore store, LogState state, CancellationToken ct)
    {
        var path = LogReplay.CheckpointPath(state.Version);
        if (await store.StatAsync(path, ct).ConfigureAwait(false) is not null)
        {
            return false;
        }

        var cutoff = DateTimeOffset.UtcNow.Add(-state.TombstoneRetention()).ToUnixTimeMilliseconds();
        var txns = state.Txns.Values.ToList();
        var adds = state.Files.Values.ToList();
        var removes = state.Tombstones.Values.Where(r => (r.DeletionTimestamp ?? 0) > cutoff).ToList();

        // Row layout: protocol, metaData, txns, adds, removes.
        var n = 2 + txns.Count + adds.Count + removes.Count;
        var txnStart = 2;
        var addStart = txnStart + txns.Count;
        var removeStart = addStart + adds.Count;

        var protocol = state.Protocol!;
        var meta = state.Metadata!;
        TxnEntry? T(int r) => r >= txnStart && r < addStart ? txns[r - txnStart] : null;
        AddFile? A(int r) => r >= addStart && r < removeStart ? adds[r - addStart] : null;
        RemoveAction? R(int r) => r >= removeStart ? removes[r - removeStart] : null;
        bool IsMeta(int r) => r == 1;
        bool IsProtocol(int r) => r == 0;

        var txnCol = Struct(TxnType, n, r => T(r) is not null,
            Strings(n, r => T(r)?.AppId), Longs(n, r => T(r)?.Version), Longs(n, r => T(r)?.LastUpdated));
        var addCol = Struct(AddType, n, r => A(r) is not null,
            Strings(n, r => A(r)?.Path),
            Maps(n, r => A(r)?.PartitionValues),
            Longs(n, r => A(r)?.Size),
            Longs(n, r => A(r)?.ModificationTime),
            Bools(n, r => A(r)?.DataChange),
            Maps(n, _ => null),
            Dvs(n, r => A(r)?.DeletionVector),
            Longs(n, _ => null),
            Longs(n, _ => null),
            Strings(n, r => A(r)?.Stats));
        var removeCol = Struct(RemoveType, n, r => R(r) is not null,
            Strings(n, r => R(r)?.Path),
            Longs(n, r => R(r)?.DeletionTimestamp),
            Bools(n, r => R(r)?.DataChange),
            Bools(n, r => R(r)?.ExtendedFileMetadata),
            Maps(n, r => R(r)?.PartitionValues),
            Longs(n, r => R(r)?.Size),
            Dvs(n, r => R(r)?.DeletionVector),
            Longs(n, _ => null),
            Longs(n, _ => null));
        var metaCol = Struct(MetaDataType, n, IsMeta,
            Strings(n, r => IsMeta(r) ? meta.Id : null),
            Strings(n, r => IsMeta(r) ? meta.Name : null),
            Strings(n, r => IsMeta(r) ? meta.Description : null),
            Struct(FormatType, n, IsMeta,
                Strings(n, r => IsMeta(r) ? meta.Provider : null),
                Maps(n, r => IsMeta(r) ? meta.FormatOptions.ToDictionary(k => k.Key, k => (string?)k.Value) : null)),
            Strings(n, r => IsMeta(r) ? meta.SchemaString : null),
            Lists(n, r => IsMeta(r) ? meta.PartitionColumns : null),
            Maps(n, r => IsMeta(r) ? meta.Configuration.ToDictionary(k => k.Key, k => (string?)k.Value) : null),
            Longs(n, r => IsMeta(r) ? meta.CreatedTime : null));
        var protocolCol = Struct(ProtocolType, n, IsProtocol,
            Ints(n, r => IsProtocol(r) ? protocol.MinReaderVersion : null),
            Ints(n, r => IsProtocol(r) ? protocol.MinWriterVersion : null),
            Lists(n, r => IsProtocol(r) ? protocol.ReaderFeatures : null),
            Lists(n, r => IsProtocol(r) ? protocol.WriterFeatures : null));

        var batch = new RecordBatch(CheckpointSchema, [txnCol, addCol, removeCol, metaCol, protocolCol], n);
        // Written in memory and published with put-if-absent: a reader never sees a half-written checkpoint.
        byte[] content;
        using (var buffer = new MemoryStream())
        {
            using (var props = new ParquetSharp.WriterPropertiesBuilder().Compression(ParquetSharp.Compression.Snappy).Build())
            using (var writer = new ParquetSharp.Arrow.FileWriter(buffer, CheckpointSchema, props, null, leaveOpen: true))
            {
                writer.WriteRecordBatch(batch);
                writer.Close();
            }

            content = buffer.ToArray();
        }

        if (!await store.PutIfAbsentAsync(path, content, ct).ConfigureAwait(false))
        {
            return false;
        }

        var size = content.LongLength;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("version", state.Version);
            w.WriteNumber("size", n);
            w.WriteNumber("sizeInBytes", size);
            w.WriteNumber("numOfAddFiles", adds.Count);
            w.WriteEndObject();
        }

        await store.OverwriteAsync(LogReplay.LastCheckpointPath, ms.ToArray(), ct).ConfigureAwait(false);
        return true;
    }

    private static ArrowBuffer Bitmap(int n, Func<int, bool> valid, out int nulls)
    {
        var b = new ArrowBuffer.BitmapBuilder(n);
        nulls = 0;
        for (var i = 0; i < n; i++)
        {
            var v = valid(i);
            b.Append(v);
            nulls += v ? 0 : 1;
        }

        return b.Build();
    }

    private static StructArray Struct(ArrowStruct type, int n, Func<int, bool> valid, params IArrowArray[] children)
    {
        var bitmap = Bitmap(n, valid, out var nulls);
        return new StructArray(type, n, children, bitmap, nulls);
    }

    /// <summary>The <c>deletionVector</c> column: a checkpoint must keep each file's DV, or deleted rows come back.</summary>
    private static StructArray Dvs(int n, Func<int, DeletionVectorDescriptor?> f) => Struct(DvType, n, r => f(r) is not null,
        Strings(n, r => f(r)?.StorageType),
        Strings(n, r => f(r)?.PathOrInlineDv),
        Ints(n, r => f(r)?.Offset),
        Ints(n, r => f(r)?.SizeInBytes),
        Longs(n, r => f(r)?.Cardinality),
        Longs(n, _ => null));

    private static StringArray Strings(int n, Func<int, string?> f)
    {
        var b = new StringArray.Builder();
        for (var i = 0; i < n; i++)
        {
            if (f(i) is { } s)
            {
                b.Append(s);
            }
            else
            {
                b.AppendNull();
            }
        }

        return b.Build();
    }

    private static Int64Array Longs(int n, Func<int, long?> f)
    {
        var b = new Int64Array.Builder();
        for (var i = 0; i < n; i++)
        {
            b.Append(f(i));
        }

        return b.Build();
    }

    private static Int32Array Ints(int n, Func<int, int?> f)
    {
        var b = new Int32Array.Builder();
        for (var i = 0; i < n; i++)
        {
            b.Append(f(i));
        }

        return b.Build();
    }

    private static BooleanArray Bools(int n, Func<int, bool?> f)
    {
        var b = new BooleanArray.Builder();
        for (var i = 0; i < n; i++)
        {
            if (f(i) is { } v)
            {
                b.Append(v);
            }
            else
            {
                b.AppendNull();
            }
        }

        return b.Build();
    }

    private static ListArray Lists(int n, Func<int, IReadOnlyList<string>?> f)
    {
        var offsets = new ArrowBuffer.Builder<int>(n + 1);
        var values = new StringArray.Builder();
        var count = 0;
        offsets.Append(0);
        var bitmap = Bitmap(n, i => f(i) is not null, out var nulls);
        for (var i = 0; i < n; i++)
        {
            if (f(i) is { } list)
            {
                foreach (var s in list)
                {
                    values.Append(s);
                    count++;
                }
            }

            offsets.Append(count);
        }

        return new ListArray(StringList, n, offsets.Build(), values.Build(), bitmap, nulls);
    }

    private static MapArray Maps(int n, Func<int, IReadOnlyDictionary<string, string?>?> f)
    {
        var offsets = new ArrowBuffer.Builder<int>(n + 1);
        var keys = new StringArray.Builder();
        var values = new StringArray.Builder();
        var count = 0;
        offsets.Append(0);
        var bitmap = Bitmap(n, i => f(i) is not null, out var nulls);
        for (var i = 0; i < n; i++)
        {
            if (f(i) is { } map)
            {
                foreach (var (k, v) in map)
                {
                    keys.Append(k);
                    if (v is null)
                    {
                        values.AppendNull();
                    }
                    else
                    {
                        values.Append(v);
                    }

                    count++;
                }
            }

            offsets.Append(count);
        }

        var entries = new StructArray(StringStringMap.KeyValueType, count, [keys.Build(), values.Build()], ArrowBuffer.Empty, 0);
        return new MapArray(StringStringMap, n, offsets.Build(), entries, bitmap, nulls);
    }

}
