using System.Buffers;
using System.Collections;
using System.Data.SqlTypes;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Sdk.Types;
using ArrowStructType = Apache.Arrow.Types.StructType;
using SdkArrayType = Ingest.Sdk.Types.ArrayType;
using SdkMapType = Ingest.Sdk.Types.MapType;
using SdkStructType = Ingest.Sdk.Types.StructType;

namespace Ingest.Sdk.Records;

/// <summary>
/// Conversions between Arrow arrays and CLR values, for slow paths (nested types, previews, tests)
/// and for writing rows as JSON. Hot paths use the typed arrays directly.
/// </summary>
/// <remarks>
/// CLR shapes: boolean <see cref="bool"/>; integers <see cref="sbyte"/>, <see cref="short"/>, <see cref="int"/>,
/// <see cref="long"/> (any integral value is accepted when building); <see cref="float"/>, <see cref="double"/>;
/// <see cref="string"/>; binary <c>byte[]</c>; date <see cref="DateOnly"/>; timestamp <see cref="DateTimeOffset"/> (UTC);
/// timestamp_ntz <see cref="DateTime"/> (Unspecified kind); decimal <see cref="decimal"/> where it fits, else
/// <see cref="System.Data.SqlTypes.SqlDecimal"/>; array <c>IReadOnlyList&lt;object?&gt;</c>; struct
/// <c>IReadOnlyDictionary&lt;string, object?&gt;</c> by field name; map <c>IReadOnlyList&lt;KeyValuePair&lt;object, object?&gt;&gt;</c>.
/// </remarks>
public static class ArrowValues
{
    private static readonly int EpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    /// <summary>Builds an Arrow array of <paramref name="type"/> from CLR values (null = null).</summary>
    /// <exception cref="ArgumentException">A value does not have a shape <paramref name="type"/> accepts.</exception>
    /// <exception cref="OverflowException">A number does not fit the type.</exception>
    public static IArrowArray BuildArray(DataType type, IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(values);
        return type switch
        {
            PrimitiveType p => BuildPrimitive(p, values),
            DecimalType d => BuildDecimal(d, values),
            SdkArrayType a => BuildList(a, values),
            SdkStructType s => BuildStruct(s, values),
            SdkMapType m => BuildMap(m, values),
            _ => throw new ArgumentException($"Unsupported type {type}.", nameof(type)),
        };
    }

