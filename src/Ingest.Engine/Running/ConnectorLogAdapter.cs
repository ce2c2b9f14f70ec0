using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Running;

/// <summary>Writes a connector's log lines into the host's log, under its connection's name (both transports use it).</summary>
internal sealed partial class ConnectorLogAdapter(ILogger logger, string connection) : IConnectorLog
{
    public void Write(ConnectorLogLevel level, string message, Exception? exception = null)
    {
        var l = level switch
        {
            ConnectorLogLevel.Debug => LogLevel.Debug,
            ConnectorLogLevel.Information => LogLevel.Information,
            ConnectorLogLevel.Warning => LogLevel.Warning,
            _ => LogLevel.Error,
        };
        LogConnector(logger, l, exception, connection, message);
    }

    [LoggerMessage(Message = "{Connection} (connector): {Message}")]
    private static partial void LogConnector(ILogger logger, LogLevel level, Exception? exception, string connection, string message);
}
