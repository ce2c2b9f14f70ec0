using Ingest.Engine.Pipelines;
using Ingest.Engine.State;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Running;

/// <summary>How each connection of a run ended.</summary>
/// <param name="Connections">State and error per connection.</param>
public sealed record RunResult(IReadOnlyList<ConnectionResult> Connections)
{
    /// <summary>True when no connection failed.</summary>
    public bool Succeeded => Connections.All(c => c.State != ConnectionState.Failed);
}

/// <summary>How one connection ended.</summary>
/// <param name="Name">The connection.</param>
/// <param name="State">Completed, Stopped or Failed.</param>
/// <param name="Error">Why it failed.</param>
public sealed record ConnectionResult(string Name, ConnectionState State, string? Error);

/// <summary>Runs every connection of a pipeline concurrently, each isolated from the others' failures.</summary>
public static class PipelineRunner
{
    /// <summary>Runs until every connection completed (under <see cref="RunOptions.Once"/>, or when its read ends), failed, or <paramref name="stop"/> fires.</summary>
    /// <param name="pipeline">The bound pipeline.</param>
    /// <param name="options">Run options.</param>
    /// <param name="store">The state store (a cache of progress and a record of runs), or null.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    /// <param name="status">Live counters to fill.</param>
    /// <param name="stop">Stops gracefully: reads end, what is covered by a checkpoint is committed and acknowledged.</param>
    public static async Task<RunResult> RunAsync(BoundPipeline pipeline, RunOptions options, StateStore? store, ILoggerFactory loggerFactory, RunStatus status, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentNullException.ThrowIfNull(status);
        var logger = loggerFactory.CreateLogger("Ingest.Engine.Runner");
        var runId = store is null ? 0 : await store.StartRunAsync(pipeline.Definition.FilePath, CancellationToken.None);
        ConnectionResult[] results;
        if (pipeline.Definition.Kafka is { } kafka)
        {
            results = [.. await Kafka.KafkaPipelineRunner.RunAsync(pipeline, kafka, options, logger, status, stop)];
        }
        else
        {
            var tasks = pipeline.Connections.Select(c =>
            {
                var cs = status.Connection(c.Name);
                var runner = new ConnectionRunner(c, pipeline.Definition.Commit, options, store, runId, logger, cs);
                return Task.Run(async () => new ConnectionResult(c.Name, await runner.RunAsync(stop), cs.Error), CancellationToken.None);
            }).ToList();
            results = await Task.WhenAll(tasks);
        }

        var result = new RunResult(results);
        if (store is not null)
        {
            var rows = status.Connections.Values.Sum(c => c.Streams.Values.Sum(s => s.RowsCommitted));
            var outcome = !result.Succeeded ? "failed" : results.Any(r => r.State == ConnectionState.Stopped) ? "stopped" : "succeeded";
            await store.EndRunAsync(runId, outcome, rows, CancellationToken.None);
        }

        return result;
    }
}
