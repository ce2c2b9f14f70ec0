using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Plugins;

internal static partial class PluginHostLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Loaded connector plugin '{Name}' {Version} (Ingest.Sdk {SdkVersion}) from {Directory}")]
    public static partial void PluginLoaded(ILogger logger, string name, string version, string sdkVersion, string directory);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Refused connector plugin in {Directory}: {Reason}")]
    public static partial void PluginRefused(ILogger logger, string directory, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "Looking for connector plugins in {Directory}")]
    public static partial void Scanning(ILogger logger, string directory);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "Skipping {Directory}: it holds no assembly")]
    public static partial void NotAPlugin(ILogger logger, string directory);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Could not dispose connector plugin '{Name}'")]
    public static partial void DisposeFailed(ILogger logger, string name, Exception exception);
}
