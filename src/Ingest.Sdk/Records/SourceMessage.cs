using System.Text.Json;

namespace Ingest.Sdk.Records;

/// <summary>
/// What a connector's read yields: <see cref="ChangeBatch"/>es interleaved with <see cref="Checkpoint"/>s,
/// and optionally <see cref="StreamProgress"/>, <see cref="SourceFigures"/> and <see cref="CaughtUp"/> notices.
/// </summary>
public abstract class SourceMessage
{
    private protected SourceMessage()
    {
    }
}

/// <summary>
/// Opaque source state that covers every batch yielded before it (an LSN, an API cursor, a set of
/// file keys). The engine hands it back to <see cref="Connectors.ISourceReader.AcknowledgeAsync"/>
/// once everything before it is durable, and to the next read as <see cref="Connectors.ReadContext.State"/>
/// when the connection restarts. Keep it small: it is stored with every lake commit.
/// </summary>
public sealed class Checkpoint : SourceMessage
{
    /// <summary>Creates a checkpoint holding <paramref name="state"/>, a JSON value the connector alone interprets.</summary>
    public Checkpoint(JsonElement state)
    {
        State = state.Clone();
    }

    /// <summary>The connector's state, as JSON.</summary>
    public JsonElement State { get; }

    /// <summary>Creates a checkpoint from any value System.Text.Json can serialize.</summary>
    public static Checkpoint From<T>(T state) => new(JsonSerializer.SerializeToElement(state));

    /// <summary>Reads the state back as <typeparamref name="T"/>.</summary>
    public T? Read<T>() => State.Deserialize<T>();

    /// <inheritdoc />
    public override string ToString() => State.GetRawText();
}

/// <summary>The phase a stream is in.</summary>
public enum StreamPhase
{
    /// <summary>Reading the initial copy of the data.</summary>
    Snapshot,
    /// <summary>Following changes as they happen.</summary>
    Streaming,
    /// <summary>Re-reading part of the data while streaming continues.</summary>
    Backfill,
}

/// <summary>Progress of one stream, for the UI and the terminal. Optional; send it as often as useful (it is cheap).</summary>
/// <param name="stream">The stream's name.</param>
/// <param name="phase">What the stream is doing.</param>
/// <param name="rowsDone">Rows read so far in this phase.</param>
/// <param name="rowsTotal">Rows expected in this phase, where known (snapshot percentage).</param>
/// <param name="backfillId">With <see cref="StreamPhase.Backfill"/>: the id of the backfill this is the progress of.</param>
/// <param name="message">
/// What the user should know about the stream now, shown beside its status until the next progress of the stream
/// replaces it (e.g. "waiting for the API quota to reset at 14:00 UTC", "cursor too old: re-reading by window");
/// null when nothing is worth saying.
/// </param>
public sealed class StreamProgress(string stream, StreamPhase phase, long rowsDone, long? rowsTotal, string? backfillId = null, string? message = null) : SourceMessage
{
    /// <summary>A note for the user about the stream now, or null.</summary>
    public string? Message { get; } = message;

    /// <summary>The backfill this progress is about, when <see cref="Phase"/> is <see cref="StreamPhase.Backfill"/>.</summary>
    public string? BackfillId { get; } = backfillId;

    /// <summary>The stream's name.</summary>
    public string Stream { get; } = stream;
    /// <summary>What the stream is doing.</summary>
    public StreamPhase Phase { get; } = phase;
    /// <summary>Rows read so far in this phase.</summary>
    public long RowsDone { get; } = rowsDone;
    /// <summary>Rows expected in this phase, where known.</summary>
    public long? RowsTotal { get; } = rowsTotal;
}

/// <summary>
/// Says that every selected stream has caught up with its source: the snapshot is done and no change
/// that existed when the read started is left. Send it right after the checkpoint that covers that
/// point. <c>ingest run --once</c> stops when that checkpoint is durable; otherwise the read goes on.
/// </summary>
public sealed class CaughtUp : SourceMessage
{
    /// <summary>The single instance.</summary>
    public static CaughtUp Instance { get; } = new();

    private CaughtUp()
    {
    }
}

/// <summary>
/// A backfill ended (see <see cref="Connectors.IBackfillReader"/>). Yield it after the backfill's last rows and
/// before the checkpoint that covers them; the engine reports it done once that checkpoint is durable.
/// </summary>
/// <param name="id">The request's id.</param>
/// <param name="stream">The stream.</param>
/// <param name="rows">Rows the backfill yielded in all (across restarts where the connector knows).</param>
/// <param name="cancelled">True when it ended because it was cancelled.</param>
public sealed class BackfillDone(string id, string stream, long rows, bool cancelled = false) : SourceMessage
{
    /// <summary>The request's id.</summary>
    public string Id { get; } = id;
    /// <summary>The stream.</summary>
    public string Stream { get; } = stream;
    /// <summary>Rows yielded.</summary>
    public long Rows { get; } = rows;
    /// <summary>True when cancelled rather than finished.</summary>
    public bool Cancelled { get; } = cancelled;
}
