using System.Text;
using System.Text.RegularExpressions;

namespace Ingest.Sdk.Files;

/// <summary>Glob patterns over <c>/</c>-separated relative paths: <c>*</c>, <c>**</c>, <c>?</c>, <c>{a,b}</c>.</summary>
public static class Glob
{
    /// <summary>Compiles a pattern to a regular expression matching whole paths.</summary>
    /// <exception cref="FormatException">The pattern is malformed (an unclosed brace).</exception>
    public static Regex Compile(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var sb = new StringBuilder("^");
        var braces = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                    {
                        i++;
                        sb.Append("(?:.*/)?"); // zero or more folders
                    }
                    else
                    {
                        sb.Append(".*");
                    }

                    break;
                case '*': sb.Append("[^/]*"); break;
                case '?': sb.Append("[^/]"); break;
                case '{': braces++; sb.Append("(?:"); break;
                case '}' when braces > 0: braces--; sb.Append(')'); break;
                case ',' when braces > 0: sb.Append('|'); break;
                default: sb.Append(Regex.Escape(c.ToString())); break;
            }
        }

        if (braces != 0)
        {
            throw new FormatException($"the pattern '{pattern}' has an unclosed '{{'.");
        }

        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <summary>The folder part before the first wildcard (so a store lists only under it), with a trailing slash or empty.</summary>
    public static string StaticPrefix(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var wild = pattern.IndexOfAny(['*', '?', '{']);
        var head = wild < 0 ? pattern : pattern[..wild];
        var slash = head.LastIndexOf('/');
        return slash < 0 ? "" : head[..(slash + 1)];
    }
}

/// <summary>Decompression by file extension.</summary>
public static class Compression
{
    /// <summary>Wraps <paramref name="stream"/> in a decompressor when the name ends in <c>.gz</c> or <c>.zst</c>/<c>.zstd</c>.</summary>
    public static Stream Decompress(Stream stream, string path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".gzip", StringComparison.OrdinalIgnoreCase))
        {
            return new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress, leaveOpen: false);
        }

        if (path.EndsWith(".zst", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".zstd", StringComparison.OrdinalIgnoreCase))
        {
            return new ZstdSharp.DecompressionStream(stream, leaveOpen: false);
        }

        return stream;
    }
}
