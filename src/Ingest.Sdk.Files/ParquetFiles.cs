using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Files;

/// <summary>
/// Parquet through ParquetSharp's Arrow reader, one row group batch at a time. Parquet needs random access:
/// a store stream that cannot seek is spilled to a temporary file first.
/// </summary>
internal static class ParquetFiles
{
    public static async Task<IReadOnlyList<Field>> InferAsync(Stream raw, CancellationToken cancellationToken)
    {
        await using var local = await LocalFile.OpenAsync(raw, cancellationToken).ConfigureAwait(false);
        using var reader = new ParquetSharp.Arrow.FileReader(local.Path);
        var fields = new List<Field>();
        foreach (var f in reader.Schema.FieldsList)
        {
            DataType type;
            try
            {
                type = DataType.FromArrowType(f.DataType);
                if (type is not (PrimitiveType or DecimalType))
                {
                    type = DataType.String;
                }
            }
            catch (NotSupportedException)
            {
                type = DataType.String;
            }

            fields.Add(new Field(f.Name, type));
        }

        return fields;
    }

    public static async IAsyncEnumerable<long> ReadAsync(Stream raw, RowWriter w, int batchRows, long skipThroughRow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var local = await LocalFile.OpenAsync(raw, cancellationToken).ConfigureAwait(false);
        using var reader = new ParquetSharp.Arrow.FileReader(local.Path);
        var fileFields = reader.Schema.FieldsList;
        var map = new int[fileFields.Count];
        var names = new byte[fileFields.Count][];
        for (var i = 0; i < map.Length; i++)
        {
            var c = w.Schema.IndexOf(fileFields[i].Name);
            map[i] = c >= 0 && c < w.DataColumns ? c : -1;
            names[i] = Encoding.UTF8.GetBytes(fileFields[i].Name);
        }

        using var batches = reader.GetRecordBatchReader();
        long row = 0;
        var text = new ArrayBufferWriter<byte>(64);
        while (await batches.ReadNextRecordBatchAsync(cancellationToken).ConfigureAwait(false) is { } batch)
        {
            using (batch)
            {
                for (var r = 0; r < batch.Length; r++)
                {
                    row++;
                    if (row <= skipThroughRow)
                    {
                        continue;
                    }

                    w.BeginRow(row);
                    for (var i = 0; i < map.Length; i++)
                    {
                        var array = batch.Column(i);
                        if (array.IsNull(r))
                        {
                            continue;
                        }

                        text.Clear();
                        Format(array, r, text);
                        if (map[i] < 0)
                        {
                            w.Rescue(names[i], text.WrittenSpan);
                        }
                        else
                        {
                            w.SetText(map[i], text.WrittenSpan, names[i]);
                        }
                    }

                    w.EndRow();
                    if (w.Builder.Count >= batchRows)
                    {
                        yield return row;
                    }
                }
            }
        }
    }

    /// <summary>The value as the text the CSV reader would see (ISO dates and times, invariant numbers).</summary>
    private static void Format(IArrowArray array, int row, ArrayBufferWriter<byte> output)
    {
        var span = output.GetSpan(64);
        int n;
        switch (array)
        {
            case StringArray s:
                output.Write(s.GetBytes(row));
                return;
            case BinaryArray b:
                output.Write(b.GetBytes(row));
                return;
            case BooleanArray b:
                output.Write(b.GetValue(row) == true ? "true"u8 : "false"u8);
                return;
            case Int8Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case Int16Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case Int32Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case Int64Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case UInt8Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case UInt16Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case UInt32Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case UInt64Array a: Utf8Formatter.TryFormat(a.GetValue(row)!.Value, span, out n); break;
            case FloatArray a: a.GetValue(row)!.Value.TryFormat(span, out n, "R", CultureInfo.InvariantCulture); break;
            case DoubleArray a: a.GetValue(row)!.Value.TryFormat(span, out n, "R", CultureInfo.InvariantCulture); break;
            case Decimal128Array a: a.GetSqlDecimal(row)!.Value.ToString().AsSpan().ToUtf8(span, out n); break;
            case Date32Array a: a.GetDateOnly(row)!.Value.TryFormat(span, out n, "yyyy-MM-dd", CultureInfo.InvariantCulture); break;
            case Date64Array a: a.GetDateOnly(row)!.Value.TryFormat(span, out n, "yyyy-MM-dd", CultureInfo.InvariantCulture); break;
            case TimestampArray a:
            {
                var type = (Apache.Arrow.Types.TimestampType)a.Data.DataType;
                var value = a.GetTimestamp(row)!.Value;
                var zoned = !string.IsNullOrEmpty(type.Timezone);
                value.UtcDateTime.TryFormat(span, out n, zoned ? "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'" : "yyyy-MM-dd'T'HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
                break;
            }

            default:
            {
                // Nested values (lists, structs, maps) as JSON text, like nested JSON lines values.
                using var json = new System.Text.Json.Utf8JsonWriter(output);
                Ingest.Sdk.Records.ArrowValues.WriteJson(json, array, row);
                return;
            }
        }

        output.Advance(n);
    }

    private static void ToUtf8(this ReadOnlySpan<char> chars, Span<byte> target, out int written) =>
        written = Encoding.UTF8.GetBytes(chars, target);

    /// <summary>A local path for the file: the store's own file when it has one, else a temporary copy.</summary>
    private sealed class LocalFile : IAsyncDisposable
    {
        private readonly bool _temporary;

        private LocalFile(string path, bool temporary)
        {
            Path = path;
            _temporary = temporary;
        }

        public string Path { get; }

        public static async Task<LocalFile> OpenAsync(Stream raw, CancellationToken cancellationToken)
        {
            if (raw is FileStream fs && File.Exists(fs.Name))
            {
                return new LocalFile(fs.Name, false);
            }

            var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ingest-parquet-" + Guid.NewGuid().ToString("N") + ".parquet");
            await using (var copy = File.Create(path))
            {
                await raw.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
            }

            return new LocalFile(path, true);
        }

        public ValueTask DisposeAsync()
        {
            if (_temporary)
            {
                try
                {
                    File.Delete(Path);
                }
                catch (IOException)
                {
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}
