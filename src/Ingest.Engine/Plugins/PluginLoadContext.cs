using System.Reflection;
using System.Runtime.Loader;
using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Plugins;

/// <summary>
/// The load context of one plugin. The contract assemblies (Ingest.Sdk, Apache.Arrow) and the shared
/// framework come from the host, so types cross the boundary; every other assembly, managed or native,
/// resolves from the plugin's own folder through its deps.json, so two plugins may use different
/// versions of one library.
/// </summary>
/// <remarks>
/// Not collectible: libraries plugins commonly use (serializers emitting code, caches keyed by type)
/// do not all support unloading, and a connector lives as long as the host anyway.
/// </remarks>
internal sealed class PluginLoadContext : AssemblyLoadContext
{
    /// <summary>The assemblies every plugin shares with the host, by simple name.</summary>
    internal static readonly IReadOnlyDictionary<string, Assembly> ContractAssemblies = new Dictionary<string, Assembly>(StringComparer.OrdinalIgnoreCase)
    {
        [typeof(ISourceConnector).Assembly.GetName().Name!] = typeof(ISourceConnector).Assembly,
        [typeof(Apache.Arrow.RecordBatch).Assembly.GetName().Name!] = typeof(Apache.Arrow.RecordBatch).Assembly,
    };

    private static readonly Lazy<HashSet<string>> FrameworkAssemblies = new(LoadFrameworkAssemblyNames);

    private readonly AssemblyDependencyResolver _resolver;

    public PluginLoadContext(string mainAssemblyPath, string name)
        : base("plugin:" + name, isCollectible: false)
    {
        _resolver = new AssemblyDependencyResolver(mainAssemblyPath);
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var simpleName = assemblyName.Name;
        if (simpleName is null)
        {
            return null;
        }

        if (ContractAssemblies.TryGetValue(simpleName, out var contract))
        {
            return contract;
        }

        // The shared framework is one per process: a plugin never brings its own System.* copy.
        if (FrameworkAssemblies.Value.Contains(simpleName))
        {
            return null;
        }

        var path = _resolver.ResolveAssemblyToPath(assemblyName);

        // Not in the plugin's deps.json: let the default context try (the host may provide it).
        return path is null ? null : LoadFromAssemblyPath(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }

    /// <summary>Simple names of the assemblies of the shared frameworks the host runs on (Microsoft.NETCore.App and others).</summary>
    private static HashSet<string> LoadFrameworkAssemblyNames()
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is not string tpa)
        {
            return names;
        }

        // Framework-dependent: <dotnet>/shared/Microsoft.NETCore.App/<version>/, and every shared framework
        // (ASP.NET Core too) lives under <dotnet>/shared. Self-contained: the runtime sits in the app's own
        // folder beside the app's dependencies, so only the framework's own names count.
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location) ?? "";
        var selfContained = string.Equals(
            Path.TrimEndingDirectorySeparator(Path.GetFullPath(runtimeDir)),
            Path.TrimEndingDirectorySeparator(Path.GetFullPath(AppContext.BaseDirectory)),
            StringComparison.Ordinal);
        var sharedRoot = Directory.GetParent(runtimeDir)?.Parent?.FullName;
        foreach (var file in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var inFramework = selfContained || sharedRoot is null
                ? IsFrameworkName(name)
                : file.StartsWith(sharedRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal);
            if (inFramework)
            {
                names.Add(name);
            }
        }

        return names;
    }

    private static bool IsFrameworkName(string name) =>
        name.StartsWith("System.", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("Microsoft.NETCore.", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("Microsoft.Win32.", StringComparison.OrdinalIgnoreCase)
        || name.StartsWith("Microsoft.VisualBasic", StringComparison.OrdinalIgnoreCase)
        || name is "System" or "mscorlib" or "netstandard" or "WindowsBase" or "Microsoft.CSharp";
}
