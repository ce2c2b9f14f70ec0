using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Engine.Plugins;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Tests.Plugins;

public sealed class PluginHostTests : IDisposable
{
    // The messages the test plugins throw (the plugins are not referenced: they only exist as plugin folders).
    private const string ThrowingMessage = "the throwing plugin cannot start: license file missing";
    private const string FailsRunningMessage = "source connection reset after the first batch";

    private static readonly JsonElement EmptyConfig = JsonDocument.Parse("{}").RootElement;

    private readonly string _temp = Path.Combine(Path.GetTempPath(), "ingest-plugin-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_temp))
        {
            Directory.Delete(_temp, recursive: true);
        }
    }

    private static string RepoRoot { get; } = FindRepoRoot();

    private static string TestPluginsDirectory => Path.Combine(RepoRoot, "artifacts", "test-plugins");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No folder holding Ingest.sln above {AppContext.BaseDirectory}.");
    }

    private static PluginHost LoadTestPlugins(Version? hostSdkVersion = null) => PluginHost.Load([TestPluginsDirectory], hostSdkVersion: hostSdkVersion);

    private static PluginInfo Require(PluginHost host, string name) =>
        host.Find(name) ?? throw new Xunit.Sdk.XunitException(
            $"Plugin '{name}' did not load. Failures: {string.Join("; ", host.Failures.Select(f => f.Reason))}");

    private static ReadContext Context(string connection) => new(connection, EmptyConfig, [], null, NullConnectorLog.Instance);

    /// <summary>Reads to the end, returning the JSON column of each batch and the checkpoints, in order.</summary>
    private static async Task<List<string>> ReadAllAsync(ISourceConnector connector, string connection)
    {
        var seen = new List<string>();
        await using var reader = connector.OpenReader(Context(connection));
        await foreach (var message in reader.ReadAsync(CancellationToken.None))
        {
            switch (message)
            {
                case ChangeBatch batch:
                    using (batch)
                    {
                        var column = batch.Data.Schema.GetFieldIndex("json");
                        seen.Add(column >= 0 ? "batch:" + ((StringArray)batch.Data.Column(column)).GetString(0) : "batch:" + batch.Length);
                    }

                    break;
                case Checkpoint checkpoint:
                    seen.Add("checkpoint:" + checkpoint.State.GetRawText());
                    break;
            }
        }

        return seen;
    }

    private static Assembly NewtonsoftIn(PluginInfo plugin)
    {
        var context = AssemblyLoadContext.GetLoadContext(plugin.Connector.GetType().Assembly)!;
        return Assert.Single(context.Assemblies, a => a.GetName().Name == "Newtonsoft.Json");
    }

    [Fact]
    public async Task Json_plugins_run_side_by_side_each_with_its_own_Newtonsoft_version()
    {
        using var host = LoadTestPlugins();
        var old = Require(host, "json-old");
        var @new = Require(host, "json-new");

        var checks = await Task.WhenAll(
            old.Connector.CheckAsync(EmptyConfig, CancellationToken.None),
            @new.Connector.CheckAsync(EmptyConfig, CancellationToken.None));
        var reads = await Task.WhenAll(ReadAllAsync(old.Connector, "a"), ReadAllAsync(@new.Connector, "b"));

        Assert.True(checks[0].Succeeded);
        Assert.Contains("Newtonsoft.Json 12.0.0.0", checks[0].Message, StringComparison.Ordinal);
        Assert.Contains("Newtonsoft.Json 13.0.0.0", checks[1].Message, StringComparison.Ordinal);

        // Each read yields one batch holding the JSON its own Newtonsoft wrote, then a checkpoint.
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(2, reads[i].Count);
            Assert.StartsWith("batch:", reads[i][0], StringComparison.Ordinal);
            using var json = JsonDocument.Parse(reads[i][0]["batch:".Length..]);
            Assert.Equal(i == 0 ? "json-old" : "json-new", json.RootElement.GetProperty("connector").GetString());
            Assert.Equal(i == 0 ? "12.0.0.0" : "13.0.0.0", json.RootElement.GetProperty("newtonsoft").GetString());
            Assert.Equal("""checkpoint:{"offset":1}""", reads[i][1]);
        }

        var oldNewtonsoft = NewtonsoftIn(old);
        var newNewtonsoft = NewtonsoftIn(@new);
        Assert.Equal(new Version(12, 0, 0, 0), oldNewtonsoft.GetName().Version);
        Assert.Equal(new Version(13, 0, 0, 0), newNewtonsoft.GetName().Version);
        Assert.StartsWith(old.Directory, oldNewtonsoft.Location, StringComparison.Ordinal);
        Assert.StartsWith(@new.Directory, newNewtonsoft.Location, StringComparison.Ordinal);
    }

    [Fact]
    public void Plugins_see_the_hosts_Ingest_Sdk_and_Arrow_assemblies()
    {
        using var host = LoadTestPlugins();
        var sdk = typeof(ISourceConnector).Assembly;
        var arrow = typeof(RecordBatch).Assembly;

        foreach (var name in new[] { "json-old", "json-new" })
        {
            var plugin = Require(host, name);
            var pluginAssembly = plugin.Connector.GetType().Assembly;
            var context = AssemblyLoadContext.GetLoadContext(pluginAssembly)!;

            Assert.NotSame(AssemblyLoadContext.Default, context);
            Assert.Same(sdk, plugin.Connector.GetType().GetInterface(nameof(ISourceConnector))!.Assembly);
            Assert.Same(sdk, context.LoadFromAssemblyName(new AssemblyName("Ingest.Sdk")));
            Assert.Same(arrow, context.LoadFromAssemblyName(new AssemblyName("Apache.Arrow")));
            Assert.DoesNotContain(context.Assemblies, a => a.GetName().Name is "Ingest.Sdk" or "Apache.Arrow");
        }
    }

    [Fact]
    public void Plugin_metadata_comes_from_its_attribute_and_assembly()
    {
        using var host = LoadTestPlugins();
        var old = Require(host, "json-old");

        Assert.Equal("Uses Newtonsoft.Json 12.", old.Description);
        Assert.Equal("https://example.invalid/json-old", old.DocumentationUrl);
        Assert.Equal("0.1.0", old.Version); // informational version, "+commit" suffix stripped
        Assert.Equal(typeof(ISourceConnector).Assembly.GetName().Version, old.SdkVersion);
        Assert.Equal(Path.Combine(TestPluginsDirectory, "Ingest.TestPlugins.JsonOld"), old.Directory);
        Assert.Same(old, host.Find("JSON-OLD"));
        Assert.Null(host.Find("no-such-connector"));
    }

    [Fact]
    public void Throwing_plugin_is_refused_with_its_exception_message_while_the_others_load()
    {
        using var host = LoadTestPlugins();

        var failure = Assert.Single(host.Failures, f => f.Name == "throwing");
        Assert.Equal(Path.Combine(TestPluginsDirectory, "Ingest.TestPlugins.Throwing"), failure.Directory);
        Assert.Contains(ThrowingMessage, failure.Reason, StringComparison.Ordinal);
        Assert.Contains("constructor", failure.Reason, StringComparison.Ordinal);
        Assert.Equal(["fails-running", "json-new", "json-old"], host.Plugins.Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Null(host.Find("throwing"));
    }

    [Fact]
    public void Plugin_without_a_public_parameterless_constructor_is_refused()
    {
        using var host = LoadTestPlugins();

        var failure = Assert.Single(host.Failures, f => f.Name == "no-default-ctor");
        Assert.Equal(
            "plugin 'no-default-ctor': class Ingest.TestPlugins.NoDefaultConstructor.NoDefaultConstructorConnector has no public parameterless constructor; the host creates connectors with one",
            failure.Reason);
    }

    [Fact]
    public void Assembly_with_two_connector_classes_is_refused_naming_them()
    {
        using var host = LoadTestPlugins();

        var failure = Assert.Single(host.Failures, f => f.Directory.EndsWith("Ingest.TestPlugins.TwoConnectors", StringComparison.Ordinal));
        Assert.Null(failure.Name);
        Assert.Contains("2 classes marked [IngestConnector]", failure.Reason, StringComparison.Ordinal);
        Assert.Contains("Ingest.TestPlugins.TwoConnectors.FirstConnector", failure.Reason, StringComparison.Ordinal);
        Assert.Contains("Ingest.TestPlugins.TwoConnectors.SecondConnector", failure.Reason, StringComparison.Ordinal);
        Assert.Null(host.Find("first-of-two"));
        Assert.Null(host.Find("second-of-two"));
    }

    [Fact]
    public void Host_with_another_major_sdk_version_refuses_every_plugin_saying_why()
    {
        using var host = LoadTestPlugins(new Version(2, 0, 0));

        Assert.Empty(host.Plugins);
        Assert.Equal(6, host.Failures.Count);
        var old = Assert.Single(host.Failures, f => f.Name == "json-old");
        Assert.Equal(
            $"plugin 'json-old' 0.1.0 was built against Ingest.Sdk {typeof(Ingest.Sdk.Connectors.ISourceConnector).Assembly.GetName().Version!.ToString(3)}; this host provides 2.0.0 (major versions must match)",
            old.Reason);

        // Every plugin with one connector is refused for its version; the two-connector folder for having two.
        Assert.Equal(
            ["fails-running", "json-new", "json-old", "no-default-ctor", "throwing"],
            host.Failures.Where(f => f.Reason.EndsWith("(major versions must match)", StringComparison.Ordinal)).Select(f => f.Name).Order(StringComparer.Ordinal));

        // The check happens before any plugin code runs: the throwing constructor never got the chance.
        Assert.DoesNotContain(host.Failures, f => f.Reason.Contains(ThrowingMessage, StringComparison.Ordinal));
    }

    [Fact]
    public void Host_with_a_newer_minor_sdk_version_accepts_the_plugins()
    {
        using var host = LoadTestPlugins(new Version(1, 3, 0));

        Assert.NotNull(host.Find("json-old"));
        Assert.NotNull(host.Find("fails-running"));
    }

    [Theory]
    [InlineData("1.0.0", "1.0.0", null)]
    [InlineData("1.0.0", "1.4.0", null)]
    [InlineData("1.2.0", "1.4.7", null)]
    [InlineData("1.3.0", "1.2.0", "plugin 'x' 0.5.0 was built against Ingest.Sdk 1.3.0; this host provides 1.2.0 (the plugin needs a newer minor version than the host's: upgrade the host or use an older plugin)")]
    [InlineData("2.0.0", "1.0.0", "plugin 'x' 0.5.0 was built against Ingest.Sdk 2.0.0; this host provides 1.0.0 (major versions must match)")]
    [InlineData("0.9.0", "1.0.0", "plugin 'x' 0.5.0 was built against Ingest.Sdk 0.9.0; this host provides 1.0.0 (major versions must match)")]
    public void Compatibility_requires_same_major_and_no_newer_minor(string plugin, string host, string? expected)
    {
        Assert.Equal(expected, PluginHost.Incompatibility("x", "0.5.0", Version.Parse(plugin), Version.Parse(host)));
    }

    [Fact]
    public void Second_plugin_with_a_taken_name_is_refused_naming_both_folders()
    {
        var first = CopyPlugin("Ingest.TestPlugins.JsonOld", "a-json");
        var second = CopyPlugin("Ingest.TestPlugins.JsonOld", "b-json");

        using var host = PluginHost.Load([_temp]);

        var loaded = Assert.Single(host.Plugins);
        Assert.Equal("json-old", loaded.Name);
        Assert.Equal(first, loaded.Directory);
        var failure = Assert.Single(host.Failures);
        Assert.Equal("json-old", failure.Name);
        Assert.Equal(second, failure.Directory);
        Assert.Contains("already taken", failure.Reason, StringComparison.Ordinal);
        Assert.Contains(first, failure.Reason, StringComparison.Ordinal);
        Assert.Contains(second, failure.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Folder_whose_assemblies_declare_no_connector_is_refused_and_empty_folders_are_ignored()
    {
        var folder = Path.Combine(_temp, "just-a-library");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(TestPluginsDirectory, "Ingest.TestPlugins.JsonNew", "Newtonsoft.Json.dll"), Path.Combine(folder, "Newtonsoft.Json.dll"));
        Directory.CreateDirectory(Path.Combine(_temp, "empty"));

        using var host = PluginHost.Load([_temp]);

        Assert.Empty(host.Plugins);
        var failure = Assert.Single(host.Failures);
        Assert.Equal(folder, failure.Directory);
        Assert.Null(failure.Name);
        Assert.Contains("[IngestConnector]", failure.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Folder_with_two_connector_assemblies_is_refused()
    {
        var folder = CopyPlugin("Ingest.TestPlugins.JsonOld", "two");
        File.Copy(
            Path.Combine(TestPluginsDirectory, "Ingest.TestPlugins.FailsWhileRunning", "Ingest.TestPlugins.FailsWhileRunning.dll"),
            Path.Combine(folder, "Ingest.TestPlugins.FailsWhileRunning.dll"));

        using var host = PluginHost.Load([_temp]);

        Assert.Empty(host.Plugins);
        var failure = Assert.Single(host.Failures);
        Assert.Contains("more than one assembly declares a connector", failure.Reason, StringComparison.Ordinal);
        Assert.Contains("Ingest.TestPlugins.JsonOld.dll", failure.Reason, StringComparison.Ordinal);
        Assert.Contains("Ingest.TestPlugins.FailsWhileRunning.dll", failure.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_directory_is_a_failure_not_an_exception_and_other_directories_still_load()
    {
        var missing = Path.Combine(_temp, "does-not-exist");

        using var host = PluginHost.Load([missing, TestPluginsDirectory, TestPluginsDirectory + Path.DirectorySeparatorChar]);

        Assert.Contains(host.Failures, f => f.Directory == missing && f.Reason.Contains("does not exist", StringComparison.Ordinal));
        Assert.NotNull(host.Find("json-new"));
        Assert.Equal(3, host.Plugins.Count); // the directory given twice is read once: no duplicate refusals
        Assert.Equal(4, host.Failures.Count);
    }

    [Fact]
    public async Task Plugin_throwing_while_running_throws_to_its_caller_and_other_plugins_keep_working()
    {
        using var host = LoadTestPlugins();
        var failing = Require(host, "fails-running");
        var healthy = Require(host, "json-new");

        var batches = 0;
        var error = await Assert.ThrowsAsync<IOException>(async () =>
        {
            await using var reader = failing.Connector.OpenReader(Context("failing"));
            await foreach (var message in reader.ReadAsync(CancellationToken.None))
            {
                (message as IDisposable)?.Dispose();
                batches++;
            }
        });

        Assert.Equal(FailsRunningMessage, error.Message);
        Assert.Equal(1, batches);
        Assert.True((await failing.Connector.CheckAsync(EmptyConfig, CancellationToken.None)).Succeeded);
        var read = await ReadAllAsync(healthy.Connector, "healthy");
        Assert.Equal(2, read.Count);
        Assert.True((await healthy.Connector.CheckAsync(EmptyConfig, CancellationToken.None)).Succeeded);
    }

    [Fact]
    public async Task Sample_connector_loads_from_artifacts_plugins()
    {
        using var host = PluginHost.Load([Path.Combine(RepoRoot, "artifacts", "plugins")]);

        var sample = Require(host, "sample");
        Assert.Equal(Path.Combine(RepoRoot, "artifacts", "plugins", "Ingest.Connectors.Sample"), sample.Directory);
        Assert.NotSame(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(sample.Connector.GetType().Assembly));
        var catalog = await sample.Connector.DiscoverAsync(EmptyConfig, CancellationToken.None);
        Assert.NotEmpty(catalog.Streams);
    }

    [Fact]
    public void Default_directories_come_from_INGEST_PLUGINS_else_the_app_folder_plus_the_build_metadata()
    {
        var a = Path.Combine(_temp, "a");
        var b = Path.Combine(_temp, "b");
        var appFolder = Path.Combine(_temp, "app");
        Directory.CreateDirectory(Path.Combine(appFolder, "plugins"));
        var ingest = Assembly.Load(new AssemblyName("ingest")); // the host executable, which carries IngestDefaultPluginsPath
        var built = Path.Combine(RepoRoot, "artifacts", "plugins");

        Assert.Equal([a, b, built], PluginHost.DefaultDirectories($"{a}{Path.PathSeparator}{b}{Path.PathSeparator}", appFolder, ingest));
        Assert.Equal([Path.Combine(appFolder, "plugins"), built], PluginHost.DefaultDirectories(null, appFolder, ingest));
        Assert.Equal([Path.Combine(appFolder, "plugins")], PluginHost.DefaultDirectories("", appFolder, typeof(PluginHostTests).Assembly));
        Assert.Empty(PluginHost.DefaultDirectories(null, Path.Combine(_temp, "no-app"), null));
    }

    [Fact]
    public void Loads_and_refusals_are_logged()
    {
        var logger = new ListLogger();

        using var host = PluginHost.Load([TestPluginsDirectory], logger);

        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Information && e.Message.Contains("'json-old' 0.1.0", StringComparison.Ordinal));
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(ThrowingMessage, StringComparison.Ordinal));
        Assert.Equal(host.Failures.Count, logger.Entries.Count(e => e.Level == LogLevel.Warning));
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }

    private string CopyPlugin(string plugin, string folderName)
    {
        var source = Path.Combine(TestPluginsDirectory, plugin);
        var target = Path.Combine(_temp, folderName);
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        return target;
    }
}
