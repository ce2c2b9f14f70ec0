using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Files;

/// <summary>
/// Files in a local or mounted folder into tables: CSV, JSON lines and Parquet (gzip and zstd by extension),
/// schemas declared or inferred, values that fit no column rescued, unparseable lines dead-lettered, and each
/// new or changed file version read exactly once.
/// </summary>
[IngestConnector("files", Description = "CSV, JSON lines and Parquet files in a local or mounted folder, each new or changed file read once.", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.Files")]
public sealed class FilesConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(FilesOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        FilesOptions o;
        try
        {
            o = FilesOptions.Parse(config);
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }

        if (!Directory.Exists(o.Path))
        {
            return CheckResult.Failed($"The folder {o.Path} does not exist (or is not mounted).", "/path");
        }

        var store = new LocalFolderStore(o.Path);
        var counts = new List<string>();
        try
        {
            foreach (var t in o.Tables)
            {
                var files = await FileSourceReader.ListAsync(store, t, cancellationToken);
                if (files.Count > 0)
                {
                    await using var s = await store.OpenAsync(files[0], cancellationToken);
                    _ = await s.ReadAsync(new byte[1], cancellationToken);
                }

                counts.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Name}: {files.Count} file(s)"));
            }
        }
        catch (UnauthorizedAccessException e)
        {
            return CheckResult.Failed($"Cannot read {o.Path}: {e.Message} Give the user running ingest read access.", "/path");
        }
        catch (IOException e)
        {
            return CheckResult.Failed($"Cannot read {o.Path}: {e.Message}", "/path");
        }

        return CheckResult.Ok($"Folder {o.Path} is readable; {string.Join(", ", counts)}.");
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        var o = FilesOptions.Parse(config);
        if (!Directory.Exists(o.Path))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"The folder {o.Path} does not exist (or is not mounted).", "/path");
        }

        return FileDiscovery.DiscoverAsync(new LocalFolderStore(o.Path), o.Tables, cancellationToken);
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var o = FilesOptions.Parse(context.Config);
        return new FileSourceReader(new LocalFolderStore(o.Path), o.Tables, context, o.Read);
    }
}
