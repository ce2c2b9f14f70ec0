using BenchmarkDotNet.Attributes;
using Ingest.Connectors.Sample;

namespace Ingest.Benchmarks;

/// <summary>
/// The sample connector's generator: snapshot rows per second through the typed batch builder, and how
/// fast a resume replays change events silently (a resume in the change phase replays from the start).
/// </summary>
[MemoryDiagnoser]
public class SampleGeneratorBenchmarks
{
    [Benchmark]
    public long Snapshot_700k_rows()
    {
        var options = new SampleOptions(Customers: 400_000, Products: 1000, Orders: 100_000, BatchSize: 50_000);
        var generator = new SampleGenerator(options);
        var sink = new SampleBatchSink(generator, options.BatchSize) { Enabled = [true, true, true, true] };
        var rows = 0L;
        foreach (var stream in new[] { SampleStreams.Customers, SampleStreams.Orders, SampleStreams.OrderLines })
        {
            var total = generator.SnapshotRows(stream);
            for (var offset = 0L; offset < total; offset += options.BatchSize)
            {
                var n = (int)Math.Min(options.BatchSize, total - offset);
                generator.EmitSnapshot(stream, offset, n, sink);
                using var batch = sink.Build(stream);
                rows += batch.Length;
            }
        }

        return rows;
    }

    [Benchmark]
    public void Replay_1M_change_events()
    {
        var generator = new SampleGenerator(new SampleOptions());
        for (var i = 0; i < 1_000_000; i++)
        {
            generator.ApplyNextEvent(null);
        }
    }
}
