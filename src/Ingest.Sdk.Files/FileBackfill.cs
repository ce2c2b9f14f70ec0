using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Sdk.Connectors;

namespace Ingest.Sdk.Files;

/// <summary>
/// Which files a backfill re-reads: <c>prefix=orders/2024/</c> (paths relative to the root) and/or
/// <c>modified=2024-06-01..2024-06-30</c> (dates are whole UTC days, inclusive; timestamps with a zone are
/// exact; either end may be left out), separated by <c>;</c>. An empty filter means every file of the table.
/// </summary>
public sealed record FileFilter(string? Prefix, DateTimeOffset? From, DateTimeOffset? Until)
{
    /// <summary>The help text shown next to the backfill filter input.</summary>
    public const string Help = "prefix=<path prefix> and/or modified=<from>..<to> (dates or ISO timestamps, inclusive; either end optional), separated by ';'. Empty: every file already ingested.";

    /// <summary>The example shown as the input's placeholder.</summary>
    public const string Example = "prefix=orders/2024/; modified=2024-06-01..2024-06-30";

    /// <summary>How file-store streams describe their backfills.</summary>
    public static BackfillSupport Support { get; } = new(Help, Example);

    /// <summary>Every file.</summary>
    public static FileFilter All { get; } = new(null, null, null);

    /// <summary>Whether <paramref name="file"/> is selected.</summary>
    public bool Matches(FileEntry file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return (Prefix is null || file.Path.StartsWith(Prefix, StringComparison.Ordinal))
            && (From is null || file.Modified >= From)
            && (Until is null || file.Modified < Until);
    }

    /// <summary>Parses a filter (null or blank: every file).</summary>
    /// <exception cref="ConnectorException">Of kind configuration naming <c>filter</c>.</exception>
    public static FileFilter Parse(string? filter)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return All;
        }

        string? prefix = null;
        DateTimeOffset? from = null, until = null;
        foreach (var raw in filter.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? raw : raw[..eq].Trim();
            var value = eq < 0 ? "" : raw[(eq + 1)..].Trim();
            switch (name)
            {
                case "prefix" when value.Length > 0 && prefix is null:
                    prefix = value.TrimStart('/');
                    break;
                case "modified" when from is null && until is null:
                    var dots = value.IndexOf("..", StringComparison.Ordinal);
                    if (dots < 0)
                    {
                        throw Bad($"'modified' takes a range <from>..<to> (either end optional), not '{value}'.");
                    }

                    from = Instant(value[..dots].Trim(), end: false);
                    until = Instant(value[(dots + 2)..].Trim(), end: true);
                    if (from is null && until is null)
                    {
                        throw Bad("'modified' needs at least one end: <from>.., ..<to> or <from>..<to>.");
                    }

                    if (from is { } f && until is { } u && u <= f)
                    {
                        throw Bad($"'modified' range {value} is empty: its end is before its start.");
                    }

                    break;
                default:
                    throw Bad($"Unknown or repeated filter clause '{raw}'. {Help}");
            }
        }

        return new FileFilter(prefix, from, until);
    }

    private static DateTimeOffset? Instant(string text, bool end)
    {
        if (text.Length == 0)
        {
            return null;
        }

        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            // A whole day: the range's end includes it.
            var start = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            return end ? start.AddDays(1) : start;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            return end ? t.AddTicks(1) : t;
        }

        throw Bad($"'{text}' is neither a date (yyyy-MM-dd) nor an ISO timestamp.");
    }

    private static ConnectorException Bad(string message) => new(ErrorKind.Configuration, "Backfill filter: " + message, "filter");
}

/// <summary>
/// A re-read of a table's ingested files in (modification time, path) order, resumable at file granularity:
/// its state (the last file done) travels in the checkpoint. Backfills are jobs; so is the re-read that follows
/// a deletion found by a listing diff (internal: no <see cref="Records.BackfillDone"/>).
/// </summary>
internal sealed class ReReadJob
{
    public required string Id { get; init; }

    public required string Stream { get; init; }

    public string? FilterText { get; init; }

    public required FileFilter Filter { get; init; }

    public bool Internal { get; init; }

    /// <summary>The last file done, in reading order; null before the first.</summary>
    public (long Ticks, string Path)? After { get; set; }

    public long Rows { get; set; }

    public long BytesDone { get; set; }

    public bool Cancelled { get; set; }

    public bool IsAfter(FileEntry f) =>
        After is not { } a || f.Modified.UtcTicks > a.Ticks || (f.Modified.UtcTicks == a.Ticks && string.CompareOrdinal(f.Path, a.Path) > 0);

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["id"] = Id, ["stream"] = Stream, ["filter"] = FilterText, ["rows"] = Rows, ["bytes"] = BytesDone };
        if (Internal)
        {
            o["internal"] = true;
        }

        if (After is { } a)
        {
            o["after"] = new JsonArray(a.Ticks, a.Path);
        }

        return o;
    }

    public static ReReadJob FromJson(JsonElement e)
    {
        try
        {
            var filter = e.TryGetProperty("filter", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            var job = new ReReadJob
            {
                Id = e.GetProperty("id").GetString()!,
                Stream = e.GetProperty("stream").GetString()!,
                FilterText = filter,
                Filter = FileFilter.Parse(filter),
                Internal = e.TryGetProperty("internal", out var i) && i.ValueKind == JsonValueKind.True,
                Rows = e.GetProperty("rows").GetInt64(),
                BytesDone = e.TryGetProperty("bytes", out var b) ? b.GetInt64() : 0,
            };
            if (e.TryGetProperty("after", out var a) && a.ValueKind == JsonValueKind.Array)
            {
                job.After = (a[0].GetInt64(), a[1].GetString()!);
            }

            return job;
        }
        catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or ConnectorException)
        {
            throw new FormatException("The checkpoint's backfill state is malformed: " + ex.Message, ex);
        }
    }
}
