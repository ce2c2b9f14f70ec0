using System.Globalization;

namespace Ingest.Host.Components.Shared;

/// <summary>Numbers and times as the UI shows them.</summary>
internal static class Format
{
    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string Rate(double r) => r.ToString(r < 10 ? "0.0" : "N0", CultureInfo.InvariantCulture);

    public static string Bytes(long b) => b switch
    {
        < 1024 => $"{b} B",
        < 1024 * 1024 => (b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => (b / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
    };

    public static string Ago(DateTimeOffset? at)
    {
        if (at is not { } t)
        {
            return "-";
        }

        var d = DateTimeOffset.UtcNow - t;
        return d.TotalSeconds < 60 ? $"{Math.Max(0, (int)d.TotalSeconds)} s ago"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes} min ago"
            : t.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
    }

    /// <summary>A lag in milliseconds: ms under a second, then s, min, h, d ("-" when unknown).</summary>
    public static string Lag(long? milliseconds) => milliseconds switch
    {
        null => "-",
        < 1000 => $"{Math.Max(0, milliseconds.Value)} ms",
        < 60_000 => (milliseconds.Value / 1000.0).ToString("0.0", CultureInfo.InvariantCulture) + " s",
        < 3_600_000 => (milliseconds.Value / 60_000.0).ToString("0.0", CultureInfo.InvariantCulture) + " min",
        < 86_400_000 => (milliseconds.Value / 3_600_000.0).ToString("0.0", CultureInfo.InvariantCulture) + " h",
        _ => (milliseconds.Value / 86_400_000.0).ToString("0", CultureInfo.InvariantCulture) + " d",
    };

    public static string Time(DateTimeOffset? at) => at?.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";
}
