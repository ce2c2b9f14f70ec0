using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Delta;
using Ingest.Sdk.Records;

namespace Ingest.Host.Cli;

/// <summary><c>ingest table scan|history|describe|properties|optimize|vacuum &lt;table-path&gt;</c>.</summary>
internal static class TableCommands
{
    public static RootCommand AddTableCommands(this RootCommand root, CliContext context)
    {
        var table = new Command("table", "Look into a Delta table.");

        var scanPath = new Argument<string>("table-path") { Description = "The table's folder." };
        var version = new Option<long?>("--version") { HelpName = "N", Description = "Read this version (time travel)." };
        var asOf = new Option<string?>("--as-of") { HelpName = "TIMESTAMP", Description = "Read the version current at this time (ISO 8601, e.g. 2024-05-01T10:00:00Z)." };
        var limit = new Option<long?>("--limit") { HelpName = "N", Description = "Print at most N rows." };
        var scan = new Command("scan", "Print every row as one JSON object per line.") { scanPath, version, asOf, limit };
        scan.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await ScanAsync(context, parse.GetValue(scanPath)!, parse.GetValue(version), parse.GetValue(asOf), parse.GetValue(limit), linked.Token);
        });
        table.Subcommands.Add(scan);

        var describePath = new Argument<string>("table-path") { Description = "The table's folder." };
        var describeJson = new Option<bool>("--json") { Description = "One JSON object." };
        var describe = new Command("describe", "Print the schema, partitioning, protocol and features, files, bytes and rows.") { describePath, describeJson };
        describe.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await DescribeAsync(context, parse.GetValue(describePath)!, parse.GetValue(describeJson), linked.Token);
        });
        table.Subcommands.Add(describe);

        var optimizePath = new Argument<string>("table-path") { Description = "The table's folder." };
        var targetSize = new Option<long?>("--target-size") { HelpName = "BYTES", Description = "Size of the files to write (default: delta.targetFileSize, else 128 MiB)." };
        var optimize = new Command("optimize", "Compact small files into larger ones (OPTIMIZE, no data change).") { optimizePath, targetSize };
        optimize.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await OptimizeAsync(context, parse.GetValue(optimizePath)!, parse.GetValue(targetSize), linked.Token);
        });
        table.Subcommands.Add(optimize);

        var vacuumPath = new Argument<string>("table-path") { Description = "The table's folder." };
        var retain = new Option<double?>("--retain") { HelpName = "HOURS", Description = "Keep files removed less than this long ago (default: delta.deletedFileRetentionDuration, else 168)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the files that would be deleted; delete nothing." };
        var force = new Option<bool>("--force") { Description = "Allow a retention below the table's (only when no reader or writer can be running)." };
        var vacuum = new Command("vacuum", "Delete data files the table no longer references.") { vacuumPath, retain, dryRun, force };
        vacuum.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await VacuumAsync(context, parse.GetValue(vacuumPath)!, parse.GetValue(retain), parse.GetValue(dryRun), parse.GetValue(force), linked.Token);
        });
        table.Subcommands.Add(vacuum);

        var propertiesPath = new Argument<string>("table-path") { Description = "The table's folder." };
        var set = new Option<string[]>("--set") { HelpName = "KEY=VALUE", Description = "Set a table property (repeatable), e.g. delta.enableTypeWidening=true.", AllowMultipleArgumentsPerToken = false };
        var unset = new Option<string[]>("--unset") { HelpName = "KEY", Description = "Remove a table property (repeatable)." };
        var properties = new Command("properties", "Print the table's properties; --set/--unset change them in one commit (SET TBLPROPERTIES).") { propertiesPath, set, unset };
        properties.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await PropertiesAsync(context, parse.GetValue(propertiesPath)!, parse.GetValue(set) ?? [], parse.GetValue(unset) ?? [], linked.Token);
        });
        table.Subcommands.Add(properties);

        var historyPath = new Argument<string>("table-path") { Description = "The table's folder." };
        var json = new Option<bool>("--json") { Description = "One JSON object per version." };
        var history = new Command("history", "Print the table's commits, newest first.") { historyPath, json };
        history.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await HistoryAsync(context, parse.GetValue(historyPath)!, parse.GetValue(json), linked.Token);
        });
        table.Subcommands.Add(history);

        root.Subcommands.Add(table);
        return root;
    }

    private static async Task<DeltaTable?> OpenAsync(CliContext context, string path, CancellationToken ct)
    {
        var t = await DeltaTable.TryOpenAsync(Engine.Pipelines.LakePaths.IsObjectStore(path) ? Engine.Pipelines.LakePaths.Normalize(path) : Path.GetFullPath(path), ct);
        if (t is null)
        {
            await context.Error.WriteLineAsync($"ingest: no Delta table at {path} (no _delta_log folder with commits)");
        }

        return t;
    }

    private static async Task<int> ScanAsync(CliContext context, string path, long? version, string? asOf, long? limit, CancellationToken ct)
    {
        if (version is not null && asOf is not null)
        {
            await context.Error.WriteLineAsync("ingest: give --version or --as-of, not both");
            return ExitCodes.InvalidInput;
        }

        if (limit is < 0)
        {
            await context.Error.WriteLineAsync($"ingest: --limit must be 0 or more, got {limit}");
            return ExitCodes.InvalidInput;
        }

        DateTimeOffset? asOfTime = null;
        if (asOf is not null)
        {
            if (!DateTimeOffset.TryParse(asOf, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsedTime))
            {
                await context.Error.WriteLineAsync($"ingest: --as-of expects a timestamp such as 2024-05-01T10:00:00Z, got '{asOf}'");
                return ExitCodes.InvalidInput;
            }

            asOfTime = parsedTime;
        }

        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        DeltaSnapshot snapshot;
        if (asOfTime is { } when)
        {
            try
            {
                snapshot = await t.GetSnapshotAsOfAsync(when, ct);
            }
            catch (ArgumentOutOfRangeException e)
            {
                await context.Error.WriteLineAsync($"ingest: {e.Message.Split(Environment.NewLine)[0]}");
                return ExitCodes.InvalidInput;
            }
        }
        else if (version is { } v)
        {
            if (v < 0 || v > t.Snapshot.Version)
            {
                await context.Error.WriteLineAsync($"ingest: --version {v} does not exist; the table has versions 0 to {t.Snapshot.Version}");
                return ExitCodes.InvalidInput;
            }

            snapshot = await t.GetSnapshotAsync(v, ct);
        }
        else
        {
            snapshot = t.Snapshot;
        }

        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping: '+' in timestamps and non-ASCII text stay readable (output is not embedded in HTML).
        await using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        long printed = 0;
        await foreach (var batch in t.ScanAsync(snapshot, ct))
        {
            using (batch)
            {
                for (var row = 0; row < batch.Length; row++)
                {
                    if (printed++ >= (limit ?? long.MaxValue))
                    {
                        await context.Out.FlushAsync(ct);
                        return ExitCodes.Ok;
                    }

                    buffer.ResetWrittenCount();
                    writer.Reset(buffer);
                    ArrowValues.WriteRowJson(writer, batch, row);
                    await writer.FlushAsync(ct);
                    await context.Out.WriteLineAsync(Encoding.UTF8.GetString(buffer.WrittenSpan));
                }
            }
        }

        await context.Out.FlushAsync(ct);
        return ExitCodes.Ok;
    }

    private static async Task<int> DescribeAsync(CliContext context, string path, bool json, CancellationToken ct)
    {
        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        var d = t.Describe();
        if (json)
        {
            var o = new JsonObject
            {
                ["path"] = d.Path,
                ["version"] = d.Version,
                ["id"] = d.Id,
                ["name"] = d.Name,
                ["createdTime"] = d.CreatedTime?.ToString("O", CultureInfo.InvariantCulture),
                ["schema"] = d.Schema.ToDeltaJson(),
                ["partitionColumns"] = new JsonArray(d.PartitionColumns.Select(c => (JsonNode)c).ToArray()),
                ["protocol"] = new JsonObject
                {
                    ["minReaderVersion"] = d.MinReaderVersion,
                    ["minWriterVersion"] = d.MinWriterVersion,
                    ["readerFeatures"] = new JsonArray(d.ReaderFeatures.Select(c => (JsonNode)c).ToArray()),
                    ["writerFeatures"] = new JsonArray(d.WriterFeatures.Select(c => (JsonNode)c).ToArray()),
                },
                ["configuration"] = new JsonObject(d.Configuration.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["files"] = d.Files,
                ["bytes"] = d.Bytes,
                ["rows"] = d.Rows,
                ["filesWithDeletionVectors"] = d.FilesWithDeletionVectors,
                ["readable"] = d.ReadRefusal is null,
                ["writable"] = d.WriteRefusal is null,
                ["notWritableBecause"] = d.WriteRefusal,
            };
            await context.Out.WriteLineAsync(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return ExitCodes.Ok;
        }

        var w = context.Out;
        await w.WriteLineAsync($"table      {d.Path}");
        await w.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"version    {d.Version}"));
        await w.WriteLineAsync($"id         {d.Id}");
        await w.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"protocol   reader {d.MinReaderVersion}, writer {d.MinWriterVersion}{(d.ReaderFeatures.Count > 0 ? "; reader features: " + string.Join(", ", d.ReaderFeatures) : "")}{(d.WriterFeatures.Count > 0 ? "; writer features: " + string.Join(", ", d.WriterFeatures) : "")}"));
        await w.WriteLineAsync($"partition  {(d.PartitionColumns.Count == 0 ? "(none)" : string.Join(", ", d.PartitionColumns))}");
        await w.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"files      {d.Files} ({d.Bytes:N0} bytes{(d.FilesWithDeletionVectors > 0 ? $", {d.FilesWithDeletionVectors} with deletion vectors" : "")})"));
        await w.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"rows       {(d.Rows is { } rows ? rows.ToString("N0", CultureInfo.InvariantCulture) : "unknown (a file has no stats)")}"));
        await w.WriteLineAsync($"readable   {(d.ReadRefusal is null ? "yes" : "no: " + d.ReadRefusal)}");
        await w.WriteLineAsync($"writable   {(d.WriteRefusal is null ? "yes" : "no: " + d.WriteRefusal)}");
        foreach (var (k, v) in d.Configuration.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            await w.WriteLineAsync($"property   {k} = {v}");
        }

        await w.WriteLineAsync("columns");
        foreach (var c in d.Schema.Columns)
        {
            await w.WriteLineAsync($"  {c.Name,-24} {c.Type.DisplayName}{(c.Nullable ? "" : " not null")}{(d.PartitionColumns.Contains(c.Name) ? " (partition)" : "")}");
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> OptimizeAsync(CliContext context, string path, long? targetSize, CancellationToken ct)
    {
        if (targetSize is <= 0)
        {
            await context.Error.WriteLineAsync($"ingest: --target-size must be positive, got {targetSize}");
            return ExitCodes.InvalidInput;
        }

        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        try
        {
            var result = await t.OptimizeAsync(targetSize, ct);
            await context.Out.WriteLineAsync(result is null
                ? $"nothing to compact: every partition of {path} has at most one small file"
                : string.Create(CultureInfo.InvariantCulture, $"version {result.Version}: compacted {result.FilesRemoved} files into {result.FilesAdded} ({result.RowsWritten} rows)"));
            return ExitCodes.Ok;
        }
        catch (NotSupportedException e)
        {
            await context.Error.WriteLineAsync($"ingest: {e.Message}");
            return ExitCodes.Failure;
        }
    }

    private static async Task<int> VacuumAsync(CliContext context, string path, double? retainHours, bool dryRun, bool force, CancellationToken ct)
    {
        if (retainHours is < 0)
        {
            await context.Error.WriteLineAsync($"ingest: --retain must be 0 or more hours, got {retainHours}");
            return ExitCodes.InvalidInput;
        }

        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        VacuumResult result;
        try
        {
            result = await t.VacuumAsync(retainHours is { } h ? TimeSpan.FromHours(h) : null, dryRun, force, ct);
        }
        catch (InvalidOperationException e)
        {
            await context.Error.WriteLineAsync($"ingest: {e.Message} (--force)");
            return ExitCodes.InvalidInput;
        }
        catch (NotSupportedException e)
        {
            await context.Error.WriteLineAsync($"ingest: {e.Message}");
            return ExitCodes.Failure;
        }

        foreach (var f in result.Files)
        {
            await context.Out.WriteLineAsync(f);
        }

        await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{(dryRun ? "would delete" : "deleted")} {result.Files.Count} files ({result.Bytes:N0} bytes) older than {result.Retention.TotalHours:0.##} h"));
        return ExitCodes.Ok;
    }

    private static async Task<int> PropertiesAsync(CliContext context, string path, string[] set, string[] unset, CancellationToken ct)
    {
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var s in set)
        {
            var eq = s.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                await context.Error.WriteLineAsync($"ingest: --set expects KEY=VALUE, got '{s}'");
                return ExitCodes.InvalidInput;
            }

            changes[s[..eq].Trim()] = s[(eq + 1)..].Trim();
        }

        foreach (var k in unset)
        {
            changes[k.Trim()] = null;
        }

        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        if (changes.Count > 0)
        {
            try
            {
                var result = await t.SetPropertiesAsync(changes, ct);
                await context.Out.WriteLineAsync(result is null ? "no change" : string.Create(CultureInfo.InvariantCulture, $"version {result.Version}"));
            }
            catch (ArgumentException e)
            {
                await context.Error.WriteLineAsync($"ingest: {e.Message.Split(" (Parameter")[0]}");
                return ExitCodes.InvalidInput;
            }
            catch (NotSupportedException e)
            {
                await context.Error.WriteLineAsync($"ingest: {e.Message}");
                return ExitCodes.Failure;
            }
        }

        foreach (var (k, v) in t.Snapshot.Configuration.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            await context.Out.WriteLineAsync($"{k}={v}");
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> HistoryAsync(CliContext context, string path, bool json, CancellationToken ct)
    {
        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        foreach (var e in await t.HistoryAsync(null, ct))
        {
            if (json)
            {
                var o = new JsonObject
                {
                    ["version"] = e.Version,
                    ["timestamp"] = e.Timestamp?.ToString("O", CultureInfo.InvariantCulture),
                    ["operation"] = e.Operation,
                    ["operationParameters"] = e.OperationParameters?.DeepClone(),
                    ["operationMetrics"] = e.OperationMetrics?.DeepClone(),
                };
                if (e.CommitInfo["ingest"] is { } ingest)
                {
                    o["ingest"] = ingest.DeepClone();
                }

                await context.Out.WriteLineAsync(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
            {
                var metrics = e.OperationMetrics is null ? "" : string.Join(" ", e.OperationMetrics.Select(kv => $"{kv.Key}={kv.Value}"));
                await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"{e.Version,6}  {e.Timestamp?.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture) ?? "-",-23}  {e.Operation ?? "-",-18}  {metrics}"));
            }
        }

        return ExitCodes.Ok;
    }
}
