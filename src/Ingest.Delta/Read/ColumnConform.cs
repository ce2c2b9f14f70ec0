using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Delta.Parquet;

namespace Ingest.Delta.Read;

/// <summary>
/// Gives an array read from a data file the table's logical type: struct fields found by physical name or field id and
/// returned under logical names (PROTOCOL.md "Column Mapping"), missing fields as nulls (columns added after the file
/// was written), timestamp units aligned, and narrower types widened (PROTOCOL.md "Type Widening"). Conversions are
/// typed loops over the value buffers; unchanged arrays keep their buffers.
/// </summary>
internal static class ColumnConform
{
    public static IArrowArray Conform(IArrowArray array, ReadField target, ColumnMappingMode mode, string column) =>
        ArrowArrayFactory.BuildArray(ConformData(array.Data, target, target.ArrowType, mode, column));

    private static ArrayData ConformData(ArrayData data, ReadField target, IArrowType type, ColumnMappingMode mode, string column)
    {
        var source = data.DataType;
        switch (type)
        {
            case StructType ts when source is StructType ss:
            {
                var children = new ArrayData[ts.Fields.Count];
                for (var i = 0; i < children.Length; i++)
                {
                    var child = target.Children[i];
                    var idx = ReadField.Find(ss.Fields, child, mode);
                    children[i] = idx < 0
                        ? ArrowKernels.NullArray(ts.Fields[i].DataType, data.Offset + data.Length).Data
                        : ConformData(data.Children[idx], child, ts.Fields[i].DataType, mode, column + "." + child.Name);
                }

                return new ArrayData(type, data.Length, data.NullCount, data.Offset, data.Buffers, children);
            }

            case ListType tl when source is ListType:
                return new ArrayData(type, data.Length, data.NullCount, data.Offset, data.Buffers,
                    [ConformData(data.Children[0], target.Children[0], tl.ValueDataType, mode, column + ".element")]);
            case MapType tm when source is MapType:
            {
                var entries = data.Children[0];
                var key = ConformData(entries.Children[0], target.Children[0], tm.KeyField.DataType, mode, column + ".key");
                var value = ConformData(entries.Children[1], target.Children[1], tm.ValueField.DataType, mode, column + ".value");
                var conformed = new ArrayData(tm.KeyValueType, entries.Length, entries.NullCount, entries.Offset, entries.Buffers, [key, value]);
                return new ArrayData(type, data.Length, data.NullCount, data.Offset, data.Buffers, [conformed]);
            }

            case TimestampType tt when source is TimestampType st:
                return st.Unit == tt.Unit ? Retype(data, type) : ConvertTimestamp(data, st.Unit, tt);
            case TimestampType tt when source is Date32Type:
                // date -> timestamp_ntz widening: midnight of the day.
                {
                var perDay = 86_400 * PerSecond(tt.Unit);
                return Map<int, long>(data, tt, d => d * perDay);
            }
            case Decimal128Type td when source is Decimal128Type sd:
                if (td.Scale == sd.Scale && td.Precision >= sd.Precision)
                {
                    return Retype(data, type);
                }

                if (td.Scale >= sd.Scale && td.Precision - td.Scale >= sd.Precision - sd.Scale)
                {
                    return RescaleDecimal(data, td, Pow10(td.Scale - sd.Scale));
                }

                throw Mismatch(column, source, type);
            case Decimal128Type td when source is Int8Type or Int16Type or Int32Type or Int64Type:
                return IntegerToDecimal(data, td, column);
            case DoubleType when source is FloatType:
                return Map<float, double>(data, type, static v => v);
            case DoubleType:
                return source switch
                {
                    DoubleType => Retype(data, type),
                    Int8Type => Map<sbyte, double>(data, type, static v => v),
                    Int16Type => Map<short, double>(data, type, static v => v),
                    Int32Type => Map<int, double>(data, type, static v => v),
                    Int64Type => Map<long, double>(data, type, static v => v),
                    _ => throw Mismatch(column, source, type),
                };
            case Int64Type:
                return source switch
                {
                    Int64Type => Retype(data, type),
                    Int8Type => Map<sbyte, long>(data, type, static v => v),
                    Int16Type => Map<short, long>(data, type, static v => v),
                    Int32Type => Map<int, long>(data, type, static v => v),
                    _ => throw Mismatch(column, source, type),
                };
            case Int32Type:
                return source switch
                {
                    Int32Type => Retype(data, type),
                    Int8Type => Map<sbyte, int>(data, type, static v => v),
                    Int16Type => Map<short, int>(data, type, static v => v),
                    _ => throw Mismatch(column, source, type),
                };
            case Int16Type:
                return source switch
                {
                    Int16Type => Retype(data, type),
                    Int8Type => Map<sbyte, short>(data, type, static v => v),
                    _ => throw Mismatch(column, source, type),
                };
            case StringType when source is StringType or LargeStringType:
            case BinaryType when source is BinaryType:
                return Retype(data, type);
            default:
                if (source.TypeId == type.TypeId && type is not NestedType)
                {
                    return Retype(data, type);
                }

                throw Mismatch(column, source, type);
        }
    }

