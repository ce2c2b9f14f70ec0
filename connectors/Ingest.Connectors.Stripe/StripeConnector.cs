using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Stripe;

/// <summary>
/// Stripe objects into tables: a snapshot listed by created windows, then updates and deletions from the Events API,
/// within a client-side request rate, retrying 429s and 5xx, resumable from a checkpoint without re-reading.
/// </summary>
[IngestConnector("stripe", Description = "Stripe customers, charges, invoices, subscriptions and more: snapshot, then updates and deletions from events.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.Stripe")]
public sealed class StripeConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(StripeOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        try
        {
            var o = StripeOptions.Parse(config);
            using var api = new StripeApi(o, NullConnectorLog.Instance);
            await api.ListAsync("v1/events", null, null, null, 1, cancellationToken).ConfigureAwait(false);
            return CheckResult.Ok($"Connected to Stripe at {o.ApiBase.Host}; the key can read events.");
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (HttpRequestException e)
        {
            return CheckResult.Failed($"Cannot reach Stripe: {e.Message}", "/apiBase");
        }
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        _ = StripeOptions.Parse(config);
        return Task.FromResult(new SourceCatalog(StripeStreams.All.Select(s => s.Describe()).ToList()));
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new StripeReader(StripeOptions.Parse(context.Config), context);
    }
}
