using System.Globalization;
using System.Text;
using Ingest.Engine.Running;

namespace Ingest.Host.Cli;

/// <summary>Live progress on a terminal, redrawn in place about twice a second.</summary>
internal static class ProgressView
{
    public static async Task ShowAsync(TextWriter output, RunStatus status, Task until)
    {
        var previous = new Dictionary<string, (long Rows, DateTimeOffset At)>(StringComparer.Ordinal);
        var lines = 0;
        while (true)
        {
            var finished = until.IsCompleted;
            var frame = Render(status, previous);
            var sb = new StringBuilder();
            if (lines > 0)
            {
                sb.Append("\u001b[").Append(lines).Append('F');
            }

            foreach (var line in frame)
            {
                sb.Append("\u001b[2K").Append(line).Append('\n');
            }

            lines = frame.Count;
            await output.WriteAsync(sb.ToString());
            await output.FlushAsync();
            if (finished)
            {
                return;
            }

            await Task.WhenAny(until, Task.Delay(500));
        }
    }

    internal static List<string> Render(RunStatus status, Dictionary<string, (long Rows, DateTimeOffset At)> previous)
    {
        var now = DateTimeOffset.UtcNow;
        var lines = new List<string>();
        foreach (var c in status.Connections.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            var head = $"{c.Name}  {c.State.ToString().ToLowerInvariant()}{(c.CaughtUp ? ", caught up" : "")}  checkpoint #{c.CheckpointSequence}";
            if (c.Restarts > 0)
            {
                head += $"  restarts {c.Restarts}";
            }

            foreach (var f in c.Figures.Values)
            {
                head += $"  {f.Label} {Components.Shared.Format.Figure(f)}";
            }

            if (c.Error is { } e && c.State is ConnectionState.Failed or ConnectionState.Retrying)
            {
                head += $"  error: {e}";
            }

            lines.Add(head);
            foreach (var s in c.Streams.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                var key = c.Name + "." + s.Name;
                var rows = s.RowsRead;
                var rate = 0.0;
                if (previous.TryGetValue(key, out var p) && now > p.At)
                {
                    rate = (rows - p.Rows) / (now - p.At).TotalSeconds;
                }

                previous[key] = (rows, now);
                var phase = s.Phase?.ToString().ToLowerInvariant() ?? "-";
                if (s.PhaseRowsTotal is > 0 and var total)
                {
                    phase += string.Create(CultureInfo.InvariantCulture, $" {Math.Min(100.0, 100.0 * s.PhaseRowsDone / total):0}%");
                }

                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"  {s.Name,-24} {phase,-16} rows {rows,12:N0}  {rate,10:N0}/s  committed {s.RowsCommitted,12:N0}  version {(s.LastCommitVersion is { } v ? v.ToString(CultureInfo.InvariantCulture) : "-")}"));
                if (s.Message is { } note)
                {
                    lines.Add("    " + note);
                }
            }
        }

        return lines;
    }
}
