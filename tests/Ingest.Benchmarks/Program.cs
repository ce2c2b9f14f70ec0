using BenchmarkDotNet.Running;
using Ingest.Benchmarks;

// `pipeline`: the end-to-end benchmark of the issue (sample connector -> Delta, rows/s and peak RSS).
// Anything else goes to BenchmarkDotNet (e.g. `--filter *ChangeBatch*`).
if (args.Length > 0 && args[0] == "pipeline")
{
    return await PipelineBenchmark.RunAsync(args[1..]);
}

// `postgres`: the PostgreSQL connector against binary COPY and pg_recvlogical, plus steady-rate latency (issue 4).
if (args.Length > 0 && args[0] == "postgres")
{
    return await PostgresBenchmark.RunAsync(args[1..]);
}

// `files-csv`: ~1 GB of CSV from a local folder into Delta (files connector) against DuckDB's COPY read_csv -> Parquet (issue 7).
if (args.Length > 0 && args[0] == "files-csv")
{
    return await FileIngestBenchmark.RunAsync(args[1..]);
}

// `stripe-rate`: the Stripe connector against its stateful fake at a request rate: achieved req/s, 429s, rows/s (issue 8).
if (args.Length > 0 && args[0] == "stripe-rate")
{
    return await StripeRateBenchmark.RunAsync(args[1..]);
}

// `kafka`: sample -> librdkafka's mock cluster -> Delta merge, source half and sink half timed apart, against the embedded path (issue 5).
if (args.Length > 0 && args[0] == "kafka")
{
    return await KafkaBenchmark.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(PipelineBenchmark).Assembly).Run(args);
return 0;
