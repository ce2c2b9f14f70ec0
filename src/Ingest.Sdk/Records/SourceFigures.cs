namespace Ingest.Sdk.Records;

/// <summary>The units a <see cref="ConnectorFigure"/> can be in; the UI formats these (any other unit is shown after the number as given).</summary>
public static class FigureUnits
{
    /// <summary>Bytes (the UI shows megabytes, e.g. "12.4 MB").</summary>
    public const string Bytes = "bytes";

    /// <summary>Milliseconds (the UI shows a duration, e.g. "1.2 s").</summary>
    public const string Milliseconds = "ms";

    /// <summary>A plain count (the UI shows it with thousands separators).</summary>
    public const string Count = "count";
}

/// <summary>
/// One figure about the connection as a whole rather than one stream: the WAL a replication slot retains, the API
/// quota left, the files waiting to be read.
/// </summary>
/// <param name="Name">
/// A stable machine name, unique within the connector, in snake_case (e.g. <c>retained_wal_bytes</c>). The latest value
/// of a name replaces the one before; API clients and dashboards key on it.
/// </param>
/// <param name="Label">What the user reads beside the value, short and lower case (e.g. "retained WAL").</param>
/// <param name="Value">The value, in <paramref name="Unit"/>.</param>
/// <param name="Unit">One of <see cref="FigureUnits"/>, or a short unit of your own (e.g. "requests/min").</param>
public sealed record ConnectorFigure(string Name, string Label, double Value, string Unit);

/// <summary>
/// Figures about the connection (not one stream) that the status shows until the next value of the same name replaces
/// them, e.g. a replication slot's retained WAL. Optional: a connector that never sends it shows none. Send it when a
/// figure is measured (every few seconds at most); it is cheap and never waits for a commit.
/// </summary>
public sealed class SourceFigures : SourceMessage
{
    /// <summary>Creates the message.</summary>
    /// <param name="figures">One or more figures, each name once.</param>
    /// <exception cref="ArgumentException">No figure, a figure without a name, label or unit, a value that is not a finite number, or a name given twice.</exception>
    public SourceFigures(params IReadOnlyList<ConnectorFigure> figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        if (figures.Count == 0)
        {
            throw new ArgumentException("at least one figure is needed", nameof(figures));
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < figures.Count; i++)
        {
            var f = figures[i] ?? throw new ArgumentException($"figure [{i}] is null", nameof(figures));
            if (string.IsNullOrWhiteSpace(f.Name) || string.IsNullOrWhiteSpace(f.Label) || string.IsNullOrWhiteSpace(f.Unit))
            {
                throw new ArgumentException($"figure [{i}] ('{f.Name}') needs a name, a label and a unit", nameof(figures));
            }

            if (!double.IsFinite(f.Value))
            {
                throw new ArgumentException($"figure '{f.Name}' has the value {f.Value}, which is not a finite number", nameof(figures));
            }

            if (!names.Add(f.Name))
            {
                throw new ArgumentException($"figure '{f.Name}' is given twice", nameof(figures));
            }
        }

        Figures = [.. figures];
    }

    /// <summary>The figures, in the order given.</summary>
    public IReadOnlyList<ConnectorFigure> Figures { get; }
}