    private static IArrowArray BuildPrimitive(PrimitiveType type, IReadOnlyList<object?> values)
    {
        switch (type.Kind)
        {
            case PrimitiveKind.Boolean:
            {
                var b = new BooleanArray.Builder().Reserve(values.Count);
                foreach (var v in values)
                {
                    if (v is null)
                    {
                        b.AppendNull();
                    }
                    else
                    {
                        b.Append(v as bool? ?? throw Wrong(type, v));
                    }
                }

                return b.Build();
            }

            case PrimitiveKind.Int8:
                return BuildFixed<sbyte>(values, v => checked((sbyte)ToInt128(type, v)), (vb, bb, n, nulls) => new Int8Array(vb, bb, n, nulls, 0));
            case PrimitiveKind.Int16:
                return BuildFixed<short>(values, v => checked((short)ToInt128(type, v)), (vb, bb, n, nulls) => new Int16Array(vb, bb, n, nulls, 0));
            case PrimitiveKind.Int32:
                return BuildFixed<int>(values, v => checked((int)ToInt128(type, v)), (vb, bb, n, nulls) => new Int32Array(vb, bb, n, nulls, 0));
            case PrimitiveKind.Int64:
                return BuildFixed<long>(values, v => checked((long)ToInt128(type, v)), (vb, bb, n, nulls) => new Int64Array(vb, bb, n, nulls, 0));
            case PrimitiveKind.Float:
                return BuildFixed<float>(values, v => v switch
                {
                    float f => f,
                    double d => (float)d,
                    decimal m => (float)m,
                    _ => (float)ToInt128(type, v),
                }, (vb, bb, n, nulls) => new FloatArray(vb, bb, n, nulls, 0));
            case PrimitiveKind.Double:
                return BuildFixed<double>(values, v => v switch
                {
                    double d => d,
                    float f => f,
                    decimal m => (double)m,
                    _ => (double)ToInt128(type, v),
                }, (vb, bb, n, nulls) => new DoubleArray(vb, bb, n, nulls, 0));
            case PrimitiveKind.String:
            {
                var b = new StringArray.Builder();
                foreach (var v in values)
                {
                    switch (v)
                    {
                        case null: b.AppendNull(); break;
                        case string s: b.Append(s); break;
                        case char c: b.Append(c.ToString()); break;
                        default: throw Wrong(type, v);
                    }
                }

                return b.Build();
            }

            case PrimitiveKind.Binary:
            {
                var b = new BinaryArray.Builder();
                foreach (var v in values)
                {
                    switch (v)
                    {
                        case null: b.AppendNull(); break;
                        case byte[] bytes: b.Append(bytes.AsSpan()); break;
                        case ReadOnlyMemory<byte> rom: b.Append(rom.Span); break;
                        case Memory<byte> mem: b.Append((ReadOnlySpan<byte>)mem.Span); break;
                        default: throw Wrong(type, v);
                    }
                }

                return b.Build();
            }

            case PrimitiveKind.Date:
                return BuildFixed<int>(values, v => v switch
                {
                    DateOnly d => d.DayNumber - EpochDayNumber,
                    DateTime dt => DateOnly.FromDateTime(dt).DayNumber - EpochDayNumber,
                    DateTimeOffset dto => DateOnly.FromDateTime(dto.UtcDateTime).DayNumber - EpochDayNumber,
                    _ => throw Wrong(type, v),
                }, (vb, bb, n, nulls) => new Date32Array(vb, bb, n, nulls, 0));
            case PrimitiveKind.Timestamp:
            {
                var arrowType = (TimestampType)type.ToArrowType();
                return BuildFixed<long>(values, v => v switch
                {
                    DateTimeOffset dto => (dto.UtcTicks - DateTime.UnixEpoch.Ticks) / 10,
                    DateTime dt => ((dt.Kind == DateTimeKind.Local ? dt.ToUniversalTime() : dt).Ticks - DateTime.UnixEpoch.Ticks) / 10,
                    _ => throw Wrong(type, v),
                }, (vb, bb, n, nulls) => new TimestampArray(arrowType, vb, bb, n, nulls, 0));
            }

            case PrimitiveKind.TimestampNtz:
            {
                var arrowType = (TimestampType)type.ToArrowType();
                return BuildFixed<long>(values, v => v switch
                {
                    DateTime dt => (dt.Ticks - DateTime.UnixEpoch.Ticks) / 10,
                    DateTimeOffset dto => (dto.DateTime.Ticks - DateTime.UnixEpoch.Ticks) / 10,
                    _ => throw Wrong(type, v),
                }, (vb, bb, n, nulls) => new TimestampArray(arrowType, vb, bb, n, nulls, 0));
            }

            default:
                throw new ArgumentException($"Unsupported type {type}.", nameof(type));
        }
    }

    private static IArrowArray BuildFixed<T>(IReadOnlyList<object?> values, Func<object, T> convert, Func<ArrowBuffer, ArrowBuffer, int, int, IArrowArray> create)
        where T : struct
    {
        var data = new ArrowBuffer.Builder<T>(Math.Max(1, values.Count));
        var validity = new ArrowBuffer.BitmapBuilder(Math.Max(1, values.Count));
        var nulls = 0;
        foreach (var v in values)
        {
            if (v is null)
            {
                data.Append(default(T));
                validity.Append(false);
                nulls++;
            }
            else
            {
                data.Append(convert(v));
                validity.Append(true);
            }
        }

        return create(data.Build(), nulls == 0 ? ArrowBuffer.Empty : validity.Build(), values.Count, nulls);
    }

    private static Int128 ToInt128(DataType type, object value) => value switch
    {
        sbyte v => v,
        byte v => v,
        short v => v,
        ushort v => v,
        int v => v,
        uint v => v,
        long v => v,
        ulong v => v,
        Int128 v => v,
        UInt128 v => checked((Int128)v),
        BigInteger v => checked((Int128)v),
        _ => throw Wrong(type, value),
    };

    private static IArrowArray BuildDecimal(DecimalType type, IReadOnlyList<object?> values)
    {
        var b = new Decimal128Array.Builder((Decimal128Type)type.ToArrowType());
        Span<byte> bytes = stackalloc byte[16];
        var limit = DecimalMath.Pow10(type.Precision);
        foreach (var v in values)
        {
            if (v is null)
            {
                b.AppendNull();
                continue;
            }

            var unscaled = v switch
            {
                decimal m => DecimalMath.ToUnscaled(m, type.Scale),
                SqlDecimal s => SqlToUnscaled(s, type.Scale),
                _ => checked(ToInt128(type, v) * DecimalMath.Pow10(type.Scale)),
            };
            if (Int128.Abs(unscaled) >= limit)
            {
                throw new OverflowException($"Value {v} does not fit {type}.");
            }

            ((IBinaryInteger<Int128>)unscaled).WriteLittleEndian(bytes);
            b.Append(bytes);
        }

        return b.Build();
    }

