namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>
/// The checkpoint. Small by design: per report the last date of the last complete run and, for the dates the next run
/// re-reads (the lookback window) only, the keys each held, so that rows GA dropped can be deleted; the run in progress
/// (the next date of each report); backfills in progress; and the high part of positions, which only grows.
/// </summary>
internal sealed class GaState
{
    public int Version { get; set; } = 1;

    /// <summary>High part of the positions of the newest segment (run or backfill) started: each new one takes a larger value.</summary>
    public ulong Epoch { get; set; }

    /// <summary>The property's time zone as GA reports it (its dates are in this zone).</summary>
    public string? TimeZone { get; set; }

    /// <summary>The run over the window in progress, or null between runs.</summary>
    public GaPassState? Pass { get; set; }

    public Dictionary<string, GaReportState> Reports { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Backfills requested and not finished, by id (at most one started at a time).</summary>
    public Dictionary<string, GaBackfillState> Backfills { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Ids of the last backfills finished, so a request repeated after a restart is answered at once.</summary>
    public List<string> DoneBackfills { get; set; } = [];
}

/// <summary>One run: positions (Epoch, day number and row), every report up to End, each from its Next date.</summary>
internal sealed class GaPassState
{
    public ulong Epoch { get; set; }

    public DateOnly End { get; set; }

    /// <summary>The reports this run covers (a report selected while it was in progress joins it when it resumes).</summary>
    public List<string> Streams { get; set; } = [];

    /// <summary>Per report not finished in this run, the next date to read.</summary>
    public Dictionary<string, DateOnly> Next { get; set; } = new(StringComparer.Ordinal);
}

internal sealed class GaReportState
{
    /// <summary>The last date of the last complete run (GA may still revise it and the lookbackDays before it).</summary>
    public DateOnly? LastDate { get; set; }

    /// <summary>Per date (yyyy-MM-dd) of the lookback window: the keys read for it, without the date (dimension values in order).</summary>
    public Dictionary<string, List<string[]>> Keys { get; set; } = new(StringComparer.Ordinal);
}

internal sealed class GaBackfillState
{
    public string Stream { get; set; } = "";

    public DateOnly From { get; set; }

    public DateOnly To { get; set; }

    /// <summary>The next date to read.</summary>
    public DateOnly Next { get; set; }

    /// <summary>High part of its positions; 0 until it starts.</summary>
    public ulong Epoch { get; set; }

    public long Rows { get; set; }
}
