using System.Buffers;
using System.Runtime.CompilerServices;
using Apache.Arrow;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;
using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Read;

/// <summary>
/// Reads the data files of one snapshot as batches of the table's logical schema: only the table's columns are read
/// (by physical name or field id), partition values are filled in (keyed by physical name), narrower types widened,
/// and rows deleted by the file's deletion vector dropped with a selection vector.
/// </summary>
internal sealed class FileScanner
{
    private readonly ILogStore _store;
    private readonly DeltaSnapshot _snapshot;
    private readonly Schema _arrowSchema;
    private readonly IReadOnlyList<ReadField> _fields;
    private readonly ColumnMappingMode _mode;
    private readonly bool[] _isPartition;

    public FileScanner(ILogStore store, DeltaSnapshot snapshot)
    {
        _store = store;
        _snapshot = snapshot;
        _arrowSchema = snapshot.Schema.ToArrowSchema();
        _mode = ModeOf(snapshot.Configuration, store.Root);
        var schemaString = snapshot.State?.Metadata?.SchemaString;
        _fields = schemaString is null
            ? snapshot.Schema.Columns.Select(c => new ReadField { Name = c.Name, PhysicalName = c.Name, Type = c.Type, ArrowType = c.Type.ToArrowType(), Nullable = c.Nullable, Children = ChildrenOf(c.Type) }).ToList()
            : ReadField.Parse(schemaString, _mode, store.Root);
        if (_fields.Count != snapshot.Schema.Count)
        {
            throw new InvalidDataException($"Delta table '{store.Root}': the schema has {snapshot.Schema.Count} columns but its schemaString {_fields.Count}.");
        }

        var partitions = new HashSet<string>(snapshot.PartitionColumns, StringComparer.OrdinalIgnoreCase);
        _isPartition = _fields.Select(f => partitions.Contains(f.Name)).ToArray();
    }

    private static IReadOnlyList<ReadField> ChildrenOf(Sdk.Types.DataType t) => t switch
    {
        Sdk.Types.StructType s => s.Fields.Select(f => new ReadField { Name = f.Name, PhysicalName = f.Name, Type = f.Type, ArrowType = f.Type.ToArrowType(), Nullable = f.Nullable, Children = ChildrenOf(f.Type) }).ToList(),
        Sdk.Types.ArrayType a => [Unnamed(a.ElementType)],
        Sdk.Types.MapType m => [Unnamed(m.KeyType), Unnamed(m.ValueType)],
        _ => [],
    };

    private static ReadField Unnamed(Sdk.Types.DataType t) =>
        new() { Name = "", PhysicalName = "", Type = t, ArrowType = t.ToArrowType(), Children = ChildrenOf(t) };

    public static ColumnMappingMode ModeOf(IReadOnlyDictionary<string, string> configuration, string table) =>
        configuration.GetValueOrDefault("delta.columnMapping.mode") switch
        {
            null or "none" => ColumnMappingMode.None,
            "name" => ColumnMappingMode.Name,
            "id" => ColumnMappingMode.Id,
            var other => throw new NotSupportedException($"Delta table '{table}' uses column mapping mode '{other}', which the protocol does not define."),
        };

    /// <summary>Every file of the snapshot, one after the other.</summary>
    public async IAsyncEnumerable<RecordBatch> ScanAsync([EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var file in _snapshot.Files)
        {
            await foreach (var batch in ReadFileAsync(file, ct).ConfigureAwait(false))
            {
                yield return batch;
            }
        }
    }

    /// <summary>One data file's live rows.</summary>
    public IAsyncEnumerable<RecordBatch> ReadFileAsync(AddFile file, CancellationToken ct) => ReadFileAsync(file, null, ct);

