using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Ingest.Host.Cli;

/// <summary>Where a command writes, and how it logs; tests give their own writers.</summary>
/// <param name="Out">Standard output (data, progress).</param>
/// <param name="Error">Standard error (errors).</param>
/// <param name="Interactive">Whether the output is a terminal (live progress redrawn in place).</param>
/// <param name="LoggerFactory">Creates the logger factory for a verbosity; null = console logging.</param>
internal sealed record CliContext(TextWriter Out, TextWriter Error, bool Interactive, Func<LogLevel, ILoggerFactory>? LoggerFactory = null)
{
    /// <summary>Fires on Ctrl+C or SIGTERM (or when a test wants the command to stop).</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>A token that fires when either the command line's token or <see cref="Stop"/> fires.</summary>
    public CancellationTokenSource Link(CancellationToken commandToken) => CancellationTokenSource.CreateLinkedTokenSource(commandToken, Stop);

    /// <summary>The process's console.</summary>
    public static CliContext FromConsole() => new(Console.Out, Console.Error, !Console.IsOutputRedirected);

    /// <summary>A logger factory: plain one-line console logs with timestamps, errors to standard error.</summary>
    public ILoggerFactory CreateLoggerFactory(LogLevel minimum) =>
        LoggerFactory?.Invoke(minimum) ?? Microsoft.Extensions.Logging.LoggerFactory.Create(b => b
            .SetMinimumLevel(minimum)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
                o.ColorBehavior = Interactive ? LoggerColorBehavior.Default : LoggerColorBehavior.Disabled;
            })
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Error));
}

/// <summary>Exit codes of the <c>ingest</c> executable.</summary>
internal static class ExitCodes
{
    /// <summary>Everything worked.</summary>
    public const int Ok = 0;

    /// <summary>Something failed while running.</summary>
    public const int Failure = 1;

    /// <summary>The input (arguments, pipeline file, configuration) is invalid.</summary>
    public const int InvalidInput = 2;
}
