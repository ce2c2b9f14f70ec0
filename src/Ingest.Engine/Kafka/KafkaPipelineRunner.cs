using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// Runs a pipeline on the Kafka transport: per connection its source half, its sink half, or both (<see cref="RunOptions.Role"/>);
/// the sink role also writes the pipeline's <c>inputs</c>.
/// </summary>
internal static class KafkaPipelineRunner
{
    public static async Task<IReadOnlyList<ConnectionResult>> RunAsync(BoundPipeline pipeline, KafkaTransport transport, RunOptions options, ILogger logger, RunStatus status, CancellationToken stop)
    {
        var tasks = pipeline.Connections.Select(c => Task.Run(async () =>
        {
            var cs = status.Connection(c.Name);
            Task<ConnectionState>? source = null;
            if (options.Role is RunRole.Source or RunRole.All)
            {
                source = new KafkaSource(c, transport, pipeline.Definition.Commit, options, logger, cs).RunAsync(stop);
            }

            var state = ConnectionState.Completed;
            if (options.Role is RunRole.Sink or RunRole.All)
            {
                state = await new KafkaSink(c, transport, pipeline.Definition.Commit, options, logger, cs, source).RunAsync(stop);
            }

            if (source is not null)
            {
                var s = await source;
                state = s == ConnectionState.Failed || state != ConnectionState.Failed && s == ConnectionState.Stopped ? s : state;
            }

            cs.State = state;
            return new ConnectionResult(c.Name, state, cs.Error);
        }, CancellationToken.None)).ToList();
        if (options.Role is RunRole.Sink or RunRole.All)
        {
            // Existing topics (inputs:) are written by the sink role, each input with its own consumer group.
            foreach (var input in pipeline.Definition.Inputs ?? [])
            {
                var cs = status.Connection(input.Name);
                var sink = new KafkaInputSink(input, pipeline.Definition.LakePath, transport, pipeline.Definition.Commit, options, logger, cs);
                tasks.Add(Task.Run(async () => new ConnectionResult(input.Name, await sink.RunAsync(stop), cs.Error), CancellationToken.None));
            }
        }

        return await Task.WhenAll(tasks);
    }
}