    /// <summary>The unscaled value of a <see cref="SqlDecimal"/> at <paramref name="scale"/>, rounding half away from zero.</summary>
    internal static Int128 SqlToUnscaled(SqlDecimal value, int scale)
    {
        if (value.IsNull)
        {
            throw new ArgumentException("A null SqlDecimal is not a value; pass null instead.", nameof(value));
        }

        var data = value.Data;
        var magnitude = ((UInt128)(uint)data[3] << 96) | ((UInt128)(uint)data[2] << 64) | ((UInt128)(uint)data[1] << 32) | (uint)data[0];
        var mag = checked((Int128)magnitude);
        var valueScale = (int)value.Scale;
        if (valueScale <= scale)
        {
            mag = checked(mag * DecimalMath.Pow10(scale - valueScale));
        }
        else
        {
            var div = DecimalMath.Pow10(valueScale - scale);
            var (q, r) = Int128.DivRem(mag, div);
            mag = r * 2 >= div ? q + 1 : q;
        }

        return value.IsPositive ? mag : -mag;
    }

    private static SqlDecimal UnscaledToSql(Int128 unscaled, int precision, int scale)
    {
        var negative = unscaled < 0;
        var mag = (UInt128)(negative ? -unscaled : unscaled);
        return new SqlDecimal(
            (byte)precision,
            (byte)scale,
            !negative,
            (int)(uint)mag,
            (int)(uint)(mag >> 32),
            (int)(uint)(mag >> 64),
            (int)(uint)(mag >> 96));
    }

    private static IArrowArray BuildList(SdkArrayType type, IReadOnlyList<object?> values)
    {
        var offsets = new ArrowBuffer.Builder<int>(values.Count + 1);
        var validity = new ArrowBuffer.BitmapBuilder(Math.Max(1, values.Count));
        var children = new List<object?>();
        var nulls = 0;
        offsets.Append(0);
        foreach (var v in values)
        {
            if (v is null)
            {
                validity.Append(false);
                nulls++;
            }
            else
            {
                if (v is string or byte[] || v is not IEnumerable items)
                {
                    throw Wrong(type, v);
                }

                foreach (var item in items)
                {
                    if (item is null && !type.ContainsNull)
                    {
                        throw new ArgumentException($"Array {type} does not allow null elements.");
                    }

                    children.Add(item);
                }

                validity.Append(true);
            }

            offsets.Append(children.Count);
        }

        var child = BuildArray(type.ElementType, children);
        return new ListArray(type.ToArrowType(), values.Count, offsets.Build(), child, nulls == 0 ? ArrowBuffer.Empty : validity.Build(), nulls, 0);
    }

    private static IArrowArray BuildStruct(SdkStructType type, IReadOnlyList<object?> values)
    {
        var columns = new List<object?>[type.Fields.Count];
        for (var i = 0; i < columns.Length; i++)
        {
            columns[i] = new List<object?>(values.Count);
        }

        var validity = new ArrowBuffer.BitmapBuilder(Math.Max(1, values.Count));
        var nulls = 0;
        foreach (var v in values)
        {
            if (v is null)
            {
                validity.Append(false);
                nulls++;
                foreach (var c in columns)
                {
                    c.Add(null);
                }

                continue;
            }

            validity.Append(true);
            for (var i = 0; i < columns.Length; i++)
            {
                var field = type.Fields[i];
                var fieldValue = v switch
                {
                    IReadOnlyDictionary<string, object?> d => d.TryGetValue(field.Name, out var x) ? x : null,
                    IDictionary<string, object?> d => d.TryGetValue(field.Name, out var x) ? x : null,
                    IDictionary d => d.Contains(field.Name) ? d[field.Name] : null,
                    _ => throw Wrong(type, v),
                };
                if (fieldValue is null && !field.Nullable)
                {
                    throw new ArgumentException($"Struct field '{field.Name}' of {type} is not nullable but has no value.");
                }

                columns[i].Add(fieldValue);
            }
        }

        var children = new IArrowArray[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            children[i] = BuildArray(type.Fields[i].Type, columns[i]);
        }

        return new StructArray(type.ToArrowType(), values.Count, children, nulls == 0 ? ArrowBuffer.Empty : validity.Build(), nulls, 0);
    }

