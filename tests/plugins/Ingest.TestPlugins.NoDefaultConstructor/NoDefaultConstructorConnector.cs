using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.TestPlugins.NoDefaultConstructor;

/// <summary>A connector the host cannot create: it has no public parameterless constructor.</summary>
/// <param name="endpoint">Something the host cannot supply.</param>
[IngestConnector("no-default-ctor")]
public sealed class NoDefaultConstructorConnector(Uri endpoint) : ISourceConnector
{
    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object"}""");

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(CheckResult.Ok($"Reached {endpoint}."));

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([]));

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => throw new ConnectorException(ErrorKind.Fatal, $"{endpoint} cannot be read.");
}
