using System.Buffers.Binary;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Sdk.Records;

/// <summary>
/// Builds a <see cref="ChangeBatch"/> row by row with typed setters: primitive values go straight
/// into Arrow buffers without boxing. Per row: <see cref="BeginRow"/>, any setters (columns not set
/// are null), <see cref="EndRow"/>; then <see cref="Build"/>. The builder can be reused after Build.
/// </summary>
/// <remarks>
/// Reuse is cheap: Arrow's builders copy their contents into the batch's own (native) buffers on Build, so the
/// builder keeps its managed buffers and clears them for the next batch instead of growing new ones from empty.
/// They are sized for <c>initialCapacity</c> rows at first and then for the largest recent batch; after a batch
/// much smaller than what they hold they are released and sized for that batch. <see cref="TrimExcess"/> releases
/// them at once (e.g. when a stream goes idle).
/// </remarks>
/// <example>
/// <code>
/// var b = new ChangeBatchBuilder("orders", schema);
/// b.BeginRow(ChangeOp.Insert, new SourcePosition(seq, 0), tsMicros);
/// b.SetInt64(0, orderId);
/// b.SetDecimal(3, 19.99m);
/// b.EndRow();
/// using var batch = b.Build();
/// </code>
/// </example>
public sealed class ChangeBatchBuilder
{
    /// <summary>Buffers holding more than this many times what the last batch needed are released after Build.</summary>
    private const int ShrinkFactor = 4;

    /// <summary>Most rows the column buffers are sized for before the first row (they grow past it as needed).</summary>
    private const int EagerRows = 4096;

    private readonly ColumnBuilder[] _columns;
    private readonly int _initialCapacity;
    private ChangeOp[] _ops;
    private SourcePosition[] _positions;
    private long[] _timestamps;
    private int _rows;
    private bool _inRow;
    private Dictionary<int, int[]>? _unchanged;

