using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Kafka;

/// <summary>What the envelope's <c>source</c> block names.</summary>
/// <param name="Connector">The connector's name.</param>
/// <param name="Connection">The connection.</param>
/// <param name="Snapshot">True while the connection reads a snapshot (op <c>r</c>).</param>
internal readonly record struct EnvelopeSource(string Connector, string Connection, bool Snapshot);

/// <summary>
/// The Debezium-compatible JSON of a change record (DESIGN.md section 3). Value formats follow Debezium's settings a consumer
/// of its Postgres connector knows: timestamps as ISO-8601 strings (<c>io.debezium.time.ZonedTimestamp</c>), dates as days since
/// the epoch (<c>io.debezium.time.Date</c>), decimals as strings (<c>decimal.handling.mode=string</c>), binary as base64
/// (<c>binary.handling.mode=base64</c>). <c>source.position</c> carries the engine's orderable position and <c>source.ts_us</c>
/// the exact source time (Debezium 2 has <c>ts_us</c> too).
/// </summary>
internal static class ChangeEnvelope
{
    /// <summary>
    /// The header naming the stream's schema by its id (<see cref="SchemaId"/>): the schema itself is a record of the compacted
    /// schemas topic (<see cref="SchemasTopic"/>), written in the same transaction before the first record that names it.
    /// </summary>
    public const string SchemaHeader = "ingest.schema.id";

    /// <summary>
    /// The header carrying the stream's columns in full (Delta's struct type JSON). Our source no longer writes it (a few hundred
    /// bytes a record overflowed the mock cluster's partitions in the crash tests; <see cref="SchemaHeader"/> replaced it), but
    /// sinks still read it from topics that carry it.
    /// </summary>
    public const string SchemaJsonHeader = "ingest.schema";

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <summary>A stable id of a stream's schema: the first 16 hex digits of the SHA-256 of its JSON (<see cref="SchemaJson"/>).</summary>
    public static string SchemaId(StreamSchema schema) => SchemaId(SchemaJson(schema));

