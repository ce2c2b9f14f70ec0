using System.Collections.Concurrent;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;

namespace Ingest.Delta.Storage;

/// <summary>The log store for a table location: <c>s3://</c> (and <c>s3a://</c>) URIs go to S3, anything else is a local folder.</summary>
internal static class LogStores
{
    // S3 clients are thread-safe and expensive to build (credential resolution, HTTP pools): one per distinct setting.
    private static readonly ConcurrentDictionary<(string? Endpoint, string? Region, string? Id, string? Secret, string? Token), AmazonS3Client> Clients = new();

    public static ILogStore Create(string path, DeltaStorageOptions? options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!S3LogStore.IsS3Uri(path))
        {
            return new LocalLogStore(path);
        }

        var o = options ?? DeltaStorageOptions.Default;
        var endpoint = o.Endpoint?.ToString()
            ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL_S3"))
            ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL"));
        if (o.AccessKeyId is null != o.SecretAccessKey is null)
        {
            throw new ArgumentException($"Table '{path}': set both AccessKeyId and SecretAccessKey, or neither (then the AWS credential chain applies).", nameof(options));
        }

        var client = Clients.GetOrAdd((endpoint, o.Region, o.AccessKeyId, o.SecretAccessKey, o.SessionToken), k => NewClient(k.Endpoint, k.Region, k.Id, k.Secret, k.Token, path));
        return new S3LogStore(client, path, endpoint is not null);
    }

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    private static AmazonS3Client NewClient(string? endpoint, string? region, string? id, string? secret, string? token, string path)
    {
        var config = new AmazonS3Config { MaxErrorRetry = 3 };
        if (endpoint is not null)
        {
            // S3-compatible stores: bucket in the path (no wildcard DNS), and no flexible checksums, which most of
            // them (MinIO before 2025, Ceph, R2, moto) reject or do not return.
            config.ServiceURL = endpoint;
            config.ForcePathStyle = true;
            config.AuthenticationRegion = region ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_REGION")) ?? "us-east-1";
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else if (region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        try
        {
            return id is null
                ? new AmazonS3Client(config)
                : token is null
                    ? new AmazonS3Client(new BasicAWSCredentials(id, secret), config)
                    : new AmazonS3Client(new SessionAWSCredentials(id, secret, token), config);
        }
        catch (AmazonClientException e)
        {
            throw new InvalidOperationException($"Cannot set up the S3 client for '{path}': {e.Message} Set a region (AWS_REGION) and credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile).", e);
        }
    }
}
