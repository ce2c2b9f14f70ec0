namespace Ingest.Sdk.Connectors;

/// <summary>
/// Declares a plugin's connector. The host finds the class carrying it in the plugin's assembly.
/// The plugin's version is the assembly's informational version; the SDK version it was built
/// against is read from its reference to Ingest.Sdk.
/// </summary>
/// <param name="name">The connector's name in pipeline files (e.g. <c>postgres</c>, <c>sample</c>): lower case, digits and dashes.</param>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class IngestConnectorAttribute(string name) : Attribute
{
    /// <summary>The connector's name in pipeline files.</summary>
    public string Name { get; } = name;

    /// <summary>One sentence for the catalog.</summary>
    public string Description { get; init; } = "";

    /// <summary>Where its documentation lives.</summary>
    public string DocumentationUrl { get; init; } = "";
}
