using Ingest.Sdk.Connectors;
using Ingest.TestPlugins.Shared;

namespace Ingest.TestPlugins.JsonNew;

/// <summary>A connector built against Newtonsoft.Json 13.0.3.</summary>
[IngestConnector("json-new", Description = "Uses Newtonsoft.Json 13.", DocumentationUrl = "https://example.invalid/json-new")]
public sealed class JsonNewConnector : NewtonsoftConnectorBase
{
    /// <inheritdoc />
    protected override string ConnectorName => "json-new";
}
