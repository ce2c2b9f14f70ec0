using Ingest.Delta;

namespace Ingest.Engine.Pipelines;

/// <summary>
/// Lake and table locations: a local folder, or an object store URI (<c>s3://bucket/prefix</c>, also <c>s3a://</c>)
/// whose endpoint, region and credentials come from the AWS environment (see <see cref="DeltaStorageOptions"/>).
/// </summary>
public static class LakePaths
{
    /// <summary>Whether <paramref name="path"/> is an object store URI rather than a local folder.</summary>
    public static bool IsObjectStore(string path) => DeltaStorageOptions.IsObjectStoreUri(path);

    /// <summary>An object store URI without a trailing slash.</summary>
    public static string Normalize(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return uri.TrimEnd('/');
    }

    /// <summary>What is wrong with an object store URI (a missing or invalid bucket name), or null.</summary>
    public static string? Problem(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var rest = uri[(uri.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        if (bucket.Length == 0)
        {
            return $"expected s3://bucket/prefix, got '{uri}' (no bucket)";
        }

        var valid = bucket.Length is >= 3 and <= 63
            && bucket.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-')
            && char.IsAsciiLetterOrDigit(bucket[0]) && char.IsAsciiLetterOrDigit(bucket[^1]);
        return valid ? null : $"bucket name '{bucket}' is not valid: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit";
    }

    /// <summary>
    /// A table's location: <paramref name="relative"/> (folders separated by <c>/</c>) under <paramref name="lake"/>.
    /// Local lakes give a full path; object store lakes a URI. <c>..</c> cannot leave an object store lake.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="relative"/> climbs out of an object store lake.</exception>
    public static string Join(string lake, string relative)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(relative);
        if (!IsObjectStore(lake))
        {
            return Path.GetFullPath(Path.Combine(lake, relative.Replace('/', Path.DirectorySeparatorChar)));
        }

        var parts = new List<string>();
        foreach (var part in relative.Replace('\\', '/').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                throw new ArgumentException($"table path '{relative}' leaves the lake {lake}", nameof(relative));
            }

            if (part != ".")
            {
                parts.Add(part);
            }
        }

        return Normalize(lake) + "/" + string.Join('/', parts);
    }
}
