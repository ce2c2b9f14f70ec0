using System.Text.Json;
using System.Text.Json.Serialization;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Sample;

/// <summary>
/// What a checkpoint holds: the phase; in the snapshot, the stream and rows done in it; in the changes,
/// the change events done; and the next sequence, with a fingerprint of the settings that shape the data.
/// </summary>
/// <example><c>{"phase":"changes","stream":null,"offset":0,"event":15000,"sequence":42113,"fingerprint":"9c0e..."}</c></example>
internal sealed record SampleState(
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("stream")] string? Stream,
    [property: JsonPropertyName("offset")] long Offset,
    [property: JsonPropertyName("event")] long Event,
    [property: JsonPropertyName("sequence")] long Sequence,
    [property: JsonPropertyName("fingerprint")] string Fingerprint)
{
    public const string SnapshotPhase = "snapshot";
    public const string ChangesPhase = "changes";

    /// <summary>
    /// The streams the read covers. A stream selected later is new to a resumed read: it is read from the start (its
    /// current rows, as a backfill) within that read. Absent in states written before this was recorded: then every
    /// selected stream counts as covered.
    /// </summary>
    [JsonPropertyName("streams")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Streams { get; init; }

    /// <summary>Backfills under way, by request id (absent when none).</summary>
    [JsonPropertyName("backfills")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, SampleBackfill>? Backfills { get; init; }

    /// <summary>Backfills finished recently (id to rows), so that asking for one again after a restart does not repeat it.</summary>
    [JsonPropertyName("backfillsDone")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, long>? BackfillsDone { get; init; }

    /// <summary>
    /// Backfill rows sit between change events at positions (last sequence, 1..n); this is the n reached at
    /// the state's event (0 when no backfill row was read since that event).
    /// </summary>
    [JsonPropertyName("sub")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public ulong Sub { get; init; }

    public Checkpoint ToCheckpoint() => Checkpoint.From(this);

    /// <summary>Reads a saved state, checking it belongs to data generated with these settings.</summary>
    /// <exception cref="ConnectorException">The state is not this connector's, or the seed or sizes changed since.</exception>
    public static SampleState Parse(JsonElement state, SampleOptions options)
    {
        SampleState? s;
        try
        {
            s = state.Deserialize<SampleState>();
        }
        catch (JsonException e)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"The saved state is not a sample connector checkpoint: {state.GetRawText()}", null, e);
        }

        if (s is null
            || (s.Phase != SnapshotPhase && s.Phase != ChangesPhase)
            || (s.Phase == SnapshotPhase && SampleStreams.IndexOf(s.Stream ?? "") < 0)
            || s.Offset < 0 || s.Event < 0 || s.Sequence < 1 || s.Fingerprint is null)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"The saved state is not a sample connector checkpoint: {state.GetRawText()}");
        }

        if (s.Fingerprint != options.Fingerprint())
        {
            throw new ConnectorException(
                ErrorKind.Configuration,
                "The saved checkpoint was made with a different seed, customers, products or orders setting; the data would not continue. Restore those settings or reset the connection.",
                "/seed");
        }

        return s;
    }
}

/// <summary>Progress of one backfill: the next entity id to re-read, the last one, and rows so far.</summary>
/// <example><c>{"stream":"customers","filter":"1..500","next":201,"last":500,"rows":200}</c></example>
internal sealed record SampleBackfill(
    [property: JsonPropertyName("stream")] string Stream,
    [property: JsonPropertyName("filter")] string? Filter,
    [property: JsonPropertyName("next")] int Next,
    [property: JsonPropertyName("last")] int Last,
    [property: JsonPropertyName("rows")] long Rows);