    /// <summary>The id of a schema given as its JSON (<see cref="SchemaJson"/>).</summary>
    public static string SchemaId(ReadOnlySpan<byte> schemaJson)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(schemaJson, hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    /// <summary>The stream's columns as the schemas topic (and <see cref="SchemaJsonHeader"/>) carries them: Delta's struct type JSON, UTF-8.</summary>
    public static byte[] SchemaJson(StreamSchema schema) => Encoding.UTF8.GetBytes(schema.ToDeltaJson().ToJsonString());

    /// <summary>Reads a schema JSON back (<see cref="SchemaJsonHeader"/>'s value, or a schemas topic record's); <paramref name="what"/> names it in errors.</summary>
    /// <exception cref="FormatException">The value is not a Delta struct type JSON.</exception>
    public static StreamSchema ParseSchemaJson(ReadOnlySpan<byte> json, string what = "header " + SchemaJsonHeader)
    {
        System.Text.Json.Nodes.JsonNode? node;
        try
        {
            node = System.Text.Json.Nodes.JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what} is not JSON: {e.Message}", e);
        }

        DataType parsed;
        try
        {
            parsed = node is null ? DataType.String : DataType.FromDeltaJson(node);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or KeyNotFoundException)
        {
            throw new FormatException($"{what}: {e.Message}", e);
        }

        if (parsed is not StructType type)
        {
            throw new FormatException($"{what} is not a struct type");
        }

        try
        {
            return new StreamSchema(type.Fields);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"{what}: {e.Message}", e);
        }
    }

    /// <summary>The key of a row: its primary key columns as a JSON object, or null when the stream has no key.</summary>
    public static byte[]? Key(RecordBatch data, int[] keyOrdinals, int row, ArrayBufferWriter<byte> buffer)
    {
        if (keyOrdinals.Length == 0)
        {
            return null;
        }

        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            foreach (var c in keyOrdinals)
            {
                w.WritePropertyName(data.Schema.FieldsList[c].Name);
                WriteValue(w, data.Column(c), row);
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The envelope of row <paramref name="row"/> of <paramref name="batch"/>.</summary>
    public static byte[] Value(ChangeBatch batch, int row, EnvelopeSource source, long nowMillis, ArrayBufferWriter<byte> buffer)
    {
        buffer.ResetWrittenCount();
        var op = batch.Ops[row];
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WritePropertyName("before");
            if (op == ChangeOp.Delete)
            {
                WriteRow(w, batch.Before ?? batch.Data, row);
            }
            else if (op == ChangeOp.Update && batch.Before is { } before && !AllNull(before, row))
            {
                WriteRow(w, before, row);
            }
            else
            {
                w.WriteNullValue();
            }

            w.WritePropertyName("after");
            if (op is ChangeOp.Delete or ChangeOp.Truncate)
            {
                w.WriteNullValue();
            }
            else
            {
                WriteRow(w, batch.Data, row);
            }

            var micros = batch.SourceTimestampsMicros[row];
            w.WriteStartObject("source");
            w.WriteString("version", "ingest");
            w.WriteString("connector", source.Connector);
            w.WriteString("name", source.Connection);
            w.WriteString("connection", source.Connection);
            w.WriteString("stream", batch.Stream);
            w.WriteString("table", batch.Stream);
            w.WriteString("position", batch.Positions[row].ToString());
            w.WriteNumber("ts_ms", micros / 1000);
            w.WriteNumber("ts_us", micros);
            w.WriteString("snapshot", op == ChangeOp.Read ? "true" : "false");
            w.WriteEndObject();
            w.WriteString("op", op.Code());
            w.WriteNumber("ts_ms", nowMillis);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static bool AllNull(RecordBatch batch, int row)
    {
        for (var c = 0; c < batch.ColumnCount; c++)
        {
            if (!batch.Column(c).IsNull(row))
            {
                return false;
            }
        }

        return true;
    }

    private static void WriteRow(Utf8JsonWriter w, RecordBatch data, int row)
    {
        w.WriteStartObject();
        for (var c = 0; c < data.ColumnCount; c++)
        {
            w.WritePropertyName(data.Schema.FieldsList[c].Name);
            WriteValue(w, data.Column(c), row);
        }

        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, IArrowArray array, int row)
    {
        if (array.IsNull(row))
        {
            w.WriteNullValue();
            return;
        }

        switch (array)
        {
            case TimestampArray t:
                // timestamp_ntz (no time zone) reads back as a DateTime, timestamp as a DateTimeOffset.
                switch (ArrowValues.GetValue(t, row))
                {
                    case DateTimeOffset o:
                        w.WriteStringValue(o.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
                        break;
                    case DateTime d:
                        w.WriteStringValue(d.ToString("yyyy-MM-ddTHH:mm:ss.ffffff", CultureInfo.InvariantCulture));
                        break;
                    case var other:
                        throw new InvalidOperationException($"a timestamp column read back as {other?.GetType().Name ?? "null"}");
                }

                break;
            case Date32Array d:
                w.WriteNumberValue(d.Values[row]);
                break;
            case Decimal128Array:
                w.WriteStringValue(ArrowValues.GetValue(array, row) is decimal m ? m.ToString(CultureInfo.InvariantCulture) : ArrowValues.GetValue(array, row)!.ToString());
                break;
            case BinaryArray b and not StringArray:
                w.WriteBase64StringValue(b.GetBytes(row));
                break;
            case ListArray or StructArray:
                // Nested values (array, map, struct) in Kafka Connect's JSON shapes, their leaves encoded as at the top level.
                WriteClr(w, ArrowValues.GetValue(array, row));
                break;
            default:
                ArrowValues.WriteJson(w, array, row);
                break;
        }
    }

    private static void WriteClr(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case bool b: w.WriteBooleanValue(b); break;
            case sbyte or short or int or long: w.WriteNumberValue(System.Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
            case float f: w.WriteNumberValue(f); break;
            case double d: w.WriteNumberValue(d); break;
            case decimal m: w.WriteStringValue(m.ToString(CultureInfo.InvariantCulture)); break;
            case string s: w.WriteStringValue(s); break;
            case byte[] bytes: w.WriteBase64StringValue(bytes); break;
            case DateOnly d: w.WriteNumberValue(d.DayNumber - EpochDayNumber); break;
            case DateTimeOffset t: w.WriteStringValue(t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture)); break;
            case DateTime t: w.WriteStringValue(t.ToString("yyyy-MM-ddTHH:mm:ss.ffffff", CultureInfo.InvariantCulture)); break;
            case IReadOnlyDictionary<string, object?> fields:
                w.WriteStartObject();
                foreach (var (k, v) in fields)
                {
                    w.WritePropertyName(k);
                    WriteClr(w, v);
                }

                w.WriteEndObject();
                break;
            case IReadOnlyList<KeyValuePair<object, object?>> entries:
                // Kafka Connect's JSON: a map with string keys is an object, any other map an array of [key, value] pairs.
                if (entries.All(e => e.Key is string))
                {
                    w.WriteStartObject();
                    foreach (var (k, v) in entries)
                    {
                        w.WritePropertyName((string)k);
                        WriteClr(w, v);
                    }

                    w.WriteEndObject();
                }
                else
                {
                    w.WriteStartArray();
                    foreach (var (k, v) in entries)
                    {
                        w.WriteStartArray();
                        WriteClr(w, k);
                        WriteClr(w, v);
                        w.WriteEndArray();
                    }

                    w.WriteEndArray();
                }

                break;
            case IReadOnlyList<object?> items:
                w.WriteStartArray();
                foreach (var item in items)
                {
                    WriteClr(w, item);
                }

                w.WriteEndArray();
                break;
            default:
                // SqlDecimal (decimals beyond 28 digits) and anything else with an exact invariant text.
                w.WriteStringValue(System.Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }

    private static readonly int EpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    /// <summary>
    /// Decodes an envelope (ours, or Debezium's JSON with or without its <c>schema</c>/<c>payload</c> wrapper) into one row of
    /// <paramref name="builder"/>. Returns false for a tombstone (null value). <paramref name="fallback"/> orders records without
    /// <c>source.position</c> (Debezium's own): the Kafka offset within the partition, which orders every change of a key.
    /// </summary>
    /// <exception cref="FormatException">The value is not a change envelope, or a value does not fit its column (no row is added then).</exception>
    public static bool Decode(ReadOnlySpan<byte> value, ChangeBatchBuilder builder, SourcePosition fallback)
    {
        using var envelope = Envelope.Parse(value);
        if (envelope is null)
        {
            return false;
        }

        DecodeRow(envelope, builder, fallback, null, default);
        return true;
    }

    /// <summary>
    /// Adds the row of <paramref name="envelope"/> to <paramref name="builder"/>: every value is converted first, so a value that
    /// does not fit leaves the builder as it was. <paramref name="encodings"/> (aligned with the builder's columns, null = plain)
    /// say how Debezium encoded each value; <paramref name="key"/> (the record key's fields, or default) fills key columns the
    /// image lacks (a delete whose <c>before</c> is null or holds only some columns).
    /// </summary>
    /// <exception cref="FormatException">The image is missing, or a value does not fit its column.</exception>
    public static void DecodeRow(Envelope envelope, ChangeBatchBuilder builder, SourcePosition fallback, IReadOnlyList<ColumnEncoding>? encodings, JsonElement key)
    {
        var op = envelope.Op;
        var row = envelope.Image;
        if (op != ChangeOp.Truncate && row.ValueKind != JsonValueKind.Object)
        {
            if (op == ChangeOp.Delete && key.ValueKind == JsonValueKind.Object)
            {
                row = key;
            }
            else
            {
                throw new FormatException($"op '{op.Code()}' needs an object in '{(op == ChangeOp.Delete ? "before" : "after")}'");
            }
        }

        var schema = builder.Schema;
        var cells = ArrayPool<Cell>.Shared.Rent(schema.Count);
        try
        {
            for (var c = 0; c < schema.Count; c++)
            {
                var field = schema.Columns[c];
                cells[c] = default;
                if (op == ChangeOp.Truncate)
                {
                    continue;
                }

                if (!row.TryGetProperty(field.Name, out var v) || v.ValueKind == JsonValueKind.Null)
                {
                    if (key.ValueKind != JsonValueKind.Object || !key.TryGetProperty(field.Name, out v) || v.ValueKind == JsonValueKind.Null)
                    {
                        continue;
                    }
                }

                try
                {
                    cells[c] = ToCell(field.Type, encodings is null ? default : encodings[c], v);
                }
                catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException or ArgumentException or KeyNotFoundException)
                {
                    throw new FormatException($"column '{field.Name}' ({field.Type.DisplayName}): cannot read {Short(v.GetRawText())}: {e.Message}", e);
                }
            }

            builder.BeginRow(op, envelope.Position ?? fallback, envelope.Micros);
            for (var c = 0; c < schema.Count; c++)
            {
                Set(builder, c, schema.Columns[c].Type, cells[c]);
            }

            builder.EndRow();
        }
        finally
        {
            System.Array.Clear(cells, 0, schema.Count);
            ArrayPool<Cell>.Shared.Return(cells);
        }
    }

    private static string Short(string s) => s.Length > 80 ? s[..77] + "..." : s;

    /// <summary>One converted value: which field holds it depends on the column's type.</summary>
    private struct Cell
    {
        public bool HasValue;
        public long Integer;
        public double Real;
        public Int128 Unscaled;
        public object? Object;
    }

    private static Cell ToCell(DataType type, ColumnEncoding encoding, JsonElement v)
    {
        var cell = new Cell { HasValue = true };
        switch (type)
        {
            case DecimalType d:
                cell.Unscaled = encoding.Kind == ValueEncoding.DecimalBytes
                    ? Rescale(FromTwosComplement(v.GetBytesFromBase64()), encoding.Scale, d.Scale)
                    : DecimalMath.ToUnscaled(v.ValueKind == JsonValueKind.String ? decimal.Parse(v.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture) : v.GetDecimal(), d.Scale);
                return cell;
            case PrimitiveType p:
                switch (p.Kind)
                {
                    case PrimitiveKind.Boolean: cell.Integer = v.GetBoolean() ? 1 : 0; return cell;
                    case PrimitiveKind.Int8: cell.Integer = v.GetSByte(); return cell;
                    case PrimitiveKind.Int16: cell.Integer = v.GetInt16(); return cell;
                    case PrimitiveKind.Int32: cell.Integer = v.GetInt32(); return cell;
                    case PrimitiveKind.Int64: cell.Integer = v.GetInt64(); return cell;
                    case PrimitiveKind.Float:
                    case PrimitiveKind.Double:
                        cell.Real = v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble();
                        return cell;
                    case PrimitiveKind.String:
                        cell.Object = encoding.Kind == ValueEncoding.VariableScaleDecimal ? VariableScaleText(v)
                            : v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();
                        return cell;
                    case PrimitiveKind.Binary: cell.Object = v.GetBytesFromBase64(); return cell;
                    case PrimitiveKind.Date:
                        cell.Integer = v.ValueKind == JsonValueKind.Number ? v.GetInt32()
                            : DateOnly.ParseExact(v.GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture).DayNumber - EpochDayNumber;
                        return cell;
                    case PrimitiveKind.Timestamp:
                    case PrimitiveKind.TimestampNtz:
                        cell.Integer = TimestampMicros(encoding.Kind, v);
                        return cell;
                }

                break;
            case ArrayType or StructType or MapType:
                cell.Object = ToClr(type, v);
                return cell;
        }

        throw new FormatException($"type {type.DisplayName} is not carried by the Kafka transport");
    }

    private static long TimestampMicros(ValueEncoding encoding, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            // Debezium's io.debezium.time.Timestamp (ms), MicroTimestamp (µs), NanoTimestamp (ns); ours: µs.
            return encoding switch
            {
                ValueEncoding.EpochMillis => checked(v.GetInt64() * 1000),
                ValueEncoding.EpochNanos => v.GetInt64() / 1000,
                _ => v.GetInt64(),
            };
        }

        var t = DateTimeOffset.Parse(v.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        return (t - DateTimeOffset.UnixEpoch).Ticks / 10;
    }

    private static void Set(ChangeBatchBuilder b, int c, DataType type, Cell cell)
    {
        if (!cell.HasValue)
        {
            b.SetNull(c);
            return;
        }

        switch (type)
        {
            case DecimalType:
                b.SetDecimalUnscaled(c, cell.Unscaled);
                return;
            case PrimitiveType p:
                switch (p.Kind)
                {
                    case PrimitiveKind.Boolean: b.SetBoolean(c, cell.Integer != 0); return;
                    case PrimitiveKind.Int8: b.SetInt8(c, (sbyte)cell.Integer); return;
                    case PrimitiveKind.Int16: b.SetInt16(c, (short)cell.Integer); return;
                    case PrimitiveKind.Int32: b.SetInt32(c, (int)cell.Integer); return;
                    case PrimitiveKind.Int64: b.SetInt64(c, cell.Integer); return;
                    case PrimitiveKind.Float: b.SetFloat(c, (float)cell.Real); return;
                    case PrimitiveKind.Double: b.SetDouble(c, cell.Real); return;
                    case PrimitiveKind.String: b.SetString(c, (string)cell.Object!); return;
                    case PrimitiveKind.Binary: b.SetBinary(c, (byte[])cell.Object!); return;
                    case PrimitiveKind.Date: b.SetDate(c, (int)cell.Integer); return;
                    default: b.SetTimestampMicros(c, cell.Integer); return;
                }

            default:
                b.SetValue(c, cell.Object);
                return;
        }
    }

    /// <summary>A nested value as the CLR shape <see cref="ArrowValues.BuildArray"/> takes.</summary>
    private static object? ToClr(DataType type, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        switch (type)
        {
            case ArrayType a:
                if (v.ValueKind != JsonValueKind.Array)
                {
                    throw new FormatException($"expected a JSON array, got {v.ValueKind}");
                }

                var items = new List<object?>(v.GetArrayLength());
                foreach (var item in v.EnumerateArray())
                {
                    items.Add(ToClr(a.ElementType, item));
                }

                return items;
            case StructType s:
                if (v.ValueKind != JsonValueKind.Object)
                {
                    throw new FormatException($"expected a JSON object, got {v.ValueKind}");
                }

                var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var f in s.Fields)
                {
                    fields[f.Name] = v.TryGetProperty(f.Name, out var x) ? ToClr(f.Type, x) : null;
                }

                return fields;
            case MapType m:
                var entries = new List<KeyValuePair<object, object?>>();
                if (v.ValueKind == JsonValueKind.Object)
                {
                    foreach (var p in v.EnumerateObject())
                    {
                        entries.Add(new(MapKey(m.KeyType, p.Name), ToClr(m.ValueType, p.Value)));
                    }
                }
                else if (v.ValueKind == JsonValueKind.Array)
                {
                    foreach (var pair in v.EnumerateArray())
                    {
                        if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2)
                        {
                            throw new FormatException("expected map entries as [key, value] pairs");
                        }

                        entries.Add(new(ToClr(m.KeyType, pair[0]) ?? throw new FormatException("a map key is null"), ToClr(m.ValueType, pair[1])));
                    }
                }
                else
                {
                    throw new FormatException($"expected a JSON object or an array of [key, value] pairs, got {v.ValueKind}");
                }

                return entries;
            case DecimalType:
                return v.ValueKind == JsonValueKind.String ? decimal.Parse(v.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture) : v.GetDecimal();
            case PrimitiveType p:
                return p.Kind switch
                {
                    PrimitiveKind.Boolean => v.GetBoolean(),
                    PrimitiveKind.Int8 => v.GetSByte(),
                    PrimitiveKind.Int16 => v.GetInt16(),
                    PrimitiveKind.Int32 => v.GetInt32(),
                    PrimitiveKind.Int64 => v.GetInt64(),
                    PrimitiveKind.Float => v.ValueKind == JsonValueKind.String ? float.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetSingle(),
                    PrimitiveKind.Double => v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble(),
                    PrimitiveKind.String => v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText(),
                    PrimitiveKind.Binary => v.GetBytesFromBase64(),
                    PrimitiveKind.Date => v.ValueKind == JsonValueKind.Number ? DateOnly.FromDayNumber(EpochDayNumber + v.GetInt32()) : DateOnly.ParseExact(v.GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture),
                    PrimitiveKind.Timestamp => DateTimeOffset.UnixEpoch.AddTicks(TimestampMicros(ValueEncoding.Plain, v) * 10),
                    _ => new DateTime(DateTime.UnixEpoch.Ticks + (TimestampMicros(ValueEncoding.Plain, v) * 10), DateTimeKind.Unspecified),
                };
        }

        throw new FormatException($"type {type.DisplayName} is not carried by the Kafka transport");
    }

    private static object MapKey(DataType type, string text) => type switch
    {
        PrimitiveType { Kind: PrimitiveKind.String } => text,
        PrimitiveType { Kind: PrimitiveKind.Int8 or PrimitiveKind.Int16 or PrimitiveKind.Int32 or PrimitiveKind.Int64 } => long.Parse(text, CultureInfo.InvariantCulture),
        _ => ToClr(type, JsonDocument.Parse(text.StartsWith('"') ? text : "\"" + text + "\"").RootElement.Clone())!,
    };

    /// <summary>A big-endian two's-complement integer (Kafka Connect's Decimal bytes).</summary>
    private static Int128 FromTwosComplement(byte[] bytes)
    {
        var big = new System.Numerics.BigInteger(bytes, isUnsigned: false, isBigEndian: true);
        return big >= (System.Numerics.BigInteger)Int128.MinValue && big <= (System.Numerics.BigInteger)Int128.MaxValue
            ? (Int128)big
            : throw new OverflowException("the decimal needs more than 38 digits");
    }

    private static Int128 Rescale(Int128 unscaled, int from, int to)
    {
        for (; from < to; from++)
        {
            unscaled = checked(unscaled * 10);
        }

        for (; from > to; from--)
        {
            if (unscaled % 10 != 0)
            {
                throw new OverflowException($"the value has more than {to} decimal places");
            }

            unscaled /= 10;
        }

        return unscaled;
    }

    /// <summary>Debezium's io.debezium.data.VariableScaleDecimal (<c>{"scale": s, "value": base64}</c>) as exact decimal text.</summary>
    private static string VariableScaleText(JsonElement v)
    {
        var scale = v.GetProperty("scale").GetInt32();
        var digits = new System.Numerics.BigInteger(v.GetProperty("value").GetBytesFromBase64(), isUnsigned: false, isBigEndian: true);
        var negative = digits.Sign < 0;
        var text = System.Numerics.BigInteger.Abs(digits).ToString(CultureInfo.InvariantCulture);
        if (scale > 0)
        {
            text = text.PadLeft(scale + 1, '0');
            text = text[..^scale] + "." + text[^scale..];
        }

        return negative ? "-" + text : text;
    }
}

/// <summary>How Debezium encoded a column's JSON value (its Kafka Connect semantic type); <see cref="Plain"/> is ours.</summary>
internal enum ValueEncoding
{
    /// <summary>Timestamps as ISO-8601 text (or µs numbers), dates as days or ISO text, decimals as text or numbers.</summary>
    Plain,

    /// <summary>io.debezium.time.Timestamp, org.apache.kafka.connect.data.Timestamp: milliseconds since the epoch.</summary>
    EpochMillis,

    /// <summary>io.debezium.time.MicroTimestamp: microseconds since the epoch.</summary>
    EpochMicros,

    /// <summary>io.debezium.time.NanoTimestamp: nanoseconds since the epoch.</summary>
    EpochNanos,

    /// <summary>org.apache.kafka.connect.data.Decimal: the unscaled value as big-endian two's-complement bytes (base64).</summary>
    DecimalBytes,

    /// <summary>io.debezium.data.VariableScaleDecimal: <c>{"scale", "value"}</c>.</summary>
    VariableScaleDecimal,
}

/// <summary>A column's encoding, with the scale of <see cref="ValueEncoding.DecimalBytes"/>.</summary>
internal readonly record struct ColumnEncoding(ValueEncoding Kind, int Scale = 0);

/// <summary>
/// A parsed record value: the envelope (unwrapped from Debezium's <c>schema</c>/<c>payload</c> when present), its op, the image the
/// row comes from, the source position and time.
/// </summary>
internal sealed class Envelope : IDisposable
{
    private readonly JsonDocument _document;

    private Envelope(JsonDocument document, JsonElement payload, JsonElement? schema, ChangeOp op, JsonElement image, SourcePosition? position, long micros)
    {
        _document = document;
        Payload = payload;
        Schema = schema;
        Op = op;
        Image = image;
        Position = position;
        Micros = micros;
    }

    /// <summary>The envelope object.</summary>
    public JsonElement Payload { get; }

    /// <summary>Kafka Connect's schema of the envelope (Debezium with <c>schemas.enable=true</c>), or null.</summary>
    public JsonElement? Schema { get; }

    public ChangeOp Op { get; }

    /// <summary><c>before</c> for a delete, else <c>after</c> (a JSON null when absent).</summary>
    public JsonElement Image { get; }

    /// <summary><c>source.position</c> (our envelopes), or null.</summary>
    public SourcePosition? Position { get; }

    /// <summary>The source time in µs (<c>source.ts_us</c>, else <c>source.ts_ms</c>), or 0.</summary>
    public long Micros { get; }

    /// <summary>Parses a record value; null for a tombstone (no value, or a JSON null payload).</summary>
    /// <exception cref="FormatException">The value is not JSON or not a change envelope.</exception>
    public static Envelope? Parse(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return null;
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(value.ToArray());
        }
        catch (JsonException e)
        {
            throw new FormatException($"not JSON: {e.Message}", e);
        }

        try
        {
            var root = doc.RootElement;
            JsonElement? schema = null;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("payload", out var payload) && root.TryGetProperty("schema", out var s))
            {
                root = payload;
                schema = s;
            }

            if (root.ValueKind == JsonValueKind.Null)
            {
                doc.Dispose();
                return null;
            }

            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("op", out var opElement) || opElement.ValueKind != JsonValueKind.String)
            {
                throw new FormatException("not a change envelope: expected an object with 'op', 'before', 'after' and 'source'");
            }

            ChangeOp op;
            try
            {
                op = ChangeOps.Parse(opElement.GetString()!);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw new FormatException($"unknown op '{opElement.GetString()}' (expected r, c, u, d or t)", e);
            }

            SourcePosition? position = null;
            long micros = 0;
            if (root.TryGetProperty("source", out var source) && source.ValueKind == JsonValueKind.Object)
            {
                if (source.TryGetProperty("position", out var p) && p.ValueKind == JsonValueKind.String)
                {
                    position = SourcePosition.Parse(p.GetString());
                }

                if (source.TryGetProperty("ts_us", out var us) && us.ValueKind == JsonValueKind.Number)
                {
                    micros = us.GetInt64();
                }
                else if (source.TryGetProperty("ts_ms", out var ms) && ms.ValueKind == JsonValueKind.Number)
                {
                    micros = ms.GetInt64() * 1000;
                }
            }

            root.TryGetProperty(op == ChangeOp.Delete ? "before" : "after", out var image);
            return new Envelope(doc, root, schema, op, image, position, micros);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _document.Dispose();
}
