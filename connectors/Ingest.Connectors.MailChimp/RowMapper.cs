using System.Text.Json;
using Ingest.Sdk.Http;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.MailChimp;

/// <summary>Writes a MailChimp JSON object into a row: typed columns by field name, the whole object into <c>_raw</c>.</summary>
internal static class RowMapper
{
    private static readonly JsonRowMapper Mapper = new()
    {
        Api = "MailChimp",
        RawColumn = MailChimpStream.RawColumn,
        Timestamp = JsonRowMapper.Iso8601,
        IdFields = ["id", "email_id"],
    };

    public static void Write(ChangeBatchBuilder b, MailChimpStream stream, JsonElement obj) => Mapper.Write(b, stream.Schema, obj, stream.Name);

    /// <summary>MailChimp's ISO 8601 timestamps; unset ones are empty strings.</summary>
    public static DateTimeOffset? Timestamp(JsonElement v) => JsonRowMapper.Iso8601(v);
}
