namespace Ingest.Delta.Storage;

/// <summary>
/// File access for one table root. Paths are relative to the root with '/' separators.
/// The commit primitive is <see cref="PutIfAbsentAsync"/> (Delta PROTOCOL.md, "Requirements for Writers": atomic, mutually exclusive log entry creation).
/// </summary>
internal interface ILogStore
{
    /// <summary>The table root as a displayable location.</summary>
    string Root { get; }

    /// <summary>Writes <paramref name="content"/> only when <paramref name="path"/> does not exist; false when it does.</summary>
    Task<bool> PutIfAbsentAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>Writes or replaces a file (e.g. <c>_last_checkpoint</c>).</summary>
    Task OverwriteAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>The file's bytes, or null when it does not exist.</summary>
    Task<byte[]?> ReadAsync(string path, CancellationToken cancellationToken);

    /// <summary><paramref name="length"/> bytes from <paramref name="offset"/> (deletion vectors); null when the file does not exist.</summary>
    /// <exception cref="EndOfStreamException">The file is shorter.</exception>
    Task<byte[]?> ReadRangeAsync(string path, long offset, int length, CancellationToken cancellationToken);

    /// <summary>Files directly under the folder of <paramref name="prefix"/> whose relative path starts with it (e.g. <c>_delta_log/</c>).</summary>
    Task<IReadOnlyList<StoredFile>> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Every file under the root, in all folders, with paths relative to the root (VACUUM).</summary>
    Task<IReadOnlyList<StoredFile>> ListAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Starts a new file (data files): write its <see cref="INewFile.Stream"/>, close it, then <see cref="INewFile.CompleteAsync"/>
    /// publishes it. Disposing an incomplete one leaves nothing behind in an object store (a local file stays until deleted).
    /// </summary>
    INewFile CreateFile(string path);

    /// <summary>A local file with the content of <paramref name="path"/> for readers that open files by path (ParquetSharp).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    Task<LocalFile> OpenLocalAsync(string path, CancellationToken cancellationToken);

    /// <summary>The file's length and modification time, or null when missing.</summary>
    Task<StoredFile?> StatAsync(string path, CancellationToken cancellationToken);

    /// <summary>Deletes a file if it exists.</summary>
    Task DeleteAsync(string path, CancellationToken cancellationToken);

    /// <summary>Removes empty folders outside hidden ones (<c>_</c> or <c>.</c> prefixes) after VACUUM; the count removed. Object stores have none.</summary>
    Task<int> RemoveEmptyFoldersAsync(CancellationToken cancellationToken);
}

/// <summary>A file in the store.</summary>
internal sealed record StoredFile(string Path, long Size, DateTimeOffset LastModified);

/// <summary>A file being written: <see cref="Stream"/> receives the bytes; <see cref="CompleteAsync"/> publishes them.</summary>
internal interface INewFile : IDisposable
{
    /// <summary>The table-relative path.</summary>
    string Path { get; }

    /// <summary>Where the bytes go; the writer closes it before <see cref="CompleteAsync"/>.</summary>
    Stream Stream { get; }

    /// <summary>Makes the file visible under <see cref="Path"/>; returns its length.</summary>
    Task<long> CompleteAsync(CancellationToken cancellationToken);
}

/// <summary>A readable local copy of a stored file; disposing deletes it when it was a temporary download.</summary>
internal sealed class LocalFile : IDisposable
{
    private readonly bool _temporary;

    public LocalFile(string path, bool temporary)
    {
        FullPath = path;
        _temporary = temporary;
    }

    public string FullPath { get; }

    public void Dispose()
    {
        if (_temporary)
        {
            try
            {
                File.Delete(FullPath);
            }
            catch (IOException)
            {
                // A leftover temporary download is harmless.
            }
        }
    }
}
