using System.CommandLine;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Plugins;
using Ingest.Engine.Running;
using Ingest.Engine.State;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging;

namespace Ingest.Host.Cli;

/// <summary><c>ingest run &lt;pipeline.yaml&gt; [--once] [--lake PATH] [--plugins DIR]... [--data DIR] [--role source|sink|all]</c>.</summary>
internal static class RunCommand
{
    /// <summary>The shared <c>--plugins</c> option.</summary>
    public static Option<string[]> PluginsOption() => new("--plugins")
    {
        HelpName = "DIR",
        Description = "A folder of connector plugins (repeatable; default: the build's artifacts/plugins or $INGEST_PLUGINS).",
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>Loads the plugins from the given folders, or the defaults.</summary>
    public static PluginHost LoadPlugins(string[]? dirs, ILogger logger) =>
        PluginHost.Load(dirs is { Length: > 0 } ? dirs : PluginHost.DefaultDirectories(), logger);

    public static RootCommand AddRunCommand(this RootCommand root, CliContext context)
    {
        var pipeline = new Argument<string>("pipeline") { Description = "The pipeline file (YAML)." };
        var once = new Option<bool>("--once") { Description = "Stop when every connection caught up and committed." };
        var lake = new Option<string?>("--lake") { HelpName = "PATH", Description = "The lake folder (overrides the file's 'lake')." };
        var data = new Option<string?>("--data") { HelpName = "DIR", Description = "The state folder (default: .ingest next to the pipeline file, or $INGEST_DATA)." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log every commit." };
        var role = new Option<RunRole>("--role")
        {
            HelpName = "source|sink|all",
            Description = "On the kafka transport: run only the sources (producing), only the sinks (consuming), or both (default).",
            DefaultValueFactory = _ => RunRole.All,
        };
        var plugins = PluginsOption();
        var run = new Command("run", "Run a pipeline's connections into the lake.") { pipeline, once, lake, data, plugins, verbose, role };
        run.SetAction((parse, ct) => RunAsync(context, new RunArguments(
            parse.GetValue(pipeline)!, parse.GetValue(once), parse.GetValue(lake), parse.GetValue(data), parse.GetValue(plugins), parse.GetValue(verbose), parse.GetValue(role)), ct));
        root.Subcommands.Add(run);
        return root;
    }

    private sealed record RunArguments(string Pipeline, bool Once, string? Lake, string? Data, string[]? Plugins, bool Verbose, RunRole Role);

    private static async Task<int> RunAsync(CliContext context, RunArguments args, CancellationToken commandToken)
    {
        using var linked = context.Link(commandToken);
        var stop = linked.Token;
        // On a terminal the live view shows progress; the log then only carries warnings and errors.
        var level = args.Verbose ? LogLevel.Debug : context.Interactive ? LogLevel.Warning : LogLevel.Information;
        using var loggerFactory = context.CreateLoggerFactory(level);
        var logger = loggerFactory.CreateLogger("Ingest.Host");
        using var plugins = LoadPlugins(args.Plugins, loggerFactory.CreateLogger("Ingest.Plugins"));
        foreach (var f in plugins.Failures)
        {
            logger.LogWarning("Plugin in {Directory} not loaded: {Reason}", f.Directory, f.Reason);
        }

        BoundPipeline bound;
        try
        {
            var definition = PipelineFile.Load(args.Pipeline, args.Lake);
            var connectors = plugins.Plugins.ToDictionary(p => p.Name, p => p.Connector, StringComparer.Ordinal);
            bound = await PipelineBinder.BindAsync(definition, connectors, stop);
        }
        catch (PipelineException e)
        {
            foreach (var error in e.Errors)
            {
                await context.Error.WriteLineAsync(error.ToString());
            }

            return ExitCodes.InvalidInput;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }

        await using var store = await StateStore.OpenAsync(StateStore.DefaultPath(args.Pipeline, args.Data), CancellationToken.None);
        var status = new RunStatus();
        foreach (var c in bound.Connections)
        {
            var cs = status.Connection(c.Name);
            foreach (var t in c.Targets)
            {
                cs.Stream(t.Stream.Name);
            }
        }

        var options = new RunOptions { Once = args.Once, Role = args.Role };
        var runTask = PipelineRunner.RunAsync(bound, options, store, loggerFactory, status, stop);
        if (context.Interactive)
        {
            await ProgressView.ShowAsync(context.Out, status, runTask);
        }

        var result = await runTask;
        foreach (var c in result.Connections.Where(c => c.State == ConnectionState.Failed))
        {
            await context.Error.WriteLineAsync($"ingest: connection '{c.Name}' failed: {c.Error}");
        }

        return result.Succeeded ? ExitCodes.Ok : ExitCodes.Failure;
    }

    /// <summary>The connectors by name, for binding.</summary>
    public static IReadOnlyDictionary<string, ISourceConnector> Connectors(PluginHost host) =>
        host.Plugins.ToDictionary(p => p.Name, p => p.Connector, StringComparer.Ordinal);
}
