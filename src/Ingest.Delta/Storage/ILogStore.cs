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

    /// <summary>Files directly under the folder of <paramref name="prefix"/> whose relative path starts with it (e.g. <c>_delta_log/</c>).</summary>
    Task<IReadOnlyList<StoredFile>> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Every file under the root, in all folders, with paths relative to the root (VACUUM).</summary>
    Task<IReadOnlyList<StoredFile>> ListAllAsync(CancellationToken cancellationToken);

    /// <summary>Opens a new file for writing (data files, checkpoints); parent folders are created.</summary>
    Stream CreateForWrite(string path);

    /// <summary>Opens a file for reading.</summary>
    Stream OpenRead(string path);

    /// <summary>A local path for readers that need one (ParquetSharp opens files by path).</summary>
    string LocalPath(string path);

    /// <summary>The file's length and modification time, or null when missing.</summary>
    StoredFile? Stat(string path);

    /// <summary>Deletes a file if it exists.</summary>
    Task DeleteAsync(string path, CancellationToken cancellationToken);
}

/// <summary>A file in the store.</summary>
internal sealed record StoredFile(string Path, long Size, DateTimeOffset LastModified);