    private static IArrowArray BuildMap(SdkMapType type, IReadOnlyList<object?> values)
    {
        var offsets = new ArrowBuffer.Builder<int>(values.Count + 1);
        var validity = new ArrowBuffer.BitmapBuilder(Math.Max(1, values.Count));
        var keys = new List<object?>();
        var items = new List<object?>();
        var nulls = 0;
        offsets.Append(0);
        foreach (var v in values)
        {
            if (v is null)
            {
                validity.Append(false);
                nulls++;
            }
            else
            {
                switch (v)
                {
                    case IEnumerable<KeyValuePair<object, object?>> pairs:
                        foreach (var (k, x) in pairs)
                        {
                            AddEntry(k, x);
                        }

                        break;
                    case IDictionary dict:
                        foreach (DictionaryEntry e in dict)
                        {
                            AddEntry(e.Key, e.Value);
                        }

                        break;
                    case IEnumerable enumerable when v is not string:
                        foreach (var o in enumerable)
                        {
                            // KeyValuePair<TKey, TValue> of any generic arguments.
                            var t = o?.GetType();
                            if (t is null || !t.IsGenericType || t.GetGenericTypeDefinition() != typeof(KeyValuePair<,>))
                            {
                                throw Wrong(type, v);
                            }

                            AddEntry(t.GetProperty("Key")!.GetValue(o), t.GetProperty("Value")!.GetValue(o));
                        }

                        break;
                    default:
                        throw Wrong(type, v);
                }

                validity.Append(true);
            }

            offsets.Append(keys.Count);
        }

        var arrowType = (Apache.Arrow.Types.MapType)type.ToArrowType();
        var keyArray = BuildArray(type.KeyType, keys);
        var valueArray = BuildArray(type.ValueType, items);
        var entries = new StructArray(arrowType.KeyValueType, keys.Count, [keyArray, valueArray], ArrowBuffer.Empty, 0, 0);
        return new MapArray(arrowType, values.Count, offsets.Build(), entries, nulls == 0 ? ArrowBuffer.Empty : validity.Build(), nulls, 0);

        void AddEntry(object? key, object? value)
        {
            if (key is null)
            {
                throw new ArgumentException($"Map {type} keys cannot be null.");
            }

            if (value is null && !type.ValueContainsNull)
            {
                throw new ArgumentException($"Map {type} does not allow null values (key {key}).");
            }

            keys.Add(key);
            items.Add(value);
        }
    }

    private static ArgumentException Wrong(DataType type, object value) =>
        new($"A value of CLR type {value.GetType().Name} ('{value}') cannot be stored in a {type} column.");

