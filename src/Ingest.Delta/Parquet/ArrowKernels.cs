using System.Buffers.Binary;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Ingest.Delta.Parquet;

/// <summary>Row selection, null columns and type conformance over Arrow arrays (Arrow for .NET has no compute kernels).</summary>
internal static class ArrowKernels
{
    /// <summary>The rows at <paramref name="indices"/>, in that order.</summary>
    public static RecordBatch Take(RecordBatch batch, ReadOnlySpan<int> indices)
    {
        var columns = new IArrowArray[batch.ColumnCount];
        for (var c = 0; c < columns.Length; c++)
        {
            columns[c] = Take(batch.Column(c), indices);
        }

        return new RecordBatch(batch.Schema, columns, indices.Length);
    }

    /// <summary>
    /// The rows at <paramref name="indices"/>, in that order, in buffers of their own (nested values too): the result
    /// outlives the source, whose buffers may be a file reader's (released with its batch) or moved to a Parquet writer.
    /// </summary>
    public static IArrowArray Take(IArrowArray array, ReadOnlySpan<int> indices)
    {
        return array switch
        {
            Int8Array a => TakeFixed<sbyte>(a, a.Values, indices),
            Int16Array a => TakeFixed<short>(a, a.Values, indices),
            Int32Array a => TakeFixed<int>(a, a.Values, indices),
            Int64Array a => TakeFixed<long>(a, a.Values, indices),
            FloatArray a => TakeFixed<float>(a, a.Values, indices),
            DoubleArray a => TakeFixed<double>(a, a.Values, indices),
            Date32Array a => TakeFixed<int>(a, a.Values, indices),
            TimestampArray a => TakeFixed<long>(a, a.Values, indices),
            Decimal128Array a => TakeDecimal(a, indices),
            BooleanArray a => TakeBoolean(a, indices),
            BinaryArray a => TakeBinary(a, indices),
            ListArray a => TakeList(a, indices),
            StructArray a => TakeStruct(a, indices),
            _ => TakeByRuns(array, indices),
        };
    }

    private static IArrowArray TakeFixed<T>(IArrowArray source, ReadOnlySpan<T> values, ReadOnlySpan<int> indices)
        where T : struct
    {
        var n = indices.Length;
        var buffer = new ArrowBuffer.Builder<T>(n);
        var validity = new ArrowBuffer.BitmapBuilder(n);
        var nulls = 0;
        for (var i = 0; i < n; i++)
        {
            var idx = indices[i];
            var valid = source.IsValid(idx);
            validity.Append(valid);
            nulls += valid ? 0 : 1;
            buffer.Append(values[idx]);
        }

        var data = new ArrayData(source.Data.DataType, n, nulls, 0, [nulls == 0 ? ArrowBuffer.Empty : validity.Build(), buffer.Build()]);
        return ArrowArrayFactory.BuildArray(data);
    }

    private static IArrowArray TakeDecimal(Decimal128Array source, ReadOnlySpan<int> indices)
    {
        var n = indices.Length;
        var bytes = new byte[n * 16];
        var validity = new ArrowBuffer.BitmapBuilder(n);
        var nulls = 0;
        var src = source.ValueBuffer.Span;
        for (var i = 0; i < n; i++)
        {
            var idx = indices[i];
            var valid = source.IsValid(idx);
            validity.Append(valid);
            nulls += valid ? 0 : 1;
            src.Slice((source.Offset + idx) * 16, 16).CopyTo(bytes.AsSpan(i * 16));
        }

        var data = new ArrayData(source.Data.DataType, n, nulls, 0, [nulls == 0 ? ArrowBuffer.Empty : validity.Build(), new ArrowBuffer(bytes)]);
        return ArrowArrayFactory.BuildArray(data);
    }

    private static BooleanArray TakeBoolean(BooleanArray source, ReadOnlySpan<int> indices)
    {
        var b = new BooleanArray.Builder();
        b.Reserve(indices.Length);
        foreach (var idx in indices)
        {
            var v = source.GetValue(idx);
            if (v is { } x)
            {
                b.Append(x);
            }
            else
            {
                b.AppendNull();
            }
        }

        return b.Build();
    }

