using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.TestPlugins.Throwing;

/// <summary>A connector whose constructor throws: the host must refuse it and load the others.</summary>
[IngestConnector("throwing", Description = "Throws when created.")]
public sealed class ThrowingConnector : ISourceConnector
{
    /// <summary>The message of the exception the constructor throws.</summary>
    public const string Message = "the throwing plugin cannot start: license file missing";

    /// <summary>Always throws.</summary>
    public ThrowingConnector() => throw new InvalidOperationException(Message);

    /// <inheritdoc />
    public ConnectorSpec Spec => throw new InvalidOperationException(Message);

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => throw new InvalidOperationException(Message);

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) => throw new InvalidOperationException(Message);

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => throw new InvalidOperationException(Message);
}
