using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Parquet;

/// <summary>
/// Per-file statistics as Spark writes them (PROTOCOL.md "Per-file Statistics"): numRecords, and per leaf column
/// minValues/maxValues (numeric, decimal, date, timestamp, string) and nullCount, nested like the schema, for the first
/// <c>delta.dataSkippingNumIndexedCols</c> leaves (32 by default). Values are read with typed loops, never boxed.
/// </summary>
internal sealed class StatsCollector
{
    /// <summary>Spark's <c>delta.dataSkippingStringPrefixLength</c> default.</summary>
    public const int StringPrefixLength = 32;

    /// <summary>Batches of at least this many rows get their columns scanned in parallel.</summary>
    private const int ParallelRows = 16_384;

    private readonly List<(int Ordinal, StatNode Node)> _roots = [];
    private long _numRecords;

    /// <param name="dataColumns">The columns stored in the file (partition columns excluded), in file order.</param>
    /// <param name="numIndexedCols">How many leaf columns get statistics; negative means all.</param>
    public StatsCollector(IReadOnlyList<Field> dataColumns, int numIndexedCols)
    {
        var budget = numIndexedCols < 0 ? int.MaxValue : numIndexedCols;
        for (var i = 0; i < dataColumns.Count && budget > 0; i++)
        {
            var node = StatNode.Create(dataColumns[i].Name, dataColumns[i].Type, ref budget);
            if (node is not null)
            {
                _roots.Add((i, node));
            }
        }
    }

    public long NumRecords => _numRecords;

    public void Add(RecordBatch batch)
    {
        _numRecords += batch.Length;
        if (batch.Length >= ParallelRows && _roots.Count > 1)
        {
            // Columns are independent: one pass each, spread over the cores.
            Parallel.For(0, _roots.Count, i => _roots[i].Node.Add(batch.Column(_roots[i].Ordinal), null));
            return;
        }

        foreach (var (ordinal, node) in _roots)
        {
            node.Add(batch.Column(ordinal), null);
        }
    }

    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Log.ActionJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("numRecords", _numRecords);
            w.WriteStartObject("minValues");
            foreach (var (_, n) in _roots)
            {
                n.WriteMin(w);
            }

            w.WriteEndObject();
            w.WriteStartObject("maxValues");
            foreach (var (_, n) in _roots)
            {
                n.WriteMax(w);
            }

