using System.Globalization;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>A report with its columns: dimensions (the key) then metrics, typed from the property's metadata.</summary>
internal sealed record GaStream(GaReport Report, StreamSchema Schema, IReadOnlyList<string> MetricTypes)
{
    public const string BackfillHelp = "A date range, both ends included (yyyy-MM-dd..yyyy-MM-dd), or one date; empty: startDate to today.";
    public const string BackfillExample = "2024-01-01..2024-01-31";

    public string Name => Report.Name;

    public StreamDescriptor Describe() => new(
        Name,
        Schema,
        Report.Dimensions,
        ["date"],
        [SyncMode.FullRefresh, SyncMode.Incremental],
        string.Create(CultureInfo.InvariantCulture, $"GA4 report by {string.Join(", ", Report.Dimensions)}: {string.Join(", ", Report.Metrics)}. Each run re-reads the lookback window and replaces those dates."),
        null,
        new BackfillSupport(BackfillHelp, BackfillExample));

    /// <summary>GA's metric types: integers to long, everything else (floats, currencies, durations, distances) to double.</summary>
    public static DataType MetricType(string gaType) => gaType == "TYPE_INTEGER" ? DataType.Int64 : DataType.Double;

    /// <summary>The <c>date</c> dimension (GA sends yyyyMMdd) becomes a date; the rest stay strings.</summary>
    public static bool IsDateDimension(string name) => name == "date";

    public static GaStream Build(GaReport report, GaMetadata metadata)
    {
        var columns = new List<Field>();
        foreach (var d in report.Dimensions)
        {
            if (!metadata.Dimensions.Contains(d))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Report '{report.Name}': '{d}' is not a dimension of this property{Suggest(d, metadata.Dimensions)}.", report.Field + "/dimensions");
            }

            columns.Add(new Field(d, IsDateDimension(d) ? DataType.Date : DataType.String, Nullable: false));
        }

        var types = new List<string>();
        foreach (var m in report.Metrics)
        {
            if (!metadata.MetricTypes.TryGetValue(m, out var t))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"Report '{report.Name}': '{m}' is not a metric of this property{Suggest(m, metadata.MetricTypes.Keys)}.", report.Field + "/metrics");
            }

            types.Add(t);
            columns.Add(new Field(m, MetricType(t), Description: t));
        }

        StreamSchema schema;
        try
        {
            schema = new StreamSchema(columns);
        }
        catch (ArgumentException e)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Report '{report.Name}': {e.Message}", report.Field, e);
        }

        return new GaStream(report, schema, types);
    }

    private static string Suggest(string name, IEnumerable<string> known)
    {
        var close = known.Where(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)).FirstOrDefault();
        return close is null ? " (see the property's metadata for API names)" : $" (did you mean '{close}'?)";
    }

    /// <summary>Writes one row: dimension values (dates from yyyyMMdd) and metric values (GA sends numbers as strings).</summary>
    public void Write(ChangeBatchBuilder b, string[] dims, string?[] metrics)
    {
        for (var i = 0; i < dims.Length; i++)
        {
            WriteDimension(b, i, dims[i]);
        }

        for (var i = 0; i < metrics.Length; i++)
        {
            var c = dims.Length + i;
            var v = metrics[i];
            if (v is null)
            {
                b.SetNull(c);
            }
            else if (Schema.Columns[c].Type is PrimitiveType { Kind: PrimitiveKind.Int64 })
            {
                b.SetInt64(c, long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : (long)ParseDouble(v, c));
            }
            else
            {
                b.SetDouble(c, ParseDouble(v, c));
            }
        }
    }

    /// <summary>Writes the key of a row (a delete): the date and the other dimensions.</summary>
    public void WriteKey(ChangeBatchBuilder b, string[] dims)
    {
        for (var i = 0; i < dims.Length; i++)
        {
            WriteDimension(b, i, dims[i]);
        }
    }

    private void WriteDimension(ChangeBatchBuilder b, int column, string value)
    {
        if (Schema.Columns[column].Type is PrimitiveType { Kind: PrimitiveKind.Date })
        {
            if (TryParseGaDate(value, out var d))
            {
                b.SetDate(column, d);
            }
            else
            {
                throw new ConnectorException(ErrorKind.Fatal, $"Report '{Name}': dimension {Schema.Columns[column].Name} is '{value}', not a yyyyMMdd date.");
            }
        }
        else
        {
            b.SetString(column, value);
        }
    }

    public static bool TryParseGaDate(string value, out DateOnly date) =>
        DateOnly.TryParseExact(value, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    private double ParseDouble(string v, int column) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d
            : throw new ConnectorException(ErrorKind.Fatal, $"Report '{Name}': metric {Schema.Columns[column].Name} is '{v}', not a number.");
}