    /// <summary>One data file's live rows; columns not <paramref name="wanted"/> (table ordinals) are not read and come back null.</summary>
    public async IAsyncEnumerable<RecordBatch> ReadFileAsync(AddFile file, bool[]? wanted, [EnumeratorCancellation] CancellationToken ct)
    {
        var relative = Partitioning.DecodePath(file.Path);
        var deleted = file.DeletionVector is { } dv ? await DeletionVectors.LoadAsync(_store, dv, file.Path, ct).ConfigureAwait(false) : [];
        using var local = Path.IsPathRooted(relative) ? new LocalFile(relative, temporary: false) : await _store.OpenLocalAsync(relative, ct).ConfigureAwait(false);
        using var reader = new ParquetSharp.Arrow.FileReader(local.FullPath);
        var fileFields = reader.Schema.FieldsList;

        // Project the table's columns: their leaf column indices, and where each lands in the projected batch.
        var fileIndex = new int[_fields.Count];
        var leaves = new List<int>();
        var selectedTop = new SortedSet<int>();
        for (var c = 0; c < _fields.Count; c++)
        {
            fileIndex[c] = _isPartition[c] || (wanted is not null && !wanted[c]) ? -1 : ReadField.Find(fileFields, _fields[c], _mode);
            if (fileIndex[c] >= 0)
            {
                selectedTop.Add(fileIndex[c]);
            }
        }

        if (selectedTop.Count == 0 && fileFields.Count > 0)
        {
            // Only partition or missing columns: read the narrowest thing there is to learn the row count.
            selectedTop.Add(0);
        }

        var manifest = reader.SchemaManifest;
        foreach (var top in selectedTop)
        {
            CollectLeaves(manifest.SchemaFields[top], leaves);
        }

        var position = selectedTop.ToList();
        var batchIndex = fileIndex.Select(i => i < 0 ? -1 : position.IndexOf(i)).ToArray();
        var partitionValues = PartitionValues(file);

        using var batches = reader.GetRecordBatchReader(columns: leaves.ToArray());
        long rowStart = 0;
        var nextDeleted = 0;
        while (await batches.ReadNextRecordBatchAsync(ct).ConfigureAwait(false) is { } raw)
        {
            var length = raw.Length;
            var source = raw;
            var firstDeleted = nextDeleted;
            while (nextDeleted < deleted.Length && deleted[nextDeleted] < rowStart + length)
            {
                nextDeleted++;
            }

            var deletedHere = nextDeleted - firstDeleted;
            rowStart += length;
            if (deletedHere == length)
            {
                raw.Dispose();
                continue;
            }

            if (deletedHere > 0)
            {
                source = Select(raw, deleted.AsSpan(firstDeleted, deletedHere), rowStart - length);
                raw.Dispose();
            }

            var columns = new IArrowArray[_fields.Count];
            for (var c = 0; c < _fields.Count; c++)
            {
                var field = _fields[c];
                if (_isPartition[c])
                {
                    columns[c] = Partitioning.Constant(field.Type, partitionValues[c], source.Length, field.Name);
                }
                else if (batchIndex[c] < 0)
                {
                    columns[c] = ArrowKernels.NullArray(_arrowSchema.FieldsList[c].DataType, source.Length);
                }
                else
                {
                    columns[c] = ColumnConform.Conform(source.Column(batchIndex[c]), field, _mode, $"{relative}:{field.Name}");
                }
            }

            yield return new RecordBatch(_arrowSchema, columns, source.Length);
        }
    }

    /// <summary>The batch without the rows at <paramref name="deleted"/> (file row positions, ascending), via a selection vector.</summary>
    private static RecordBatch Select(RecordBatch batch, ReadOnlySpan<long> deleted, long batchStart)
    {
        var keep = batch.Length - deleted.Length;
        var rented = ArrayPool<int>.Shared.Rent(keep);
        try
        {
            var k = 0;
            var d = 0;
            for (var r = 0; r < batch.Length; r++)
            {
                if (d < deleted.Length && deleted[d] == batchStart + r)
                {
                    d++;
                    continue;
                }

                rented[k++] = r;
            }

            return ArrowKernels.Take(batch, rented.AsSpan(0, k));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    private static void CollectLeaves(ParquetSharp.Arrow.SchemaField field, List<int> leaves)
    {
        if (field.ColumnIndex >= 0)
        {
            leaves.Add(field.ColumnIndex);
        }

        foreach (var child in field.Children)
        {
            CollectLeaves(child, leaves);
        }
    }

    /// <summary>The partition value string of each partition column; keys are physical names under column mapping.</summary>
    private string?[] PartitionValues(AddFile file)
    {
        var values = new string?[_fields.Count];
        for (var c = 0; c < _fields.Count; c++)
        {
            if (!_isPartition[c])
            {
                continue;
            }

            var key = _mode == ColumnMappingMode.None ? _fields[c].Name : _fields[c].PhysicalName;
            if (file.PartitionValues.TryGetValue(key, out var exact))
            {
                values[c] = exact;
                continue;
            }

            // A missing entry reads as null, as it did before this reader knew column mapping.
            foreach (var (k, v) in file.PartitionValues)
            {
                if (string.Equals(k, key, StringComparison.OrdinalIgnoreCase))
                {
                    values[c] = v;
                    break;
                }
            }
        }

        return values;
    }
}
