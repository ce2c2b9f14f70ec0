using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Http;

/// <summary>
/// Writes a JSON object returned by an API into one row of a <see cref="ChangeBatchBuilder"/>: each column takes the
/// field of its name (or what <see cref="Field"/> finds), converted to the column's type; the raw-object column takes the
/// whole object. What differs between APIs is configured: how timestamps are written (<see cref="Timestamp"/>), how a
/// non-string value reads as a string (<see cref="AsString"/>), which fields identify an object in errors.
/// A value that does not fit its column raises a <see cref="FormatException"/> naming the object and the field.
/// </summary>
public sealed class JsonRowMapper
{
    /// <summary>The API's name in error messages, e.g. <c>Stripe</c>.</summary>
    public required string Api { get; init; }

    /// <summary>The column that takes the whole object as JSON text (none when null).</summary>
    public string? RawColumn { get; init; }

    /// <summary>How a timestamp field reads: null for "not set". Throws <see cref="FormatException"/> on a bad value.</summary>
    public required Func<JsonElement, DateTimeOffset?> Timestamp { get; init; }

    /// <summary>How a value reads as a string; by default a JSON string's text, otherwise the value's raw JSON.</summary>
    public Func<JsonElement, string> AsString { get; init; } = DefaultString;

    /// <summary>Finds a column's value in an object; by default the property of the column's name.</summary>
    public Func<JsonElement, string, (bool Found, JsonElement Value)> Field { get; init; } = DefaultField;

    /// <summary>The fields that identify an object in error messages, first present wins (default <c>id</c>).</summary>
    public IReadOnlyList<string> IdFields { get; init; } = ["id"];

    /// <summary>Writes <paramref name="obj"/> into the builder's current row; <paramref name="what"/> names the stream or object type in errors.</summary>
    public void Write(ChangeBatchBuilder builder, StreamSchema schema, JsonElement obj, string what)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(schema);
        var columns = schema.Columns;
        for (var i = 0; i < columns.Count; i++)
        {
            var c = columns[i];
            if (c.Name == RawColumn)
            {
                builder.SetString(i, obj.GetRawText());
                continue;
            }

            var (found, v) = Field(obj, c.Name);
            if (!found || v.ValueKind == JsonValueKind.Null)
            {
                builder.SetNull(i);
                continue;
            }

            try
            {
                switch (c.Type)
                {
                    case PrimitiveType { Kind: PrimitiveKind.String }:
                        builder.SetString(i, AsString(v));
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                        if (Timestamp(v) is { } t)
                        {
                            builder.SetTimestamp(i, t);
                        }
                        else
                        {
                            builder.SetNull(i);
                        }

                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Int64 }:
                        builder.SetInt64(i, Int64(v));
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Double }:
                        builder.SetDouble(i, Double(v));
                        break;
                    case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                        builder.SetBoolean(i, v.GetBoolean());
                        break;
                    default:
                        builder.SetValue(i, ToClr(c.Type, v));
                        break;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
            {
                throw new FormatException($"{Api} {what} {IdOf(obj)}: field '{c.Name}' is {v.ValueKind}, not {c.Type}.", e);
            }
        }
    }

    /// <summary>Unix seconds, as Stripe writes timestamps.</summary>
    public static DateTimeOffset? UnixSeconds(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.Number => DateTimeOffset.FromUnixTimeSeconds(v.GetInt64()),
        _ => throw new FormatException($"Expected Unix seconds, got {v.ValueKind}."),
    };

    /// <summary>ISO 8601 strings (without a zone: UTC); an empty string or null is "not set".</summary>
    public static DateTimeOffset? Iso8601(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.String || v.GetString() is not { Length: > 0 } s)
        {
            return v.ValueKind is JsonValueKind.String or JsonValueKind.Null ? null : throw new FormatException($"Expected an ISO 8601 string, got {v.ValueKind}.");
        }

        return DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
            ? t.ToUniversalTime()
            : throw new FormatException($"'{s}' is not an ISO 8601 timestamp.");
    }

    /// <summary>A JSON string's text; any other value's raw JSON.</summary>
    public static string DefaultString(JsonElement v) => v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();

    private static (bool, JsonElement) DefaultField(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) ? (true, v) : (false, default);

    private string IdOf(JsonElement obj)
    {
        foreach (var f in IdFields)
        {
            if (obj.TryGetProperty(f, out var v))
            {
                return v.ToString();
            }
        }

        return "?";
    }

    // Counts sometimes arrive as strings or as whole doubles.
    private static long Int64(JsonElement v) => v.ValueKind == JsonValueKind.String
        ? long.Parse(v.GetString()!, CultureInfo.InvariantCulture)
        : v.TryGetInt64(out var l) ? l : checked((long)v.GetDouble());

    private static double Double(JsonElement v) => v.ValueKind == JsonValueKind.String
        ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture)
        : v.GetDouble();

    private object? ToClr(DataType type, JsonElement v)
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
                return Int64(v);
            case PrimitiveType { Kind: PrimitiveKind.Double }:
                return Double(v);
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
