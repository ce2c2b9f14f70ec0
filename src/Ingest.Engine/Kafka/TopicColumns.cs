using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Kafka;

/// <summary>A column a record carries: its field and how its values are encoded.</summary>
internal readonly record struct TopicColumn(Field Field, ColumnEncoding Encoding);

/// <summary>
/// The columns of a Debezium topic's records: from Kafka Connect's schema when the record carries one (<c>schemas.enable=true</c>:
/// exact types, Debezium's semantic types such as <c>io.debezium.time.MicroTimestamp</c> or Connect's <c>Decimal</c>), else inferred
/// from the JSON values (integers as long, other numbers as double, text, booleans; objects and arrays as JSON text). Without a
/// schema, temporal values keep Debezium's encoding (e.g. a MicroTimestamp stays a long of microseconds): JSON cannot tell them apart.
/// </summary>
internal static class TopicColumns
{
    /// <summary>The columns of the envelope's row image per Kafka Connect's envelope schema, or null when it describes none.</summary>
    /// <exception cref="FormatException">The schema is not a Kafka Connect struct schema.</exception>
    public static List<TopicColumn>? FromConnectSchema(JsonElement envelopeSchema)
    {
        if (envelopeSchema.ValueKind != JsonValueKind.Object || !envelopeSchema.TryGetProperty("fields", out var fields) || fields.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        foreach (var f in fields.EnumerateArray())
        {
            if (f.TryGetProperty("field", out var name) && name.GetString() is "after" or "before" && f.TryGetProperty("fields", out var columns))
            {
                var result = new List<TopicColumn>();
                foreach (var c in columns.EnumerateArray())
                {
                    var (type, encoding) = ConnectType(c);
                    var optional = !c.TryGetProperty("optional", out var o) || o.ValueKind != JsonValueKind.False;
                    result.Add(new TopicColumn(new Field(c.GetProperty("field").GetString()!, type, optional), encoding));
                }

                return result;
            }
        }

        return null;
    }

    /// <summary>The columns whose values are not null in <paramref name="image"/> (then in <paramref name="key"/>), typed by their JSON values.</summary>
    public static List<TopicColumn> Infer(JsonElement image, JsonElement key)
    {
        var result = new List<TopicColumn>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in new[] { image, key })
        {
            if (source.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            foreach (var p in source.EnumerateObject())
            {
                DataType? type = p.Value.ValueKind switch
                {
                    JsonValueKind.Number => p.Value.TryGetInt64(out _) ? DataType.Int64 : DataType.Double,
                    JsonValueKind.True or JsonValueKind.False => DataType.Boolean,
                    JsonValueKind.String or JsonValueKind.Object or JsonValueKind.Array => DataType.String,
                    _ => null,
                };
                if (type is not null && seen.Add(p.Name))
                {
                    result.Add(new TopicColumn(new Field(p.Name, type), default));
                }
            }
        }

        return result;
    }

    /// <summary>A Kafka Connect field schema as a column type and the encoding of its values.</summary>
    /// <exception cref="FormatException">An unknown Connect type.</exception>
    public static (DataType Type, ColumnEncoding Encoding) ConnectType(JsonElement s)
    {
        var type = s.TryGetProperty("type", out var t) ? t.GetString() : null;
        var name = s.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        switch (name)
        {
            case "io.debezium.time.Date" or "org.apache.kafka.connect.data.Date":
                return (DataType.Date, default);
            case "io.debezium.time.Timestamp" or "org.apache.kafka.connect.data.Timestamp":
                return (DataType.TimestampNtz, new ColumnEncoding(ValueEncoding.EpochMillis));
            case "io.debezium.time.MicroTimestamp":
                return (DataType.TimestampNtz, new ColumnEncoding(ValueEncoding.EpochMicros));
            case "io.debezium.time.NanoTimestamp":
                return (DataType.TimestampNtz, new ColumnEncoding(ValueEncoding.EpochNanos));
            case "io.debezium.time.ZonedTimestamp":
                return (DataType.Timestamp, default);
            case "io.debezium.data.VariableScaleDecimal":
                return (DataType.String, new ColumnEncoding(ValueEncoding.VariableScaleDecimal));
            case "org.apache.kafka.connect.data.Decimal":
                var scale = Parameter(s, "scale") ?? 0;
                var precision = Math.Clamp(Parameter(s, "connect.decimal.precision") ?? 38, Math.Max(1, scale), 38);
                return (new DecimalType(precision, Math.Min(scale, precision)), new ColumnEncoding(ValueEncoding.DecimalBytes, scale));
        }

        return type switch
        {
            "int8" => (DataType.Int8, default),
            "int16" => (DataType.Int16, default),
            "int32" => (DataType.Int32, default),
            "int64" => (DataType.Int64, default),
            "float32" or "float" => (DataType.Float, default),
            "float64" or "double" => (DataType.Double, default),
            "boolean" => (DataType.Boolean, default),
            "string" => (DataType.String, default),
            "bytes" => (DataType.Binary, default),
            "array" => (new ArrayType(ConnectType(s.GetProperty("items")).Type), default),
            "map" => (new MapType(ConnectType(s.GetProperty("keys")).Type, ConnectType(s.GetProperty("values")).Type), default),
            "struct" => (new StructType(s.GetProperty("fields").EnumerateArray()
                .Select(f => new Field(f.GetProperty("field").GetString()!, ConnectType(f).Type, !f.TryGetProperty("optional", out var o) || o.ValueKind != JsonValueKind.False))
                .ToList()), default),
            _ => throw new FormatException($"unknown Kafka Connect type '{type}'" + (name is null ? "" : $" ({name})")),
        };
    }

    private static int? Parameter(JsonElement s, string name) =>
        s.TryGetProperty("parameters", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty(name, out var v)
            ? v.ValueKind == JsonValueKind.Number ? v.GetInt32() : int.Parse(v.GetString()!, CultureInfo.InvariantCulture)
            : null;
}