    private static IArrowArray TakeBinary(BinaryArray source, ReadOnlySpan<int> indices)
    {
        var n = indices.Length;
        var offsets = new ArrowBuffer.Builder<int>(n + 1);
        var values = new ArrowBuffer.Builder<byte>();
        var validity = new ArrowBuffer.BitmapBuilder(n);
        var nulls = 0;
        var pos = 0;
        offsets.Append(0);
        for (var i = 0; i < n; i++)
        {
            var idx = indices[i];
            var valid = source.IsValid(idx);
            validity.Append(valid);
            if (valid)
            {
                var span = source.GetBytes(idx);
                values.Append(span);
                pos += span.Length;
            }
            else
            {
                nulls++;
            }

            offsets.Append(pos);
        }

        var data = new ArrayData(source.Data.DataType, n, nulls, 0, [nulls == 0 ? ArrowBuffer.Empty : validity.Build(), offsets.Build(), values.Build()]);
        return ArrowArrayFactory.BuildArray(data);
    }

    /// <summary>Lists and maps (a map is a list of key/value structs): new offsets, and the elements of the rows taken.</summary>
    private static IArrowArray TakeList(ListArray source, ReadOnlySpan<int> indices)
    {
        var n = indices.Length;
        var offsets = new ArrowBuffer.Builder<int>(n + 1);
        var validity = new ArrowBuffer.BitmapBuilder(n);
        var elements = new List<int>();
        var nulls = 0;
        var sourceOffsets = source.ValueOffsets;
        offsets.Append(0);
        for (var i = 0; i < n; i++)
        {
            var idx = indices[i];
            var valid = source.IsValid(idx);
            validity.Append(valid);
            if (valid)
            {
                for (var e = sourceOffsets[idx]; e < sourceOffsets[idx + 1]; e++)
                {
                    elements.Add(e);
                }
            }
            else
            {
                nulls++;
            }

            offsets.Append(elements.Count);
        }

        // Offsets index the child as ListArray.Values sees it (the child's own offset applied).
        var child = Take(ArrowArrayFactory.BuildArray(source.Data.Children[0]), System.Runtime.InteropServices.CollectionsMarshal.AsSpan(elements));
        var data = new ArrayData(source.Data.DataType, n, nulls, 0, [nulls == 0 ? ArrowBuffer.Empty : validity.Build(), offsets.Build()], [child.Data]);
        return ArrowArrayFactory.BuildArray(data);
    }

    /// <summary>Structs: each field's values of the rows taken (the struct's offset applies to its children).</summary>
    private static IArrowArray TakeStruct(StructArray source, ReadOnlySpan<int> indices)
    {
        var n = indices.Length;
        var validity = new ArrowBuffer.BitmapBuilder(n);
        var rows = new int[n];
        var nulls = 0;
        for (var i = 0; i < n; i++)
        {
            var valid = source.IsValid(indices[i]);
            validity.Append(valid);
            nulls += valid ? 0 : 1;
            rows[i] = source.Offset + indices[i];
        }

        var children = source.Data.Children.Select(c => Take(ArrowArrayFactory.BuildArray(c), rows).Data).ToArray();
        var data = new ArrayData(source.Data.DataType, n, nulls, 0, [nulls == 0 ? ArrowBuffer.Empty : validity.Build()], children);
        return ArrowArrayFactory.BuildArray(data);
    }

    private static IArrowArray TakeByRuns(IArrowArray array, ReadOnlySpan<int> indices)
    {
        // Other types (none a Delta table has): slice runs of consecutive rows and concatenate them.
        var parts = new List<IArrowArray>();
        var i = 0;
        while (i < indices.Length)
        {
            var start = indices[i];
            var len = 1;
            while (i + len < indices.Length && indices[i + len] == start + len)
            {
                len++;
            }

            parts.Add(ArrowArrayFactory.Slice(array, start, len));
            i += len;
        }

        if (parts.Count == 0)
        {
            return ArrowArrayFactory.Slice(array, 0, 0);
        }

        return parts.Count == 1 && parts[0].Length == array.Length ? array : ArrowArrayConcatenator.Concatenate(parts);
    }

