using System.Reflection;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Plugins;

/// <summary>
/// Loads connector plugins, each into its own <see cref="System.Runtime.Loader.AssemblyLoadContext"/>:
/// a plugin shares only the contract (Ingest.Sdk, Apache.Arrow) and the .NET framework with the host;
/// its other dependencies, managed and native, come from its own folder, so plugins may use different
/// versions of one library.
/// </summary>
/// <remarks>
/// <para>
/// A plugin folder is a folder directly under a plugin directory that holds <c>&lt;Folder&gt;.dll</c>, or
/// else exactly one assembly with a class marked <see cref="IngestConnectorAttribute"/> (built with
/// <c>EnableDynamicLoading</c>, so its deps.json lists its dependencies). The plugin's name, version and
/// Ingest.Sdk version are read from its metadata before it is loaded, so an incompatible plugin is
/// refused without running any of its code. A plugin is compatible when the Ingest.Sdk it was built
/// against has the host's major version and a minor version no greater than the host's.
/// </para>
/// <para>
/// Loading never throws for a bad plugin: each refusal or failure is in <see cref="Failures"/> with its
/// reason, and the other plugins load. Once loaded, a plugin's code runs in the host process:
/// exceptions its <see cref="ISourceConnector"/> members (and readers) throw reach the caller as ordinary
/// exceptions, so the engine must run each connection in its own try/catch; then a failing plugin fails
/// only that connection. (A plugin that throws on a thread of its own, outside any call from the host,
/// can still end the process, as any .NET code can.)
/// </para>
/// <para>
/// Load contexts are not collectible: plugins stay loaded for the life of the process. <see cref="Dispose"/>
/// disposes the connectors that are <see cref="IDisposable"/>.
/// </para>
/// </remarks>
public sealed class PluginHost : IDisposable
{
    /// <summary>The environment variable that lists plugin directories (separated by <see cref="Path.PathSeparator"/>).</summary>
    public const string PluginsEnvironmentVariable = "INGEST_PLUGINS";

    /// <summary>The <see cref="AssemblyMetadataAttribute"/> key on the host executable naming the build's plugin directory.</summary>
    public const string DefaultPluginsPathMetadataKey = "IngestDefaultPluginsPath";

    private readonly Dictionary<string, PluginInfo> _byName;
    private readonly ILogger _logger;
    private bool _disposed;

    private PluginHost(List<PluginInfo> plugins, List<PluginLoadFailure> failures, Version hostSdkVersion, ILogger logger)
    {
        Plugins = plugins.AsReadOnly();
        Failures = failures.AsReadOnly();
        HostSdkVersion = hostSdkVersion;
        _byName = plugins.ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        _logger = logger;
    }

    /// <summary>The plugins that loaded and are compatible, in the order they were found.</summary>
    public IReadOnlyList<PluginInfo> Plugins { get; }

    /// <summary>The plugin folders that were refused or failed to load, each with a reason that says why.</summary>
    public IReadOnlyList<PluginLoadFailure> Failures { get; }

    /// <summary>The Ingest.Sdk version plugins were checked against.</summary>
    public Version HostSdkVersion { get; }

    /// <summary>The loaded plugin whose connector is called <paramref name="connectorName"/> (ignoring case), or null.</summary>
    public PluginInfo? Find(string connectorName)
    {
        ArgumentNullException.ThrowIfNull(connectorName);
        return _byName.GetValueOrDefault(connectorName);
    }

