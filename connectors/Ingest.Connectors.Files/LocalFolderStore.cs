using System.Runtime.CompilerServices;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Files;

/// <summary>
/// A folder as a file store. Names starting with <c>.</c> or <c>_</c> are skipped (files being written
/// under a temporary name, <c>_SUCCESS</c> markers), as Spark does. Size and modification time identify a version.
/// </summary>
internal sealed class LocalFolderStore(string root) : IFileStore
{
    public string Root { get; } = root;

    public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        var slash = prefix.LastIndexOf('/');
        var folder = slash < 0 ? Root : Path.Combine(Root, prefix[..slash]);
        if (!Directory.Exists(folder))
        {
            yield break;
        }

        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
        foreach (var info in new DirectoryInfo(folder).EnumerateFiles("*", options))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var relative = Path.GetRelativePath(Root, info.FullName).Replace(Path.DirectorySeparatorChar, '/');
            if (relative.Split('/').Any(part => part.StartsWith('.') || part.StartsWith('_')) || !relative.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            yield return new FileEntry(relative, info.Length, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero));
        }
    }

    public Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Root, file.Path);
        try
        {
            return Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous));
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException(e.Message, path, e);
        }
    }
}
