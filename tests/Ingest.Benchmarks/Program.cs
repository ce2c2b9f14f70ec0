using BenchmarkDotNet.Running;
using Ingest.Benchmarks;

// `pipeline`: the end-to-end benchmark of the issue (sample connector -> Delta, rows/s and peak RSS).
// Anything else goes to BenchmarkDotNet (e.g. `--filter *ChangeBatch*`).
if (args.Length > 0 && args[0] == "pipeline")
{
    return await PipelineBenchmark.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(PipelineBenchmark).Assembly).Run(args);
return 0;
