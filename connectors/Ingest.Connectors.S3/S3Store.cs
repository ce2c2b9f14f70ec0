using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.S3;

/// <summary>
/// A bucket prefix as a file store: ListObjectsV2 (paged) lists, GetObject streams. A version is the key with its
/// ETag (plus size and LastModified); a GET asks for that ETag (<c>If-Match</c>), so an object overwritten between
/// listing and reading is not read half old, half new: it counts as gone and its new version is read on the next
/// listing. Keys ending in <c>/</c> (folder markers) and names starting with <c>.</c> or <c>_</c> are skipped, as
/// Spark and the files connector do.
/// </summary>
internal sealed class S3Store(IAmazonS3 client, S3Options options, int pageSize = S3Store.PageSize) : IFileStore
{
    public const int PageSize = 1000;

    public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = options.Bucket, Prefix = options.Prefix + prefix, MaxKeys = pageSize };
        while (true)
        {
            var page = await ListPageAsync(request, cancellationToken).ConfigureAwait(false);
            foreach (var o in page.S3Objects ?? [])
            {
                if (ToEntry(o) is { } entry)
                {
                    yield return entry;
                }
            }

            if (page.IsTruncated != true || string.IsNullOrEmpty(page.NextContinuationToken))
            {
                yield break;
            }

            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    /// <summary>One page of the listing under the connection's prefix (what Check looks at).</summary>
    public async Task<(List<FileEntry> Files, bool More)> ListFirstPageAsync(CancellationToken cancellationToken)
    {
        var page = await ListPageAsync(new ListObjectsV2Request { BucketName = options.Bucket, Prefix = options.Prefix, MaxKeys = pageSize }, cancellationToken).ConfigureAwait(false);
        return ((page.S3Objects ?? []).Select(ToEntry).OfType<FileEntry>().ToList(), page.IsTruncated == true);
    }

    public async Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken)
    {
        var request = new GetObjectRequest { BucketName = options.Bucket, Key = options.Prefix + file.Path };
        if (file.Tag is not null)
        {
            request.EtagToMatch = "\"" + file.Tag + "\"";
        }

        try
        {
            var response = await client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
            return new ResponseStream(response);
        }
        catch (AmazonS3Exception e) when (e.ErrorCode != "NoSuchBucket" && (e.ErrorCode == "NoSuchKey" || e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.PreconditionFailed))
        {
            throw new FileNotFoundException($"s3://{options.Bucket}/{request.Key} (ETag {file.Tag}) is gone or was overwritten.", file.Path, e);
        }
        catch (Exception e) when (Errors.Map(e, options.Bucket, "s3:GetObject") is { } mapped)
        {
            throw mapped;
        }
    }

    private async Task<ListObjectsV2Response> ListPageAsync(ListObjectsV2Request request, CancellationToken cancellationToken)
    {
        try
        {
            return await client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (Errors.Map(e, options.Bucket, "s3:ListBucket") is { } mapped)
        {
            throw mapped;
        }
    }

    private FileEntry? ToEntry(S3Object o)
    {
        if (o.Key is null || !o.Key.StartsWith(options.Prefix, StringComparison.Ordinal) || o.Key.EndsWith('/'))
        {
            return null;
        }

        var relative = o.Key[options.Prefix.Length..];
        if (relative.Split('/').Any(part => part.StartsWith('.') || part.StartsWith('_')))
        {
            return null;
        }

        var modified = o.LastModified is { } m ? new DateTimeOffset(m.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.UnixEpoch;
        return new FileEntry(relative, o.Size ?? 0, modified, o.ETag?.Trim('"'));
    }

    /// <summary>The object's body; disposing it releases the HTTP response. Never buffered whole.</summary>
    private sealed class ResponseStream(GetObjectResponse response) : Stream
    {
        private readonly Stream _inner = response.ResponseStream;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => response.ContentLength;
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => _inner.Read(buffer);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>S3 failures as connector errors: what the user must fix (naming the field or permission) or what is retried.</summary>
internal static class Errors
{
    /// <summary>The connector error for <paramref name="e"/>, or null when it is not an S3/SDK failure (cancellation, a bug).</summary>
    public static ConnectorException? Map(Exception e, string bucket, string permission)
    {
        switch (e)
        {
            case ConnectorException or OperationCanceledException:
                return null;
            case AmazonS3Exception s3:
                return s3.ErrorCode switch
                {
                    "NoSuchBucket" => new ConnectorException(ErrorKind.Configuration, $"The bucket '{bucket}' does not exist (check 'bucket', and 'region'/'endpoint').", "/bucket", e),
                    "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "InvalidToken" or "ExpiredToken" or "InvalidClientTokenId" =>
                        new ConnectorException(ErrorKind.Configuration, $"S3 refused the credentials ({s3.ErrorCode}: {s3.Message}); check 'accessKeyId'/'secretAccessKey' or the AWS credential chain.", "/accessKeyId", e),
                    "PermanentRedirect" or "AuthorizationHeaderMalformed" or "IllegalLocationConstraintException" =>
                        new ConnectorException(ErrorKind.Configuration, $"The bucket '{bucket}' is in another region ({s3.ErrorCode}: {s3.Message}); set 'region' to the bucket's region.", "/region", e),
                    "AccessDenied" or "AllAccessDisabled" or "AccountProblem" =>
                        new ConnectorException(ErrorKind.Configuration, $"Access denied to bucket '{bucket}': the credentials need {permission} on it (and s3:ListBucket / s3:GetObject for reading). {s3.Message}", "/bucket", e),
                    "SlowDown" or "RequestTimeout" or "InternalError" or "ServiceUnavailable" or "RequestTimeTooSkewed" or "Throttling" or "ThrottlingException" =>
                        new ConnectorException(ErrorKind.Transient, $"S3 asked to slow down or failed for a while on bucket '{bucket}' ({s3.ErrorCode}: {s3.Message}).", null, e),
                    _ when s3.StatusCode == HttpStatusCode.Forbidden =>
                        new ConnectorException(ErrorKind.Configuration, $"Access denied to bucket '{bucket}' ({s3.ErrorCode}): the credentials need {permission} on it. {s3.Message}", "/bucket", e),
                    _ when (int)s3.StatusCode >= 500 || s3.StatusCode is HttpStatusCode.TooManyRequests or 0 =>
                        new ConnectorException(ErrorKind.Transient, $"S3 failed on bucket '{bucket}' ({(int)s3.StatusCode} {s3.ErrorCode}: {s3.Message}).", null, e),
                    _ => new ConnectorException(ErrorKind.Fatal, $"S3 refused a request on bucket '{bucket}' ({(int)s3.StatusCode} {s3.ErrorCode}: {s3.Message}).", null, e),
                };
            case HttpRequestException or IOException or SocketException or TimeoutException:
                return new ConnectorException(ErrorKind.Transient, $"Cannot reach S3 for bucket '{bucket}': {e.Message}", null, e);
            case AmazonClientException when e.InnerException is HttpRequestException or IOException or SocketException or TimeoutException:
                return new ConnectorException(ErrorKind.Transient, $"Cannot reach S3 for bucket '{bucket}': {e.InnerException.Message}", null, e);
            case AmazonServiceException { StatusCode: HttpStatusCode.Forbidden }:
                return new ConnectorException(ErrorKind.Configuration, $"Access denied to bucket '{bucket}': the credentials need {permission} on it. {e.Message}", "/bucket", e);
            case AmazonServiceException:
                return new ConnectorException(ErrorKind.Transient, $"S3 failed on bucket '{bucket}': {e.Message}", null, e);
            case AmazonClientException when e.Message.Contains("region", StringComparison.OrdinalIgnoreCase) && !e.Message.Contains("credential", StringComparison.OrdinalIgnoreCase):
                return new ConnectorException(ErrorKind.Configuration, $"The AWS SDK cannot tell which region bucket '{bucket}' is in: {e.Message} Set 'region' (or AWS_REGION).", "/region", e);
            case AmazonClientException:
                // No credentials found in the chain, a malformed setting the SDK rejects, ...
                return new ConnectorException(ErrorKind.Configuration, $"The AWS SDK cannot call S3 for bucket '{bucket}': {e.Message} Set 'accessKeyId'/'secretAccessKey', or credentials in the standard AWS chain.", "/accessKeyId", e);
            default:
                return null;
        }
    }
}

/// <summary>Builds the S3 client from the options.</summary>
internal static class S3Client
{
    /// <exception cref="ConnectorException">Of kind configuration when the region or credentials cannot be resolved.</exception>
    public static AmazonS3Client Create(S3Options o)
    {
        var config = new AmazonS3Config { MaxErrorRetry = 3 };
        if (o.Endpoint is not null)
        {
            // S3-compatible stores: bucket in the path (no wildcard DNS), and no flexible checksums, which most
            // of them (MinIO before 2025, Ceph, R2, moto) reject or do not return.
            config.ServiceURL = o.Endpoint.ToString();
            config.ForcePathStyle = true;
            config.AuthenticationRegion = o.Region ?? "us-east-1";
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else if (o.Region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(o.Region);
        }

        try
        {
            return o.AccessKeyId is null
                ? new AmazonS3Client(config)
                : o.SessionToken is null
                    ? new AmazonS3Client(new BasicAWSCredentials(o.AccessKeyId, o.SecretAccessKey), config)
                    : new AmazonS3Client(new SessionAWSCredentials(o.AccessKeyId, o.SecretAccessKey, o.SessionToken), config);
        }
        catch (AmazonClientException e)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Cannot set up the S3 client: {e.Message} Set 'region' (or AWS_REGION), and credentials.", o.Region is null ? "/region" : "/accessKeyId", e);
        }
    }
}
