using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.MailChimp;

/// <summary>Writes a MailChimp JSON object into a row: typed columns by field name, the whole object into <c>_raw</c>.</summary>
internal static class RowMapper
{
    public static void Write(ChangeBatchBuilder b, MailChimpStream stream, JsonElement obj)
    {
        var columns = stream.Schema.Columns;
        for (var i = 0; i < columns.Count; i++)
        {
            var c = columns[i];
            if (c.Name == MailChimpStream.RawColumn)
            {
                b.SetString(i, obj.GetRawText());
                continue;
            }

            if (!obj.TryGetProperty(c.Name, out var v) || v.ValueKind == JsonValueKind.Null)
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
                    case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                        if (Timestamp(v) is { } t)
                        {
                            b.SetTimestamp(i, t);
                        }
                        else
                        {
                            b.SetNull(i);
                        }

                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Int64 }:
                        b.SetInt64(i, (long)ToClr(c.Type, v)!);
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Double }:
                        b.SetDouble(i, (double)ToClr(c.Type, v)!);
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                        b.SetBoolean(i, v.GetBoolean());
                        break;
                    default:
                        b.SetValue(i, ToClr(c.Type, v));
                        break;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                var id = obj.TryGetProperty("id", out var idv) ? idv.ToString() : obj.TryGetProperty("email_id", out var ev) ? ev.ToString() : "?";
                throw new FormatException($"MailChimp {stream.Name} {id}: field '{c.Name}' is {v.ValueKind}, not {c.Type}.", e);
            }
        }
    }

    /// <summary>MailChimp's ISO 8601 timestamps; unset ones are empty strings.</summary>
    public static DateTimeOffset? Timestamp(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.String || v.GetString() is not { Length: > 0 } s)
        {
            return v.ValueKind is JsonValueKind.String or JsonValueKind.Null ? null : throw new FormatException($"Expected an ISO 8601 string, got {v.ValueKind}.");
        }

        return DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t.ToUniversalTime()
            : throw new FormatException($"'{s}' is not an ISO 8601 timestamp.");
    }

    private static string AsString(JsonElement v) => v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();

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
                // Counts sometimes arrive as strings or as whole doubles.
                return v.ValueKind == JsonValueKind.String ? long.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.TryGetInt64(out var l) ? l : (long)v.GetDouble();
            case PrimitiveType { Kind: PrimitiveKind.Double }:
                return v.ValueKind == JsonValueKind.String ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble();
            case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                return v.GetBoolean();
            case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                return Timestamp(v);
            case MapType m:
                if (v.ValueKind != JsonValueKind.Object)
                {
                    throw new FormatException($"Expected an object, got {v.ValueKind}.");
                }

                var pairs = new List<KeyValuePair<object, object?>>();
                foreach (var p in v.EnumerateObject())
                {
                    pairs.Add(new(p.Name, ToClr(m.ValueType, p.Value)));
                }

                return pairs;
            case ArrayType a:
                if (v.ValueKind != JsonValueKind.Array)
                {
                    throw new FormatException($"Expected an array, got {v.ValueKind}.");
                }

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
