using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Sample;

/// <summary>
/// A deterministic e-commerce source for quickstarts, demos and tests: customers, products, orders and
/// order lines, a snapshot followed by a backlog of inserts, updates and deletes and then new changes at a
/// steady rate. The same seed always gives the same rows and the same source positions.
/// </summary>
[IngestConnector("sample", Description = "Deterministic e-commerce data (customers, products, orders, order lines) with a live change stream.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.Sample")]
public sealed class SampleConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(SampleOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            var o = SampleOptions.Parse(config);
            var rows = SampleGenerator.SnapshotRowCounts(o).Sum();

            var rate = o.ChangesPerSecond > 0
                ? string.Create(CultureInfo.InvariantCulture, $"then {o.ChangesPerSecond} changes per second")
                : "then the read ends";
            return Task.FromResult(CheckResult.Ok(string.Create(CultureInfo.InvariantCulture, $"Ready: {rows} snapshot rows and {o.Changes} backlog changes (seed {o.Seed}), {rate}.")));
        }
        catch (ConnectorException e)
        {
            return Task.FromResult(CheckResult.Failed(e.Message, e.Field));
        }
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var counts = SampleGenerator.SnapshotRowCounts(SampleOptions.Parse(config));
        var streams = new List<StreamDescriptor>(SampleStreams.Count);
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            streams.Add(SampleStreams.Descriptor(s, counts[s]));
        }

        return Task.FromResult(new SourceCatalog(streams));
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = SampleOptions.Parse(context.Config);
        var state = context.State is { } s && s.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined)
            ? SampleState.Parse(s, options)
            : null;
        return new SampleReader(options, context.Streams, state, context.Log ?? NullConnectorLog.Instance, context.Backfills);
    }
}
