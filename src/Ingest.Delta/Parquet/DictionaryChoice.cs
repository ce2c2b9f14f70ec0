using Apache.Arrow;
using Apache.Arrow.Types;

namespace Ingest.Delta.Parquet;

/// <summary>
/// Which columns of a data file are worth dictionary encoding, judged from the file's first rows. Parquet writers
/// dictionary-encode every column by default and fall back to PLAIN only once a row group's dictionary outgrows its
/// page limit; with row groups of <see cref="DataFileWriter.RowGroupRows"/> rows a column of unique 8-byte values
/// (keys, timestamps) never outgrows it, so each row group pays for a hash table and an index page that are larger
/// than the plain values. parquet-mr (Spark's writer) drops the dictionary when the encoded page plus the dictionary
/// is not smaller than the raw values; this applies the same test up front, on the distinct values of the first rows,
/// and leaves the dictionary on wherever it pays. Only the encoding changes: PLAIN is what every reader reads anyway.
/// The scan stops as soon as a checkpoint decides, so a column whose values repeat only after more rows than were
/// looked at is written plain: a somewhat larger file, never a slower write.
/// </summary>
internal static class DictionaryChoice
{
    /// <summary>Below this many rows the sample says too little: every column keeps the writer's default.</summary>
    public const int MinSampleRows = 1024;

    /// <summary>Rows looked at, at most; the scan stops at the first of its checkpoints (4096, 8192, …) that decides.</summary>
    public const int MaxSampleRows = 65_536;

    private const int FirstCheckpoint = 4096;

    /// <summary>The top-level columns of <paramref name="sample"/> to write without a dictionary.</summary>
    public static List<string> PlainColumns(RecordBatch sample)
    {
        var plain = new List<string>();
        if (sample.Length < MinSampleRows)
        {
            return plain;
        }

        var rows = Math.Min(sample.Length, MaxSampleRows);
        for (var c = 0; c < sample.ColumnCount; c++)
        {
            var array = sample.Column(c);
            var isPlain = array switch
            {
                Int64Array a => Fixed(a, a.Values, rows, 8),
                TimestampArray a => Fixed(a, a.Values, rows, 8),
                DoubleArray a => Fixed(a, a.Values, rows, 8),
                Int32Array a => Fixed(a, a.Values, rows, 4),
                Date32Array a => Fixed(a, a.Values, rows, 4),
                FloatArray a => Fixed(a, a.Values, rows, 4),
                Decimal128Array a => Decimal(a, rows),
                BinaryArray a => Binary(a, rows),
                _ => false,
            };

            if (isPlain)
            {
                plain.Add(sample.Schema.FieldsList[c].Name);
            }
        }

        return plain;
    }

    /// <summary>
    /// The verdict after <paramref name="scanned"/> rows: <c>true</c> plain (parquet-mr's test: the indices plus the
    /// dictionary are not smaller than the values), <c>false</c> dictionary (few distinct values: at most one in eight),
    /// <c>null</c> undecided (look at more rows, or at the end keep the dictionary).
    /// </summary>
    private static bool? Verdict(long scanned, long values, long distinct, long plainBytes, long distinctBytes, bool end)
    {
        if (!end && (scanned < FirstCheckpoint || (scanned & (scanned - 1)) != 0))
        {
            return null;
        }

        if (values == 0)
        {
            return end ? false : null;
        }

        var indexBytes = Math.Max(1, Math.Ceiling(Math.Log2(Math.Max(distinct, 2)))) / 8.0;
        if (distinctBytes + (long)Math.Ceiling(values * indexBytes) >= plainBytes)
        {
            return true;
        }

        return distinct * 8 <= values || end ? false : null;
    }

    private static bool Fixed<T>(IArrowArray a, ReadOnlySpan<T> values, int rows, int width)
        where T : unmanaged
    {
        var seen = new HashSet<T>(FirstCheckpoint);
        var valid = 0L;
        var noNulls = a.NullCount == 0;
        for (var i = 0; i < rows; i++)
        {
            if (noNulls || a.IsValid(i))
            {
                seen.Add(values[i]);
                valid++;
            }

            if (Verdict(i + 1, valid, seen.Count, valid * width, (long)seen.Count * width, i + 1 == rows) is { } verdict)
            {
                return verdict;
            }
        }

        return false;
    }

    private static bool Decimal(Decimal128Array a, int rows)
    {
        // Stored as FIXED_LEN_BYTE_ARRAY of the fewest bytes that hold the precision.
        var width = (int)Math.Ceiling(((((Decimal128Type)a.Data.DataType).Precision * Math.Log2(10)) + 1) / 8);
        var seen = new HashSet<Int128>(FirstCheckpoint);
        var valid = 0L;
        var noNulls = a.NullCount == 0;
        for (var i = 0; i < rows; i++)
        {
            if (noNulls || a.IsValid(i))
            {
                seen.Add(ArrowKernels.DecimalAt(a, i));
                valid++;
            }

            if (Verdict(i + 1, valid, seen.Count, valid * width, (long)seen.Count * width, i + 1 == rows) is { } verdict)
            {
                return verdict;
            }
        }

        return false;
    }

    private static bool Binary(BinaryArray a, int rows)
    {
        // Distinct by (length, hash): a rare collision only makes the dictionary look a little smaller.
        var seen = new HashSet<long>(FirstCheckpoint);
        long valid = 0, plainBytes = 0, distinctBytes = 0;
        var noNulls = a.NullCount == 0;
        for (var i = 0; i < rows; i++)
        {
            if (noNulls || a.IsValid(i))
            {
                var bytes = a.GetBytes(i);
                var hash = new HashCode();
                hash.AddBytes(bytes);
                valid++;
                plainBytes += 4 + bytes.Length;
                if (seen.Add(((long)bytes.Length << 32) | (uint)hash.ToHashCode()))
                {
                    distinctBytes += 4 + bytes.Length;
                }
            }

            if (Verdict(i + 1, valid, seen.Count, plainBytes, distinctBytes, i + 1 == rows) is { } verdict)
            {
                return verdict;
            }
        }

        return false;
    }
}
