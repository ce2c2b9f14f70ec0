using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Parquet;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Operations;

/// <summary>
/// Decides from a file's stats (min/max/nullCount of the key columns) and partition values whether it may hold any
/// source key. Only partition columns that are key columns prune by partition: a key's stored row may sit in another
/// partition than the source row's (its partition column changed, or a delete carries only its key), so with a key that
/// does not include the partition columns every partition is searched, by key stats alone. Source keys are converted once to comparable values and sorted on the first key column, so each file
/// costs a binary search plus a walk over the source keys inside its range, not a pass over the whole source.
/// </summary>
internal sealed class FilePruning
{
    private readonly StreamSchema _schema;
    private readonly int[] _keyOrdinals;
    private readonly bool[] _keyIsPartition;
    private readonly IReadOnlyList<string> _partitionNames;
    private readonly string[]? _sourcePartitionKeys;
    private readonly StatValue?[][] _values;
    private readonly int[] _sortedByFirstKey;
    private readonly List<int> _nullFirstKey = [];
    private readonly int _rows;

    public FilePruning(RecordBatch source, StreamSchema schema, IReadOnlyList<string> keyColumns, IReadOnlyList<string> partitionColumns)
    {
        _schema = schema;
        _rows = source.Length;
        _keyOrdinals = keyColumns.Select(schema.IndexOf).ToArray();
        var partitionSet = new HashSet<string>(partitionColumns, StringComparer.OrdinalIgnoreCase);
        _keyIsPartition = _keyOrdinals.Select(o => partitionSet.Contains(schema.Columns[o].Name)).ToArray();
        // The partition columns that are part of the key: for those the source row's value is the stored row's.
        var keySet = new HashSet<string>(keyColumns, StringComparer.OrdinalIgnoreCase);
        _partitionNames = partitionColumns.Where(keySet.Contains).ToList();
        if (_partitionNames.Count > 0)
        {
            _sourcePartitionKeys = new string[_rows];
            var values = new string?[_partitionNames.Count];
            var ordinals = _partitionNames.Select(schema.IndexOf).ToArray();
            for (var r = 0; r < _rows; r++)
            {
                for (var p = 0; p < values.Length; p++)
                {
                    values[p] = Partitioning.Format(source.Column(ordinals[p]), r, schema.Columns[ordinals[p]].Type, _partitionNames[p]);
                }

                _sourcePartitionKeys[r] = Partitioning.Directory(_partitionNames, values);
            }
        }

        _values = new StatValue?[_keyOrdinals.Length][];
        for (var k = 0; k < _keyOrdinals.Length; k++)
        {
            var array = source.Column(_keyOrdinals[k]);
            var column = new StatValue?[_rows];
            for (var r = 0; r < _rows; r++)
            {
                column[r] = StatValue.FromArray(array, r);
            }

            _values[k] = column;
        }

        var first = _values[0];
        var sorted = new List<int>(_rows);
        for (var r = 0; r < _rows; r++)
        {
            if (first[r] is null)
            {
                _nullFirstKey.Add(r);
            }
            else
            {
                sorted.Add(r);
            }
        }

        _sortedByFirstKey = sorted.ToArray();
        // Sources often come in key order (a snapshot read by primary key): then there is nothing to sort.
        var ordered = true;
        for (var i = 1; i < _sortedByFirstKey.Length && ordered; i++)
        {
            ordered = first[_sortedByFirstKey[i - 1]]!.Value.CompareTo(first[_sortedByFirstKey[i]]!.Value) <= 0;
        }

        if (!ordered)
        {
            System.Array.Sort(_sortedByFirstKey, (a, b) => first[a]!.Value.CompareTo(first[b]!.Value));
        }
    }

