using System.Text.Json;
using System.Text.Json.Serialization;
using Ingest.Sdk.Connectors;
using NpgsqlTypes;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// The checkpoint: the slot, the LSN from which streaming resumes (the end of the last transaction the
/// checkpoint covers, or the slot's consistent point), and while the snapshot runs, how far it got.
/// </summary>
/// <param name="Slot">The replication slot's name.</param>
/// <param name="Lsn">Where streaming resumes, as PostgreSQL prints an LSN (<c>0/16B3748</c>).</param>
/// <param name="Snapshot">The snapshot's progress; null once it is complete.</param>
/// <param name="Streams">The streams this checkpoint covers (snapshotted or being snapshotted); a selected stream not in it is new and gets its own snapshot. Null in checkpoints written before the list existed.</param>
/// <param name="Backfills">Backfills under way: how far each got (null when none runs).</param>
internal sealed record PgState(
    [property: JsonPropertyName("slot")] string Slot,
    [property: JsonPropertyName("lsn")] string Lsn,
    [property: JsonPropertyName("snapshot")] PgSnapshotState? Snapshot,
    [property: JsonPropertyName("streams")] IReadOnlyList<string>? Streams = null,
    [property: JsonPropertyName("backfills")] IReadOnlyList<PgBackfillState>? Backfills = null)
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public NpgsqlLogSequenceNumber LsnValue => NpgsqlLogSequenceNumber.Parse(Lsn);

    public JsonElement ToJson() => JsonSerializer.SerializeToElement(this, Json);

    public static PgState Parse(JsonElement json)
    {
        try
        {
            var s = json.Deserialize<PgState>(Json);
            if (s is null || string.IsNullOrEmpty(s.Slot) || !NpgsqlLogSequenceNumber.TryParse(s.Lsn, out _))
            {
                throw new JsonException("slot or lsn missing");
            }

            return s;
        }
        catch (JsonException e)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"the stored checkpoint is not a postgres connector checkpoint ({e.Message}): {json.GetRawText()}", null, e);
        }
    }
}

/// <summary>Snapshot progress: tables finished, the table in progress and the last primary key copied, and the row counter behind snapshot positions.</summary>
/// <param name="Done">Streams completely copied.</param>
/// <param name="Table">The stream being copied, or null between tables.</param>
/// <param name="Key">The text form of the last primary key copied in <paramref name="Table"/>.</param>
/// <param name="Rows">Snapshot rows emitted so far (the low half of their source positions).</param>
internal sealed record PgSnapshotState(
    [property: JsonPropertyName("done")] IReadOnlyList<string> Done,
    [property: JsonPropertyName("table")] string? Table,
    [property: JsonPropertyName("key")] IReadOnlyList<string>? Key,
    [property: JsonPropertyName("rows")] ulong Rows);

/// <summary>A backfill's progress: the last primary key of the last chunk emitted, and its counters.</summary>
/// <param name="Id">The request's id.</param>
/// <param name="Stream">The stream.</param>
/// <param name="Key">The text form of the last key emitted (the next chunk starts after it).</param>
/// <param name="Rows">Rows emitted so far.</param>
/// <param name="Scanned">Rows selected so far (emitted, or dropped because the log changed them meanwhile).</param>
internal sealed record PgBackfillState(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("stream")] string Stream,
    [property: JsonPropertyName("key")] IReadOnlyList<string>? Key,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("scanned")] long Scanned);
