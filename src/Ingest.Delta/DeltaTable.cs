using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;

namespace Ingest.Delta;

// API CONTRACT (first version). The engine codes against exactly these signatures.
// Bodies are filled in by the Delta work; signatures change only together with the engine.

/// <summary>A Delta table at a path (a local folder for now; S3 in the Delta issue).</summary>
public sealed class DeltaTable
{
    private DeltaTable(string path) => Path = path;

    /// <summary>The table's root.</summary>
    public string Path { get; }

    /// <summary>The snapshot read last (refreshed by every commit of this instance and by <see cref="RefreshAsync"/>).</summary>
    public DeltaSnapshot Snapshot => throw new NotImplementedException();

    /// <summary>Opens an existing table at its latest version; null when <paramref name="path"/> holds no table.</summary>
    public static Task<DeltaTable?> TryOpenAsync(string path, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Opens the table, or creates it (version 0: protocol 1/2 + metaData) with this schema.</summary>
    public static Task<DeltaTable> OpenOrCreateAsync(string path, StreamSchema schema, IReadOnlyList<string> partitionColumns, IReadOnlyDictionary<string, string>? configuration, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Re-reads the log to its latest version.</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>The snapshot at <paramref name="version"/> (time travel).</summary>
    public Task<DeltaSnapshot> GetSnapshotAsync(long version, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Appends the rows (each batch has the table's schema) in one commit.</summary>
    public Task<CommitResult> AppendAsync(IReadOnlyList<RecordBatch> batches, CommitOptions options, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Copy-on-write merge by key; rewrites only files whose key stats may hold a changed key. One commit.</summary>
    public Task<CommitResult> MergeAsync(MergeRequest request, CommitOptions options, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Removes every row (a TRUNCATE at the source) in one commit.</summary>
    public Task<CommitResult> DeleteAllAsync(CommitOptions options, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>A commit holding only actions such as <c>txn</c> and commitInfo, no data (records progress of an idle stream).</summary>
    public Task<CommitResult> CommitEmptyAsync(CommitOptions options, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Every row of a snapshot, as Arrow batches with the table's schema (deletion vectors and partitions applied).</summary>
    public IAsyncEnumerable<RecordBatch> ScanAsync(DeltaSnapshot snapshot, CancellationToken cancellationToken) => throw new NotImplementedException();

    /// <summary>Commit history, newest first: version, timestamp, operation, parameters, metrics, and the whole commitInfo.</summary>
    public Task<IReadOnlyList<CommitHistoryEntry>> HistoryAsync(int? limit, CancellationToken cancellationToken) => throw new NotImplementedException();
}

/// <summary>A table at one version.</summary>
public sealed class DeltaSnapshot
{
    /// <summary>The version.</summary>
    public long Version { get; init; }

    /// <summary>The table's schema (from metaData.schemaString).</summary>
    public required StreamSchema Schema { get; init; }

    /// <summary>Partition columns.</summary>
    public required IReadOnlyList<string> PartitionColumns { get; init; }

    /// <summary>metaData.configuration.</summary>
    public required IReadOnlyDictionary<string, string> Configuration { get; init; }

    /// <summary>Live data files.</summary>
    public required IReadOnlyList<AddFile> Files { get; init; }

    /// <summary>The latest <c>txn</c> version per appId.</summary>
    public required IReadOnlyDictionary<string, long> TxnVersions { get; init; }

    /// <summary>Total rows (sum of numRecords; null when a file lacks stats).</summary>
    public long? RowCount { get; init; }
}

/// <summary>An <c>add</c> action as the snapshot holds it.</summary>
public sealed record AddFile(string Path, IReadOnlyDictionary<string, string?> PartitionValues, long Size, long ModificationTime, bool DataChange, string? Stats);

/// <summary>What goes into a commit beside the data.</summary>
/// <param name="Operation">commitInfo.operation, Spark's spelling: WRITE, MERGE, DELETE, ...</param>
/// <param name="OperationParameters">commitInfo.operationParameters.</param>
/// <param name="Txns">txn actions (appId, version) to commit atomically with the data.</param>
/// <param name="AppMetadata">Extra fields merged into commitInfo (e.g. the engine's checkpoint under "ingest").</param>
public sealed record CommitOptions(
    string Operation,
    IReadOnlyDictionary<string, string>? OperationParameters = null,
    IReadOnlyList<TxnAction>? Txns = null,
    JsonObject? AppMetadata = null);

/// <summary>A <c>txn</c> action.</summary>
public sealed record TxnAction(string AppId, long Version);

/// <summary>The outcome of a commit.</summary>
/// <param name="Version">The version committed.</param>
/// <param name="FilesAdded">Data files added.</param>
/// <param name="FilesRemoved">Data files removed.</param>
/// <param name="RowsWritten">Rows in the files added.</param>
public sealed record CommitResult(long Version, int FilesAdded, int FilesRemoved, long RowsWritten);

/// <summary>
/// Rows to merge by key. <see cref="Rows"/> has the table's schema and at most one row per key;
/// <see cref="IsDelete"/>[i] says row i deletes its key (only key columns need values) instead of upserting it.
/// When <see cref="VersionColumn"/> is set, a row changes an existing row only if its value in that column
/// is greater (ordinal string order, or numeric) than the existing row's: replays are harmless.
/// </summary>
public sealed record MergeRequest(RecordBatch Rows, bool[] IsDelete, IReadOnlyList<string> KeyColumns, string? VersionColumn);

/// <summary>One commit in the history.</summary>
public sealed record CommitHistoryEntry(long Version, DateTimeOffset? Timestamp, string? Operation, JsonObject? OperationParameters, JsonObject? OperationMetrics, JsonObject CommitInfo);