    /// <summary>Concatenates batches of the same schema.</summary>
    public static RecordBatch Concat(Schema schema, IReadOnlyList<RecordBatch> batches)
    {
        if (batches.Count == 1)
        {
            return batches[0];
        }

        var columns = new IArrowArray[schema.FieldsList.Count];
        var length = 0;
        foreach (var b in batches)
        {
            length += b.Length;
        }

        for (var c = 0; c < columns.Length; c++)
        {
            var parts = new List<IArrowArray>(batches.Count);
            foreach (var b in batches)
            {
                parts.Add(b.Column(c));
            }

            columns[c] = parts.Count == 0 ? NullArray(schema.FieldsList[c].DataType, 0) : ArrowArrayConcatenator.Concatenate(parts);
        }

        return new RecordBatch(schema, columns, length);
    }

    /// <summary>An array of <paramref name="length"/> nulls of any type.</summary>
    public static IArrowArray NullArray(IArrowType type, int length) => ArrowArrayFactory.BuildArray(NullData(type, length));

    private static ArrayData NullData(IArrowType type, int length)
    {
        var validity = new ArrowBuffer(new byte[(length + 7) / 8]);
        switch (type)
        {
            case StructType s:
                return new ArrayData(type, length, length, 0, [validity], s.Fields.Select(f => NullData(f.DataType, length)).ToArray());
            case MapType m:
                return new ArrayData(type, length, length, 0, [validity, new ArrowBuffer(new byte[(length + 1) * 4])], [NullData(m.KeyValueType, 0)]);
            case ListType l:
                return new ArrayData(type, length, length, 0, [validity, new ArrowBuffer(new byte[(length + 1) * 4])], [NullData(l.ValueDataType, 0)]);
            case StringType or BinaryType:
                return new ArrayData(type, length, length, 0, [validity, new ArrowBuffer(new byte[(length + 1) * 4]), ArrowBuffer.Empty]);
            case BooleanType:
                return new ArrayData(type, length, length, 0, [validity, new ArrowBuffer(new byte[(length + 7) / 8])]);
            case FixedWidthType f:
                return new ArrayData(type, length, length, 0, [validity, new ArrowBuffer(new byte[length * ((f.BitWidth + 7) / 8)])]);
            default:
                throw new NotSupportedException($"Cannot build a null column of Arrow type {type.Name}.");
        }
    }

    /// <summary>
    /// Gives an array read from a data file the table's Arrow type: nested field names (list element, map entries)
    /// and timestamp units differ between writers; struct fields are matched by name and missing ones are null.
    /// </summary>
    public static IArrowArray Conform(IArrowArray array, IArrowType target, string column)
    {
        return ArrowArrayFactory.BuildArray(ConformData(array.Data, target, column));
    }

    private static ArrayData ConformData(ArrayData data, IArrowType target, string column)
    {
        var source = data.DataType;
        switch (target)
        {
            case TimestampType tt when source is TimestampType st:
                if (st.Unit == tt.Unit)
                {
                    return Retype(data, target);
                }

                return ConvertTimestamp((TimestampArray)ArrowArrayFactory.BuildArray(data), tt).Data;
            case StructType ts when source is StructType ss:
            {
                var children = new ArrayData[ts.Fields.Count];
                for (var i = 0; i < children.Length; i++)
                {
                    var f = ts.Fields[i];
                    var idx = -1;
                    for (var j = 0; j < ss.Fields.Count; j++)
                    {
                        if (string.Equals(ss.Fields[j].Name, f.Name, StringComparison.OrdinalIgnoreCase))
                        {
                            idx = j;
                            break;
                        }
                    }

                    if (idx < 0)
                    {
                        children[i] = NullData(f.DataType, data.Offset + data.Length);
                    }
                    else
                    {
                        children[i] = ConformData(data.Children[idx], f.DataType, column + "." + f.Name);
                    }
                }

                return new ArrayData(target, data.Length, data.NullCount, data.Offset, data.Buffers, children);
            }

            case MapType tm when source is MapType sm:
                return new ArrayData(target, data.Length, data.NullCount, data.Offset, data.Buffers, [ConformData(data.Children[0], tm.KeyValueType, column)]);
            case ListType tl when source is ListType:
                return new ArrayData(target, data.Length, data.NullCount, data.Offset, data.Buffers, [ConformData(data.Children[0], tl.ValueDataType, column + ".element")]);
            case Decimal128Type td when source is Decimal128Type sd && td.Precision == sd.Precision && td.Scale == sd.Scale:
                return Retype(data, target);
            case StringType when source is StringType or LargeStringType:
            case BinaryType when source is BinaryType:
                return Retype(data, target);
            default:
                if (source.TypeId == target.TypeId && target is not NestedType and not Decimal128Type)
                {
                    return Retype(data, target);
                }

                // Type widening (PROTOCOL.md "Type Widening"): byte < short < int < long.
                if (target is Int64Type or Int32Type or Int16Type && source is Int8Type or Int16Type or Int32Type
                    && ((FixedWidthType)source).BitWidth < ((FixedWidthType)target).BitWidth)
                {
                    return WidenInteger(ArrowArrayFactory.BuildArray(data), target).Data;
                }

                throw new InvalidDataException($"Column '{column}' has type {source.Name} in the data file but {target.Name} in the table schema.");
        }
    }

