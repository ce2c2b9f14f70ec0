using System.CommandLine;

namespace Ingest.Host.Cli;

/// <summary>The <c>ingest</c> command line.</summary>
internal static class IngestCli
{
    /// <summary>Builds the root command.</summary>
    public static RootCommand Build(CliContext context) =>
        new RootCommand("Ingest: source connectors to Delta Lake tables, exactly once.")
            .AddRunCommand(context)
            .AddTableCommands(context)
            .AddConnectorsCommand(context)
            .AddServeCommand(context);

    /// <summary>Parses and runs; exit code 2 for invalid arguments.</summary>
    public static async Task<int> InvokeAsync(string[] args, CliContext context, CancellationToken cancellationToken)
    {
        context = context with { Stop = cancellationToken };
        if (args.Length == 0)
        {
            args = ["serve"];
        }

        var root = Build(context);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await context.Error.WriteLineAsync($"ingest: {e.Message}");
            }

            await context.Error.WriteLineAsync("Run 'ingest --help' for usage.");
            return ExitCodes.InvalidInput;
        }

        // The actions read the stop signal from the context: System.CommandLine hands them a token of its own.
        return await parse.InvokeAsync(
            new InvocationConfiguration { Output = context.Out, Error = context.Error, ProcessTerminationTimeout = null },
            cancellationToken);
    }
}
