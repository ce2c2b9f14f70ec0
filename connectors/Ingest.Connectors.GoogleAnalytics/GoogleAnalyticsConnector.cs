using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>
/// Google Analytics 4 reports into tables through the Data API v1beta: one stream per configured report, keyed by its
/// dimensions, typed from the property's metadata. Each run re-reads the lookback window and replaces those dates
/// (upserts, and deletes for rows GA dropped); it stays within GA's property quotas and resumes per date.
/// </summary>
[IngestConnector("google-analytics", Description = "Google Analytics 4 reports (dimensions and metrics by date), re-reading the days GA revises.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.GoogleAnalytics")]
public sealed class GoogleAnalyticsConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(GaOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => CheckAsync(config, null, cancellationToken);

    internal static async Task<CheckResult> CheckAsync(JsonElement config, GaHooks? hooks, CancellationToken cancellationToken)
    {
        try
        {
            var o = GaOptions.Parse(config);
            using var api = new GaApi(o, NullConnectorLog.Instance, hooks);
            await api.AuthenticateAsync(cancellationToken).ConfigureAwait(false);
            var metadata = await api.MetadataAsync(cancellationToken).ConfigureAwait(false);
            foreach (var r in o.Reports)
            {
                _ = GaStream.Build(r, metadata);
            }

            // One row of the first report: checks that GA accepts the combination of dimensions, metrics and filter.
            var today = DateOnly.FromDateTime(DateTime.UtcNow);
            await api.RunReportAsync(o.Reports[0], today.AddDays(-1), today, 0, 1, cancellationToken).ConfigureAwait(false);
            return CheckResult.Ok($"Connected as {api.Credential.Id}; property {o.PropertyId} is readable and its {o.Reports.Count} report(s) are valid.");
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (HttpRequestException e)
        {
            return CheckResult.Failed($"Cannot reach Google Analytics: {e.Message}", "/apiBase");
        }
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) => DiscoverAsync(config, null, cancellationToken);

    /// <summary>The catalog: the types come from the property's metadata endpoint (<c>GET properties/{id}/metadata</c>).</summary>
    internal static async Task<SourceCatalog> DiscoverAsync(JsonElement config, GaHooks? hooks, CancellationToken cancellationToken)
    {
        var o = GaOptions.Parse(config);
        using var api = new GaApi(o, NullConnectorLog.Instance, hooks);
        var metadata = await api.MetadataAsync(cancellationToken).ConfigureAwait(false);
        return new SourceCatalog(o.Reports.Select(r => GaStream.Build(r, metadata).Describe()).ToList());
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new GaReader(GaOptions.Parse(context.Config), context);
    }
}
