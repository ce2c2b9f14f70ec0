using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Stripe;

/// <summary>Writes a Stripe JSON object into a row: typed columns by field name, the whole object into <c>_raw</c>.</summary>
internal static class RowMapper
{
    public static void Write(ChangeBatchBuilder b, StripeStream stream, JsonElement obj)
    {
        var columns = stream.Schema.Columns;
        for (var i = 0; i < columns.Count; i++)
        {
            var c = columns[i];
            if (c.Name == StripeStream.RawColumn)
            {
                b.SetString(i, obj.GetRawText());
                continue;
            }

            var found = TryGet(obj, c.Name, stream, out var v);
            if (!found || v.ValueKind == JsonValueKind.Null)
            {
                b.SetNull(i);
                continue;
            }

            try
            {
                switch (c.Type)
                {
                    case PrimitiveType { Kind: PrimitiveKind.String }:
                        b.SetString(i, AsString(v));
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Int64 }:
                        b.SetInt64(i, v.GetInt64());
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Double }:
                        b.SetDouble(i, v.GetDouble());
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                        b.SetBoolean(i, v.GetBoolean());
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                        b.SetTimestampMicros(i, v.GetInt64() * 1_000_000);
                        break;
                    default:
                        b.SetValue(i, ToClr(c.Type, v));
                        break;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                var id = obj.TryGetProperty("id", out var idv) ? idv.ToString() : "?";
                throw new FormatException($"Stripe {stream.ObjectType} {id}: field '{c.Name}' is {v.ValueKind}, not {c.Type}.", e);
            }
        }
    }

    private static bool TryGet(JsonElement obj, string column, StripeStream stream, out JsonElement value)
    {
        if (stream.Name == "events" && column is "data_object_id" or "data_object_type")
        {
            value = default;
            return obj.TryGetProperty("data", out var data) && data.TryGetProperty("object", out var o)
                && o.TryGetProperty(column == "data_object_id" ? "id" : "object", out value);
        }

        return obj.TryGetProperty(column, out value);
    }

    /// <summary>Strings, and expandable fields: an expanded object stands for its id.</summary>
    private static string AsString(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Object when v.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String => id.GetString()!,
        _ => v.GetRawText(),
    };

    private static object? ToClr(DataType type, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        switch (type)
        {
            case PrimitiveType { Kind: PrimitiveKind.String }:
                return AsString(v);
            case PrimitiveType { Kind: PrimitiveKind.Int64 }:
                return v.GetInt64();
            case PrimitiveType { Kind: PrimitiveKind.Double }:
                return v.GetDouble();
            case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                return v.GetBoolean();
            case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                return DateTimeOffset.FromUnixTimeSeconds(v.GetInt64());
            case MapType:
                var pairs = new List<KeyValuePair<object, object?>>();
                foreach (var p in v.EnumerateObject())
                {
                    pairs.Add(new(p.Name, p.Value.ValueKind == JsonValueKind.Null ? null : p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText()));
                }

                return pairs;
            case ArrayType a:
                var items = new List<object?>();
                foreach (var e in v.EnumerateArray())
                {
                    items.Add(ToClr(a.ElementType, e));
                }

                return items;
            case StructType s:
                if (v.ValueKind != JsonValueKind.Object)
                {
                    throw new FormatException($"Expected an object, got {v.ValueKind}.");
                }

                var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var f in s.Fields)
                {
                    fields[f.Name] = v.TryGetProperty(f.Name, out var fv) ? ToClr(f.Type, fv) : null;
                }

                return fields;
            default:
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"No mapping for {type}."));
        }
    }
}