            w.WriteEndObject();
            w.WriteStartObject("nullCount");
            foreach (var (_, n) in _roots)
            {
                n.WriteNullCount(w);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>The prefix of a min string (never splitting a surrogate pair).</summary>
    public static string TruncateMin(string s)
    {
        if (s.Length <= StringPrefixLength)
        {
            return s;
        }

        var len = char.IsHighSurrogate(s[StringPrefixLength - 1]) ? StringPrefixLength + 1 : StringPrefixLength;
        return s[..len];
    }

    /// <summary>
    /// The prefix of a max string plus a tie-breaker that keeps it an upper bound: U+007F when the first dropped char is
    /// below U+007F, else U+10FFFF (Delta's StatisticsCollection.truncateMaxStringAgg).
    /// </summary>
    public static string? TruncateMax(string s)
    {
        if (s.Length <= StringPrefixLength)
        {
            return s;
        }

        var len = char.IsHighSurrogate(s[StringPrefixLength - 1]) ? StringPrefixLength + 1 : StringPrefixLength;
        if (len >= s.Length)
        {
            return s;
        }

        return s[len] < '\u007F' ? s[..len] + "\u007F" : s[..len] + char.ConvertFromUtf32(0x10FFFF);
    }

    /// <summary>Spark's JSON spelling of a timestamp statistic: millisecond precision (floored), UTC.</summary>
    public static string FormatTimestamp(long micros, bool utc)
    {
        var millis = micros >= 0 ? micros / 1000 : -((-micros + 999) / 1000);
        var dt = DateTime.UnixEpoch.AddMilliseconds(millis);
        return utc
            ? dt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
            : dt.ToString("yyyy-MM-dd'T'HH:mm:ss.fff", CultureInfo.InvariantCulture);
    }

    /// <summary>Java's Double.toString-like spelling: always a decimal point or exponent.</summary>
    public static void WriteDouble(Utf8JsonWriter w, string name, double v, bool isFloat)
    {
        if (double.IsNaN(v) || double.IsInfinity(v))
        {
            // Jackson (Spark) quotes non-finite numbers.
            w.WriteString(name, double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
            return;
        }

        var text = isFloat ? ((float)v).ToString("R", CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture);
        if (!text.Contains('.', StringComparison.Ordinal) && !text.Contains('E', StringComparison.Ordinal))
        {
            text += ".0";
        }

        w.WritePropertyName(name);
        w.WriteRawValue(text, skipInputValidation: true);
    }
}

internal abstract class StatNode
{
    protected StatNode(string name) => Name = name;

    public string Name { get; }

    public long NullCount { get; protected set; }

    public virtual bool HasMinMax => false;

    public static StatNode? Create(string name, DataType type, ref int budget)
    {
        if (type is StructType st)
        {
            var children = new List<(int, StatNode)>();
            for (var i = 0; i < st.Fields.Count && budget > 0; i++)
            {
                var child = Create(st.Fields[i].Name, st.Fields[i].Type, ref budget);
                if (child is not null)
                {
                    children.Add((i, child));
                }
            }

            return children.Count == 0 ? null : new StructNode(name, children);
        }

        if (budget <= 0)
        {
            return null;
        }

        budget--;
        return type switch
        {
            PrimitiveType { Kind: PrimitiveKind.Int8 or PrimitiveKind.Int16 or PrimitiveKind.Int32 or PrimitiveKind.Int64 } => new IntegerNode(name),
            PrimitiveType { Kind: PrimitiveKind.Float } => new FloatingNode(name, isFloat: true),
            PrimitiveType { Kind: PrimitiveKind.Double } => new FloatingNode(name, isFloat: false),
            PrimitiveType { Kind: PrimitiveKind.Date } => new DateNode(name),
            PrimitiveType { Kind: PrimitiveKind.Timestamp } => new TimestampNode(name, utc: true),
            PrimitiveType { Kind: PrimitiveKind.TimestampNtz } => new TimestampNode(name, utc: false),
            PrimitiveType { Kind: PrimitiveKind.String } => new StringNode(name),
            DecimalType d => new DecimalNode(name, d.Scale),
            _ => new NullCountNode(name),
        };
    }

    /// <param name="parentValid">Rows whose enclosing structs are all non-null (null = every row).</param>
    public abstract void Add(IArrowArray array, bool[]? parentValid);

    public abstract void WriteMin(Utf8JsonWriter w);

    public abstract void WriteMax(Utf8JsonWriter w);

    public virtual void WriteNullCount(Utf8JsonWriter w) => w.WriteNumber(Name, NullCount);

    protected static bool Valid(IArrowArray a, bool[]? parentValid, int i) => a.IsValid(i) && (parentValid is null || parentValid[i]);

    /// <summary>Row validity read straight from the bitmap (and the enclosing structs'); <c>All</c> when no row is null.</summary>
    protected readonly ref struct Validity
    {
        private readonly ReadOnlySpan<byte> _bitmap;
        private readonly int _offset;
        private readonly bool[]? _parent;

        public Validity(IArrowArray a, bool[]? parentValid)
        {
            _bitmap = a.NullCount == 0 ? default : a.Data.Buffers[0].Span;
            _offset = a.Offset;
            _parent = parentValid;
            All = _bitmap.IsEmpty && parentValid is null;
        }

        public bool All { get; }

        public bool this[int i] => (_bitmap.IsEmpty || Apache.Arrow.BitUtility.GetBit(_bitmap, _offset + i)) && (_parent is null || _parent[i]);
    }

    /// <summary>
    /// Folds the valid values of <paramref name="values"/> (the array's value span) into <paramref name="min"/> and
    /// <paramref name="max"/>, each converted to <typeparamref name="TStat"/>, and counts the nulls. Typed, never boxed.
    /// </summary>
    /// <returns>Whether any value was valid.</returns>
    protected bool ScanMinMax<TValue, TStat>(IArrowArray a, ReadOnlySpan<TValue> values, bool[]? parentValid, ref TStat min, ref TStat max)
        where TValue : struct, System.Numerics.INumberBase<TValue>
        where TStat : struct, System.Numerics.INumber<TStat>
    {
        TStat lo = min, hi = max;
        long nulls = 0;
        var any = false;
        var valid = new Validity(a, parentValid);
        if (valid.All)
        {
            // No nulls: one tight pass.
            foreach (var x in values)
            {
                var v = TStat.CreateTruncating(x);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }

            min = lo;
            max = hi;
            return values.Length > 0;
        }

        for (var i = 0; i < values.Length; i++)
        {
            if (!valid[i])
            {
                nulls++;
                continue;
            }

            var v = TStat.CreateTruncating(values[i]);
            if (v < lo)
            {
                lo = v;
            }

            if (v > hi)
            {
                hi = v;
            }

            any = true;
        }

        min = lo;
        max = hi;
        NullCount += nulls;
        return any;
    }
}

internal sealed class StructNode(string name, List<(int Ordinal, StatNode Node)> children) : StatNode(name)
{
    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        var s = (StructArray)array;
        bool[]? valid = parentValid;
        if (s.NullCount > 0 || parentValid is not null)
        {
            valid = new bool[s.Length];
            for (var i = 0; i < valid.Length; i++)
            {
                valid[i] = s.IsValid(i) && (parentValid is null || parentValid[i]);
            }
        }

        foreach (var (ordinal, node) in children)
        {
            node.Add(ArrowKernels.StructChild(s, ordinal), valid);
        }
    }

    private void WriteChildren(Utf8JsonWriter w, Action<StatNode, Utf8JsonWriter> write, bool minMax)
    {
        if (minMax && !children.Any(c => c.Node.HasMinMax))
        {
            return;
        }

        w.WriteStartObject(Name);
        foreach (var (_, node) in children)
        {
            write(node, w);
        }

        w.WriteEndObject();
    }

    public override bool HasMinMax => children.Any(c => c.Node.HasMinMax);

    public override void WriteMin(Utf8JsonWriter w) => WriteChildren(w, (n, x) => n.WriteMin(x), minMax: true);

    public override void WriteMax(Utf8JsonWriter w) => WriteChildren(w, (n, x) => n.WriteMax(x), minMax: true);

    public override void WriteNullCount(Utf8JsonWriter w) => WriteChildren(w, (n, x) => n.WriteNullCount(x), minMax: false);
}

internal sealed class NullCountNode(string name) : StatNode(name)
{
    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        if (parentValid is null)
        {
            NullCount += array.NullCount;
            return;
        }

