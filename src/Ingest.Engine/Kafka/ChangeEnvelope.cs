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
    /// <summary>The header naming the stream's schema (a hash of its columns).</summary>
    public const string SchemaHeader = "ingest.schema.id";

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <summary>A stable id of a stream's columns: the first 16 hex digits of the SHA-256 of their description.</summary>
    public static string SchemaId(StreamSchema schema)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(schema.ToString()), hash);
        return Convert.ToHexStringLower(hash[..8]);
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
                var value = (DateTimeOffset)ArrowValues.GetValue(t, row)!;
                var ntz = string.IsNullOrEmpty(((Apache.Arrow.Types.TimestampType)t.Data.DataType).Timezone);
                w.WriteStringValue(ntz ? value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffff", CultureInfo.InvariantCulture) : value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
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
            default:
                ArrowValues.WriteJson(w, array, row);
                break;
        }
    }

    /// <summary>
    /// Decodes an envelope (ours, or Debezium's JSON with or without its <c>schema</c>/<c>payload</c> wrapper) into one row of
    /// <paramref name="builder"/>. Returns false for a tombstone (null value). <paramref name="fallback"/> orders records without
    /// <c>source.position</c> (Debezium's own): the Kafka offset within the partition, which orders every change of a key.
    /// </summary>
    /// <exception cref="FormatException">The value is not a change envelope, or a value does not fit its column.</exception>
    public static bool Decode(ReadOnlySpan<byte> value, ChangeBatchBuilder builder, SourcePosition fallback)
    {
        if (value.IsEmpty)
        {
            return false;
        }

        using var doc = JsonDocument.Parse(value.ToArray());
        var root = doc.RootElement;
        if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("payload", out var payload) && root.TryGetProperty("schema", out _))
        {
            root = payload;
        }

        if (root.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("op", out var opElement) || opElement.ValueKind != JsonValueKind.String)
        {
            throw new FormatException("not a change envelope: expected an object with 'op', 'before', 'after' and 'source'");
        }

        var op = ChangeOps.Parse(opElement.GetString()!);
        var position = fallback;
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

        var image = op == ChangeOp.Delete ? "before" : "after";
        JsonElement row = default;
        if (op != ChangeOp.Truncate && (!root.TryGetProperty(image, out row) || row.ValueKind != JsonValueKind.Object))
        {
            throw new FormatException($"op '{op.Code()}' needs an object in '{image}'");
        }

        var schema = builder.Schema;
        builder.BeginRow(op, position, micros);
        for (var c = 0; c < schema.Count; c++)
        {
            var field = schema.Columns[c];
            if (op == ChangeOp.Truncate || !row.TryGetProperty(field.Name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                builder.SetNull(c);
                continue;
            }

            try
            {
                SetValue(builder, c, field.Type, v);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException)
            {
                throw new FormatException($"column '{field.Name}' ({field.Type.DisplayName}): cannot read {v.GetRawText()}: {e.Message}", e);
            }
        }

        builder.EndRow();
        return true;
    }

    private static void SetValue(ChangeBatchBuilder b, int c, DataType type, JsonElement v)
    {
        switch (type)
        {
            case DecimalType:
                b.SetDecimal(c, v.ValueKind == JsonValueKind.String ? decimal.Parse(v.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture) : v.GetDecimal());
                return;
            case PrimitiveType p:
                switch (p.Kind)
                {
                    case PrimitiveKind.Boolean: b.SetBoolean(c, v.GetBoolean()); return;
                    case PrimitiveKind.Int8: b.SetInt8(c, v.GetSByte()); return;
                    case PrimitiveKind.Int16: b.SetInt16(c, v.GetInt16()); return;
                    case PrimitiveKind.Int32: b.SetInt32(c, v.GetInt32()); return;
                    case PrimitiveKind.Int64: b.SetInt64(c, v.GetInt64()); return;
                    case PrimitiveKind.Float: b.SetFloat(c, v.ValueKind == JsonValueKind.String ? float.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetSingle()); return;
                    case PrimitiveKind.Double: b.SetDouble(c, v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble()); return;
                    case PrimitiveKind.String: b.SetString(c, v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()); return;
                    case PrimitiveKind.Binary: b.SetBinary(c, v.GetBytesFromBase64()); return;
                    case PrimitiveKind.Date:
                        if (v.ValueKind == JsonValueKind.Number)
                        {
                            b.SetDate(c, v.GetInt32());
                        }
                        else
                        {
                            b.SetDate(c, DateOnly.ParseExact(v.GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture));
                        }

                        return;
                    case PrimitiveKind.Timestamp:
                    case PrimitiveKind.TimestampNtz:
                        if (v.ValueKind == JsonValueKind.Number)
                        {
                            // Debezium's io.debezium.time.MicroTimestamp.
                            b.SetTimestampMicros(c, v.GetInt64());
                        }
                        else
                        {
                            var t = DateTimeOffset.Parse(v.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
                            b.SetTimestampMicros(c, (t - DateTimeOffset.UnixEpoch).Ticks / 10);
                        }

                        return;
                }

                break;
        }

        throw new FormatException($"type {type.DisplayName} is not carried by the Kafka transport yet");
    }
}
