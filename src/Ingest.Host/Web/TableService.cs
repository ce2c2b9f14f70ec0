using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Delta;
using Ingest.Sdk.Records;

namespace Ingest.Host.Web;

/// <summary>A table in the lake.</summary>
/// <param name="Name"><c>&lt;connection&gt;/&lt;stream&gt;</c>, its path under the lake.</param>
/// <param name="Path">Its folder.</param>
/// <param name="Version">Its newest version.</param>
/// <param name="Files">Live data files.</param>
/// <param name="Rows">Rows, where the files' stats tell.</param>
/// <param name="SizeBytes">Bytes in live data files.</param>
public sealed record TableView(string Name, string Path, long Version, int Files, long? Rows, long SizeBytes);

/// <summary>A column of a table.</summary>
public sealed record ColumnView(string Name, string Type, bool Nullable);

/// <summary>A commit of a table.</summary>
public sealed record CommitView(long Version, DateTimeOffset? Timestamp, string? Operation, JsonObject? OperationParameters, JsonObject? OperationMetrics);

/// <summary>A table's schema and history.</summary>
public sealed record TableDetail(TableView Table, IReadOnlyList<ColumnView> Columns, IReadOnlyList<string> PartitionColumns, IReadOnlyList<CommitView> History);

/// <summary>The first rows of a table.</summary>
/// <param name="Version">The version read.</param>
/// <param name="Columns">Column names in order.</param>
/// <param name="Rows">Each row as a JSON object.</param>
public sealed record TablePreview(long Version, IReadOnlyList<string> Columns, IReadOnlyList<JsonObject> Rows);

/// <summary>The Delta tables of the host's lake (<c>&lt;lake&gt;/&lt;connection&gt;/&lt;stream&gt;</c>).</summary>
internal sealed class TableService(ServeOptions options)
{
    /// <summary>The tables, by name.</summary>
    public async Task<IReadOnlyList<TableView>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<TableView>();
        if (!Directory.Exists(options.LakePath))
        {
            return result;
        }

        foreach (var connection in Directory.EnumerateDirectories(options.LakePath).Order(StringComparer.Ordinal))
        {
            foreach (var dir in Directory.EnumerateDirectories(connection).Order(StringComparer.Ordinal))
            {
                if (Directory.Exists(System.IO.Path.Combine(dir, "_delta_log"))
                    && await DeltaTable.TryOpenAsync(dir, cancellationToken) is { } t)
                {
                    result.Add(View(NameOf(dir), t));
                }
            }
        }

        return result;
    }

    /// <summary>A table's schema and newest commits, or null when there is no such table.</summary>
    public async Task<TableDetail?> GetAsync(string name, int historyLimit, CancellationToken cancellationToken)
    {
        if (await OpenAsync(name, cancellationToken) is not { } t)
        {
            return null;
        }

        var history = await t.HistoryAsync(historyLimit, cancellationToken);
        return new TableDetail(
            View(name, t),
            t.Snapshot.Schema.Columns.Select(c => new ColumnView(c.Name, c.Type.DisplayName, c.Nullable)).ToList(),
            t.Snapshot.PartitionColumns,
            history.Select(h => new CommitView(h.Version, h.Timestamp, h.Operation, h.OperationParameters, h.OperationMetrics)).ToList());
    }

    /// <summary>Up to <paramref name="limit"/> rows of the newest version, or null when there is no such table.</summary>
    public async Task<TablePreview?> PreviewAsync(string name, int limit, CancellationToken cancellationToken)
    {
        if (await OpenAsync(name, cancellationToken) is not { } t)
        {
            return null;
        }

        var rows = new List<JsonObject>();
        var buffer = new ArrayBufferWriter<byte>();
        await using var writer = new Utf8JsonWriter(buffer);
        await foreach (var batch in t.ScanAsync(t.Snapshot, cancellationToken))
        {
            using (batch)
            {
                for (var row = 0; row < batch.Length && rows.Count < limit; row++)
                {
                    buffer.ResetWrittenCount();
                    writer.Reset(buffer);
                    ArrowValues.WriteRowJson(writer, batch, row);
                    await writer.FlushAsync(cancellationToken);
                    rows.Add((JsonObject)JsonNode.Parse(buffer.WrittenSpan)!);
                }
            }

            if (rows.Count >= limit)
            {
                break;
            }
        }

        return new TablePreview(t.Snapshot.Version, t.Snapshot.Schema.Columns.Select(c => c.Name).ToList(), rows);
    }

    private async Task<DeltaTable?> OpenAsync(string name, CancellationToken cancellationToken)
    {
        // Only <connection>/<stream> under the lake: a name never reaches outside it.
        var parts = name.Split('/');
        if (parts.Length != 2 || parts.Any(p => p.Length == 0 || p is "." or ".." || p.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0))
        {
            return null;
        }

        var dir = System.IO.Path.Combine(options.LakePath, parts[0], parts[1]);
        return Directory.Exists(System.IO.Path.Combine(dir, "_delta_log")) ? await DeltaTable.TryOpenAsync(dir, cancellationToken) : null;
    }

    private string NameOf(string dir) => System.IO.Path.GetRelativePath(options.LakePath, dir).Replace('\\', '/');

    private static TableView View(string name, DeltaTable t)
    {
        var s = t.Snapshot;
        return new TableView(name, t.Path, s.Version, s.Files.Count, s.RowCount, s.Files.Sum(f => f.Size));
    }
}
