using System.Text;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.S3.Tests;

internal static class Compress
{
    public static byte[] Gzip(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest))
        {
            gz.Write(Encoding.UTF8.GetBytes(text));
        }

        return ms.ToArray();
    }
}

/// <summary>Schemas as text (StreamSchema.ToString prints record internals for primitive types).</summary>
internal static class Describe
{
    public static string Schema(StreamSchema s) => string.Join(", ", s.Columns.Select(c => $"{c.Name} {c.Type.DisplayName}{(c.Nullable ? "" : " not null")}"));
}