    /// <summary>
    /// Loads every plugin folder found under each directory (folders are visited in name order; a
    /// directory listed twice is read once). Never throws for a bad plugin or a missing directory: see <see cref="Failures"/>.
    /// </summary>
    /// <param name="pluginDirectories">Directories whose sub-folders are plugins (e.g. <see cref="DefaultDirectories()"/>).</param>
    /// <param name="logger">Where loads and refusals are logged.</param>
    /// <param name="hostSdkVersion">The contract version plugins must be compatible with; defaults to the loaded Ingest.Sdk assembly's version.</param>
    public static PluginHost Load(IEnumerable<string> pluginDirectories, ILogger? logger = null, Version? hostSdkVersion = null)
    {
        ArgumentNullException.ThrowIfNull(pluginDirectories);
        logger ??= NullLogger.Instance;
        var host = hostSdkVersion ?? typeof(ISourceConnector).Assembly.GetName().Version ?? new Version(0, 0);
        var plugins = new List<PluginInfo>();
        var failures = new List<PluginLoadFailure>();
        var byName = new Dictionary<string, PluginInfo>(StringComparer.OrdinalIgnoreCase);
        var seen = new HashSet<string>(StringComparer.Ordinal);

        void Fail(string directory, string? name, string reason)
        {
            failures.Add(new PluginLoadFailure(directory, name, reason));
            PluginHostLog.PluginRefused(logger, directory, reason);
        }

        foreach (var directory in pluginDirectories)
        {
            string full;
            try
            {
                full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                Fail(directory, null, $"'{directory}' is not a valid plugin directory path: {e.Message}");
                continue;
            }

            if (!seen.Add(full))
            {
                continue;
            }

            if (!Directory.Exists(full))
            {
                Fail(full, null, $"plugin directory '{full}' does not exist");
                continue;
            }

            PluginHostLog.Scanning(logger, full);
            string[] folders;
            try
            {
                folders = Directory.GetDirectories(full);
            }
            catch (Exception e)
            {
                Fail(full, null, $"cannot list plugin directory '{full}': {e.Message}");
                continue;
            }

            Array.Sort(folders, StringComparer.Ordinal);
            foreach (var folder in folders)
            {
                var (plugin, failure) = LoadFolder(folder, host, byName, logger);
                if (plugin is not null)
                {
                    plugins.Add(plugin);
                    byName.Add(plugin.Name, plugin);
                    PluginHostLog.PluginLoaded(logger, plugin.Name, plugin.Version, FormatVersion(plugin.SdkVersion), plugin.Directory);
                }
                else if (failure is not null)
                {
                    Fail(failure.Directory, failure.Name, failure.Reason);
                }
            }
        }

        return new PluginHost(plugins, failures, host, logger);
    }

    /// <summary>
    /// Where plugins are looked for by default: the directories in <c>INGEST_PLUGINS</c> if it is set, else
    /// <c>&lt;AppContext.BaseDirectory&gt;/plugins</c> if it exists; plus, either way, the directory in the entry
    /// assembly's <c>IngestDefaultPluginsPath</c> metadata (a development build's <c>artifacts/plugins</c>) if it exists.
    /// </summary>
    public static IReadOnlyList<string> DefaultDirectories() =>
        DefaultDirectories(Environment.GetEnvironmentVariable(PluginsEnvironmentVariable), AppContext.BaseDirectory, Assembly.GetEntryAssembly());

