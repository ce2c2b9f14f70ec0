using Confluent.Kafka;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Microsoft.Extensions.Logging;

namespace Ingest.Engine.Kafka;

/// <summary>
/// The engine's restart path for the Kafka halves (as <see cref="ConnectionRunner"/> does for embedded connections): a transient
/// failure (a broker down, a coordinator moving, a request timing out, a transaction that must be aborted) restarts the half
/// after a doubling delay, up to <see cref="RunOptions.MaxAttempts"/> restarts without progress; anything else fails it.
/// A restarted half resumes exactly: the source from the offsets topic, the sink from its tables' txn versions.
/// </summary>
internal static partial class KafkaRetry
{
    private static readonly HashSet<ErrorCode> TransientCodes =
    [
        ErrorCode.Local_Transport, ErrorCode.Local_AllBrokersDown, ErrorCode.Local_TimedOut, ErrorCode.Local_MsgTimedOut,
        ErrorCode.Local_TimedOutQueue, ErrorCode.Local_Retry, ErrorCode.Local_Outdated, ErrorCode.RequestTimedOut, ErrorCode.NetworkException,
        ErrorCode.LeaderNotAvailable, ErrorCode.NotLeaderForPartition, ErrorCode.BrokerNotAvailable, ErrorCode.GroupCoordinatorNotAvailable,
        ErrorCode.NotCoordinatorForGroup, ErrorCode.GroupLoadInProgress, ErrorCode.ConcurrentTransactions, ErrorCode.NotEnoughReplicas,
        ErrorCode.NotEnoughReplicasAfterAppend, ErrorCode.KafkaStorageError, ErrorCode.UnknownTopicOrPart, ErrorCode.Local_UnknownPartition,
        ErrorCode.Local_State,
    ];

    /// <summary>Whether a failure of a Kafka half is worth a restart.</summary>
    public static ErrorKind Classify(Exception e) => e switch
    {
        KafkaException { Error.IsFatal: true } => ErrorKind.Fatal,
        KafkaTxnRequiresAbortException or KafkaRetriableException => ErrorKind.Transient,
        KafkaException ke => TransientCodes.Contains(ke.Error.Code) ? ErrorKind.Transient : ErrorKind.Fatal,
        AggregateException { InnerExceptions.Count: 1 } ae => Classify(ae.InnerExceptions[0]),
        _ => ConnectionRunner.Classify(e),
    };

    /// <summary>A failure as one line.</summary>
    public static string Describe(Exception e) => e is KafkaException ke ? $"Kafka: {ke.Error.Reason} ({ke.Error.Code})" : ConnectionRunner.Describe(e);

    /// <summary>Runs <paramref name="attempt"/> until it ends, restarting it after transient failures.</summary>
    /// <param name="name">The connection or input, for logs.</param>
    /// <param name="half">"kafka source", "kafka sink" or "kafka input".</param>
    /// <param name="attempt">One run; it sets the box when it committed something (which resets the restart count).</param>
    /// <param name="options">Retry limits.</param>
    /// <param name="status">Where the state, restarts and error go.</param>
    /// <param name="logger">Where logs go.</param>
    /// <param name="stop">Stops the run (then Stopped, never a failure).</param>
    public static Task<ConnectionState> RunAsync(string name, string half, Func<System.Runtime.CompilerServices.StrongBox<bool>, CancellationToken, Task<ConnectionState>> attempt,
        RunOptions options, ConnectionStatus status, ILogger logger, CancellationToken stop)
    {
        return RestartLoop.RunAsync(attempt, options, status, Classify, Describe,
            (restart, delay, e, _) =>
            {
                LogRetry(logger, name, half, restart, options.MaxAttempts, delay.TotalSeconds, Describe(e));
                return Task.CompletedTask;
            },
            (e, _) =>
            {
                status.State = ConnectionState.Failed;
                status.Error = Describe(e);
                // An unexpected exception (not the connector's or the transport's own) is a bug: its stack goes to the log.
                LogFailed(logger, name, half, status.Error, e is ConnectorException or KafkaException ? null : e);
                return Task.FromResult(ConnectionState.Failed);
            },
            stop);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Name} ({Half}): transient failure, restart {Attempt}/{Max} in {Seconds} s: {Error}")]
    private static partial void LogRetry(ILogger logger, string name, string half, int attempt, int max, double seconds, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Name} ({Half}): failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string name, string half, string error, Exception? exception);
}
