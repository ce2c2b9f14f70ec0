using System.Text.Json;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Stripe;

/// <summary>Writes a Stripe JSON object into a row: typed columns by field name, the whole object into <c>_raw</c>.</summary>
internal static class RowMapper
{
    private static readonly JsonRowMapper Objects = new()
    {
        Api = "Stripe",
        RawColumn = StripeStream.RawColumn,
        Timestamp = JsonRowMapper.UnixSeconds,
        AsString = AsString,
    };

    // An event's data_object_id and data_object_type come from the object it carries.
    private static readonly JsonRowMapper Events = new()
    {
        Api = "Stripe",
        RawColumn = StripeStream.RawColumn,
        Timestamp = JsonRowMapper.UnixSeconds,
        AsString = AsString,
        Field = (obj, column) =>
            column is "data_object_id" or "data_object_type"
                ? obj.TryGetProperty("data", out var data) && data.TryGetProperty("object", out var o)
                    && o.TryGetProperty(column == "data_object_id" ? "id" : "object", out var v) ? (true, v) : (false, default)
                : obj.TryGetProperty(column, out var value) ? (true, value) : (false, default),
    };

    public static void Write(ChangeBatchBuilder b, StripeStream stream, JsonElement obj) =>
        (stream.Name == "events" ? Events : Objects).Write(b, stream.Schema, obj, stream.ObjectType);

    /// <summary>Strings, and expandable fields: an expanded object stands for its id.</summary>
    private static string AsString(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object when v.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String => id.GetString()!,
        _ => JsonRowMapper.DefaultString(v),
    };
}
