using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>One version of a file in a store.</summary>
/// <param name="Path">Relative to the connection's root, <c>/</c>-separated.</param>
/// <param name="Size">Bytes.</param>
/// <param name="Modified">Last modification time.</param>
/// <param name="Tag">The store's version tag (S3 ETag, Dropbox rev, a content hash), or null where the store has none (size and time then identify the version).</param>
public sealed record FileEntry(string Path, long Size, DateTimeOffset Modified, string? Tag = null)
{
    /// <summary>Whether <paramref name="other"/> is the same version of the same file.</summary>
    public bool SameVersion(FileEntry other) =>
        other is not null && Path == other.Path && Size == other.Size && Modified == other.Modified && Tag == other.Tag;
}

/// <summary>What a file-store connector supplies: listing and opening. Everything else is shared.</summary>
public interface IFileStore
{
    /// <summary>Every file under the root whose path starts with <paramref name="prefix"/> (relative, may be empty).</summary>
    IAsyncEnumerable<FileEntry> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Opens a file's bytes (compressed as stored). Throws <see cref="FileNotFoundException"/> when it is gone.</summary>
    Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken);
}

/// <summary>
/// A store that lists by changes (a Dropbox cursor): the reader calls <see cref="RefreshAsync"/> once per pass,
/// and <see cref="IFileStore.ListAsync"/> then returns the store's current view without calling out. The store's state
/// (its cursor) travels in the checkpoint, saved only after a pass whose files are all done, so a restart
/// that continues from it misses nothing.
/// </summary>
public interface IChangeListingStore : IFileStore
{
    /// <summary>
    /// Brings the view up to date by one page of changes (the first call starts a full listing, or continues from a
    /// restored state). Returns true while more pages are waiting: the reader reads the files the view gained and
    /// checkpoints the state after each page, so a large listing advances the checkpoint before it ends.
    /// </summary>
    Task<bool> RefreshAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Every file under the root whose path starts with <paramref name="prefix"/>, from a fresh full listing that
    /// leaves the view and the saved state alone (a backfill needs every file, while the view holds only changes).
    /// </summary>
    IAsyncEnumerable<FileEntry> ListAllAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>The state to resume listing from (after the last refresh).</summary>
    JsonNode? SaveState();

    /// <summary>Resumes from a saved state: the view then starts empty and holds only what changed since.</summary>
    void RestoreState(JsonElement state);

    /// <summary>
    /// The files deleted since the last call, each as its last version (which <see cref="IFileStore.OpenAsync"/> can
    /// still read), so their rows can be deleted by key. Files whose last version cannot be found are left out.
    /// </summary>
    Task<IReadOnlyList<FileEntry>> TakeDeletionsAsync(CancellationToken cancellationToken);
}

/// <summary>The metadata columns every file table carries after its data columns.</summary>
public static class FileColumns
{
    /// <summary>
    /// Values that fit no column, as a JSON object <c>{"column": "raw text"}</c>; null when none. The engine's sink takes
    /// a stream's own <c>_rescued_data</c> as the table's rescued-data column and merges its schema-policy rescues into it.
    /// </summary>
    public const string RescuedData = "_rescued_data";

    /// <summary>The file's path relative to the root.</summary>
    public const string File = "_file";

    /// <summary>The file's modification time.</summary>
    public const string FileModified = "_file_modified";

    /// <summary>The line (CSV, JSON lines; 1-based, the header counts) or row number (Parquet; 1-based) in the file.</summary>
    public const string Line = "_line";

    /// <summary>All metadata column names.</summary>
    public static IReadOnlyList<string> MetadataNames { get; } = [RescuedData, File, FileModified, Line];

    /// <summary>Whether <paramref name="name"/> is a metadata column.</summary>
    public static bool IsMetadata(string name) => MetadataNames.Contains(name, StringComparer.OrdinalIgnoreCase);

    /// <summary>The stream schema: data columns, then the metadata columns.</summary>
    public static StreamSchema Schema(IReadOnlyList<Field> data) =>
        new([
            .. data,
            new Field(RescuedData, DataType.String),
            new Field(File, DataType.String, false),
            new Field(FileModified, DataType.Timestamp, false),
            new Field(Line, DataType.Int64, false),
        ]);

    /// <summary>The data columns of a stream schema (metadata columns removed).</summary>
    public static IReadOnlyList<Field> Data(StreamSchema schema) => schema.Columns.Where(c => !IsMetadata(c.Name)).ToList();

    /// <summary>The dead-letter stream's schema: where a line that could not be parsed goes.</summary>
    public static StreamSchema DeadLetterSchema { get; } = new([
        new Field(File, DataType.String, false),
        new Field(Line, DataType.Int64, false),
        new Field("raw", DataType.String),
        new Field("error", DataType.String, false),
    ]);

    /// <summary>The position of a row: (file ordinal, line).</summary>
    public static SourcePosition Position(long fileOrdinal, long line) => new((ulong)fileOrdinal, (ulong)line);
}
