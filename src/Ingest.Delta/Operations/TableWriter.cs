using Apache.Arrow;
using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;
using Schema = Apache.Arrow.Schema;

namespace Ingest.Delta.Operations;

/// <summary>
/// Writes rows with the table's schema into data files: one folder per partition (Hive style), partition columns
/// left out of the Parquet, a new file whenever one reaches <see cref="MaxRowsPerFile"/>. Memory is bounded by
/// <see cref="MaxOpenFiles"/> open files, each buffering at most one encoded row group of
/// <see cref="DataFileWriter.RowGroupRows"/> rows: a batch that opens one more closes the one written least recently.
/// </summary>
internal sealed class TableWriter : IDisposable
{
    private readonly ILogStore _store;
    private readonly StreamSchema _schema;
    private readonly IReadOnlyList<string> _partitionColumns;
    private readonly int[] _partitionOrdinals;
    private readonly int[] _dataOrdinals;
    private readonly Schema _dataSchema;
    private readonly IReadOnlyList<Field> _dataColumns;
    private readonly int _numIndexedCols;
    private readonly Dictionary<string, (string?[] Values, DataFileWriter Writer)> _open = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastWrite = new(StringComparer.Ordinal);
    private readonly List<(DataFileWriter Writer, Dictionary<string, string?> PartitionValues, string Stats)> _closed = [];
    private readonly List<AddFile> _added = [];
    private readonly List<string> _written = [];
    private readonly string _folder;
    private readonly string _namePrefix;
    private int _fileCounter;
    private long _writes;
    private int _maxOpenFiles = 64;

    /// <param name="store">Where the files go.</param>
    /// <param name="schema">The rows' schema (the table's, or the change data schema).</param>
    /// <param name="partitionColumns">Partition columns: one folder per value, left out of the Parquet.</param>
    /// <param name="configuration">Table properties (stats columns).</param>
    /// <param name="maxRowsPerFile">Most rows per file.</param>
    /// <param name="folder">A folder under the root for every file (<c>_change_data/</c>), or empty.</param>
    /// <param name="namePrefix">File names start with it: <c>part</c> for data, <c>cdc</c> for change data.</param>
    public TableWriter(ILogStore store, StreamSchema schema, IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string> configuration, long maxRowsPerFile, string folder = "", string namePrefix = "part")
    {
        _store = store;
        _folder = folder;
        _namePrefix = namePrefix;
        _schema = schema;
        _partitionColumns = partitionColumns;
        MaxRowsPerFile = maxRowsPerFile;
        _partitionOrdinals = partitionColumns.Select(c => schema.IndexOf(c)).ToArray();
        _dataOrdinals = Enumerable.Range(0, schema.Count).Where(i => !_partitionOrdinals.Contains(i)).ToArray();
        _dataColumns = _dataOrdinals.Select(i => schema.Columns[i]).ToList();
        var b = new Schema.Builder();
        foreach (var f in _dataColumns)
        {
            b.Field(f.ToArrowField());
        }

        _dataSchema = b.Build();
        _numIndexedCols = configuration.TryGetValue("delta.dataSkippingNumIndexedCols", out var n) && int.TryParse(n, out var parsed) ? parsed : 32;
    }

    public long MaxRowsPerFile { get; }

    /// <summary>Most files open at once (one per partition written to); 64 unless set.</summary>
    public int MaxOpenFiles
    {
        get => _maxOpenFiles;
        set => _maxOpenFiles = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least one file must be open to write.");
    }

    public long RowsWritten { get; private set; }

