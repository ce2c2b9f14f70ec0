using System.CommandLine;
using Ingest.Host.Web;

namespace Ingest.Host.Cli;

/// <summary><c>ingest serve [--urls URLS] [--data DIR] [--role web|worker|all] [--plugins DIR]...</c> (also what <c>ingest</c> alone does).</summary>
internal static class ServeCommand
{
    public static RootCommand AddServeCommand(this RootCommand root, CliContext context)
    {
        var urls = new Option<string>("--urls") { HelpName = "URLS", Description = $"Where to listen (default {ServeOptions.DefaultUrls}; several separated by ';').", DefaultValueFactory = _ => ServeOptions.DefaultUrls };
        var data = new Option<string?>("--data") { HelpName = "DIR", Description = "The data folder: config store, keys, state and the local lake (default ./.ingest-data, or $INGEST_DATA)." };
        var role = new Option<NodeRole>("--role") { Description = "What this node runs: web (UI and API), worker (connections) or all.", DefaultValueFactory = _ => NodeRole.All };
        var bus = new Option<string?>("--bus") { HelpName = "URI", Description = "The control plane's broker, rabbitmq://user:password@host:port/vhost, shared by web and worker nodes (default: in-process; configuration Bus:RabbitMq:Host/Port/VirtualHost/Username/Password works too)." };
        var noSample = new Option<bool>("--no-sample") { Description = "Do not create the sample connection on first start." };
        var configStore = new Option<string?>("--config-store") { HelpName = "URI", Description = "The config store: postgresql://user:password@host:port/database for nodes on several machines (default: SQLite in the data folder; or $INGEST_CONFIG_STORE)." };
        var plugins = RunCommand.PluginsOption();
        var serve = new Command("serve", "Serve the web UI and REST API and run connections (the default).") { urls, data, role, plugins, bus, noSample, configStore };
        serve.SetAction(async (parse, ct) =>
        {
            using var linked = context.Link(ct);
            RabbitMqSettings? rabbitMq;
            string? postgres;
            try
            {
                rabbitMq = parse.GetValue(bus) is { Length: > 0 } b ? RabbitMqSettings.Parse(b, "--bus") : null;
                var store = parse.GetValue(configStore) is { Length: > 0 } cs ? cs : Environment.GetEnvironmentVariable("INGEST_CONFIG_STORE");
                postgres = store is { Length: > 0 } ? Config.PostgresConfigStore.ConnectionString(store, "--config-store") : null;
            }
            catch (FormatException e)
            {
                await context.Error.WriteLineAsync("ingest: " + e.Message);
                return ExitCodes.InvalidInput;
            }

            var options = new ServeOptions(
                parse.GetValue(urls)!,
                parse.GetValue(data) is { Length: > 0 } d ? Path.GetFullPath(d) : ServeOptions.DefaultDataPath(),
                parse.GetValue(role),
                parse.GetValue(plugins) ?? [],
                Environment.GetEnvironmentVariable("INGEST_ADMIN_PASSWORD"),
                Environment.GetEnvironmentVariable("INGEST_ADMIN_USER") is { Length: > 0 } u ? u : "admin",
                !parse.GetValue(noSample))
            {
                RabbitMq = rabbitMq,
                PostgresConfigStore = postgres,
            };
            return await IngestServer.RunAsync(options, context, linked.Token);
        });
        root.Subcommands.Add(serve);
        return root;
    }
}
