using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Ingest.Host.Cli;

/// <summary><c>ingest connectors [--plugins DIR]... [--json]</c>: the loaded plugins and the ones that failed to load.</summary>
internal static class ConnectorsCommand
{
    public static RootCommand AddConnectorsCommand(this RootCommand root, CliContext context)
    {
        var plugins = RunCommand.PluginsOption();
        var json = new Option<bool>("--json") { Description = "One JSON object per plugin." };
        var cmd = new Command("connectors", "List the connector plugins and load failures.") { plugins, json };
        cmd.SetAction(async (parse, ct) =>
        {
            using var loggerFactory = context.CreateLoggerFactory(LogLevel.Warning);
            using var host = RunCommand.LoadPlugins(parse.GetValue(plugins), loggerFactory.CreateLogger("Ingest.Plugins"));
            var asJson = parse.GetValue(json);
            foreach (var p in host.Plugins.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                await context.Out.WriteLineAsync(asJson
                    ? JsonSerializer.Serialize(new { name = p.Name, version = p.Version, sdkVersion = p.SdkVersion.ToString(3), description = p.Description, documentation = p.DocumentationUrl, directory = p.Directory })
                    : $"{p.Name,-16} {p.Version,-12} sdk {p.SdkVersion.ToString(3),-8} {p.Description}{(p.DocumentationUrl.Length > 0 ? "  " + p.DocumentationUrl : "")}");
            }

            foreach (var f in host.Failures)
            {
                await context.Out.WriteLineAsync(asJson
                    ? JsonSerializer.Serialize(new { failed = true, name = f.Name, directory = f.Directory, reason = f.Reason })
                    : $"FAILED {f.Name ?? "?",-9} {f.Directory}: {f.Reason}");
            }

            if (host.Plugins.Count == 0 && host.Failures.Count == 0)
            {
                await context.Error.WriteLineAsync("ingest: no plugins found (pass --plugins DIR or set INGEST_PLUGINS).");
            }

            return ExitCodes.Ok;
        });
        root.Subcommands.Add(cmd);
        return root;
    }
}
