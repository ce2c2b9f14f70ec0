using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Ingest.Engine.Plugins;

/// <summary>What a plugin assembly declares, read from its metadata without loading or running it.</summary>
/// <param name="Path">The assembly file.</param>
/// <param name="AssemblyVersion">Its assembly version.</param>
/// <param name="InformationalVersion">Its <c>AssemblyInformationalVersion</c>, if any.</param>
/// <param name="SdkVersion">The version of its Ingest.Sdk reference, or null when it has none.</param>
/// <param name="Connectors">The classes marked <c>[IngestConnector]</c>.</param>
internal sealed record PluginAssemblyMetadata(
    string Path,
    Version AssemblyVersion,
    string? InformationalVersion,
    Version? SdkVersion,
    IReadOnlyList<ConnectorDeclaration> Connectors)
{
    /// <summary>The informational version without a <c>+commit</c> suffix, else the assembly version.</summary>
    public string PluginVersion =>
        InformationalVersion is { Length: > 0 } v ? v.Split('+', 2)[0] : PluginHost.FormatVersion(AssemblyVersion);
}

/// <summary>A class marked <c>[IngestConnector]</c>.</summary>
internal sealed record ConnectorDeclaration(string TypeName, string Name, string Description, string DocumentationUrl);

/// <summary>
/// Reads plugin assemblies with System.Reflection.Metadata: finding the connector, its name and the SDK
/// version it needs does not load the assembly, so an incompatible plugin is refused before any of its code exists in the process.
/// </summary>
internal static class PluginAssemblyInspector
{
    internal const string SdkAssemblyName = "Ingest.Sdk";
    private const string AttributeNamespace = "Ingest.Sdk.Connectors";
    private const string AttributeName = "IngestConnectorAttribute";

    /// <summary>Reads <paramref name="path"/>; null when the file is not a .NET assembly (a native library, a resource).</summary>
    /// <exception cref="BadImageFormatException">The file's metadata is corrupt.</exception>
    public static PluginAssemblyMetadata? Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        if (!pe.HasMetadata)
        {
            return null;
        }

        var md = pe.GetMetadataReader();
        if (!md.IsAssembly)
        {
            return null;
        }

        var assembly = md.GetAssemblyDefinition();
        string? informational = null;
        foreach (var handle in assembly.GetCustomAttributes())
        {
            var attribute = md.GetCustomAttribute(handle);
            if (IsAttribute(md, attribute, "System.Reflection", "AssemblyInformationalVersionAttribute")
                && attribute.DecodeValue(AttributeTypeProvider.Instance).FixedArguments is [{ Value: string v }])
            {
                informational = v;
            }
        }

        Version? sdk = null;
        foreach (var handle in md.AssemblyReferences)
        {
            var reference = md.GetAssemblyReference(handle);
            if (md.StringComparer.Equals(reference.Name, SdkAssemblyName))
            {
                sdk = reference.Version;
            }
        }

        var connectors = new List<ConnectorDeclaration>();
        foreach (var typeHandle in md.TypeDefinitions)
        {
            var type = md.GetTypeDefinition(typeHandle);
            foreach (var handle in type.GetCustomAttributes())
            {
                var attribute = md.GetCustomAttribute(handle);
                if (!IsAttribute(md, attribute, AttributeNamespace, AttributeName))
                {
                    continue;
                }

                var value = attribute.DecodeValue(AttributeTypeProvider.Instance);
                var name = value.FixedArguments is [{ Value: string n }] ? n : "";
                connectors.Add(new ConnectorDeclaration(
                    FullName(md, type),
                    name,
                    NamedString(value, "Description"),
                    NamedString(value, "DocumentationUrl")));
            }
        }

        return new PluginAssemblyMetadata(path, assembly.Version, informational, sdk, connectors);
    }

    private static string NamedString(CustomAttributeValue<string> value, string name)
    {
        foreach (var argument in value.NamedArguments)
        {
            if (argument.Name == name && argument.Value is string s)
            {
                return s;
            }
        }

        return "";
    }

    private static string FullName(MetadataReader md, TypeDefinition type)
    {
        var name = md.GetString(type.Name);
        if (type.GetDeclaringType() is { IsNil: false } declaring)
        {
            return FullName(md, md.GetTypeDefinition(declaring)) + "+" + name;
        }

        var ns = md.GetString(type.Namespace);
        return ns.Length == 0 ? name : ns + "." + name;
    }

    private static bool IsAttribute(MetadataReader md, CustomAttribute attribute, string ns, string name)
    {
        EntityHandle parent;
        switch (attribute.Constructor.Kind)
        {
            case HandleKind.MemberReference:
                parent = md.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent;
                break;
            case HandleKind.MethodDefinition:
                parent = md.GetMethodDefinition((MethodDefinitionHandle)attribute.Constructor).GetDeclaringType();
                break;
            default:
                return false;
        }

        return parent.Kind switch
        {
            HandleKind.TypeReference => md.GetTypeReference((TypeReferenceHandle)parent) is var r
                && md.StringComparer.Equals(r.Namespace, ns) && md.StringComparer.Equals(r.Name, name),
            HandleKind.TypeDefinition => md.GetTypeDefinition((TypeDefinitionHandle)parent) is var d
                && md.StringComparer.Equals(d.Namespace, ns) && md.StringComparer.Equals(d.Name, name),
            _ => false,
        };
    }

    /// <summary>Decodes attribute arguments with types named by strings; enough for string and primitive arguments.</summary>
    private sealed class AttributeTypeProvider : ICustomAttributeTypeProvider<string>
    {
        public static readonly AttributeTypeProvider Instance = new();

        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();

        public string GetSystemType() => "System.Type";

        public string GetSZArrayType(string elementType) => elementType + "[]";

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) =>
            FullName(reader, reader.GetTypeDefinition(handle));

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
        {
            var r = reader.GetTypeReference(handle);
            return reader.GetString(r.Namespace) + "." + reader.GetString(r.Name);
        }

        public string GetTypeFromSerializedName(string name) => name;

        // Enum arguments would need the enum's assembly; the attributes read here have none.
        public PrimitiveTypeCode GetUnderlyingEnumType(string type) =>
            throw new BadImageFormatException($"Attribute argument of enum type '{type}' is not supported.");

        public bool IsSystemType(string type) => type == "System.Type";
    }
}
