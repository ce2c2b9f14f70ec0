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
