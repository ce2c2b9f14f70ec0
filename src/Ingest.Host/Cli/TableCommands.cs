using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Delta;
using Ingest.Sdk.Records;

namespace Ingest.Host.Cli;

/// <summary><c>ingest table scan|history &lt;table-path&gt;</c>.</summary>
internal static class TableCommands
{
    public static RootCommand AddTableCommands(this RootCommand root, CliContext context)
    {
        var table = new Command("table", "Look into a Delta table.");

        var scanPath = new Argument<string>("table-path") { Description = "The table's folder." };
        var version = new Option<long?>("--version") { HelpName = "N", Description = "Read this version (time travel)." };
        var scan = new Command("scan", "Print every row as one JSON object per line.") { scanPath, version };
        scan.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            return await ScanAsync(context, parse.GetValue(scanPath)!, parse.GetValue(version), linked.Token);
        });
        table.Subcommands.Add(scan);

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
        var t = await DeltaTable.TryOpenAsync(Path.GetFullPath(path), ct);
        if (t is null)
        {
            await context.Error.WriteLineAsync($"ingest: no Delta table at {path} (no _delta_log folder with commits)");
        }

        return t;
    }

    private static async Task<int> ScanAsync(CliContext context, string path, long? version, CancellationToken ct)
    {
        var t = await OpenAsync(context, path, ct);
        if (t is null)
        {
            return ExitCodes.InvalidInput;
        }

        DeltaSnapshot snapshot;
        if (version is { } v)
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
        await foreach (var batch in t.ScanAsync(snapshot, ct))
        {
            using (batch)
            {
                for (var row = 0; row < batch.Length; row++)
                {
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
