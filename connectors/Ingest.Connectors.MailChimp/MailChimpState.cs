namespace Ingest.Connectors.MailChimp;

/// <summary>
/// The checkpoint: per list the members' high-water mark and the window being read; the offsets of the campaigns and
/// reports passes in progress; per campaign the unsubscribes read; the list ids known (to delete vanished lists); the
/// running counter of positions.
/// </summary>
internal sealed class MailChimpState
{
    public int Version { get; set; } = 1;

    /// <summary>Low part of the next source position; never reused, so positions strictly increase.</summary>
    public ulong Counter { get; set; }

    /// <summary>The list ids of the last complete lists pass: a list missing from the next one was deleted.</summary>
    public List<string> Lists { get; set; } = [];

    public Dictionary<string, MemberProgress> Members { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Offset within the campaigns pass in progress; null between passes.</summary>
    public long? CampaignsOffset { get; set; }

    /// <summary>Offset within the reports pass in progress (it also drives unsubscribes); null between passes.</summary>
    public long? ReportsOffset { get; set; }

    /// <summary>Per campaign id, how many unsubscribes have been read (MailChimp lists them oldest first).</summary>
    public Dictionary<string, long> Unsubscribed { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Whether a complete pass has been made (the first one is the snapshot).</summary>
    public bool Caught { get; set; }
}

/// <summary>
/// One list's members: every member whose last_changed is before <see cref="Since"/> has been read. While a window
/// [Since, Before) is being read, <see cref="Offset"/> is the offset reached in it (members sorted by last_changed).
/// Times are Unix seconds (MailChimp's timestamps have one-second resolution).
/// </summary>
internal sealed class MemberProgress
{
    public long? Since { get; set; }

    public long? Before { get; set; }

    public long Offset { get; set; }
}
