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
/// source key. Source keys are converted once to comparable values and sorted on the first key column, so each file
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
        _partitionNames = partitionColumns;
        if (partitionColumns.Count > 0)
        {
            _sourcePartitionKeys = new string[_rows];
            var values = new string?[partitionColumns.Count];
            var ordinals = partitionColumns.Select(schema.IndexOf).ToArray();
            for (var r = 0; r < _rows; r++)
            {
                for (var p = 0; p < values.Length; p++)
                {
                    values[p] = Partitioning.Format(source.Column(ordinals[p]), r, schema.Columns[ordinals[p]].Type, partitionColumns[p]);
                }

                _sourcePartitionKeys[r] = Partitioning.Directory(partitionColumns, values);
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
        System.Array.Sort(_sortedByFirstKey, (a, b) => first[a]!.Value.CompareTo(first[b]!.Value));
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
    private readonly record struct Bound(StatValue? Min, StatValue? Max, bool MayHoldNull, bool MayHoldValue)
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
