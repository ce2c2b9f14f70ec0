using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>Text forms as pgoutput sends them, parsed from spans.</summary>
public sealed class PgTextSpanTests
{
    private static readonly PgColumn Tz = new("ts", "timestamp with time zone", ColumnKind.TimestampTz, ColumnKind.TimestampTz, 0, Ingest.Sdk.Types.DataType.Timestamp, true);

    [Theory]
    [InlineData("2024-05-01 12:00:00+00", "2024-05-01T12:00:00.0000000+00:00")]
    [InlineData("2024-05-01 12:00:00.5+05:30", "2024-05-01T06:30:00.5000000+00:00")]
    [InlineData("0001-01-01 00:00:00.000001-01", "0001-01-01T01:00:00.0000010+00:00")]
    [InlineData("2024-02-29 23:59:59.999999+00", "2024-02-29T23:59:59.9999990+00:00")]
    public void Timestamp_text_becomes_microseconds_since_1970_in_utc(string text, string expected)
    {
        var micros = PgText.Micros(text.AsSpan(), Tz);
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UnixEpoch.AddTicks(micros * 10));
    }

    [Theory]
    [InlineData("2023-02-29 00:00:00+00")]
    [InlineData("2024-13-01 00:00:00+00")]
    [InlineData("20x4-01-01 00:00:00+00")]
    [InlineData("2024-01-01T00:00:00+00")]
    public void Malformed_timestamp_text_is_an_error_naming_the_column(string text)
    {
        var e = Assert.Throws<ConnectorException>(() => PgText.Micros(text.AsSpan(), Tz));
        Assert.Contains("ts", e.Message, StringComparison.Ordinal);
    }
}
