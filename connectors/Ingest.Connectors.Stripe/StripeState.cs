namespace Ingest.Connectors.Stripe;

/// <summary>
/// The checkpoint: per stream, the created window being listed and the last id read in it; the events cursor
/// (created second and the ids already applied in that second); and the running counter of positions.
/// </summary>
internal sealed class StripeState
{
    public int Version { get; set; } = 1;

    /// <summary>Low part of the next source position; never reused, so positions strictly increase.</summary>
    public ulong Counter { get; set; }

    /// <summary>Events created from this second on are applied to the objects' tables (earlier ones only to <c>events</c>).</summary>
    public long ApplyFrom { get; set; }

    /// <summary>The created second of the last event read.</summary>
    public long EventsCreated { get; set; }

    /// <summary>When the last complete events pass started: every event before it (back to <see cref="EventsCreated"/>) has been read.</summary>
    public long EventsCheckedAt { get; set; }

    /// <summary>Ids of the events read in <see cref="EventsCreated"/>'s second (Stripe's created has one-second resolution).</summary>
    public List<string> EventsSeen { get; set; } = [];

    public Dictionary<string, StreamProgressState> Streams { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// A created-window listing of one stream over [From, End): windows from <see cref="From"/> on are not started yet;
/// <see cref="Open"/> holds the started, unfinished ones (several are read in parallel) with the last id emitted in each.
/// </summary>
internal sealed class StreamProgressState
{
    public long From { get; set; }

    public long End { get; set; }

    public List<OpenWindow> Open { get; set; } = [];

    public bool Done { get; set; }

    /// <summary>High part of the positions of this listing's rows: 0 for the first snapshot, the start second of a re-read.</summary>
    public ulong High { get; set; }
}

/// <summary>A started window [From, To) of a stream; paging resumes with starting_after = LastId.</summary>
internal sealed class OpenWindow
{
    public long From { get; set; }

    public long To { get; set; }

    public string? LastId { get; set; }
}