        for (var i = 0; i < array.Length; i++)
        {
            if (!Valid(array, parentValid, i))
            {
                NullCount++;
            }
        }
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
    }
}

internal sealed class IntegerNode(string name) : StatNode(name)
{
    private long _min = long.MaxValue;
    private long _max = long.MinValue;
    private bool _any;

    public override bool HasMinMax => _any;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        switch (array)
        {
            case Int64Array a: _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max); break;
            case Int32Array a: _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max); break;
            case Int16Array a: _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max); break;
            case Int8Array a: _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max); break;
            default: throw new InvalidOperationException($"Column '{Name}' is not an integer array ({array.Data.DataType.Name}).");
        }
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WriteNumber(Name, _min);
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WriteNumber(Name, _max);
        }
    }
}

internal sealed class FloatingNode(string name, bool isFloat) : StatNode(name)
{
    private double _min = double.PositiveInfinity;
    private double _max = double.NegativeInfinity;
    private bool _any;
    private bool _nan;

    public override bool HasMinMax => _any;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        switch (array)
        {
            case DoubleArray a: Scan(a, a.Values, parentValid); break;
            case FloatArray a: Scan(a, a.Values, parentValid); break;
            default: throw new InvalidOperationException($"Column '{Name}' is not a floating-point array ({array.Data.DataType.Name}).");
        }
    }

    private void Scan<T>(IArrowArray a, ReadOnlySpan<T> values, bool[]? parentValid)
        where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!Valid(a, parentValid, i))
            {
                NullCount++;
                continue;
            }

            var v = double.CreateTruncating(values[i]);
            if (double.IsNaN(v))
            {
                // Spark orders NaN above every number.
                _nan = true;
                _any = true;
                continue;
            }

            _min = Math.Min(_min, v);
            _max = Math.Max(_max, v);
            _any = true;
        }
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_any)
        {
            StatsCollector.WriteDouble(w, Name, double.IsPositiveInfinity(_min) && _nan ? double.NaN : _min, isFloat);
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_any)
        {
            StatsCollector.WriteDouble(w, Name, _nan ? double.NaN : _max, isFloat);
        }
    }
}

