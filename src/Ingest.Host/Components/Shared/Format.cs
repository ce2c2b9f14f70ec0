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

    /// <summary>Bytes in megabytes as PostgreSQL's pg_size_pretty counts them (1 MB = 1024 kB): "0.03 MB", "12.4 MB", "1,536 MB".</summary>
    public static string Megabytes(double bytes)
    {
        var mb = Math.Max(0, bytes) / (1024.0 * 1024.0);
        return mb.ToString(mb < 1 ? "0.00" : mb < 100 ? "0.0" : "N0", CultureInfo.InvariantCulture) + " MB";
    }

    /// <summary>A connector's figure in its unit: bytes in MB, milliseconds as a lag, counts with separators, else the number and the unit.</summary>
    public static string Figure(Ingest.Sdk.Records.ConnectorFigure f) => f.Unit switch
    {
        Ingest.Sdk.Records.FigureUnits.Bytes => Megabytes(f.Value),
        Ingest.Sdk.Records.FigureUnits.Milliseconds => Lag((long)Math.Round(f.Value)),
        Ingest.Sdk.Records.FigureUnits.Count => Math.Round(f.Value).ToString("N0", CultureInfo.InvariantCulture),
        _ => f.Value.ToString(Math.Abs(f.Value) < 10 && f.Value != Math.Floor(f.Value) ? "0.0#" : "N0", CultureInfo.InvariantCulture) + " " + f.Unit,
    };

    public static string Time(DateTimeOffset? at) => at?.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";
}
