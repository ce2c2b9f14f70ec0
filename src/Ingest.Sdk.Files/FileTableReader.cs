using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Files;

/// <summary>What reading part of a file produced: rows, dead letters, and how far into the file it got.</summary>
/// <param name="Rows">Rows of the table (null when none).</param>
/// <param name="DeadLetters">Lines that could not be parsed (null when none).</param>
/// <param name="LastLine">The last line (or row) consumed.</param>
/// <param name="EndOfFile">Whether the file is done.</param>
public sealed record FileChunk(ChangeBatch? Rows, ChangeBatch? DeadLetters, long LastLine, bool EndOfFile);

/// <summary>
/// Reads the files of one table into batches of its stream (and its dead-letter stream): the schema, its
/// widening by later files, and the three formats. Positions are (file ordinal, line).
/// </summary>
public sealed class FileTableReader : IDisposable
{
    private const int SamplePrefixBytes = 4 << 20;
    private readonly IFileStore _store;
    private RowWriter _writer;

    /// <summary>Creates a reader for <paramref name="table"/> writing rows of <paramref name="schema"/> (data and metadata columns).</summary>
    public FileTableReader(IFileStore store, FileTableOptions table, StreamSchema schema)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(schema);
        _store = store;
        Table = table;
        _writer = new RowWriter(table.Name, schema, table.DeadLetterStream, Math.Min(table.BatchRows, 65_536));
    }

    /// <inheritdoc />
    public void Dispose() => _writer.Dispose();

    /// <summary>The table.</summary>
    public FileTableOptions Table { get; }

    /// <summary>The schema batches carry now (it widens when a file needs it and the table's columns are not declared).</summary>
    public StreamSchema Schema => _writer.Schema;

    /// <summary>The stream's descriptor for a catalog.</summary>
    public static Connectors.StreamDescriptor Describe(FileTableOptions table, StreamSchema schema)
    {
        ArgumentNullException.ThrowIfNull(table);
        return new(table.Name, schema, table.PrimaryKey, [FileColumns.FileModified], [Connectors.SyncMode.Incremental, Connectors.SyncMode.Cdc],
            $"Files matching {table.Pattern} ({table.Format.ToString().ToLowerInvariant()}).", Backfill: FileFilter.Support);
    }

    /// <summary>The dead-letter stream's descriptor.</summary>
    public static Connectors.StreamDescriptor DescribeDeadLetters(FileTableOptions table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return new(table.DeadLetterStream, FileColumns.DeadLetterSchema, [], [], [Connectors.SyncMode.Incremental, Connectors.SyncMode.Cdc],
            $"Lines of {table.Name}'s files that could not be parsed: file, line, raw text, error.");
    }

    /// <summary>
    /// The table's schema: its declared columns, or those inferred from the first <see cref="FileTableOptions.SampleFiles"/>
    /// of <paramref name="files"/> (in the given order), plus the metadata columns.
    /// </summary>
    /// <exception cref="Connectors.ConnectorException">No declared columns and no file to infer them from.</exception>
    public static async Task<StreamSchema> InferSchemaAsync(IFileStore store, FileTableOptions table, IReadOnlyList<FileEntry> files, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(files);
        if (table.Columns is not null)
        {
            return FileColumns.Schema(table.Columns);
        }

        if (files.Count == 0)
        {
            throw new Connectors.ConnectorException(Connectors.ErrorKind.Configuration,
                $"Table '{table.Name}': no file matches '{table.Pattern}' to infer the columns from; add a file or declare 'columns'.", $"/tables/{table.Index}/pattern");
        }

        List<Field>? fields = null;
        foreach (var f in files.Take(table.SampleFiles))
        {
            var sample = await InferFileAsync(store, table, f, cancellationToken).ConfigureAwait(false);
            if (fields is null)
            {
                fields = sample.ToList();
            }
            else if (SchemaWidening.Widen(new StreamSchema(fields), sample) is { } widened)
            {
                fields = widened.Columns.ToList();
            }
        }

        var clash = fields!.FirstOrDefault(c => FileColumns.IsMetadata(c.Name));
        if (clash is not null)
        {
            throw new Connectors.ConnectorException(Connectors.ErrorKind.Configuration,
                $"Table '{table.Name}': the files have a column '{clash.Name}', which clashes with a metadata column; declare 'columns' without it.", $"/tables/{table.Index}/columns");
        }

        return FileColumns.Schema(fields!);
    }

    /// <summary>The columns one file's sample suggests.</summary>
    public static async Task<IReadOnlyList<Field>> InferFileAsync(IFileStore store, FileTableOptions table, FileEntry file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(file);
        await using var raw = await store.OpenAsync(file, cancellationToken).ConfigureAwait(false);
        if (table.Format == FileFormat.Parquet)
        {
            return await ParquetFiles.InferAsync(raw, cancellationToken).ConfigureAwait(false);
        }

        await using var input = Compression.Decompress(raw, file.Path);
        return await InferTextAsync(input, table, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The columns the first rows of a decompressed CSV or JSON lines stream suggest.</summary>
    private static async Task<IReadOnlyList<Field>> InferTextAsync(Stream input, FileTableOptions table, CancellationToken cancellationToken)
    {
        switch (table.Format)
        {
            case FileFormat.JsonLines:
            {
                using var lines = new LineReader(input);
                var columns = new List<ColumnInference>();
                var byName = new Dictionary<string, ColumnInference>(StringComparer.OrdinalIgnoreCase);
                var props = new List<JsonProp>();
                var rows = 0;
                while (rows < table.SampleRows && await lines.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (lines.IsBlank || !JsonLine.TryParse(lines.Line, props, out _))
                    {
                        continue;
                    }

                    rows++;
                    foreach (var p in props)
                    {
                        var name = Encoding.UTF8.GetString(JsonLine.Name(lines.Line, p));
                        if (!byName.TryGetValue(name, out var ci))
                        {
                            byName[name] = ci = new ColumnInference(name);
                            columns.Add(ci);
                        }

                        switch (p.Kind)
                        {
                            case JsonTokenType.Null: break;
                            case JsonTokenType.StartObject or JsonTokenType.StartArray: ci.ObserveString(); break;
                            default: ci.Observe(JsonLine.Value(lines.Line, p)); break;
                        }
                    }
                }

                return columns.Select(c => new Field(c.Name, c.Result())).ToList();
            }

            default:
            {
                using var csv = new CsvParser(input, table.Csv);
                ColumnInference[]? columns = null;
                var rows = 0;
                while (rows < table.SampleRows && await csv.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (columns is null)
                    {
                        columns = new ColumnInference[csv.FieldCount];
                        for (var i = 0; i < columns.Length; i++)
                        {
                            columns[i] = new ColumnInference(table.Csv.Header ? Encoding.UTF8.GetString(csv.Field(i)) : "_c" + i.ToString(CultureInfo.InvariantCulture));
                        }

                        if (table.Csv.Header)
                        {
                            continue;
                        }
                    }

                    if (csv.Error is not null || csv.FieldCount != columns.Length)
                    {
                        continue;
                    }

                    rows++;
                    for (var i = 0; i < columns.Length; i++)
                    {
                        var v = csv.Field(i);
                        if (!csv.WasQuoted(i) && IsNull(table.Csv, v))
                        {
                            continue;
                        }

                        columns[i].Observe(v);
                    }
                }

                var fields = new List<Field>();
                var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                foreach (var c in columns ?? [])
                {
                    if (seen.Add(c.Name))
                    {
                        fields.Add(new Field(c.Name, c.Result()));
                    }
                }

                return fields;
            }
        }
    }

    internal static bool IsNull(CsvFormatOptions options, ReadOnlySpan<byte> value)
    {
        foreach (var m in options.NullMarkers)
        {
            if (value.SequenceEqual(m))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Reads one file from after line <paramref name="skipThroughLine"/>, yielding a chunk every
    /// <see cref="FileTableOptions.BatchRows"/> rows and a last one at the end of the file. When the table's
    /// columns are inferred and <paramref name="evolve"/> is set, the file's own sample widens the schema
    /// first (the chunks then carry the widened schema).
    /// </summary>
    public async IAsyncEnumerable<FileChunk> ReadAsync(FileEntry file, long ordinal, long skipThroughLine, ChangeOp op, bool evolve, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        await using var raw = await _store.OpenAsync(file, cancellationToken).ConfigureAwait(false);
        var input = Table.Format == FileFormat.Parquet ? raw : Compression.Decompress(raw, file.Path);
        if (evolve && Table.Columns is null)
        {
            IReadOnlyList<Field> sample;
            if (Table.Format == FileFormat.Parquet)
            {
                sample = await InferFileAsync(_store, Table, file, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // Sample the file's first rows from a buffered prefix of the same stream, then replay it: a remote
                // file is downloaded once, not once for the sample and again for the rows.
                var prefix = System.Buffers.ArrayPool<byte>.Shared.Rent(SamplePrefixBytes);
                var n = await input.ReadAtLeastAsync(prefix.AsMemory(0, SamplePrefixBytes), SamplePrefixBytes, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                var cut = n;
                if (n == SamplePrefixBytes && (Table.Csv.Encoding is null || Table.Csv.Encoding.CodePage == Encoding.UTF8.CodePage))
                {
                    cut = prefix.AsSpan(0, n).LastIndexOf((byte)'\n') + 1; // never infer from a cut-off last line
                    cut = cut > 0 ? cut : n;
                }

                using (var head = new MemoryStream(prefix, 0, cut, writable: false))
                {
                    sample = await InferTextAsync(head, Table, cancellationToken).ConfigureAwait(false);
                }

                input = new PrefixedStream(prefix, n, input);
            }

            if (SchemaWidening.WidenForLaterFile(new StreamSchema(FileColumns.Data(Schema)), sample.Where(f => !FileColumns.IsMetadata(f.Name)).ToList()) is { } widened)
            {
                _writer.Dispose();
                _writer = new RowWriter(Table.Name, FileColumns.Schema(widened.Columns), Table.DeadLetterStream, Math.Min(Table.BatchRows, 65_536));
            }
        }

        _writer.BeginFile(file, ordinal, op);
        var chunks = Table.Format switch
        {
            FileFormat.Parquet => ParquetFiles.ReadAsync(input, _writer, Table.BatchRows, skipThroughLine, cancellationToken),
            FileFormat.JsonLines => ReadJsonLinesAsync(input, skipThroughLine, cancellationToken),
            _ => ReadCsvAsync(input, skipThroughLine, cancellationToken),
        };
        long last = skipThroughLine;
        await foreach (var line in chunks.ConfigureAwait(false))
        {
            last = line;
            yield return Flush(line, false);
        }

        yield return Flush(last, true);
    }

    private FileChunk Flush(long line, bool end) =>
        new(_writer.Builder.Count > 0 ? _writer.Builder.Build() : null, _writer.DeadLetters.Count > 0 ? _writer.DeadLetters.Build() : null, line, end);

    /// <summary>Parses CSV into the writer; yields the last line each time a batch is full.</summary>
    private async IAsyncEnumerable<long> ReadCsvAsync(Stream input, long skipThroughLine, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var _ = input;
        using var csv = new CsvParser(input, Table.Csv);
        var w = _writer;
        var options = Table.Csv;
        int[]? map = null;
        byte[][] names = [];
        var batch = Table.BatchRows;
        while (await csv.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (map is null)
            {
                var n = csv.FieldCount;
                map = new int[n];
                names = new byte[n][];
                var used = new HashSet<int>();
                for (var i = 0; i < n; i++)
                {
                    var name = options.Header ? Encoding.UTF8.GetString(csv.Field(i)) : "_c" + i.ToString(CultureInfo.InvariantCulture);
                    names[i] = Encoding.UTF8.GetBytes(name);
                    var c = w.Schema.IndexOf(name);
                    map[i] = c >= 0 && c < w.DataColumns && used.Add(c) ? c : -1;
                }

                if (options.Header)
                {
                    continue;
                }
            }

            var line = csv.LineNumber;
            if (line <= skipThroughLine)
            {
                continue;
            }

            if (csv.Error is not null || csv.FieldCount != map.Length)
            {
                w.DeadLetter(line, csv.RawRecord, csv.Error ?? string.Create(CultureInfo.InvariantCulture, $"expected {map.Length} fields, found {csv.FieldCount}"));
            }
            else
            {
                w.BeginRow(line);
                for (var i = 0; i < map.Length; i++)
                {
                    var v = csv.Field(i);
                    var c = map[i];
                    if (!csv.WasQuoted(i) && IsNull(options, v))
                    {
                        continue;
                    }

                    if (c < 0)
                    {
                        w.Rescue(names[i], v);
                    }
                    else
                    {
                        w.SetText(c, v, names[i]);
                    }
                }

                w.EndRow();
            }

            if (w.Builder.Count >= batch || w.DeadLetters.Count >= batch)
            {
                yield return line;
            }
        }
    }

    private async IAsyncEnumerable<long> ReadJsonLinesAsync(Stream input, long skipThroughLine, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var _ = input;
        using var lines = new LineReader(input);
        var w = _writer;
        var props = new List<JsonProp>();
        var set = new bool[w.DataColumns];
        var batch = Table.BatchRows;
        var nameBytes = w.Schema.Columns.Take(w.DataColumns).Select(c => Encoding.UTF8.GetBytes(c.Name)).ToArray();
        while (await lines.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var n = lines.LineNumber;
            if (n <= skipThroughLine || lines.IsBlank)
            {
                continue;
            }

            var text = lines.Line;
            if (!JsonLine.TryParse(text, props, out var error))
            {
                w.DeadLetter(n, text, error);
            }
            else
            {
                w.BeginRow(n);
                System.Array.Clear(set);
                foreach (var p in props)
                {
                    var name = JsonLine.Name(text, p);
                    var c = -1;
                    for (var k = 0; k < nameBytes.Length; k++)
                    {
                        if (Ascii.EqualsIgnoreCase(nameBytes[k], name) || name.SequenceEqual(nameBytes[k]))
                        {
                            c = k;
                            break;
                        }
                    }

                    var value = JsonLine.Value(text, p);
                    if (c < 0 || set[c])
                    {
                        w.Rescue(name, value);
                        continue;
                    }

                    if (p.Kind == JsonTokenType.Null)
                    {
                        continue;
                    }

                    set[c] = true;
                    w.SetText(c, value, name);
                }

                w.EndRow();
            }

            if (w.Builder.Count >= batch || w.DeadLetters.Count >= batch)
            {
                yield return n;
            }
        }
    }
}
