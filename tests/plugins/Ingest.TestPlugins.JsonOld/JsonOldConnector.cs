using Ingest.Sdk.Connectors;
using Ingest.TestPlugins.Shared;

namespace Ingest.TestPlugins.JsonOld;

/// <summary>A connector built against Newtonsoft.Json 12.0.3.</summary>
[IngestConnector("json-old", Description = "Uses Newtonsoft.Json 12.", DocumentationUrl = "https://example.invalid/json-old")]
public sealed class JsonOldConnector : NewtonsoftConnectorBase
{
    /// <inheritdoc />
    protected override string ConnectorName => "json-old";
}
