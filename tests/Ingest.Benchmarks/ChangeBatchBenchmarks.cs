using BenchmarkDotNet.Attributes;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Benchmarks;

/// <summary>
/// The typed, unboxed ChangeBatchBuilder path against the boxed slow path (ArrowValues.BuildArray), for a
/// batch shaped like the sample's orders. Shows what "no boxing per value" buys on the hot path.
/// <c>Reused</c> and <c>ReusedUtf8</c> are the connectors' steady state: one builder kept across batches (as the
/// PostgreSQL and file readers do), one batch per call, so what each batch costs after the first is what shows.
/// </summary>
[MemoryDiagnoser]
public class ChangeBatchBenchmarks
{
    private static readonly StreamSchema Schema = new(
    [
        new Field("id", DataType.Int64, false),
        new Field("status", DataType.String, false),
        new Field("total", DataType.Decimal(12, 2), false),
        new Field("ordered_at", DataType.Timestamp, false),
    ]);

    private static readonly byte[] Note = "a note of some forty bytes, like a comment"u8.ToArray();

    private static readonly StreamSchema WideSchema = new(
    [
        new Field("id", DataType.Int64, false),
        new Field("status", DataType.String, false),
        new Field("total", DataType.Decimal(12, 2), false),
        new Field("ordered_at", DataType.Timestamp, false),
        new Field("quantity", DataType.Int32, true),
        new Field("note", DataType.String, true),
        new Field("paid", DataType.Boolean, true),
        new Field("shipped_on", DataType.Date, true),
    ]);

    private ChangeBatchBuilder _reused = null!;
    private ChangeBatchBuilder _reusedWide = null!;
    private ulong _seq;

    [Params(10_000)]
    public int Rows { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _reused = new ChangeBatchBuilder("orders", Schema);
        _reusedWide = new ChangeBatchBuilder("orders", WideSchema);
    }

    [Benchmark(Baseline = true)]
    public int Boxed()
    {
        var ids = new List<object?>(Rows);
        var statuses = new List<object?>(Rows);
        var totals = new List<object?>(Rows);
        var times = new List<object?>(Rows);
        var t0 = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < Rows; i++)
        {
            ids.Add((long)i);
            statuses.Add("paid");
            totals.Add(i * 0.01m);
            times.Add(t0.AddSeconds(i));
        }

        var arrays = new[]
        {
            ArrowValues.BuildArray(DataType.Int64, ids),
            ArrowValues.BuildArray(DataType.String, statuses),
            ArrowValues.BuildArray(DataType.Decimal(12, 2), totals),
            ArrowValues.BuildArray(DataType.Timestamp, times),
        };
        var n = arrays.Sum(a => a.Length);
        foreach (var a in arrays)
        {
            a.Dispose();
        }

        return n;
    }

    [Benchmark]
    public int Typed()
    {
        var b = new ChangeBatchBuilder("orders", Schema, Rows);
        var t0 = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        for (var i = 0; i < Rows; i++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition((ulong)i, 0), t0);
            b.SetInt64(0, i);
            b.SetString(1, "paid");
            b.SetDecimalUnscaled(2, i);
            b.SetTimestampMicros(3, t0 + (i * 1_000_000L));
            b.EndRow();
        }

        using var batch = b.Build();
        return batch.Length * 4;
    }

    [Benchmark]
    public int Reused()
    {
        var b = _reused;
        var t0 = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        for (var i = 0; i < Rows; i++)
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition(++_seq, 0), t0);
            b.SetInt64(0, i);
            b.SetString(1, "paid");
            b.SetDecimalUnscaled(2, i);
            b.SetTimestampMicros(3, t0 + (i * 1_000_000L));
            b.EndRow();
        }

        using var batch = b.Build();
        return batch.Length * 4;
    }

    /// <summary>Eight columns as a COPY or CSV reader fills them: UTF-8 strings, some nulls, a date and a boolean.</summary>
    [Benchmark]
    public int ReusedUtf8()
    {
        var b = _reusedWide;
        var t0 = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;
        for (var i = 0; i < Rows; i++)
        {
            b.BeginRow(ChangeOp.Read, new SourcePosition(++_seq, 0), t0);
            b.SetInt64(0, i);
            b.SetStringUtf8(1, "paid"u8);
            b.SetDecimalUnscaled(2, i);
            b.SetTimestampMicros(3, t0 + (i * 1_000_000L));
            b.SetInt32(4, i % 7);
            if (i % 3 != 0)
            {
                b.SetStringUtf8(5, Note);
            }

            b.SetBoolean(6, i % 2 == 0);
            b.SetDate(7, 19_000 + (i % 365));
            b.EndRow();
        }

        using var batch = b.Build();
        return batch.Length * 8;
    }
}
