using Ingest.Delta.Tests;

namespace Ingest.Engine.Tests;

/// <summary>A lake on S3 (moto): the same exactness as on a local folder, and the table CLI on s3:// paths.</summary>
[Collection(MotoCollection.Name)]
public sealed class S3LakeTests(MotoServer moto)
{
    [Fact]
    public async Task A_pipeline_with_an_s3_lake_writes_exact_tables_resumes_from_them_and_the_cli_reads_them()
    {
        // The lake's endpoint and credentials come from the AWS environment, as they would in production.
        Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", moto.Endpoint);
        Environment.SetEnvironmentVariable("AWS_REGION", "us-east-1");
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "testing");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "testing");
        var bucket = await moto.CreateBucketAsync();
        var lake = $"s3://{bucket}/lake";
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline().Replace("lake: ./lake", $"lake: {lake}/", StringComparison.Ordinal));

        var run = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Error}");
        await SampleLake.AssertExactAsync(lake);
        var keys = await moto.KeysAsync(bucket);
        Assert.Contains(keys, k => k.StartsWith("lake/shop/customers/_delta_log/", StringComparison.Ordinal));
        Assert.Contains(keys, k => k.StartsWith("lake/shop_log/orders/part-", StringComparison.Ordinal));
        Assert.DoesNotContain(keys, k => k.Contains("//", StringComparison.Ordinal));

        // The second run reads its progress back from the tables on S3 and adds nothing.
        var again = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(again.ExitCode == 0, $"exit {again.ExitCode}: {again.Error}");
        await SampleLake.AssertExactAsync(lake);

        var history = await Cli.RunAsync("table", "history", $"{lake}/shop/customers");
        Assert.True(history.ExitCode == 0, history.Error);
        Assert.Contains("MERGE", history.Out, StringComparison.Ordinal);
        var scan = await Cli.RunAsync("table", "scan", $"{lake}/shop/products", "--limit", "3");
        Assert.True(scan.ExitCode == 0, scan.Error);
        Assert.Equal(3, scan.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith('{')));
    }
}
