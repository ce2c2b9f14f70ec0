using System.Collections.Concurrent;
using System.Threading.Channels;
using MassTransit;

namespace Ingest.Host.Control;

/// <summary>One line of a connection's log.</summary>
/// <param name="At">When it was written.</param>
/// <param name="Level">debug, information, warning, error or critical.</param>
/// <param name="Category">The logger's category (e.g. <c>Ingest.Engine.Runner</c>).</param>
/// <param name="Message">The formatted message, with the exception's type and message when there is one.</param>
public sealed record LogLine(DateTimeOffset At, string Level, string Category, string Message);

/// <summary>Log lines a worker wrote for one connection since its last report (published about twice a second).</summary>
/// <param name="Connection">The connection.</param>
/// <param name="Lines">The lines, oldest first.</param>
public sealed record ConnectionLogged(string Connection, IReadOnlyList<LogLine> Lines);

/// <summary>
/// A logger provider on worker nodes that keeps the lines the engine writes for a connection: those whose message has a
/// <c>Connection</c> argument (every engine and connector line names its connection so) or that run in a scope with one.
/// They wait in a bounded queue (the oldest go first when it is full: logging never blocks a run) until the
/// <see cref="WorkerService"/> publishes them as <see cref="ConnectionLogged"/>, so every web node sees the log of
/// connections that run on any worker.
/// </summary>
internal sealed class ConnectionLogCapture : ILoggerProvider, ISupportExternalScope
{
    private const string Key = "Connection";
    private readonly Channel<(string Connection, LogLine Line)> _pending =
        Channel.CreateBounded<(string, LogLine)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private IExternalScopeProvider? _scopes;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    /// <summary>Takes every waiting line, grouped by connection.</summary>
    public IReadOnlyList<ConnectionLogged> Drain()
    {
        var byConnection = new Dictionary<string, List<LogLine>>(StringComparer.Ordinal);
        while (_pending.Reader.TryRead(out var item))
        {
            if (!byConnection.TryGetValue(item.Connection, out var list))
            {
                byConnection[item.Connection] = list = [];
            }

            list.Add(item.Line);
        }

        return byConnection.Select(kv => new ConnectionLogged(kv.Key, kv.Value)).ToList();
    }

    public void Dispose() => _pending.Writer.TryComplete();

    private static string? ConnectionOf(object? state) =>
        state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? pairs.FirstOrDefault(p => p.Key == Key).Value as string
            : null;

    private sealed class Logger(ConnectionLogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel is not LogLevel.None and not LogLevel.Trace;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var connection = ConnectionOf(state);
            if (connection is null && owner._scopes is { } scopes)
            {
                scopes.ForEachScope((scope, _) => connection ??= ConnectionOf(scope), (object?)null);
            }

            if (string.IsNullOrEmpty(connection))
            {
                return;
            }

            var message = formatter(state, exception);
            if (exception is not null && !message.Contains(exception.Message, StringComparison.Ordinal))
            {
                message += $" ({exception.GetType().Name}: {exception.Message})";
            }

            owner._pending.Writer.TryWrite((connection, new LogLine(DateTimeOffset.UtcNow, LevelName(logLevel), category, message)));
        }
    }

    internal static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Debug => "debug",
        LogLevel.Information => "information",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        LogLevel.Critical => "critical",
        _ => "trace",
    };
}

/// <summary>The web node's recent log lines per connection (a bounded ring buffer each), fed by <see cref="ConnectionLogged"/>.</summary>
public sealed class ConnectionLogBook
{
    /// <summary>Lines kept per connection.</summary>
    public const int Capacity = 1000;

    /// <summary>The level names, least severe first.</summary>
    public static readonly IReadOnlyList<string> Levels = ["debug", "information", "warning", "error", "critical"];

    private readonly ConcurrentDictionary<string, Queue<LogLine>> _lines = new(StringComparer.Ordinal);

    /// <summary>Fires with the connection's name after lines arrived.</summary>
    public event Action<string>? Changed;

    /// <summary>Adds a worker's lines.</summary>
    public void Append(ConnectionLogged logged)
    {
        ArgumentNullException.ThrowIfNull(logged);
        var q = _lines.GetOrAdd(logged.Connection, _ => new Queue<LogLine>());
        lock (q)
        {
            foreach (var line in logged.Lines)
            {
                q.Enqueue(line);
                if (q.Count > Capacity)
                {
                    q.Dequeue();
                }
            }
        }

        Changed?.Invoke(logged.Connection);
    }

    /// <summary>The newest <paramref name="limit"/> lines at <paramref name="minimumLevel"/> or above, oldest first.</summary>
    public IReadOnlyList<LogLine> Lines(string connection, string minimumLevel, int limit)
    {
        if (!_lines.TryGetValue(connection, out var q))
        {
            return [];
        }

        var min = Rank(minimumLevel);
        List<LogLine> all;
        lock (q)
        {
            all = q.Where(l => Rank(l.Level) >= min).ToList();
        }

        return all.Count <= limit ? all : all.GetRange(all.Count - limit, limit);
    }

    /// <summary>Forgets a deleted connection's lines.</summary>
    public void Forget(string connection) => _lines.TryRemove(connection, out _);

    /// <summary>The level's rank, or -1 when it is not a level name.</summary>
    public static int Rank(string level)
    {
        for (var i = 0; i < Levels.Count; i++)
        {
            if (string.Equals(Levels[i], level, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>Feeds the <see cref="ConnectionLogBook"/> from the bus.</summary>
internal sealed class ConnectionLogConsumer(ConnectionLogBook book) : IConsumer<ConnectionLogged>
{
    public Task Consume(ConsumeContext<ConnectionLogged> context)
    {
        book.Append(context.Message);
        return Task.CompletedTask;
    }
}
