using System.Runtime.CompilerServices;
using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Running;

/// <summary>
/// The engine's restart policy, shared by embedded connections and the Kafka halves: an attempt that fails with a
/// transient error is started again after a doubling delay (<see cref="RunOptions.RetryBaseDelay"/> up to
/// <see cref="RunOptions.RetryMaxDelay"/>), up to <see cref="RunOptions.MaxAttempts"/> restarts without progress (an
/// attempt that committed something resets the count); any other failure, or one restart too many, fails the run.
/// Stopping is never a failure. The status shows Retrying, the restart count and the error as it goes.
/// </summary>
internal static class RestartLoop
{
    /// <summary>Runs <paramref name="attempt"/> until it ends.</summary>
    /// <param name="attempt">One run; it sets the box when it committed something.</param>
    /// <param name="options">Retry limits.</param>
    /// <param name="status">Where the state, restarts and error go.</param>
    /// <param name="classify">Whether a failure is worth a restart.</param>
    /// <param name="describe">A failure as one line, for the status.</param>
    /// <param name="retrying">Called before each restart's delay with the restart number, the delay and the failure (logs, error records).</param>
    /// <param name="fail">Called when the run fails, with the failure (wrapped as "gave up after N restarts" for a transient one); returns the final state.</param>
    /// <param name="stop">Stops the run.</param>
    public static async Task<ConnectionState> RunAsync(
        Func<StrongBox<bool>, CancellationToken, Task<ConnectionState>> attempt,
        RunOptions options,
        ConnectionStatus status,
        Func<Exception, ErrorKind> classify,
        Func<Exception, string> describe,
        Func<int, TimeSpan, Exception, ErrorKind, Task> retrying,
        Func<Exception, ErrorKind, Task<ConnectionState>> fail,
        CancellationToken stop)
    {
        var restarts = 0;
        while (true)
        {
            var progressed = new StrongBox<bool>();
            try
            {
                var state = await attempt(progressed, stop);
                status.State = state;
                return state;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                status.State = ConnectionState.Stopped;
                return ConnectionState.Stopped;
            }
            catch (Exception e)
            {
                var kind = classify(e);
                if (progressed.Value)
                {
                    restarts = 0;
                }

                if (kind == ErrorKind.Transient && restarts < options.MaxAttempts && !stop.IsCancellationRequested)
                {
                    restarts++;
                    var delay = TimeSpan.FromTicks(Math.Min(options.RetryMaxDelay.Ticks, options.RetryBaseDelay.Ticks << Math.Min(restarts - 1, 20)));
                    status.State = ConnectionState.Retrying;
                    status.Restarts++;
                    status.Error = describe(e);
                    await retrying(restarts, delay, e, kind);
                    try
                    {
                        await Task.Delay(delay, stop);
                    }
                    catch (OperationCanceledException)
                    {
                        status.State = ConnectionState.Stopped;
                        return ConnectionState.Stopped;
                    }

                    continue;
                }

                if (kind == ErrorKind.Transient)
                {
                    e = new ConnectorException(ErrorKind.Transient, $"gave up after {restarts} restarts: {describe(e)}", null, e);
                }

                return await fail(e, kind);
            }
        }
    }
}