internal sealed class DateNode(string name) : StatNode(name)
{
    private int _min = int.MaxValue;
    private int _max = int.MinValue;
    private bool _any;

    public override bool HasMinMax => _any;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        var a = (Date32Array)array;
        _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max);
    }

    private static string Format(int days) => DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WriteString(Name, Format(_min));
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WriteString(Name, Format(_max));
        }
    }
}

internal sealed class TimestampNode(string name, bool utc) : StatNode(name)
{
    private long _min = long.MaxValue;
    private long _max = long.MinValue;
    private bool _any;

    public override bool HasMinMax => _any;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        var a = (TimestampArray)array;
        if (((Apache.Arrow.Types.TimestampType)a.Data.DataType).Unit != Apache.Arrow.Types.TimeUnit.Microsecond)
        {
            throw new InvalidOperationException($"Column '{Name}' must hold microsecond timestamps.");
        }

        _any |= ScanMinMax(a, a.Values, parentValid, ref _min, ref _max);
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WriteString(Name, StatsCollector.FormatTimestamp(_min, utc));
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_any)
        {
            // Spark truncates the max to milliseconds too; readers widen it by 1 ms when skipping.
            w.WriteString(Name, StatsCollector.FormatTimestamp(_max, utc));
        }
    }
}

internal sealed class DecimalNode(string name, int scale) : StatNode(name)
{
    private Int128 _min = Int128.MaxValue;
    private Int128 _max = Int128.MinValue;
    private bool _any;

    public override bool HasMinMax => _any;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        var a = (Decimal128Array)array;
        if (BitConverter.IsLittleEndian)
        {
            // Arrow's decimal128 is a little-endian 16-byte integer: the buffer is an Int128 span.
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Int128>(a.ValueBuffer.Span).Slice(a.Offset, a.Length);
            _any |= ScanMinMax(a, values, parentValid, ref _min, ref _max);
            return;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (!Valid(a, parentValid, i))
            {
                NullCount++;
                continue;
            }

            var v = ArrowKernels.DecimalAt(a, i);
            if (v < _min)
            {
                _min = v;
            }

            if (v > _max)
            {
                _max = v;
            }

            _any = true;
        }
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WritePropertyName(Name);
            w.WriteRawValue(DecimalMath.ToText(_min, scale), skipInputValidation: true);
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_any)
        {
            w.WritePropertyName(Name);
            w.WriteRawValue(DecimalMath.ToText(_max, scale), skipInputValidation: true);
        }
    }
}

internal sealed class StringNode(string name) : StatNode(name)
{
    private byte[]? _min;
    private byte[]? _max;

    public override bool HasMinMax => _min is not null;

    public override void Add(IArrowArray array, bool[]? parentValid)
    {
        var a = (StringArray)array;
        // Track the batch's extremes by row and copy them once per batch: sorted input would otherwise copy every row.
        int minRow = -1, maxRow = -1;
        var valid = new Validity(a, parentValid);
        var offsets = a.ValueOffsets;
        var data = a.ValueBuffer.Span;
        ReadOnlySpan<byte> lo = _min, hi = _max;
        for (var i = 0; i < a.Length; i++)
        {
            if (!valid.All && !valid[i])
            {
                NullCount++;
                continue;
            }

            // Spark compares strings by their UTF-8 bytes.
            var v = data[offsets[i]..offsets[i + 1]];
            if (_min is null && minRow < 0)
            {
                minRow = maxRow = i;
                lo = hi = v;
                continue;
            }

            if (v.SequenceCompareTo(lo) < 0)
            {
                minRow = i;
                lo = v;
            }
            else if (v.SequenceCompareTo(hi) > 0)
            {
                maxRow = i;
                hi = v;
            }
        }

        if (minRow >= 0)
        {
            _min = a.GetBytes(minRow).ToArray();
        }

        if (maxRow >= 0)
        {
            _max = a.GetBytes(maxRow).ToArray();
        }
    }

    public override void WriteMin(Utf8JsonWriter w)
    {
        if (_min is not null)
        {
            w.WriteString(Name, StatsCollector.TruncateMin(Encoding.UTF8.GetString(_min)));
        }
    }

    public override void WriteMax(Utf8JsonWriter w)
    {
        if (_max is not null)
        {
            w.WriteString(Name, StatsCollector.TruncateMax(Encoding.UTF8.GetString(_max)));
        }
    }
}