    /// <summary>Creates a builder for <paramref name="stream"/> with its schema.</summary>
    /// <param name="stream">The stream's name.</param>
    /// <param name="schema">The stream's schema: the columns of every batch.</param>
    /// <param name="initialCapacity">
    /// Rows expected per batch: the column buffers are sized for it (up to 4,096 rows, so that a builder for a small
    /// table stays small; beyond that they grow during the first batch and are then kept).
    /// </param>
    public ChangeBatchBuilder(string stream, StreamSchema schema, int initialCapacity = 1024)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(schema);
        Stream = stream;
        Schema = schema;
        _initialCapacity = Math.Max(1, initialCapacity);
        _columns = schema.Columns.Select(c => ColumnBuilder.Create(c, Math.Min(_initialCapacity, EagerRows))).ToArray();
        _ops = new ChangeOp[_initialCapacity];
        _positions = new SourcePosition[_initialCapacity];
        _timestamps = new long[_initialCapacity];
    }

    /// <summary>The stream being built.</summary>
    public string Stream { get; }

    /// <summary>The stream's schema.</summary>
    public StreamSchema Schema { get; }

    /// <summary>Rows completed so far.</summary>
    public int Count => _rows;

    /// <summary>Starts a row.</summary>
    public void BeginRow(ChangeOp op, SourcePosition position, long sourceTimestampMicros)
    {
        if (_inRow)
        {
            throw new InvalidOperationException("EndRow was not called for the previous row.");
        }

        if (_rows == _ops.Length)
        {
            var n = _ops.Length * 2;
            System.Array.Resize(ref _ops, n);
            System.Array.Resize(ref _positions, n);
            System.Array.Resize(ref _timestamps, n);
        }

        _ops[_rows] = op;
        _positions[_rows] = position;
        _timestamps[_rows] = sourceTimestampMicros;
        _inRow = true;
    }

    /// <summary>Completes the row: every column not set is null.</summary>
    /// <exception cref="InvalidOperationException">A non-nullable column was left unset on an insert, update or read.</exception>
    public void EndRow()
    {
        if (!_inRow)
        {
            throw new InvalidOperationException("BeginRow was not called.");
        }

        var op = _ops[_rows];
        for (var i = 0; i < _columns.Length; i++)
        {
            var c = _columns[i];
            if (c.Length == _rows)
            {
                if (!c.Field.Nullable && op is not ChangeOp.Delete and not ChangeOp.Truncate)
                {
                    throw new InvalidOperationException($"Column '{c.Field.Name}' of stream '{Stream}' is not nullable but no value was set (row {_rows}).");
                }

                c.AppendNull();
            }
        }

        _rows++;
        _inRow = false;
    }

    private ColumnBuilder Col(int column)
    {
        var c = _columns[column];
        if (c.Length != _rows)
        {
            throw new InvalidOperationException($"Column '{c.Field.Name}' of stream '{Stream}' was set twice in one row, or outside BeginRow/EndRow.");
        }

        return c;
    }

    /// <summary>
    /// Marks a column of an update whose value the source did not send (an unchanged TOASTed value): stored as null
    /// and listed in <see cref="ChangeBatch.Unchanged"/>, so the merge keeps the table's previous value.
    /// </summary>
    public void SetUnchanged(int column)
    {
        if (_ops[_rows] is not ChangeOp.Update)
        {
            throw new InvalidOperationException($"Column '{_columns[column].Field.Name}' of stream '{Stream}': only an update can leave a value unchanged (row {_rows} is {_ops[_rows]}).");
        }

        Col(column).AppendNull();
        _unchanged ??= [];
        if (_unchanged.TryGetValue(_rows, out var cols))
        {
            var grown = new int[cols.Length + 1];
            cols.CopyTo(grown, 0);
            grown[^1] = column;
            System.Array.Sort(grown);
            _unchanged[_rows] = grown;
        }
        else
        {
            _unchanged[_rows] = [column];
        }
    }

    /// <summary>Sets a column to null.</summary>
    public void SetNull(int column) => Col(column).AppendNull();

    /// <summary>Sets a boolean column.</summary>
    public void SetBoolean(int column, bool value) => Col(column).As<BooleanArray.Builder>(PrimitiveKind.Boolean).Append(value);

    /// <summary>Sets a byte column.</summary>
    public void SetInt8(int column, sbyte value) => Fixed<sbyte>(column, PrimitiveKind.Int8).Append(value);

    /// <summary>Sets a short column.</summary>
    public void SetInt16(int column, short value) => Fixed<short>(column, PrimitiveKind.Int16).Append(value);

    /// <summary>Sets an integer column.</summary>
    public void SetInt32(int column, int value) => Fixed<int>(column, PrimitiveKind.Int32).Append(value);

    /// <summary>Sets a long column.</summary>
    public void SetInt64(int column, long value) => Fixed<long>(column, PrimitiveKind.Int64).Append(value);

    /// <summary>Sets a float column.</summary>
    public void SetFloat(int column, float value) => Fixed<float>(column, PrimitiveKind.Float).Append(value);

    /// <summary>Sets a double column.</summary>
    public void SetDouble(int column, double value) => Fixed<double>(column, PrimitiveKind.Double).Append(value);

    /// <summary>Sets a string column.</summary>
    public void SetString(int column, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Col(column).As<StringArray.Builder>(PrimitiveKind.String).Append(value);
    }

    /// <summary>Sets a string column from UTF-8 bytes (no string is allocated).</summary>
    public void SetStringUtf8(int column, ReadOnlySpan<byte> utf8) => Col(column).As<StringArray.Builder>(PrimitiveKind.String).Append(utf8);

    /// <summary>Sets a binary column.</summary>
    public void SetBinary(int column, ReadOnlySpan<byte> value) => Col(column).As<BinaryArray.Builder>(PrimitiveKind.Binary).Append(value);

    /// <summary>The fixed-width builder of a column of <paramref name="kind"/>, counting the value about to be appended.</summary>
    private RawBuilder<T> Fixed<T>(int column, PrimitiveKind kind)
        where T : struct
    {
        var c = Col(column);
        if (c.Raw is not RawBuilder<T> raw || c.Field.Type is not PrimitiveType p || p.Kind != kind)
        {
            throw c.WrongType(kind.ToString());
        }

        c.Length++;
        return raw;
    }

    /// <summary>Sets a date column from days since 1970-01-01.</summary>
    public void SetDate(int column, int daysSinceEpoch)
    {
        var c = Col(column);
        if (c.Raw is not RawBuilder<int> raw || c.Field.Type is not PrimitiveType { Kind: PrimitiveKind.Date })
        {
            throw c.WrongType("date");
        }

        raw.Append(daysSinceEpoch);
        c.Length++;
    }

    /// <summary>Sets a date column.</summary>
    public void SetDate(int column, DateOnly value) => SetDate(column, value.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber);

    /// <summary>Sets a timestamp (UTC) or timestamp_ntz column from microseconds since 1970-01-01 (UTC, or wall clock for ntz).</summary>
    public void SetTimestampMicros(int column, long micros)
    {
        var c = Col(column);
        if (c.Raw is not RawBuilder<long> raw || c.Field.Type is not PrimitiveType { Kind: PrimitiveKind.Timestamp or PrimitiveKind.TimestampNtz })
        {
            throw c.WrongType("timestamp");
        }

        raw.Append(micros);
        c.Length++;
    }

    /// <summary>Sets a timestamp column.</summary>
    public void SetTimestamp(int column, DateTimeOffset value) =>
        SetTimestampMicros(column, (value.UtcTicks - DateTime.UnixEpoch.Ticks) / 10);

    /// <summary>Sets a decimal column; the value is rounded to the column's scale.</summary>
    /// <exception cref="OverflowException">The value needs more digits than the column's precision.</exception>
    public void SetDecimal(int column, decimal value)
    {
        var c = Col(column);
        var t = c.Field.Type as DecimalType ?? throw c.WrongType("decimal");
        var unscaled = DecimalMath.ToUnscaled(value, t.Scale);
        SetDecimalUnscaled(column, unscaled);
    }

    /// <summary>Sets a decimal column from its unscaled value (value = unscaled × 10^-scale): all 38 digits.</summary>
    /// <exception cref="OverflowException">The value needs more digits than the column's precision.</exception>
    public void SetDecimalUnscaled(int column, Int128 unscaled)
    {
        var c = Col(column);
        var t = c.Field.Type as DecimalType ?? throw c.WrongType("decimal");
        if (Int128.Abs(unscaled) >= DecimalMath.Pow10(t.Precision))
        {
            throw new OverflowException($"Value {unscaled}e-{t.Scale} does not fit column '{c.Field.Name}' {t}.");
        }

        // Not through IBinaryInteger<Int128>: the interface call boxes every value.
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteInt128LittleEndian(bytes, unscaled);
        c.Decimals.Append(bytes);
        c.Length++;
    }

    /// <summary>
    /// Sets a column of any type from a CLR value (the slow path, for nested arrays, structs and maps):
    /// see <see cref="ArrowValues.BuildArray"/> for the accepted shapes. Boxes; prefer the typed setters for primitives.
    /// </summary>
    public void SetValue(int column, object? value)
    {
        var c = Col(column);
        if (value is null)
        {
            c.AppendNull();
            return;
        }

        if (c.Boxed is null)
        {
            throw new InvalidOperationException($"Column '{c.Field.Name}' is {c.Field.Type}: use its typed setter.");
        }

        c.Boxed.Add(value);
        c.Length++;
    }

    /// <summary>Builds the batch of the rows so far and resets the builder.</summary>
    /// <remarks>If building fails (a nested value of the wrong shape), the rows so far are discarded and the builder is empty.</remarks>
    public ChangeBatch Build()
    {
        if (_inRow)
        {
            throw new InvalidOperationException("EndRow was not called for the last row.");
        }

        var rows = _rows;
        var arrays = new IArrowArray[_columns.Length];
        var built = 0;
        try
        {
            for (; built < _columns.Length; built++)
            {
                arrays[built] = _columns[built].BuildAndReset(_initialCapacity);
            }
        }
        catch
        {
            for (var i = 0; i < built; i++)
            {
                arrays[i].Dispose();
            }

            for (var i = built; i < _columns.Length; i++)
            {
                _columns[i].Discard(Math.Min(_initialCapacity, EagerRows));
            }

            _rows = 0;
            _unchanged = null;
            throw;
        }

        // The batch gets arrays of exactly its length; the builder keeps its own for the next batch.
        var batch = new ChangeBatch(Stream, new RecordBatch(Schema.ToArrowSchema(), arrays, rows), Exact(_ops, rows), Exact(_positions, rows), Exact(_timestamps, rows))
        {
            Unchanged = _unchanged,
        };
        _rows = 0;
        _unchanged = null;
        var keep = Math.Max(rows, _initialCapacity);
        if (_ops.Length > ShrinkFactor * keep)
        {
            AllocateRowArrays(keep);
        }

        return batch;
    }

    /// <summary>
    /// Releases the buffers the builder keeps for the next batch (rows not yet built are kept): for a stream that
    /// goes idle after a large batch. The next rows start from the builder's initial capacity again.
    /// </summary>
    public void TrimExcess()
    {
        if (_rows > 0 || _inRow)
        {
            return;
        }

        foreach (var c in _columns)
        {
            c.Discard(Math.Min(_initialCapacity, EagerRows));
        }

        if (_ops.Length > _initialCapacity)
        {
            AllocateRowArrays(_initialCapacity);
        }
    }

    private void AllocateRowArrays(int capacity)
    {
        _ops = new ChangeOp[capacity];
        _positions = new SourcePosition[capacity];
        _timestamps = new long[capacity];
    }

    private static T[] Exact<T>(T[] source, int length)
        where T : unmanaged
    {
        if (length == 0)
        {
            return [];
        }

        var copy = GC.AllocateUninitializedArray<T>(length);
        source.AsSpan(0, length).CopyTo(copy);
        return copy;
    }

    private sealed class ColumnBuilder
    {
        /// <summary>String and binary buffers of up to this many bytes are never released for being too large.</summary>
        private const long KeepBytes = 1 << 16;

        // The most rows and (strings, binary) value bytes the current buffers were sized or grown for.
        private int _heldRows;
        private long _heldBytes;

        private ColumnBuilder(Field field, IArrowArrayBuilder? builder, List<object?>? boxed)
        {
            Field = field;
            Builder = builder;
            Boxed = boxed;
        }

        public Field Field { get; }
        public IArrowArrayBuilder? Builder { get; private set; }
        public List<object?>? Boxed { get; }
        public int Length { get; set; }

        public Decimal128Array.Builder Decimals { get; private set; } = null!;

        /// <summary>Date and timestamp columns: Arrow's builders take DateTime values, so append raw days/micros instead.</summary>
        public IRawBuilder? Raw { get; private set; }

        public static ColumnBuilder Create(Field field, int rows)
        {
            var builder = NewBuilder(field.Type);
            var raw = NewRaw(field.Type);
            var c = new ColumnBuilder(field, builder, builder is null && raw is null ? new List<object?>() : null) { Raw = raw };
            c.Bind();
            c.Reserve(rows, 0);
            return c;
        }

        private void Bind()
        {
            Decimals = Builder as Decimal128Array.Builder ?? null!;
        }

        private static IRawBuilder? NewRaw(DataType type) => type switch
        {
            PrimitiveType { Kind: PrimitiveKind.Int8 } => new RawBuilder<sbyte>(),
            PrimitiveType { Kind: PrimitiveKind.Int16 } => new RawBuilder<short>(),
            PrimitiveType { Kind: PrimitiveKind.Int32 or PrimitiveKind.Date } => new RawBuilder<int>(),
            PrimitiveType { Kind: PrimitiveKind.Int64 or PrimitiveKind.Timestamp or PrimitiveKind.TimestampNtz } => new RawBuilder<long>(),
            PrimitiveType { Kind: PrimitiveKind.Float } => new RawBuilder<float>(),
            PrimitiveType { Kind: PrimitiveKind.Double } => new RawBuilder<double>(),
            _ => null,
        };

        private static IArrowArrayBuilder? NewBuilder(DataType type) => type switch
        {
            PrimitiveType p => p.Kind switch
            {
                PrimitiveKind.Boolean => new BooleanArray.Builder(),
                PrimitiveKind.String => new Utf8Builder(),
                PrimitiveKind.Binary => new BytesBuilder(),
                PrimitiveKind.Int8 or PrimitiveKind.Int16 or PrimitiveKind.Int32 or PrimitiveKind.Int64 or PrimitiveKind.Float or PrimitiveKind.Double
                    or PrimitiveKind.Date or PrimitiveKind.Timestamp or PrimitiveKind.TimestampNtz => null,
                _ => throw new InvalidOperationException($"Unknown kind {p.Kind}."),
            },
            DecimalType d => new Decimal128Array.Builder((Decimal128Type)d.ToArrowType()),
            _ => null,
        };

        public T As<T>(PrimitiveKind kind)
            where T : class
        {
            if (Builder is not T b)
            {
                throw WrongType(kind.ToString());
            }

            Length++;
            return b;
        }

        public InvalidOperationException WrongType(string attempted) =>
            new($"Column '{Field.Name}' is {Field.Type}, not {attempted}.");

        public void AppendNull()
        {
            switch ((object?)Raw ?? Builder)
            {
                case IRawBuilder r: r.AppendNull(); break;
                case null: Boxed!.Add(null); break;
                case BooleanArray.Builder b: b.AppendNull(); break;
                case StringArray.Builder b: b.AppendNull(); break;
                case BinaryArray.Builder b: b.AppendNull(); break;
                case Decimal128Array.Builder b: b.AppendNull(); break;
                default: throw new InvalidOperationException($"Unexpected builder for {Field.Type}.");
            }

            Length++;
        }

        /// <summary>Builds the column's array (its buffers are copies) and readies the builder for the next batch.</summary>
        public IArrowArray BuildAndReset(int minRows)
        {
            IArrowArray array;
            long bytes = 0;
            if (Raw is not null)
            {
                array = ((PrimitiveType)Field.Type).Kind switch
                {
                    PrimitiveKind.Int8 => ((RawBuilder<sbyte>)Raw).Build((v, n, length, nulls) => new Int8Array(v, n, length, nulls, 0)),
                    PrimitiveKind.Int16 => ((RawBuilder<short>)Raw).Build((v, n, length, nulls) => new Int16Array(v, n, length, nulls, 0)),
                    PrimitiveKind.Int32 => ((RawBuilder<int>)Raw).Build((v, n, length, nulls) => new Int32Array(v, n, length, nulls, 0)),
                    PrimitiveKind.Int64 => ((RawBuilder<long>)Raw).Build((v, n, length, nulls) => new Int64Array(v, n, length, nulls, 0)),
                    PrimitiveKind.Float => ((RawBuilder<float>)Raw).Build((v, n, length, nulls) => new FloatArray(v, n, length, nulls, 0)),
                    PrimitiveKind.Double => ((RawBuilder<double>)Raw).Build((v, n, length, nulls) => new DoubleArray(v, n, length, nulls, 0)),
                    PrimitiveKind.Date => ((RawBuilder<int>)Raw).Build((v, n, length, nulls) => new Date32Array(v, n, length, nulls, 0)),
                    _ => ((RawBuilder<long>)Raw).Build((v, n, length, nulls) => new TimestampArray((TimestampType)Field.Type.ToArrowType(), v, n, length, nulls, 0)),
                };
            }
            else if (Builder is null)
            {
                array = ArrowValues.BuildArray(Field.Type, Boxed!);
                Boxed!.Clear();
            }
            else
            {
                array = Builder switch
                {
                    BooleanArray.Builder b => b.Build(),
                    StringArray.Builder b => b.Build(),
                    BinaryArray.Builder b => b.Build(),
                    Decimal128Array.Builder b => b.Build(),
                    _ => throw new InvalidOperationException($"Unexpected builder for {Field.Type}."),
                };
                if (array is BinaryArray values)
                {
                    bytes = values.ValueOffsets[values.Length];
                }
            }

            var rows = array.Length;
            _heldRows = Math.Max(_heldRows, rows);
            _heldBytes = Math.Max(_heldBytes, bytes);
            var keepRows = Math.Max(rows, minRows);
            if (_heldRows > ShrinkFactor * keepRows || _heldBytes > ShrinkFactor * Math.Max(bytes, KeepBytes))
            {
                // Far larger than this batch needed (one big batch among small ones): release, size for this one.
                Recreate(keepRows, bytes);
            }
            else
            {
                Clear();
            }

            return array;
        }

        /// <summary>Drops the rows appended so far and the buffers, and sizes new ones for <paramref name="rows"/>.</summary>
        public void Discard(int rows) => Recreate(rows, 0);

        private void Recreate(int rows, long bytes)
        {
            if (Raw is not null)
            {
                Raw = NewRaw(Field.Type);
            }
            else if (Builder is not null)
            {
                Builder = NewBuilder(Field.Type);
                Bind();
            }
            else
            {
                Boxed!.Clear();
                Boxed.Capacity = 0;
            }

            Length = 0;
            _heldRows = 0;
            _heldBytes = 0;
            Reserve(rows, bytes);
        }

        private void Clear()
        {
            switch ((object?)Raw ?? Builder)
            {
                case IRawBuilder r: r.Clear(); break;
                case null: break;
                case BooleanArray.Builder b: b.Clear(); break;
                case StringArray.Builder b: b.Clear(); break;
                case BinaryArray.Builder b: b.Clear(); break;
                case Decimal128Array.Builder b: b.Clear(); break;
                default: throw new InvalidOperationException($"Unexpected builder for {Field.Type}.");
            }

            Length = 0;
        }

        /// <summary>Sizes the (empty) buffers for <paramref name="rows"/> rows and, for strings and binary, <paramref name="bytes"/> value bytes.</summary>
        private void Reserve(int rows, long bytes)
        {
            var data = (int)Math.Min(bytes, int.MaxValue);
            switch ((object?)Raw ?? Builder)
            {
                case IRawBuilder r: r.Reserve(rows); break;
                case null: Boxed!.EnsureCapacity(rows); break;
                case BooleanArray.Builder b: b.Reserve(rows); break;
                case Utf8Builder b: b.ReserveData(data).Reserve(rows); break;
                case BytesBuilder b: b.ReserveData(data).Reserve(rows); break;
                case Decimal128Array.Builder b: b.Reserve(rows); break;
                default: throw new InvalidOperationException($"Unexpected builder for {Field.Type}.");
            }

            _heldRows = Math.Max(_heldRows, rows);
            _heldBytes = Math.Max(_heldBytes, data);
        }
    }

    /// <summary>Arrow's string builder, with the value bytes reservable apart from the rows.</summary>
    private sealed class Utf8Builder : StringArray.Builder
    {
        public Utf8Builder ReserveData(int bytes)
        {
            ValueBuffer.Reserve(bytes);
            return this;
        }
    }

    /// <summary>Arrow's binary builder, with the value bytes reservable apart from the rows.</summary>
    private sealed class BytesBuilder : BinaryArray.Builder
    {
        public BytesBuilder ReserveData(int bytes)
        {
            ValueBuffer.Reserve(bytes);
            return this;
        }
    }

    /// <summary>
    /// Appends fixed-width values straight into an Arrow buffer. The validity bitmap is started only by the first null of a
    /// batch (all earlier bits set then): a column without nulls costs one write per value.
    /// </summary>
    private interface IRawBuilder
    {
        void AppendNull();

        void Reserve(int rows);

        void Clear();
    }

    private sealed class RawBuilder<T> : IRawBuilder
        where T : struct
    {
        private readonly ArrowBuffer.Builder<T> _values = new();
        private readonly ArrowBuffer.BitmapBuilder _validity = new();
        private int _nulls;

        public void Append(T value)
        {
            _values.Append(value);
            if (_nulls > 0)
            {
                _validity.Append(true);
            }
        }

        public void AppendNull()
        {
            if (_nulls == 0)
            {
                _validity.Clear();
                _validity.AppendRange(true, _values.Length);
            }

            _values.Append(default(T));
            _validity.Append(false);
            _nulls++;
        }

        public void Reserve(int rows)
        {
            _values.Reserve(rows);
            _validity.Reserve(rows);
        }

        public void Clear()
        {
            _values.Clear();
            _validity.Clear();
            _nulls = 0;
        }

        /// <summary>Builds the array: Arrow copies the buffers into the array's own, so the builder's stay for <see cref="Clear"/>.</summary>
        public IArrowArray Build(Func<ArrowBuffer, ArrowBuffer, int, int, IArrowArray> create) =>
            create(_values.Build(), _nulls == 0 ? ArrowBuffer.Empty : _validity.Build(), _values.Length, _nulls);
    }
}
