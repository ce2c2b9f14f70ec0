using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.MailChimp;

/// <summary>
/// MailChimp audiences, members, campaigns, campaign reports and unsubscribes into tables through the Marketing API 3.0:
/// members incrementally by <c>last_changed</c>, within a client-side request rate and at most 10 concurrent
/// connections, retrying 429s, throttling 403s and 5xx, resumable from a checkpoint without re-reading.
/// </summary>
[IngestConnector("mailchimp", Description = "MailChimp audiences, members (incremental), campaigns, reports and unsubscribes.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.MailChimp")]
public sealed class MailChimpConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(MailChimpOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        MailChimpOptions o;
        try
        {
            o = MailChimpOptions.Parse(config);
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }

        // Where the address came from: the user's apiBase, or the data center suffix of the key.
        var addressField = config.TryGetProperty("apiBase", out var b) && b.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(b.GetString()) ? "/apiBase" : "/apiKey";
        try
        {
            // A check answers within seconds: a few attempts, not the read's five-minute failure budget.
            using var api = new MailChimpApi(o, NullConnectorLog.Instance, null, r => r with { MaxAttempts = 3, MaxFailureDuration = TimeSpan.FromSeconds(20) });
            await api.PingAsync(cancellationToken).ConfigureAwait(false);
            await api.ListAsync("lists", "lists", 0, 1, "fields=total_items,lists.id", cancellationToken).ConfigureAwait(false);
            return CheckResult.Ok($"Connected to MailChimp at {o.ApiBase.Host} (data center {o.DataCenter}); the key can read audiences.");
        }
        catch (ConnectorException e) when (e.Field is null && e.InnerException is HttpRequestException)
        {
            return CheckResult.Failed($"Cannot reach MailChimp at {o.ApiBase.Host}: {e.Message}", addressField);
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (HttpRequestException e)
        {
            return CheckResult.Failed($"Cannot reach MailChimp at {o.ApiBase.Host}: {e.Message}", addressField);
        }
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        _ = MailChimpOptions.Parse(config);
        return Task.FromResult(new SourceCatalog(MailChimpStreams.All.Select(s => s.Describe()).ToList()));
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new MailChimpReader(MailChimpOptions.Parse(context.Config), context);
    }
}
