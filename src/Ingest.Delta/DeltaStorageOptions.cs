namespace Ingest.Delta;

/// <summary>
/// Where and how to reach a table in an object store (<c>s3://bucket/prefix</c>). Unset values come from the AWS
/// environment: <c>AWS_ENDPOINT_URL_S3</c> / <c>AWS_ENDPOINT_URL</c>, <c>AWS_REGION</c>, and the standard credential
/// chain (environment, profile, instance role). Local tables ignore these options.
/// </summary>
/// <param name="Endpoint">A custom endpoint for S3-compatible stores (MinIO, R2, moto); path-style addressing and the checksum settings such stores need are applied for it.</param>
/// <param name="Region">The region (signing region for a custom endpoint; default us-east-1 there).</param>
/// <param name="AccessKeyId">An explicit access key; with <paramref name="SecretAccessKey"/>.</param>
/// <param name="SecretAccessKey">The secret key.</param>
/// <param name="SessionToken">A session token for temporary credentials.</param>
public sealed record DeltaStorageOptions(
    Uri? Endpoint = null,
    string? Region = null,
    string? AccessKeyId = null,
    string? SecretAccessKey = null,
    string? SessionToken = null)
{
    /// <summary>Options from the environment only.</summary>
    public static DeltaStorageOptions Default { get; } = new();

    /// <summary>Whether <paramref name="path"/> names a table in an object store rather than a local folder.</summary>
    public static bool IsObjectStoreUri(string path) => Storage.S3LogStore.IsS3Uri(path);
}
