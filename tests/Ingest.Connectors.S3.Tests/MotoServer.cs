using System.Net;
using System.Text;
using System.Xml.Linq;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Ingest.Testing;

namespace Ingest.Connectors.S3.Tests;

/// <summary>
/// A real S3 API: two <c>moto_server</c> processes on free loopback ports. The open one (no authentication) holds
/// the data tests' buckets; the secured one checks signatures and IAM policies (after the IAM calls that create
/// its users), so wrong credentials and missing permissions fail as on AWS. Two, because moto 5 computes the
/// signature of a ListObjectsV2 whose prefix holds a <c>/</c> differently from every SDK (boto3 fails the same
/// way), so with authentication on, nested prefixes cannot be listed. Fails loudly if either cannot start.
/// </summary>
public sealed class MotoServer : IAsyncLifetime
{
    // The IAM calls below run before moto starts checking signatures and policies (INITIAL_NO_AUTH_ACTION_COUNT).
    private const int SetupActions = 6;
    private readonly MotoProcess _open = new();
    private readonly MotoProcess _secured = new();
    private readonly Dictionary<string, AmazonS3Client> _bucketClients = [];
    private int _buckets;

    /// <summary>The open server (any credentials).</summary>
    public string Endpoint => _open.Endpoint;

    /// <summary>The server that checks credentials and policies.</summary>
    public string SecuredEndpoint => _secured.Endpoint;

    /// <summary>A user allowed everything on S3.</summary>
    public (string Id, string Secret) Admin { get; private set; }

    /// <summary>A user allowed only s3:ListBucket.</summary>
    public (string Id, string Secret) ListOnly { get; private set; }

    public AmazonS3Client Client { get; private set; } = null!;

    public AmazonS3Client SecuredClient { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Task.WhenAll(_open.StartAsync(null), _secured.StartAsync(SetupActions));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Admin = await CreateUserAsync(http, "admin", "s3:*");
        ListOnly = await CreateUserAsync(http, "lister", "s3:ListBucket");
        Client = CreateClient(Endpoint, Admin.Id, Admin.Secret);
        SecuredClient = CreateClient(SecuredEndpoint, Admin.Id, Admin.Secret);
    }

    public static AmazonS3Client CreateClient(string endpoint, string id, string secret) => new(new BasicAWSCredentials(id, secret), new AmazonS3Config
    {
        ServiceURL = endpoint,
        ForcePathStyle = true,
        AuthenticationRegion = "us-east-1",
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
    });

    /// <summary>A new, empty bucket of the test's own.</summary>
    public async Task<string> CreateBucketAsync(bool secured = false)
    {
        var name = $"b{Interlocked.Increment(ref _buckets)}-{Guid.NewGuid().ToString("N")[..10]}";
        var client = secured ? SecuredClient : Client;
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        lock (_bucketClients)
        {
            _bucketClients[name] = client;
        }

        return name;
    }

    public Task PutAsync(string bucket, string key, string text) => PutAsync(bucket, key, Encoding.UTF8.GetBytes(text));

    public async Task PutAsync(string bucket, string key, byte[] bytes)
    {
        AmazonS3Client client;
        lock (_bucketClients)
        {
            client = _bucketClients[bucket];
        }

        using var body = new MemoryStream(bytes);
        await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, InputStream = body, UseChunkEncoding = false });
    }

    public async Task DeleteAsync(string bucket, string key)
    {
        AmazonS3Client client;
        lock (_bucketClients)
        {
            client = _bucketClients[bucket];
        }

        await client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = bucket, Key = key });
    }

    /// <summary>The connector's configuration for <paramref name="bucket"/> (on the open server unless <paramref name="secured"/>), as the admin user by default.</summary>
    public string Config(string bucket, string tables, string extra = "", (string Id, string Secret)? user = null, bool secured = false)
    {
        var (id, secret) = user ?? Admin;
        return $$"""{"bucket": "{{bucket}}", "endpoint": "{{(secured ? SecuredEndpoint : Endpoint)}}", "accessKeyId": "{{id}}", "secretAccessKey": "{{secret}}", "tables": {{tables}}, "pollInterval": "100ms"{{extra}}}""";
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        SecuredClient?.Dispose();
        await _open.DisposeAsync();
        await _secured.DisposeAsync();
    }

    private async Task<(string, string)> CreateUserAsync(HttpClient http, string name, string action)
    {
        await IamAsync(http, new() { ["Action"] = "CreateUser", ["UserName"] = name });
        var policy = $$"""{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"{{action}}","Resource":"*"}]}""";
        await IamAsync(http, new() { ["Action"] = "PutUserPolicy", ["UserName"] = name, ["PolicyName"] = "p", ["PolicyDocument"] = policy });
        var key = await IamAsync(http, new() { ["Action"] = "CreateAccessKey", ["UserName"] = name });
        XNamespace ns = "https://iam.amazonaws.com/doc/2010-05-08/";
        var k = key.Descendants(ns + "AccessKey").Single();
        return (k.Element(ns + "AccessKeyId")!.Value, k.Element(ns + "SecretAccessKey")!.Value);
    }

    private async Task<XDocument> IamAsync(HttpClient http, Dictionary<string, string> form)
    {
        form["Version"] = "2010-05-08";
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(SecuredEndpoint + "/")) { Content = new FormUrlEncodedContent(form) };

        // moto routes by the credential scope; the signature is not checked for these first calls.
        request.Headers.TryAddWithoutValidation("Authorization", "AWS4-HMAC-SHA256 Credential=AKIASETUP/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00");
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"moto IAM {form["Action"]} failed: {(int)response.StatusCode} {body}");
        }

        return XDocument.Parse(body);
    }
}

[CollectionDefinition(Name)]
public sealed class MotoCollection : ICollectionFixture<MotoServer>
{
    public const string Name = "moto";
}