    /// <summary><see cref="DefaultDirectories()"/> with its inputs given.</summary>
    internal static IReadOnlyList<string> DefaultDirectories(string? environmentValue, string baseDirectory, Assembly? entryAssembly)
    {
        var result = new List<string>();
        void Add(string path)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
            if (!result.Contains(full, StringComparer.Ordinal))
            {
                result.Add(full);
            }
        }

        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            foreach (var part in environmentValue.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                Add(part);
            }
        }
        else
        {
            var local = Path.Combine(baseDirectory, "plugins");
            if (Directory.Exists(local))
            {
                Add(local);
            }
        }

        var built = entryAssembly?.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == DefaultPluginsPathMetadataKey)?.Value;
        if (!string.IsNullOrWhiteSpace(built) && Directory.Exists(built))
        {
            Add(built);
        }

        return result;
    }

    /// <summary>Disposes the connectors that are <see cref="IDisposable"/>; a failure is logged, not thrown.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var plugin in Plugins)
        {
            if (plugin.Connector is IDisposable disposable)
            {
                try
                {
                    disposable.Dispose();
                }
                catch (Exception e)
                {
                    PluginHostLog.DisposeFailed(_logger, plugin.Name, e);
                }
            }
        }
    }

    /// <summary>A version as people write it: 1.0.0 rather than 1.0.0.0.</summary>
    internal static string FormatVersion(Version version) =>
        version.Revision > 0 ? version.ToString() : version.Build >= 0 ? version.ToString(3) : version.ToString();

    /// <summary>Why <paramref name="plugin"/> cannot run on a host providing <paramref name="host"/>, or null when it can.</summary>
    internal static string? Incompatibility(string name, string pluginVersion, Version plugin, Version host)
    {
        var prefix = $"plugin '{name}' {pluginVersion} was built against Ingest.Sdk {FormatVersion(plugin)}; this host provides {FormatVersion(host)}";
        if (plugin.Major != host.Major)
        {
            return prefix + " (major versions must match)";
        }

        if (plugin.Minor > host.Minor)
        {
            return prefix + " (the plugin needs a newer minor version than the host's: upgrade the host or use an older plugin)";
        }

        return null;
    }

    private static (PluginInfo? Plugin, PluginLoadFailure? Failure) LoadFolder(
        string folder, Version host, Dictionary<string, PluginInfo> loaded, ILogger logger)
    {
        string? name = null;
        (PluginInfo?, PluginLoadFailure?) Refuse(string reason) => (null, new PluginLoadFailure(folder, name, reason));

        try
        {
            var dlls = Directory.GetFiles(folder, "*.dll");
            if (dlls.Length == 0)
            {
                PluginHostLog.NotAPlugin(logger, folder);
                return (null, null);
            }

            Array.Sort(dlls, StringComparer.Ordinal);
            var folderName = Path.GetFileName(folder);
            var conventional = Path.Combine(folder, folderName + ".dll");
            PluginAssemblyMetadata main;
            if (File.Exists(conventional))
            {
                var read = PluginAssemblyInspector.Read(conventional);
                if (read is null)
                {
                    return Refuse($"{folderName}.dll is not a .NET assembly");
                }

                if (read.Connectors.Count == 0)
                {
                    return Refuse($"{folderName}.dll has no class marked [IngestConnector]; a plugin declares its connector with it");
                }

                main = read;
            }
            else
            {
                var declaring = new List<PluginAssemblyMetadata>();
                foreach (var dll in dlls)
                {
                    PluginAssemblyMetadata? read;
                    try
                    {
                        read = PluginAssemblyInspector.Read(dll);
                    }
                    catch (BadImageFormatException)
                    {
                        continue; // not an assembly we can read: a native library or a damaged dependency, not the plugin
                    }

                    if (read is { Connectors.Count: > 0 })
                    {
                        declaring.Add(read);
                    }
                }

                if (declaring.Count == 0)
                {
                    return Refuse($"no assembly in the folder has a class marked [IngestConnector] (expected {folderName}.dll, or one assembly declaring a connector)");
                }

                if (declaring.Count > 1)
                {
                    return Refuse($"more than one assembly declares a connector ({string.Join(", ", declaring.Select(d => Path.GetFileName(d.Path)))}); a plugin folder holds exactly one connector");
                }

                main = declaring[0];
            }

            var file = Path.GetFileName(main.Path);
            if (main.Connectors.Count > 1)
            {
                return Refuse($"{file} has {main.Connectors.Count} classes marked [IngestConnector] ({string.Join(", ", main.Connectors.Select(c => c.TypeName))}); a plugin holds exactly one connector");
            }

            var declaration = main.Connectors[0];
            if (string.IsNullOrWhiteSpace(declaration.Name))
            {
                return Refuse($"class {declaration.TypeName} in {file} has an empty [IngestConnector] name");
            }

            name = declaration.Name;
            var version = main.PluginVersion;
            if (main.SdkVersion is null)
            {
                return Refuse($"plugin '{name}' {version} does not reference Ingest.Sdk");
            }

            if (Incompatibility(name, version, main.SdkVersion, host) is { } incompatible)
            {
                return Refuse(incompatible);
            }

            if (loaded.TryGetValue(name, out var first))
            {
                return Refuse($"connector name '{name}' is already taken by the plugin in '{first.Directory}'; the plugin in '{folder}' is refused (connector names must be unique)");
            }

            var context = new PluginLoadContext(main.Path, name);
            Assembly assembly;
            try
            {
                assembly = context.LoadFromAssemblyPath(main.Path);
            }
            catch (Exception e)
            {
                return Refuse($"plugin '{name}': {file} could not be loaded: {Describe(e)}");
            }

            var type = assembly.GetType(declaration.TypeName, throwOnError: false);
            if (type is null)
            {
                return Refuse($"plugin '{name}': class {declaration.TypeName} was not found in {file}");
            }

            if (!typeof(ISourceConnector).IsAssignableFrom(type))
            {
                return Refuse($"plugin '{name}': class {type.FullName} does not implement {typeof(ISourceConnector).FullName}");
            }

            if (!type.IsClass || type.IsAbstract || type.ContainsGenericParameters)
            {
                return Refuse($"plugin '{name}': class {type.FullName} cannot be created (it is abstract, generic or not a class)");
            }

            var constructor = type.GetConstructor(BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes);
            if (constructor is null)
            {
                return Refuse($"plugin '{name}': class {type.FullName} has no public parameterless constructor; the host creates connectors with one");
            }

            ISourceConnector connector;
            try
            {
                connector = (ISourceConnector)constructor.Invoke(null);
            }
            catch (Exception e)
            {
                return Refuse($"plugin '{name}': the constructor of {type.FullName} threw {Describe(e)}");
            }

            var info = new PluginInfo(name, version, main.SdkVersion, declaration.Description, declaration.DocumentationUrl, folder, connector);
            return (info, null);
        }
        catch (Exception e)
        {
            return Refuse($"the plugin could not be loaded: {Describe(e)}");
        }
    }

    /// <summary>The exception that matters (not the reflection wrapper), with its type and message.</summary>
    private static string Describe(Exception e)
    {
        while (e is TargetInvocationException or TypeInitializationException && e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return $"{e.GetType().FullName}: {e.Message}";
    }
}
