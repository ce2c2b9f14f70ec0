using System.Globalization;
using System.Text.Json;
using Amazon.S3;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.S3;

/// <summary>
/// Objects under an S3 prefix (AWS or an S3-compatible store) into tables: CSV, JSON lines and Parquet (gzip and
/// zstd by extension), schemas declared or inferred, values that fit no column rescued, unparseable lines
/// dead-lettered, and each new or changed object (key + ETag) read exactly once. Listing and reading are this
/// connector's; everything else is the shared file-store reader of <c>Ingest.Sdk.Files</c>.
/// </summary>
[IngestConnector("s3", Description = "CSV, JSON lines and Parquet objects in an S3 bucket or S3-compatible store, each object version read once.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.S3")]
public sealed class S3Connector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(S3Options.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <summary>Lists one page under the prefix, reads a byte of the first object each table matches, and reports what it found.</summary>
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        try
        {
            var o = S3Options.Parse(config);
            using var client = S3Client.Create(o);
            var store = new S3Store(client, o);
            var (files, more) = await store.ListFirstPageAsync(cancellationToken);
            var counts = new List<string>();
            foreach (var t in o.Tables)
            {
                var regex = Glob.Compile(t.Pattern);
                var matching = files.Where(f => regex.IsMatch(f.Path)).ToList();
                if (matching.Count > 0)
                {
                    await using var s = await store.OpenAsync(matching[0], cancellationToken);
                    _ = await s.ReadAsync(new byte[1], cancellationToken);
                }

                counts.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Name}: {matching.Count}{(more ? "+" : "")} object(s)"));
            }

            var where = $"s3://{o.Bucket}/{o.Prefix}";
            return CheckResult.Ok(string.Create(CultureInfo.InvariantCulture, $"{where} is readable; the first page lists {files.Count}{(more ? "+" : "")} object(s); {string.Join(", ", counts)}."));
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (FileNotFoundException e)
        {
            return CheckResult.Failed($"An object vanished while it was checked: {e.Message}");
        }
    }

    /// <inheritdoc />
    public async Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        var o = S3Options.Parse(config);
        using var client = S3Client.Create(o);
        return await FileDiscovery.DiscoverAsync(new S3Store(client, o), o.Tables, cancellationToken);
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = S3Options.Parse(context.Config);
        var client = S3Client.Create(o);
        try
        {
            return new OwningReader(new FileSourceReader(new S3Store(client, o), o.Tables, context, o.Read), client);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>The shared file reader, plus the S3 client it reads through.</summary>
    private sealed class OwningReader(FileSourceReader inner, IAmazonS3 client) : ISourceReader
    {
        public IAsyncEnumerable<SourceMessage> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => inner.AcknowledgeAsync(checkpoint, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            client.Dispose();
        }
    }
}
