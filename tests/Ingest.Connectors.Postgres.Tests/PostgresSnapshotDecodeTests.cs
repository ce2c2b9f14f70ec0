using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>The snapshot's own binary COPY decoder: numeric digits, keys of every kind, chunk boundaries.</summary>
[Collection("postgres")]
public sealed class PostgresSnapshotDecodeTests(PgServer pg)
{
    private static readonly PgColumn Money = new("n", "numeric(12,2)", ColumnKind.Decimal, ColumnKind.Decimal, 2, DataType.Decimal(12, 2), true);
    private static readonly PgColumn Whole = new("w", "numeric(10,0)", ColumnKind.Decimal, ColumnKind.Decimal, 0, DataType.Decimal(10, 0), true);

    /// <summary>A binary numeric: ndigits, weight, sign, dscale, base-10000 digits (all big-endian int16).</summary>
    private static byte[] Numeric(short weight, ushort sign, short dscale, params short[] digits)
    {
        var bytes = new byte[8 + (2 * digits.Length)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, (short)digits.Length);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(2), weight);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), sign);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(6), dscale);
        for (var i = 0; i < digits.Length; i++)
        {
            BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(8 + (2 * i)), digits[i]);
        }

        return bytes;
    }

    [Fact]
    public void Binary_numeric_becomes_the_unscaled_value_at_the_column_scale_rounded_half_away_from_zero()
    {
        Assert.Equal(1234567, PgCopyDecoder.Unscaled(Numeric(1, 0, 2, 1, 2345, 6700), Money));
        Assert.Equal(-5, PgCopyDecoder.Unscaled(Numeric(-1, 0x4000, 2, 500), Money));
        Assert.Equal(0, PgCopyDecoder.Unscaled(Numeric(0, 0, 0), Money));
        Assert.Equal(124, PgCopyDecoder.Unscaled(Numeric(0, 0, 3, 1, 2350), Money));
        Assert.Equal(-124, PgCopyDecoder.Unscaled(Numeric(0, 0x4000, 3, 1, 2350), Money));
        Assert.Equal(123, PgCopyDecoder.Unscaled(Numeric(0, 0, 3, 1, 2340), Money));
        Assert.Equal(1, PgCopyDecoder.Unscaled(Numeric(-1, 0, 3, 50), Money));
        Assert.Equal(0, PgCopyDecoder.Unscaled(Numeric(-1, 0, 3, 49), Money));
        Assert.Equal(0, PgCopyDecoder.Unscaled(Numeric(-2, 0, 6, 9999), Money));
        Assert.Equal(-1, PgCopyDecoder.Unscaled(Numeric(-1, 0x4000, 1, 5000), Whole));
        Assert.Equal(12, PgCopyDecoder.Unscaled(Numeric(0, 0, 1, 12, 4999), Whole));
    }

    [Fact]
    public void Binary_numeric_that_is_nan_or_too_large_is_a_fatal_error_naming_the_column()
    {
        var nan = Assert.Throws<ConnectorException>(() => PgCopyDecoder.Unscaled(Numeric(0, 0xC000, 0), Money));
        Assert.Contains("column n (numeric(12,2))", nan.Message, StringComparison.Ordinal);
        Assert.Contains("NaN or infinity", nan.Message, StringComparison.Ordinal);
        var huge = Assert.Throws<ConnectorException>(() => PgCopyDecoder.Unscaled(Numeric(10, 0, 0, 1), Money));
        Assert.Contains("does not fit", huge.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorKind.Fatal, huge.Kind);
    }

    [Fact]
    public async Task Snapshot_in_small_chunks_over_a_composite_key_of_date_text_and_numeric_reads_every_row_once_with_exact_values()
    {
        var db = await pg.CreateDatabaseAsync();
        await pg.ExecAsync(db, """
            CREATE TABLE ck (d date, t text, n numeric(8,3), ts timestamptz, v numeric(12,2), s smallint, PRIMARY KEY (d, t, n));
            INSERT INTO ck SELECT '2024-01-01'::date + (g % 4), 'k''' || (g % 3), (g * 1.001) - 7, '2000-01-01 00:00:00+00'::timestamptz + g * interval '1 hour 1 microsecond',
              CASE WHEN g % 5 = 0 THEN NULL ELSE (g * -37.25) + 0.01 END, g - 20 FROM generate_series(1, 40) g;
            INSERT INTO ck VALUES ('infinity', 'x', 0, 'infinity', 0.5, 1), ('-infinity', 'x', 0, '-infinity', -0.5, 2);
            """, "ingest");
        using var config = JsonDocument.Parse("{" + pg.Config(db, "s_ck", ", \"snapshotMode\": \"initial_only\", \"chunkSize\": 3") + "}");
        var seen = new List<string>();
        await using (var reader = new PostgresConnector().OpenReader(new ReadContext("test", config.RootElement.Clone(), [new StreamSelection("public.ck", SyncMode.Cdc)], null, NullConnectorLog.Instance)))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is not ChangeBatch b)
                {
                    continue;
                }

                var d = (Date32Array)b.Data.Column(0);
                var t = (StringArray)b.Data.Column(1);
                var n = (Decimal128Array)b.Data.Column(2);
                var ts = (TimestampArray)b.Data.Column(3);
                var v = (Decimal128Array)b.Data.Column(4);
                var s = (Int16Array)b.Data.Column(5);
                for (var i = 0; i < b.Length; i++)
                {
                    seen.Add(string.Join('|',
                        d.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture),
                        t.GetString(i),
                        n.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture),
                        (ts.Values[i] / 1000).ToString(CultureInfo.InvariantCulture),
                        v.IsNull(i) ? "null" : v.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture),
                        s.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture)));
                }
            }
        }

        // The same rows in key order as the server renders them (dates as days since 1970, timestamps as ms; infinities as .NET's extremes).
        var expected = new List<string>();
        await using (var conn = new Npgsql.NpgsqlConnection(pg.Admin(db)))
        {
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("""
                SELECT CASE WHEN d = 'infinity' THEN -1 WHEN d = '-infinity' THEN -2 ELSE d - '1970-01-01'::date END, t, n::text,
                       CASE WHEN ts = 'infinity' THEN -1 WHEN ts = '-infinity' THEN -2 ELSE floor(extract(epoch FROM ts) * 1000)::bigint END, v::text, s
                FROM ck ORDER BY ck.d, ck.t, ck.n
                """, conn);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                var days = r.GetInt32(0) switch
                {
                    -1 => DateOnly.MaxValue.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber,
                    -2 => DateOnly.MinValue.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber,
                    var x => x,
                };
                var ms = r.GetInt64(3) switch
                {
                    -1 => PgText.InfinityMicros / 1000,
                    -2 => PgText.MinusInfinityMicros / 1000,
                    var x => x,
                };
                expected.Add(string.Join('|',
                    days.ToString(CultureInfo.InvariantCulture),
                    r.GetString(1),
                    decimal.Parse(r.GetString(2), CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
                    ms.ToString(CultureInfo.InvariantCulture),
                    r.IsDBNull(4) ? "null" : decimal.Parse(r.GetString(4), CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
                    r.GetInt16(5).ToString(CultureInfo.InvariantCulture)));
            }
        }

        Assert.Equal(42, seen.Count);
        Assert.Equal(expected, seen);
    }
}
