using System.Runtime.InteropServices;

namespace Ingest.Delta.Storage;

/// <summary>A table on the local file system. Put-if-absent is an exclusive create (<see cref="FileMode.CreateNew"/>).</summary>
internal sealed class LocalLogStore : ILogStore
{
    public LocalLogStore(string root) => Root = System.IO.Path.GetFullPath(root);

    public string Root { get; }

    public string LocalPath(string path) => System.IO.Path.Combine(Root, path.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <remarks>
    /// The content is written to a temporary file first and then published under its final name with link(2), which
    /// fails when the name exists: the commit appears whole or not at all, and a crash mid-write leaves no empty
    /// commit behind (an exclusive create of the final name would). Without link(2) (Windows), an exclusive
    /// create (<see cref="FileMode.CreateNew"/>) is the fallback.
    /// </remarks>
    public async Task<bool> PutIfAbsentAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var full = LocalPath(path);
        var folder = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        if (OperatingSystem.IsWindows())
        {
            return await CreateNewAsync(full, content, cancellationToken).ConfigureAwait(false);
        }

        var temp = System.IO.Path.Combine(folder, "." + System.IO.Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        await CreateNewAsync(temp, content, cancellationToken).ConfigureAwait(false);
        try
        {
            if (NativeMethods.Link(temp, full) == 0)
            {
                return true;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EEXIST)
            {
                return false;
            }

            throw new IOException($"Cannot publish commit '{full}' (link failed with errno {errno}).");
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private const int EEXIST = 17;

    private static async Task<bool> CreateNewAsync(string full, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None);
        }
        catch (IOException) when (File.Exists(full))
        {
            return false;
        }

        await using (stream.ConfigureAwait(false))
        {
            await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }

        return true;
    }

    public async Task OverwriteAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var full = LocalPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        // Write aside, then rename over: readers never see a half-written file.
        var temp = full + "." + Guid.NewGuid().ToString("N") + ".tmp";
        await File.WriteAllBytesAsync(temp, content.ToArray(), cancellationToken).ConfigureAwait(false);
        File.Move(temp, full, overwrite: true);
    }

    public async Task<byte[]?> ReadAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllBytesAsync(LocalPath(path), cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    public Task<IReadOnlyList<StoredFile>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var slash = prefix.LastIndexOf('/');
        var folder = slash < 0 ? "" : prefix[..slash];
        var dir = folder.Length == 0 ? Root : LocalPath(folder);
        var result = new List<StoredFile>();
        if (Directory.Exists(dir))
        {
            foreach (var info in new DirectoryInfo(dir).EnumerateFiles())
            {
                var rel = folder.Length == 0 ? info.Name : folder + "/" + info.Name;
                if (rel.StartsWith(prefix, StringComparison.Ordinal) && Stat(info) is { } file)
                {
                    result.Add(file with { Path = rel });
                }
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return Task.FromResult<IReadOnlyList<StoredFile>>(result);
    }

    public Task<IReadOnlyList<StoredFile>> ListAllAsync(CancellationToken cancellationToken)
    {
        var result = new List<StoredFile>();
        if (Directory.Exists(Root))
        {
            foreach (var info in new DirectoryInfo(Root).EnumerateFiles("*", SearchOption.AllDirectories))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rel = System.IO.Path.GetRelativePath(Root, info.FullName).Replace(System.IO.Path.DirectorySeparatorChar, '/');
                if (Stat(info) is { } file)
                {
                    result.Add(file with { Path = rel });
                }
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return Task.FromResult<IReadOnlyList<StoredFile>>(result);
    }

    /// <summary>
    /// Size and time of a listed file, or null when it vanished between the listing and the stat (another process
    /// renamed its temporary commit file into place, or VACUUM deleted it): a concurrent reader must not fail on that.
    /// </summary>
    internal static StoredFile? Stat(FileInfo info)
    {
        try
        {
            return new StoredFile(info.Name, info.Length, info.LastWriteTimeUtc);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public INewFile CreateFile(string path)
    {
        var full = LocalPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        return new LocalNewFile(path, full, new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16));
    }

    public Task<LocalFile> OpenLocalAsync(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var full = LocalPath(path);
        return File.Exists(full) ? Task.FromResult(new LocalFile(full, temporary: false)) : throw new FileNotFoundException($"File '{path}' of table '{Root}' does not exist.", full);
    }

    public async Task<byte[]?> ReadRangeAsync(string path, long offset, int length, CancellationToken cancellationToken)
    {
        var full = LocalPath(path);
        if (!File.Exists(full))
        {
            return null;
        }

        var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
        await using (stream.ConfigureAwait(false))
        {
            stream.Seek(offset, SeekOrigin.Begin);
            var buffer = new byte[length];
            await stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer;
        }
    }

    public Task<StoredFile?> StatAsync(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var info = new FileInfo(LocalPath(path));
        return Task.FromResult(info.Exists ? new StoredFile(path, info.Length, info.LastWriteTimeUtc) : null);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        File.Delete(LocalPath(path));
        return Task.CompletedTask;
    }

    public Task<int> RemoveEmptyFoldersAsync(CancellationToken cancellationToken)
    {
        var removed = 0;
        if (!Directory.Exists(Root))
        {
            return Task.FromResult(0);
        }

        foreach (var dir in Directory.EnumerateDirectories(Root, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).ToList())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (System.IO.Path.GetRelativePath(Root, dir).Split(System.IO.Path.DirectorySeparatorChar).Any(s => s.StartsWith('_') || s.StartsWith('.')))
            {
                continue;
            }

            if (!Directory.EnumerateFileSystemEntries(dir).Any())
            {
                Directory.Delete(dir);
                removed++;
            }
        }

        return Task.FromResult(removed);
    }

    /// <summary>A data file written in place: it is final once closed.</summary>
    private sealed class LocalNewFile(string path, string full, FileStream stream) : INewFile
    {
        public string Path { get; } = path;

        public Stream Stream { get; } = stream;

        public Task<long> CompleteAsync(CancellationToken cancellationToken)
        {
            Stream.Dispose();
            return Task.FromResult(new FileInfo(full).Length);
        }

        public void Dispose() => Stream.Dispose();
    }
}

internal static class NativeMethods
{
    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code; one call, no hot path.
    private static extern int link(byte[] oldpath, byte[] newpath);
#pragma warning restore SYSLIB1054

    /// <summary>link(2) with NUL-terminated UTF-8 paths.</summary>
    internal static int Link(string oldPath, string newPath) => link(CString(oldPath), CString(newPath));

    private static byte[] CString(string s) => System.Text.Encoding.UTF8.GetBytes(s + "\0");
}
