using System.Text;

namespace Ingest.Testing;

/// <summary>A temporary folder under <see cref="System.IO.Path.GetTempPath"/>, removed at the end.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>Creates the folder; its name starts with <paramref name="prefix"/>.</summary>
    public TempDir(string prefix = "ingest-tests-")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <summary>A path inside the folder.</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Writes a file (folders created) with a modification time <paramref name="secondsAgo"/> before now, so reading order is known.</summary>
    public string Write(string relative, string text, int secondsAgo = 0, Encoding? encoding = null) =>
        WriteBytes(relative, (encoding ?? new UTF8Encoding(false)).GetBytes(text), secondsAgo);

    /// <summary>Writes a file of bytes (folders created) like <see cref="Write"/>, and returns its path.</summary>
    public string WriteBytes(string relative, byte[] bytes, int secondsAgo = 0)
    {
        ArgumentNullException.ThrowIfNull(relative);
        var p = Combine(relative.Split('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        File.SetLastWriteTimeUtc(p, DateTime.UtcNow.AddSeconds(-secondsAgo - 1));
        return p;
    }

    /// <summary>Removes the folder (a folder still in use is left behind).</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
