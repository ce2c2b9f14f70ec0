using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.TestPlugins.TwoConnectors;

/// <summary>One of two connectors in one assembly: the host refuses such a plugin.</summary>
[IngestConnector("first-of-two")]
public sealed class FirstConnector : ISourceConnector
{
    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object"}""");

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(CheckResult.Ok());

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(new SourceCatalog([]));

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => throw new ConnectorException(ErrorKind.Fatal, "first-of-two cannot be read.");
}

/// <summary>The other of two connectors in one assembly.</summary>
[IngestConnector("second-of-two")]
public sealed class SecondConnector : ISourceConnector
{
    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object"}""");

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(CheckResult.Ok());

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(new SourceCatalog([]));

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => throw new ConnectorException(ErrorKind.Fatal, "second-of-two cannot be read.");
}
