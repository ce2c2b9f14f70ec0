using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Plugins;

/// <summary>A connector plugin that loaded and is compatible with this host.</summary>
/// <param name="Name">The connector's name (<see cref="IngestConnectorAttribute.Name"/>), as pipeline files use it.</param>
/// <param name="Version">The plugin's version: its informational version without a <c>+commit</c> suffix, else its assembly version.</param>
/// <param name="SdkVersion">The Ingest.Sdk version the plugin was built against.</param>
/// <param name="Description">One sentence for the catalog.</param>
/// <param name="DocumentationUrl">Where its documentation lives (may be empty).</param>
/// <param name="Directory">The plugin's folder (full path).</param>
/// <param name="Connector">
/// The connector instance, shared by every connection that uses it. Its members run plugin code:
/// an exception they throw reaches the caller as an ordinary exception, so the engine must run each
/// connection (check, discover, read, acknowledge) in its own try/catch, which then fails only that connection.
/// </param>
public sealed record PluginInfo(
    string Name,
    string Version,
    Version SdkVersion,
    string Description,
    string DocumentationUrl,
    string Directory,
    ISourceConnector Connector);

/// <summary>A plugin folder the host refused or could not load.</summary>
/// <param name="Directory">The plugin's folder (full path).</param>
/// <param name="Name">The connector's name, when it could be read.</param>
/// <param name="Reason">Why, in words a user can act on.</param>
public sealed record PluginLoadFailure(string Directory, string? Name, string Reason);
