using System.Net;
using Amazon.S3;
using Amazon.S3.Model;

namespace Ingest.Delta.Storage;

/// <summary>
/// A table under <c>s3://bucket/prefix</c>. Commits are conditional PUTs with <c>If-None-Match: *</c>: S3 answers 412
/// when the object exists (another writer made that version) and 409 while a concurrent conditional PUT of the same
/// key is in flight, so two writers can never both create version N (DELTA-NOTES "S3 concurrent writers", option A).
/// Data files are written to a local temporary file and uploaded when complete; Parquet files are read by downloading
/// them to a temporary file (ParquetSharp reads by path).
/// </summary>
internal sealed class S3LogStore : ILogStore
{
    private const int ConflictRetries = 10;
    private readonly IAmazonS3 _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly bool _compatible;

    /// <param name="client">The client (shared; not disposed here).</param>
    /// <param name="uri">The table: <c>s3://bucket</c> or <c>s3://bucket/prefix</c> (<c>s3a://</c> too).</param>
    /// <param name="compatibleEndpoint">A non-AWS endpoint: no chunked uploads, which some S3-compatible stores reject.</param>
    public S3LogStore(IAmazonS3 client, string uri, bool compatibleEndpoint)
    {
        _client = client;
        (_bucket, var key) = Parse(uri);
        _prefix = key.Length == 0 ? "" : key.TrimEnd('/') + "/";
        _compatible = compatibleEndpoint;
        Root = "s3://" + _bucket + (_prefix.Length == 0 ? "" : "/" + _prefix.TrimEnd('/'));
    }

    public string Root { get; }

    /// <summary>Whether <paramref name="path"/> is an S3 URI (<c>s3://</c> or <c>s3a://</c>).</summary>
    public static bool IsS3Uri(string path) =>
        path.StartsWith("s3://", StringComparison.OrdinalIgnoreCase) || path.StartsWith("s3a://", StringComparison.OrdinalIgnoreCase);

    /// <summary>Bucket and key of an S3 URI.</summary>
    /// <exception cref="ArgumentException">Not an S3 URI, or without a bucket.</exception>
    public static (string Bucket, string Key) Parse(string uri)
    {
        if (!IsS3Uri(uri))
        {
            throw new ArgumentException($"'{uri}' is not an S3 URI (s3://bucket/prefix).", nameof(uri));
        }

        var rest = uri[(uri.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        if (bucket.Length == 0)
        {
            throw new ArgumentException($"S3 URI '{uri}' has no bucket (expected s3://bucket/prefix).", nameof(uri));
        }

        return (bucket, slash < 0 ? "" : rest[(slash + 1)..].Trim('/'));
    }

    /// <summary>Bucket and key of a table-relative path (or of an absolute S3 URI, as add paths may be).</summary>
    private (string Bucket, string Key) Locate(string path) => IsS3Uri(path) ? Parse(path) : (_bucket, _prefix + path);

    public async Task<bool> PutIfAbsentAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        for (var attempt = 0; ; attempt++)
        {
            using var body = new MemoryStream(content.ToArray(), writable: false);
            var request = new PutObjectRequest { BucketName = bucket, Key = key, InputStream = body, IfNoneMatch = "*", UseChunkEncoding = !_compatible };
            try
            {
                await _client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
            {
                return false;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.Conflict && attempt < ConflictRetries)
            {
                // A concurrent conditional write of the same key is in flight: wait and ask again; the winner's object then answers 412.
                await Task.Delay(TimeSpan.FromMilliseconds(50 * (attempt + 1)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async Task OverwriteAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        using var body = new MemoryStream(content.ToArray(), writable: false);
        await _client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, InputStream = body, UseChunkEncoding = !_compatible }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        try
        {
            using var response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
            using var ms = new MemoryStream(response.ContentLength > 0 ? (int)response.ContentLength : 0);
            await response.ResponseStream.CopyToAsync(ms, cancellationToken).ConfigureAwait(false);
            return ms.ToArray();
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task<byte[]?> ReadRangeAsync(string path, long offset, int length, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        try
        {
            var request = new GetObjectRequest { BucketName = bucket, Key = key, ByteRange = new ByteRange(offset, offset + length - 1) };
            using var response = await _client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
            var buffer = new byte[length];
            await response.ResponseStream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            throw new EndOfStreamException($"'{Root}/{path}' has no bytes {offset}..{offset + length - 1}.", e);
        }
    }

    public Task<IReadOnlyList<StoredFile>> ListAsync(string prefix, CancellationToken cancellationToken) => ListCoreAsync(prefix, "/", cancellationToken);

    public Task<IReadOnlyList<StoredFile>> ListAllAsync(CancellationToken cancellationToken) => ListCoreAsync("", null, cancellationToken);

    private async Task<IReadOnlyList<StoredFile>> ListCoreAsync(string prefix, string? delimiter, CancellationToken ct)
    {
        var result = new List<StoredFile>();
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix + prefix, Delimiter = delimiter };
        do
        {
            var response = await _client.ListObjectsV2Async(request, ct).ConfigureAwait(false);
            foreach (var o in response.S3Objects ?? [])
            {
                if (o.Key.EndsWith('/'))
                {
                    continue; // a folder marker some tools create
                }

                result.Add(new StoredFile(o.Key[_prefix.Length..], o.Size ?? 0, o.LastModified is { } m ? new DateTimeOffset(m.ToUniversalTime()) : DateTimeOffset.MinValue));
            }

            request.ContinuationToken = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);

        result.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return result;
    }

    public INewFile CreateFile(string path) => new UploadFile(this, path);

    public async Task<LocalFile> OpenLocalAsync(string path, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        var temp = TempPath();
        try
        {
            using var response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                await response.ResponseStream.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
            }

            return new LocalFile(temp, temporary: true);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            throw new FileNotFoundException($"File '{path}' of table '{Root}' does not exist.", $"s3://{bucket}/{key}", e);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    public async Task<StoredFile?> StatAsync(string path, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        try
        {
            var m = await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
            return new StoredFile(path, m.ContentLength, m.LastModified is { } t ? new DateTimeOffset(t.ToUniversalTime()) : DateTimeOffset.MinValue);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task DeleteAsync(string path, CancellationToken cancellationToken)
    {
        var (bucket, key) = Locate(path);
        await _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
    }

    public Task<int> RemoveEmptyFoldersAsync(CancellationToken cancellationToken) => Task.FromResult(0);

    private static string TempPath()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ingest-delta-s3");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, Guid.NewGuid().ToString("N") + ".tmp");
    }

    /// <summary>A data file written to a local temporary file, uploaded by <see cref="CompleteAsync"/>.</summary>
    private sealed class UploadFile : INewFile
    {
        private readonly S3LogStore _store;
        private readonly string _temp;

        public UploadFile(S3LogStore store, string path)
        {
            _store = store;
            Path = path;
            _temp = TempPath();
            Stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        }

        public string Path { get; }

        public Stream Stream { get; }

        public async Task<long> CompleteAsync(CancellationToken cancellationToken)
        {
            await Stream.DisposeAsync().ConfigureAwait(false);
            var (bucket, key) = _store.Locate(Path);
            var length = new FileInfo(_temp).Length;
            await _store._client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, FilePath = _temp, UseChunkEncoding = !_store._compatible }, cancellationToken).ConfigureAwait(false);
            File.Delete(_temp);
            return length;
        }

        public void Dispose()
        {
            Stream.Dispose();
            try
            {
                File.Delete(_temp);
            }
            catch (IOException)
            {
                // A leftover temporary file is harmless.
            }
        }
    }
}
