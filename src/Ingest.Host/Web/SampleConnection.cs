using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Plugins;
using Ingest.Host.Config;

namespace Ingest.Host.Web;

/// <summary>The connection a first start creates so that a newcomer sees data flowing at once (JOURNEYS.md, journey 1).</summary>
internal static class SampleConnection
{
    public const string Name = "sample";
    private const string CreatedKey = "sample.created";

    /// <summary>Creates and enables the sample connection the first time a data folder is used (never again, even if it is deleted).</summary>
    public static async Task EnsureAsync(IConfigStore store, PluginHost plugins, ServeOptions options, CancellationToken cancellationToken)
    {
        if (await store.GetSettingAsync(CreatedKey, cancellationToken) is not null || plugins.Find("sample") is not { } plugin)
        {
            return;
        }

        // A small shop that keeps changing about five times a second: every stream mirrored (merge).
        var config = new JsonObject { ["customers"] = 200, ["products"] = 50, ["orders"] = 500, ["changes"] = 500, ["changesPerSecond"] = 5, ["batchSize"] = 500 };
        using var doc = JsonDocument.Parse(config.ToJsonString());
        var catalog = await plugin.Connector.DiscoverAsync(doc.RootElement, cancellationToken);
        var streams = catalog.Streams.Select(s => new StreamChoice(s.Name, s.PrimaryKey.Count > 0 ? SinkMode.Merge : SinkMode.Append)).ToList();
        var now = DateTimeOffset.UtcNow;
        await store.CreateAsync(new StoredConnection(Name, plugin.Name, config, streams, options.LakePath, Enabled: true, now, now), plugin.Connector.Spec.SecretPaths(), cancellationToken);
        await store.SetSettingAsync(CreatedKey, now.ToString("O", System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
    }
}