    /// <summary>Writes a batch with the table's schema.</summary>
    public void Write(RecordBatch batch)
    {
        if (batch.Length == 0)
        {
            return;
        }

        for (var c = 0; c < _schema.Count; c++)
        {
            if (!_schema.Columns[c].Nullable && batch.Column(c).NullCount > 0)
            {
                throw new ArgumentException($"Column '{_schema.Columns[c].Name}' is NOT NULL in the table but {batch.Column(c).NullCount} row(s) hold null.");
            }
        }

        if (_partitionOrdinals.Length == 0)
        {
            WriteToPartition("", [], batch);
            return;
        }

        // Group rows by their partition strings; partition columns have few distinct values.
        var groups = new Dictionary<string, (string?[] Values, List<int> Rows)>(StringComparer.Ordinal);
        var values = new string?[_partitionOrdinals.Length];
        for (var row = 0; row < batch.Length; row++)
        {
            for (var p = 0; p < _partitionOrdinals.Length; p++)
            {
                var ord = _partitionOrdinals[p];
                values[p] = Partitioning.Format(batch.Column(ord), row, _schema.Columns[ord].Type, _partitionColumns[p]);
            }

            var dir = Partitioning.Directory(_partitionColumns, values);
            if (!groups.TryGetValue(dir, out var g))
            {
                g = ((string?[])values.Clone(), []);
                groups[dir] = g;
            }

            g.Rows.Add(row);
        }

        foreach (var (dir, g) in groups)
        {
            var part = groups.Count == 1 ? batch : ArrowKernels.Take(batch, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(g.Rows));
            WriteToPartition(dir, g.Values, part);
        }
    }

    private void WriteToPartition(string dir, string?[] values, RecordBatch batch)
    {
        var data = _partitionOrdinals.Length == 0 && batch.ColumnCount == _dataOrdinals.Length
            ? new RecordBatch(_dataSchema, batch.Arrays, batch.Length)
            : new RecordBatch(_dataSchema, _dataOrdinals.Select(batch.Column), batch.Length);
        var offset = 0;
        while (offset < data.Length)
        {
            if (!_open.TryGetValue(dir, out var current))
            {
                if (_open.Count >= MaxOpenFiles)
                {
                    FinishFile(_lastWrite.MinBy(e => e.Value).Key);
                }

                var name = $"{_folder}{dir}{_namePrefix}-{_fileCounter++:D5}-{Guid.NewGuid()}{(_namePrefix == "part" ? "-" : ".")}c000.snappy.parquet";
                current = (values, new DataFileWriter(_store, name, _dataSchema, _dataColumns, _numIndexedCols));
                _written.Add(name);
                _open[dir] = current;
            }

            _lastWrite[dir] = ++_writes;
            var room = MaxRowsPerFile - current.Writer.Rows;
            var take = (int)Math.Min(room, data.Length - offset);
            current.Writer.Write(offset == 0 && take == data.Length ? data : data.Slice(offset, take));
            offset += take;
            RowsWritten += take;
            if (current.Writer.Rows >= MaxRowsPerFile)
            {
                FinishFile(dir);
            }
        }
    }

    private void FinishFile(string dir)
    {
        var (values, writer) = _open[dir];
        _open.Remove(dir);
        _lastWrite.Remove(dir);
        var stats = writer.Close();
        var pv = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 0; i < _partitionColumns.Count; i++)
        {
            pv[_partitionColumns[i]] = values[i];
        }

        _closed.Add((writer, pv, stats));
    }

    /// <summary>Closes every open file: rows written next go to new files (OPTIMIZE: one file per bin).</summary>
    public void CloseFiles()
    {
        foreach (var dir in _open.Keys.ToList())
        {
            FinishFile(dir);
        }
    }

    /// <summary>Closes every open file and publishes all (uploads, for object stores); returns the adds.</summary>
    public async Task<IReadOnlyList<AddFile>> FinishAsync(CancellationToken cancellationToken)
    {
        CloseFiles();
        foreach (var (writer, pv, stats) in _closed)
        {
            var size = await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            writer.Dispose();
            _added.Add(new AddFile(Partitioning.EncodePath(writer.RelativePath), pv, size, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), true, stats));
        }

        _closed.Clear();
        return _added;
    }

    /// <summary>Deletes every file written (the commit failed; they were never referenced by the log).</summary>
    public async Task AbortAsync(CancellationToken cancellationToken)
    {
        Dispose();
        foreach (var f in _written)
        {
            try
            {
                await _store.DeleteAsync(f, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // An orphan data file is harmless (VACUUM removes it).
            }
        }
    }

    public void Dispose()
    {
        foreach (var (_, w) in _open.Values)
        {
            w.Dispose();
        }

        foreach (var (w, _, _) in _closed)
        {
            w.Dispose();
        }

        _open.Clear();
        _lastWrite.Clear();
        _closed.Clear();
    }
}
