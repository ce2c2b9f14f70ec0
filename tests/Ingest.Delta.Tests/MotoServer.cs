using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Ingest.Testing;

namespace Ingest.Delta.Tests;

/// <summary>
/// A real S3 API for the S3 table tests: one <c>moto_server</c> (moto 5 honours <c>If-None-Match: *</c> on PutObject)
/// on a free loopback port, without authentication. Fails loudly when it cannot start.
/// </summary>
public sealed class MotoServer : IAsyncLifetime
{
    private readonly MotoProcess _moto = new();

    public string Endpoint => _moto.Endpoint;

    public AmazonS3Client Client { get; private set; } = null!;

    /// <summary>Storage options for tables on this server.</summary>
    public DeltaStorageOptions Storage => new(new Uri(Endpoint), "us-east-1", "testing", "testing");

    public async Task InitializeAsync()
    {
        await _moto.StartAsync(null);
        Client = new AmazonS3Client(new BasicAWSCredentials("testing", "testing"), new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
    }

    /// <summary>A new, empty bucket of the test's own.</summary>
    public async Task<string> CreateBucketAsync()
    {
        var name = "delta-" + Guid.NewGuid().ToString("N")[..12];
        await Client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>Every key of the bucket.</summary>
    public async Task<List<string>> KeysAsync(string bucket)
    {
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = bucket };
        do
        {
            var response = await Client.ListObjectsV2Async(request);
            keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);

        return keys;
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        await _moto.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class MotoCollection : ICollectionFixture<MotoServer>
{
    public const string Name = "moto";
}
