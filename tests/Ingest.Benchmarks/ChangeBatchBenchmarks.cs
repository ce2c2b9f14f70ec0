using BenchmarkDotNet.Attributes;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Benchmarks;

/// <summary>
/// The typed, unboxed ChangeBatchBuilder path against the boxed slow path (ArrowValues.BuildArray), for a
/// batch shaped like the sample's orders. Shows what "no boxing per value" buys on the hot path.
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

    [Params(10_000)]
    public int Rows { get; set; }

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
}
