using System.Runtime.InteropServices;
using Ingest.Host.Cli;

// Ctrl+C and SIGTERM stop a run gracefully (commit what a checkpoint covers, acknowledge it); a second one kills it.
using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    if (!stop.IsCancellationRequested)
    {
        Console.Error.WriteLine($"ingest: {context.Signal}: stopping after committing what the last checkpoint covers (again to kill)");
        context.Cancel = true;
        stop.Cancel();
    }
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
return await IngestCli.InvokeAsync(args, CliContext.FromConsole(), stop.Token);
