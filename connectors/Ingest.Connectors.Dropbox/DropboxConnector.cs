using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Dropbox;

/// <summary>
/// Files in a Dropbox folder into tables through the Dropbox API v2: the folder's changes are listed from a
/// cursor kept in the checkpoint, each new or changed file version (its <c>rev</c>) is downloaded and read once,
/// with the formats, inference, rescued data and dead letters of every file-store connector.
/// </summary>
[IngestConnector("dropbox", Description = "CSV, JSON lines and Parquet files in a Dropbox folder, changes listed by cursor, each file version read once.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.Dropbox")]
public sealed class DropboxConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(DropboxOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        DropboxOptions o;
        try
        {
            o = DropboxOptions.Parse(config);
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }

        using var api = new DropboxApi(o, NullConnectorLog.Instance);
        try
        {
            var store = new DropboxStore(api, o.Path, NullConnectorLog.Instance);
            while (await store.RefreshAsync(cancellationToken))
            {
                // every page of the listing, to count the files
            }
            var counts = new List<string>();
            foreach (var t in o.Tables)
            {
                var files = await FileSourceReader.ListAsync(store, t, cancellationToken);
                counts.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Name}: {files.Count} file(s)"));
            }

            return CheckResult.Ok($"Dropbox folder '{o.Path}' is readable; {string.Join(", ", counts)}.");
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (HttpRequestException e)
        {
            return CheckResult.Failed($"Cannot reach Dropbox at {o.ApiBase}: {e.Message}", "/apiBase");
        }
    }

    /// <inheritdoc />
    public async Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        var o = DropboxOptions.Parse(config);
        using var api = new DropboxApi(o, NullConnectorLog.Instance);
        return await FileDiscovery.DiscoverAsync(new DropboxStore(api, o.Path, NullConnectorLog.Instance), o.Tables, cancellationToken);
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = DropboxOptions.Parse(context.Config);
        var log = context.Log ?? NullConnectorLog.Instance;
        var api = new DropboxApi(o, log);
        return new OwningReader(new FileSourceReader(new DropboxStore(api, o.Path, log), o.Tables, context, o.Read), api);
    }

    /// <summary>The shared file reader, plus the HTTP client it reads through.</summary>
    private sealed class OwningReader(FileSourceReader inner, DropboxApi api) : ISourceReader
    {
        public IAsyncEnumerable<Sdk.Records.SourceMessage> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public ValueTask AcknowledgeAsync(Sdk.Records.Checkpoint checkpoint, CancellationToken cancellationToken) => inner.AcknowledgeAsync(checkpoint, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            api.Dispose();
        }
    }
}