    private static ArrayData Retype(ArrayData data, IArrowType target) =>
        new(target, data.Length, data.NullCount, data.Offset, data.Buffers, data.Children, data.Dictionary);

    private static TimestampArray ConvertTimestamp(TimestampArray a, TimestampType target)
    {
        static long PerSecond(TimeUnit u) => u switch
        {
            TimeUnit.Second => 1,
            TimeUnit.Millisecond => 1_000,
            TimeUnit.Microsecond => 1_000_000,
            _ => 1_000_000_000,
        };

        var from = PerSecond(((TimestampType)a.Data.DataType).Unit);
        var to = PerSecond(target.Unit);
        var values = a.Values;
        var buffer = new ArrowBuffer.Builder<long>(a.Length);
        var validity = new ArrowBuffer.BitmapBuilder(a.Length);
        for (var i = 0; i < a.Length; i++)
        {
            var valid = a.IsValid(i);
            validity.Append(valid);
            var v = values[i];
            buffer.Append(from > to ? FloorDiv(v, from / to) : v * (to / from));
        }

        return new TimestampArray(target, buffer.Build(), validity.Build(), a.Length, a.NullCount, 0);
    }

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    private static IArrowArray WidenInteger(IArrowArray a, IArrowType target)
    {
        var n = a.Length;
        var buffer = new ArrowBuffer.Builder<long>(n);
        for (var i = 0; i < n; i++)
        {
            buffer.Append(a switch
            {
                Int8Array x => x.Values[i],
                Int16Array x => x.Values[i],
                Int32Array x => x.Values[i],
                _ => 0,
            });
        }

        var longs = new Int64Array(buffer.Build(), a.NullCount == 0 ? ArrowBuffer.Empty : CopyValidity(a), n, a.NullCount, 0);
        if (target is Int64Type)
        {
            return longs;
        }

        if (target is Int32Type)
        {
            var b = new ArrowBuffer.Builder<int>(n);
            for (var i = 0; i < n; i++)
            {
                b.Append((int)longs.Values[i]);
            }

            return new Int32Array(b.Build(), longs.NullBitmapBuffer, n, longs.NullCount, 0);
        }

        var s = new ArrowBuffer.Builder<short>(n);
        for (var i = 0; i < n; i++)
        {
            s.Append((short)longs.Values[i]);
        }

        return new Int16Array(s.Build(), longs.NullBitmapBuffer, n, longs.NullCount, 0);
    }

    private static ArrowBuffer CopyValidity(IArrowArray a)
    {
        var v = new ArrowBuffer.BitmapBuilder(a.Length);
        for (var i = 0; i < a.Length; i++)
        {
            v.Append(a.IsValid(i));
        }

        return v.Build();
    }

    /// <summary>Reads Arrow's 16-byte little-endian unscaled decimal at <paramref name="index"/>.</summary>
    public static Int128 DecimalAt(Decimal128Array a, int index) =>
        BinaryPrimitives.ReadInt128LittleEndian(a.ValueBuffer.Span.Slice((a.Offset + index) * 16, 16));

    /// <summary>Struct children aligned with the struct's rows (Arrow .NET keeps the parent's offset out of the children).</summary>
    public static IArrowArray StructChild(StructArray s, int field)
    {
        var child = s.Fields[field];
        return s.Offset == 0 && child.Length == s.Length ? child : ArrowArrayFactory.Slice(child, s.Offset, s.Length);
    }
}