    /// <summary>The CLR value at <paramref name="index"/> (null when null).</summary>
    /// <exception cref="NotSupportedException">The array's type has no SDK equivalent.</exception>
    public static object? GetValue(IArrowArray array, int index)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.IsNull(index))
        {
            return null;
        }

        switch (array)
        {
            case BooleanArray a: return a.GetValue(index)!.Value;
            case Int8Array a: return a.Values[index];
            case Int16Array a: return a.Values[index];
            case Int32Array a: return a.Values[index];
            case Int64Array a: return a.Values[index];
            case UInt8Array a: return (short)a.Values[index];
            case UInt16Array a: return (int)a.Values[index];
            case UInt32Array a: return (long)a.Values[index];
            case FloatArray a: return a.Values[index];
            case DoubleArray a: return a.Values[index];
            case StringArray a: return a.GetString(index);
            case BinaryArray a: return a.GetBytes(index).ToArray();
            case Date32Array a: return DateOnly.FromDayNumber(EpochDayNumber + a.Values[index]);
            case TimestampArray a:
            {
                var type = (TimestampType)a.Data.DataType;
                var ticks = DateTime.UnixEpoch.Ticks + ToTicks(a.Values[index], type.Unit);
                return string.IsNullOrEmpty(type.Timezone)
                    ? (object)new DateTime(ticks, DateTimeKind.Unspecified)
                    : new DateTimeOffset(ticks, TimeSpan.Zero);
            }

            case Decimal128Array a:
            {
                var type = (Decimal128Type)a.Data.DataType;
                var unscaled = ReadDecimal(a, index);
                return DecimalMath.TryToDecimal(unscaled, type.Scale) is { } m ? (object)m : UnscaledToSql(unscaled, type.Precision, type.Scale);
            }

            case MapArray a:
            {
                var start = a.ValueOffsets[index];
                var end = a.ValueOffsets[index + 1];
                var result = new List<KeyValuePair<object, object?>>(end - start);
                for (var i = start; i < end; i++)
                {
                    result.Add(new KeyValuePair<object, object?>(GetValue(a.Keys, i)!, GetValue(a.Values, i)));
                }

                return result;
            }

            case ListArray a:
            {
                var start = a.ValueOffsets[index];
                var end = a.ValueOffsets[index + 1];
                var result = new List<object?>(end - start);
                for (var i = start; i < end; i++)
                {
                    result.Add(GetValue(a.Values, i));
                }

                return result;
            }

            case StructArray a:
            {
                var type = (ArrowStructType)a.Data.DataType;
                var result = new Dictionary<string, object?>(type.Fields.Count, StringComparer.Ordinal);
                for (var i = 0; i < type.Fields.Count; i++)
                {
                    var child = a.Fields[i];
                    result[type.Fields[i].Name] = GetValue(child, ChildIndex(a, child, index));
                }

                return result;
            }

            default:
                throw new NotSupportedException($"Arrow type {array.Data.DataType.Name} has no Ingest equivalent.");
        }
    }

    private static long ToTicks(long value, TimeUnit unit) => unit switch
    {
        TimeUnit.Second => value * TimeSpan.TicksPerSecond,
        TimeUnit.Millisecond => value * TimeSpan.TicksPerMillisecond,
        TimeUnit.Microsecond => value * 10,
        TimeUnit.Nanosecond => value / 100,
        _ => throw new NotSupportedException($"Time unit {unit}."),
    };

    private static Int128 ReadDecimal(Decimal128Array array, int index) =>
        DecimalMath.ReadUnscaled(array.ValueBuffer.Span.Slice((array.Offset + index) * 16, 16));

    // A sliced struct may or may not have sliced children: when the child is longer than the
    // struct, the struct's offset still applies to it.
    private static int ChildIndex(StructArray parent, IArrowArray child, int index) =>
        parent.Offset > 0 && child.Length > parent.Length ? parent.Offset + index : index;

    /// <summary>
    /// Writes the value at <paramref name="index"/> as JSON: numbers as numbers (decimals exact),
    /// timestamp as <c>"YYYY-MM-DD HH:MM:SS[.ffffff]+00"</c>, timestamp_ntz without the offset, date
    /// <c>"YYYY-MM-DD"</c>, binary as text with <c>\xNN</c> escapes for non-printable bytes, maps as objects with string keys.
    /// </summary>
    /// <remarks>Floating-point NaN and infinities, which JSON numbers cannot hold, are written as the strings <c>"NaN"</c>, <c>"Infinity"</c>, <c>"-Infinity"</c>.</remarks>
    public static void WriteJson(Utf8JsonWriter writer, IArrowArray array, int index)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(array);
        if (array.IsNull(index))
        {
            writer.WriteNullValue();
            return;
        }

        switch (array)
        {
            case BooleanArray a: writer.WriteBooleanValue(a.GetValue(index)!.Value); break;
            case Int8Array a: writer.WriteNumberValue(a.Values[index]); break;
            case Int16Array a: writer.WriteNumberValue(a.Values[index]); break;
            case Int32Array a: writer.WriteNumberValue(a.Values[index]); break;
            case Int64Array a: writer.WriteNumberValue(a.Values[index]); break;
            case UInt8Array a: writer.WriteNumberValue(a.Values[index]); break;
            case UInt16Array a: writer.WriteNumberValue(a.Values[index]); break;
            case UInt32Array a: writer.WriteNumberValue(a.Values[index]); break;
            case FloatArray a: WriteFloating(writer, a.Values[index], float.IsFinite(a.Values[index]), a.Values[index].ToString("R", CultureInfo.InvariantCulture)); break;
            case DoubleArray a: WriteFloating(writer, a.Values[index], double.IsFinite(a.Values[index]), a.Values[index].ToString("R", CultureInfo.InvariantCulture)); break;
            case StringArray a: writer.WriteStringValue(a.GetString(index)); break;
            case BinaryArray a: writer.WriteStringValue(EscapeBinary(a.GetBytes(index))); break;
            case Date32Array or TimestampArray: writer.WriteStringValue(ScalarText(array, index)); break;
            case Decimal128Array: writer.WriteRawValue(ScalarText(array, index)); break;
            case MapArray a:
            {
                writer.WriteStartObject();
                var start = a.ValueOffsets[index];
                var end = a.ValueOffsets[index + 1];
                for (var i = start; i < end; i++)
                {
                    writer.WritePropertyName(KeyText(a.Keys, i));
                    WriteJson(writer, a.Values, i);
                }

                writer.WriteEndObject();
                break;
            }

            case ListArray a:
            {
                writer.WriteStartArray();
                var start = a.ValueOffsets[index];
                var end = a.ValueOffsets[index + 1];
                for (var i = start; i < end; i++)
                {
                    WriteJson(writer, a.Values, i);
                }

                writer.WriteEndArray();
                break;
            }

            case StructArray a:
            {
                var type = (ArrowStructType)a.Data.DataType;
                writer.WriteStartObject();
                for (var i = 0; i < type.Fields.Count; i++)
                {
                    var child = a.Fields[i];
                    writer.WritePropertyName(type.Fields[i].Name);
                    WriteJson(writer, child, ChildIndex(a, child, index));
                }

                writer.WriteEndObject();
                break;
            }

            default:
                throw new NotSupportedException($"Arrow type {array.Data.DataType.Name} has no Ingest equivalent.");
        }
    }

    /// <summary>Writes row <paramref name="row"/> of <paramref name="batch"/> as one JSON object, columns in order.</summary>
    public static void WriteRowJson(Utf8JsonWriter writer, RecordBatch batch, int row)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(batch);
        writer.WriteStartObject();
        var fields = batch.Schema.FieldsList;
        for (var i = 0; i < fields.Count; i++)
        {
            writer.WritePropertyName(fields[i].Name);
            WriteJson(writer, batch.Column(i), row);
        }

        writer.WriteEndObject();
    }

    private static void WriteFloating(Utf8JsonWriter writer, double value, bool finite, string text)
    {
        if (!finite)
        {
            writer.WriteStringValue(double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
            return;
        }

        // Shortest round-trip text; a whole number keeps a ".0" so it reads as floating point.
        writer.WriteRawValue(text.AsSpan().IndexOfAny('.', 'E', 'e') < 0 ? text + ".0" : text);
    }

    /// <summary>The text of a date, timestamp or decimal value (decimals: exact digits).</summary>
    private static string ScalarText(IArrowArray array, int index)
    {
        switch (array)
        {
            case Date32Array a:
                return DateOnly.FromDayNumber(EpochDayNumber + a.Values[index]).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            case TimestampArray a:
            {
                var type = (TimestampType)a.Data.DataType;
                var dt = new DateTime(DateTime.UnixEpoch.Ticks + ToTicks(a.Values[index], type.Unit), DateTimeKind.Unspecified);
                var text = dt.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture).TrimEnd('0').TrimEnd('.');
                return string.IsNullOrEmpty(type.Timezone) ? text : text + "+00";
            }

            case Decimal128Array a:
                return DecimalMath.ToText(ReadDecimal(a, index), ((Decimal128Type)a.Data.DataType).Scale);
            default:
                throw new NotSupportedException($"Arrow type {array.Data.DataType.Name} is not a scalar with text.");
        }
    }

    /// <summary>A map key as a JSON property name: strings as they are, other values as their JSON text.</summary>
    private static string KeyText(IArrowArray keys, int index)
    {
        switch (keys)
        {
            case StringArray s:
                return s.GetString(index);
            case BinaryArray b:
                return EscapeBinary(b.GetBytes(index));
            case Date32Array or TimestampArray or Decimal128Array:
                return ScalarText(keys, index);
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteJson(w, keys, index);
        }

        var text = Encoding.UTF8.GetString(buffer.WrittenSpan);
        return text.StartsWith('"') ? JsonSerializer.Deserialize<string>(text)! : text;
    }

    /// <summary>Printable ASCII as is; other bytes, and the quote and backslash characters, as <c>\xNN</c> (DuckDB's blob text).</summary>
    private static string EscapeBinary(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 2);
        foreach (var b in bytes)
        {
            if (b is >= 32 and <= 126 and not (byte)'\\' and not (byte)'\'' and not (byte)'"')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append("\\x").Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }
}