    private static InvalidDataException Mismatch(string column, IArrowType source, IArrowType target) =>
        new($"Column '{column}' has type {Describe(source)} in the data file but {Describe(target)} in the table schema, and the first does not widen to the second.");

    private static string Describe(IArrowType t) => t switch
    {
        Decimal128Type d => $"decimal({d.Precision},{d.Scale})",
        TimestampType ts => $"timestamp[{ts.Unit}{(ts.Timezone is null ? "" : ", " + ts.Timezone)}]",
        _ => t.Name,
    };

    private static ArrayData Retype(ArrayData data, IArrowType target) =>
        new(target, data.Length, data.NullCount, data.Offset, data.Buffers, data.Children, data.Dictionary);

    private static long PerSecond(TimeUnit u) => u switch
    {
        TimeUnit.Second => 1,
        TimeUnit.Millisecond => 1_000,
        TimeUnit.Microsecond => 1_000_000,
        _ => 1_000_000_000,
    };

    private static ArrayData ConvertTimestamp(ArrayData data, TimeUnit from, TimestampType target)
    {
        var f = PerSecond(from);
        var t = PerSecond(target.Unit);
        return f > t
            ? Map<long, long>(data, target, v => FloorDiv(v, f / t))
            : Map<long, long>(data, target, v => v * (t / f));
    }

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    /// <summary>A new fixed-width array of <paramref name="target"/> type with each value converted; validity is shared.</summary>
    private static ArrayData Map<TSrc, TDst>(ArrayData data, IArrowType target, Func<TSrc, TDst> convert)
        where TSrc : unmanaged
        where TDst : unmanaged
    {
        var n = data.Length;
        var src = MemoryMarshal.Cast<byte, TSrc>(data.Buffers[1].Span).Slice(data.Offset, n);
        var bytes = new byte[n * Marshal.SizeOf<TDst>()];
        var dst = MemoryMarshal.Cast<byte, TDst>(bytes.AsSpan());
        for (var i = 0; i < n; i++)
        {
            dst[i] = convert(src[i]);
        }

        return new ArrayData(target, n, data.NullCount, 0, [Validity(data), new ArrowBuffer(bytes)]);
    }

    private static ArrayData RescaleDecimal(ArrayData data, Decimal128Type target, Int128 factor)
    {
        var n = data.Length;
        var src = data.Buffers[1].Span.Slice(data.Offset * 16, n * 16);
        var bytes = new byte[n * 16];
        for (var i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteInt128LittleEndian(bytes.AsSpan(i * 16), BinaryPrimitives.ReadInt128LittleEndian(src.Slice(i * 16, 16)) * factor);
        }

        return new ArrayData(target, n, data.NullCount, 0, [Validity(data), new ArrowBuffer(bytes)]);
    }

    private static ArrayData IntegerToDecimal(ArrayData data, Decimal128Type target, string column)
    {
        var digits = data.DataType switch
        {
            Int8Type => 3,
            Int16Type => 5,
            Int32Type => 10,
            _ => 20,
        };
        if (target.Precision - target.Scale < digits)
        {
            throw Mismatch(column, data.DataType, target);
        }

        var factor = Pow10(target.Scale);
        var n = data.Length;
        var bytes = new byte[n * 16];
        var values = data.DataType switch
        {
            Int8Type => Map<sbyte, long>(data, Int64Type.Default, static v => v),
            Int16Type => Map<short, long>(data, Int64Type.Default, static v => v),
            Int32Type => Map<int, long>(data, Int64Type.Default, static v => v),
            _ => data,
        };
        var src = MemoryMarshal.Cast<byte, long>(values.Buffers[1].Span).Slice(values.Offset, n);
        for (var i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteInt128LittleEndian(bytes.AsSpan(i * 16), src[i] * factor);
        }

        return new ArrayData(target, n, data.NullCount, 0, [Validity(data), new ArrowBuffer(bytes)]);
    }

    private static Int128 Pow10(int exponent)
    {
        var r = Int128.One;
        for (var i = 0; i < exponent; i++)
        {
            r *= 10;
        }

        return r;
    }

    /// <summary>The validity bitmap re-based to offset 0 (shared when it already is).</summary>
    private static ArrowBuffer Validity(ArrayData data)
    {
        if (data.NullCount == 0)
        {
            return ArrowBuffer.Empty;
        }

        var bitmap = data.Buffers[0];
        if (data.Offset == 0)
        {
            return bitmap;
        }

        var builder = new ArrowBuffer.BitmapBuilder(data.Length);
        var span = bitmap.Span;
        for (var i = 0; i < data.Length; i++)
        {
            var bit = data.Offset + i;
            builder.Append((span[bit >> 3] & (1 << (bit & 7))) != 0);
        }

        return builder.Build();
    }
}