    public bool MayContainAnyKey(AddFile file)
    {
        JsonNode? stats = null;
        if (file.Stats is not null)
        {
            try
            {
                stats = JsonNode.Parse(file.Stats);
            }
            catch (System.Text.Json.JsonException)
            {
                stats = null;
            }
        }

        var numRecords = stats?["numRecords"]?.GetValue<long>();
        if (numRecords == 0)
        {
            return false;
        }

        var filePartition = _sourcePartitionKeys is null ? null : Partitioning.Directory(_partitionNames, _partitionNames.Select(p => file.PartitionValues.TryGetValue(p, out var v) && !string.IsNullOrEmpty(v) ? v : null).ToList());

        var bounds = new Bound[_keyOrdinals.Length];
        for (var k = 0; k < bounds.Length; k++)
        {
            bounds[k] = _keyIsPartition[k] || stats is null ? Bound.Unknown : Bound.FromStats(stats, _schema.Columns[_keyOrdinals[k]], numRecords);
        }

        bool RowMatches(int r)
        {
            if (filePartition is not null && !string.Equals(_sourcePartitionKeys![r], filePartition, StringComparison.Ordinal))
            {
                return false;
            }

            for (var k = 0; k < bounds.Length; k++)
            {
                if (!bounds[k].Admits(_values[k][r]))
                {
                    return false;
                }
            }

            return true;
        }

        var b0 = bounds[0];
        if (b0.Min is null || b0.Max is null)
        {
            for (var r = 0; r < _rows; r++)
            {
                if (RowMatches(r))
                {
                    return true;
                }
            }

            return false;
        }

        foreach (var r in _nullFirstKey)
        {
            if (RowMatches(r))
            {
                return true;
            }
        }

        // First source key >= min, then walk while <= max.
        var first = _values[0];
        int lo = 0, hi = _sortedByFirstKey.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (first[_sortedByFirstKey[mid]]!.Value.CompareTo(b0.Min.Value) < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        for (var i = lo; i < _sortedByFirstKey.Length; i++)
        {
            var r = _sortedByFirstKey[i];
            if (first[r]!.Value.CompareTo(b0.Max.Value) > 0)
            {
                break;
            }

            if (RowMatches(r))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What a file's stats say about one key column.</summary>
    internal readonly record struct Bound(StatValue? Min, StatValue? Max, bool MayHoldNull, bool MayHoldValue)
    {
        public static readonly Bound Unknown = new(null, null, true, true);

        public static Bound FromStats(JsonNode stats, Field column, long? numRecords)
        {
            var nulls = stats["nullCount"]?[column.Name]?.GetValue<long>();
            var min = StatValue.FromStat(stats["minValues"]?[column.Name], column.Type, isMax: false);
            var max = StatValue.FromStat(stats["maxValues"]?[column.Name], column.Type, isMax: true);
            var allNull = nulls is not null && numRecords is not null && nulls == numRecords;
            return new Bound(min, max, nulls is null or > 0, !allNull);
        }

        public bool Admits(StatValue? value)
        {
            if (value is not { } v)
            {
                return MayHoldNull;
            }

            if (!MayHoldValue)
            {
                return false;
            }

            return (Min is null || v.CompareTo(Min.Value) >= 0) && (Max is null || v.CompareTo(Max.Value) <= 0);
        }
    }
}

/// <summary>
/// The source's key range: per key column its least and greatest value and whether it holds a null, found in one typed
/// pass without a value per row. A cheap first check before <see cref="FilePruning"/>: a file whose stats miss the range
/// on any key column cannot hold a source key. Also tells whether the rows are in strictly ascending key order (then no
/// key occurs twice).
/// </summary>
internal sealed class KeyRange
{
    private readonly StreamSchema _schema;
    private readonly int[] _keyOrdinals;
    private readonly bool[] _usable;
    private readonly StatValue?[] _min;
    private readonly StatValue?[] _max;
    private readonly bool[] _hasNull;
    private readonly bool[] _hasValue;

    public KeyRange(RecordBatch source, StreamSchema schema, IReadOnlyList<string> keyColumns, IReadOnlyList<string> partitionColumns)
    {
        _schema = schema;
        _keyOrdinals = keyColumns.Select(schema.IndexOf).ToArray();
        var partitionSet = new HashSet<string>(partitionColumns, StringComparer.OrdinalIgnoreCase);
        var n = _keyOrdinals.Length;
        _usable = new bool[n];
        _min = new StatValue?[n];
        _max = new StatValue?[n];
        _hasNull = new bool[n];
        _hasValue = new bool[n];
        var comparers = new Comparison<int>?[n];
        for (var k = 0; k < n; k++)
        {
            var array = source.Column(_keyOrdinals[k]);
            comparers[k] = Comparer(array);
            _hasNull[k] = array.NullCount > 0;
            _hasValue[k] = array.NullCount < source.Length;
            // Partition columns have no stats in a file; types without a comparable form do not prune.
            _usable[k] = comparers[k] is not null && !partitionSet.Contains(schema.Columns[_keyOrdinals[k]].Name);
            if (comparers[k] is not { } compare || !_hasValue[k])
            {
                continue;
            }

            int lo = -1, hi = -1;
            for (var r = 0; r < source.Length; r++)
            {
                if (array.IsNull(r))
                {
                    continue;
                }

                if (lo < 0)
                {
                    lo = hi = r;
                    continue;
                }

                if (compare(r, lo) < 0)
                {
                    lo = r;
                }
                else if (compare(r, hi) > 0)
                {
                    hi = r;
                }
            }

            _min[k] = StatValue.FromArray(array, lo);
            _max[k] = StatValue.FromArray(array, hi);
        }

        StrictlyAscending = comparers.All(c => c is not null) && !_hasNull.Any(h => h) && Ascending(comparers, source.Length);
    }

    /// <summary>Whether the rows are in strictly ascending key order, no key null: then no key occurs twice.</summary>
    public bool StrictlyAscending { get; }

    private static bool Ascending(Comparison<int>?[] comparers, int rows)
    {
        for (var r = 1; r < rows; r++)
        {
            var c = 0;
            for (var k = 0; k < comparers.Length && c == 0; k++)
            {
                c = comparers[k]!(r - 1, r);
            }

            if (c >= 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether the file's stats may hold a key inside the range on every key column (true when it has no stats).</summary>
    public bool MayOverlap(AddFile file)
    {
        if (file.Stats is null)
        {
            return true;
        }

        JsonNode? stats;
        try
        {
            stats = JsonNode.Parse(file.Stats);
        }
        catch (System.Text.Json.JsonException)
        {
            return true;
        }

        if (stats is null)
        {
            return true;
        }

        var numRecords = stats["numRecords"]?.GetValue<long>();
        if (numRecords == 0)
        {
            return false;
        }

        for (var k = 0; k < _keyOrdinals.Length; k++)
        {
            if (!_usable[k])
            {
                continue;
            }

            var b = FilePruning.Bound.FromStats(stats, _schema.Columns[_keyOrdinals[k]], numRecords);
            var values = _hasValue[k] && b.MayHoldValue
                && (b.Min is null || _max[k]!.Value.CompareTo(b.Min.Value) >= 0)
                && (b.Max is null || _min[k]!.Value.CompareTo(b.Max.Value) <= 0);
            if (!values && !(_hasNull[k] && b.MayHoldNull))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Compares two rows of the array in <see cref="StatValue"/> order; null for a type without one.</summary>
    private static Comparison<int>? Comparer(IArrowArray array) => array switch
    {
        Int64Array x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        Int32Array x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        Int16Array x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        Int8Array x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        Date32Array x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        TimestampArray x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        DoubleArray x => (i, j) => x.Values[i].CompareTo(x.Values[j]),
        FloatArray x => (i, j) => ((double)x.Values[i]).CompareTo(x.Values[j]),
        Decimal128Array x => (i, j) => ArrowKernels.DecimalAt(x, i).CompareTo(ArrowKernels.DecimalAt(x, j)),
        StringArray x => (i, j) => x.GetBytes(i).SequenceCompareTo(x.GetBytes(j)),
        _ => null,
    };
}

/// <summary>A key value or statistic in comparable form: integers, dates and timestamps as longs, decimals unscaled, strings as UTF-8 (Spark's order).</summary>
internal readonly struct StatValue : IComparable<StatValue>
{
    private readonly long _long;
    private readonly double _double;
    private readonly Int128 _decimal;
    private readonly byte[]? _bytes;
    private readonly byte _kind;

    private StatValue(byte kind, long l = 0, double d = 0, Int128 dec = default, byte[]? bytes = null)
    {
        _kind = kind;
        _long = l;
        _double = d;
        _decimal = dec;
        _bytes = bytes;
    }

    /// <summary>Null for a null value or a type without min/max stats (such a key column does not prune).</summary>
    public static StatValue? FromArray(IArrowArray a, int r)
    {
        if (a.IsNull(r))
        {
            return null;
        }

        return a switch
        {
            Int64Array x => new StatValue(1, l: x.Values[r]),
            Int32Array x => new StatValue(1, l: x.Values[r]),
            Int16Array x => new StatValue(1, l: x.Values[r]),
            Int8Array x => new StatValue(1, l: x.Values[r]),
            Date32Array x => new StatValue(1, l: x.Values[r]),
            TimestampArray x => new StatValue(1, l: x.Values[r]),
            DoubleArray x => new StatValue(2, d: x.Values[r]),
            FloatArray x => new StatValue(2, d: x.Values[r]),
            Decimal128Array x => new StatValue(3, dec: ArrowKernels.DecimalAt(x, r)),
            StringArray x => new StatValue(4, bytes: x.GetBytes(r).ToArray()),
            _ => new StatValue(0),
        };
    }

    public static StatValue? FromStat(JsonNode? node, DataType type, bool isMax)
    {
        if (node is not JsonValue)
        {
            return null;
        }

        try
        {
            return type switch
            {
                PrimitiveType { Kind: PrimitiveKind.Int8 or PrimitiveKind.Int16 or PrimitiveKind.Int32 or PrimitiveKind.Int64 } => new StatValue(1, l: node.GetValue<long>()),
                PrimitiveType { Kind: PrimitiveKind.Date } => new StatValue(1, l: DateOnly.ParseExact(node.GetValue<string>(), "yyyy-MM-dd", CultureInfo.InvariantCulture).DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber),
                // Timestamp stats are truncated to milliseconds: a max covers up to 999 µs more.
                PrimitiveType { Kind: PrimitiveKind.Timestamp or PrimitiveKind.TimestampNtz } => new StatValue(1, l: Partitioning.ParseTimestampMicros(node.GetValue<string>()) + (isMax ? 999 : 0)),
                PrimitiveType { Kind: PrimitiveKind.Float or PrimitiveKind.Double } when node.GetValueKind() == System.Text.Json.JsonValueKind.Number => new StatValue(2, d: node.GetValue<double>()),
                DecimalType d => new StatValue(3, dec: Partitioning.ParseDecimal(node.ToJsonString(), d.Scale)),
                PrimitiveType { Kind: PrimitiveKind.String } => new StatValue(4, bytes: Encoding.UTF8.GetBytes(node.GetValue<string>())),
                _ => null,
            };
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or OverflowException)
        {
            return null;
        }
    }

    public int CompareTo(StatValue other) => _kind switch
    {
        _ when _kind != other._kind => 0,
        1 => _long.CompareTo(other._long),
        2 => _double.CompareTo(other._double),
        3 => _decimal.CompareTo(other._decimal),
        4 => _bytes.AsSpan().SequenceCompareTo(other._bytes),
        _ => 0,
    };
}
