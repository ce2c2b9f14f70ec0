using System.Text.Json;
using Ingest.Engine.Config;
using Ingest.Engine.Control;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Plugins;
using Ingest.Sdk.Connectors;
using MassTransit;
using Ingest.Host.Config;

namespace Ingest.Host.Control;

/// <summary>
/// Starts a stored connection on this worker. Every worker receives the command; only the one that holds (or takes)
/// the connection's lease starts it and answers.
/// </summary>
internal sealed class StartConnectionConsumer(IConfigStore store, ConnectionSupervisor supervisor, WorkerLeases leases, BackfillStore backfills, ILogger<StartConnectionConsumer> logger) : IConsumer<StartConnection>
{
    public async Task Consume(ConsumeContext<StartConnection> context)
    {
        var ct = context.CancellationToken;
        var connection = await store.GetAsync(context.Message.Name, ct);
        if (connection is null)
        {
            await context.RespondAsync(new CommandResult(false, [new StartProblem("name", $"no connection '{context.Message.Name}'")]));
            return;
        }

        if (!await leases.TryAcquireAsync(connection.Name, ct))
        {
            return;
        }

        var problems = await supervisor.StartAsync(connection, ct);
        if (problems.Count > 0)
        {
            await leases.ReleaseAsync(connection.Name, ct);
        }
        else
        {
            await BackfillResume.ResumeAsync(backfills, supervisor, connection.Name, logger, ct);
        }

        await context.RespondAsync(new CommandResult(problems.Count == 0, problems));
    }
}

/// <summary>Stops a connection: the worker that has it answers; when no worker holds it, every worker says it is not running.</summary>
internal sealed class StopConnectionConsumer(ConnectionSupervisor supervisor, WorkerLeases leases) : IConsumer<StopConnection>
{
    public async Task Consume(ConsumeContext<StopConnection> context)
    {
        var name = context.Message.Name;
        if (supervisor.Snapshot(name) is { State: not "stopped" })
        {
            var stopped = await supervisor.StopAsync(name, context.CancellationToken);
            await leases.ReleaseAsync(name, context.CancellationToken);
            await context.RespondAsync(new CommandResult(stopped, stopped ? [] : [new StartProblem("name", $"connection '{name}' is not running")]));
            return;
        }

        if (await leases.HeldElsewhereAsync(name, context.CancellationToken))
        {
            return;
        }

        await context.RespondAsync(new CommandResult(false, [new StartProblem("name", $"connection '{name}' is not running")]));
    }
}

/// <summary>Pauses a connection: the worker that runs it answers; when no worker holds it, every worker says it is not running.</summary>
internal sealed class PauseConnectionConsumer(ConnectionSupervisor supervisor, WorkerLeases leases) : IConsumer<PauseConnection>
{
    public async Task Consume(ConsumeContext<PauseConnection> context)
    {
        var name = context.Message.Name;
        if (supervisor.IsRunning(name))
        {
            // The lease stays: a paused connection still belongs to this worker until it stops or resumes.
            var paused = await supervisor.PauseAsync(name, context.CancellationToken);
            await context.RespondAsync(new CommandResult(paused, paused ? [] : [new StartProblem("name", $"connection '{name}' is not running")]));
            return;
        }

        if (await leases.HeldElsewhereAsync(name, context.CancellationToken))
        {
            return;
        }

        await context.RespondAsync(new CommandResult(false, [new StartProblem("name", $"connection '{name}' is not running")]));
    }
}

/// <summary>Runs a connector's Check.</summary>
internal sealed class CheckConnectionConsumer(PluginHost plugins, ISecretProtector protector) : IConsumer<CheckConnection>
{
    public async Task Consume(ConsumeContext<CheckConnection> context)
    {
        var m = context.Message;
        if (plugins.Find(m.Connector) is not { } plugin)
        {
            await context.RespondAsync(new CheckConnectionResult(false, $"unknown connector '{m.Connector}'", "connector"));
            return;
        }

        CheckConnectionResult result;
        try
        {
            using var doc = Plain(m.ConfigJson, protector);
            var r = await plugin.Connector.CheckAsync(doc.RootElement, context.CancellationToken);
            result = new CheckConnectionResult(r.Succeeded, r.Message, Field(r.Field));
        }
        catch (ConnectorException e)
        {
            result = new CheckConnectionResult(false, e.Message, Field(e.Field));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Plugin code: any failure is the check's answer, not the host's.
            result = new CheckConnectionResult(false, $"{e.GetType().Name}: {e.Message}", null);
        }

        await context.RespondAsync(result);
    }

    /// <summary>The configuration with its secrets decrypted, for the connector only.</summary>
    internal static JsonDocument Plain(string configJson, ISecretProtector protector) =>
        JsonDocument.Parse(ConnectionSecrets.Unprotected(System.Text.Json.Nodes.JsonNode.Parse(configJson) as System.Text.Json.Nodes.JsonObject ?? [], protector).ToJsonString());

    internal static string? Field(string? pointer) => pointer is null ? null : "config" + PointerPath(pointer);

    private static string PointerPath(string pointer) =>
        string.Concat(pointer.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(s => int.TryParse(s, out _) ? $"[{s}]" : "." + s));
}

/// <summary>Runs a connector's Discover.</summary>
internal sealed class DiscoverConnectionConsumer(PluginHost plugins, ISecretProtector protector) : IConsumer<DiscoverConnection>
{
    public async Task Consume(ConsumeContext<DiscoverConnection> context)
    {
        var m = context.Message;
        if (plugins.Find(m.Connector) is not { } plugin)
        {
            await context.RespondAsync(new DiscoverConnectionResult(false, $"unknown connector '{m.Connector}'", "connector", []));
            return;
        }

        DiscoverConnectionResult result;
        try
        {
            using var doc = CheckConnectionConsumer.Plain(m.ConfigJson, protector);
            var catalog = await plugin.Connector.DiscoverAsync(doc.RootElement, context.CancellationToken);
            result = new DiscoverConnectionResult(true, null, null, catalog.Streams.Select(Describe).ToList());
        }
        catch (ConnectorException e)
        {
            result = new DiscoverConnectionResult(false, e.Message, CheckConnectionConsumer.Field(e.Field), []);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result = new DiscoverConnectionResult(false, $"{e.GetType().Name}: {e.Message}", null, []);
        }

        await context.RespondAsync(result);
    }

    private static DiscoveredStream Describe(StreamDescriptor s) => new(
        s.Name,
        s.Description,
        s.PrimaryKey,
        s.Schema.Columns.Select(c => new DiscoveredColumn(c.Name, c.Type.DisplayName, c.Nullable)).ToList(),
        s.SupportedSyncModes.Select(x => x.ToString().ToLowerInvariant()).ToList(),
        Modes(s),
        s.EstimatedRows,
        s.Backfill is not null,
        s.Backfill?.FilterHelp,
        s.Backfill?.FilterExample);

    // The default first (merge where there is a key); the binder checks the same rules when the connection starts.
    private static List<string> Modes(StreamDescriptor s)
    {
        var modes = new List<SinkMode>();
        if (s.PrimaryKey.Count > 0)
        {
            modes.Add(SinkMode.Merge);
        }

        modes.Add(SinkMode.Append);
        if (s.PrimaryKey.Count > 0)
        {
            modes.Add(SinkMode.History);
        }

        if (!s.SupportedSyncModes.Contains(SyncMode.Cdc))
        {
            modes.Add(SinkMode.Overwrite);
        }

        return modes.Select(m => m.ToString().ToLowerInvariant()).ToList();
    }
}

/// <summary>Starts a backfill on the worker that runs the connection; when no worker runs it, every worker says so.</summary>
internal sealed class RunBackfillConsumer(ConnectionSupervisor supervisor, WorkerLeases leases) : IConsumer<RunBackfill>
{
    public async Task Consume(ConsumeContext<RunBackfill> context)
    {
        var m = context.Message;
        if (supervisor.IsRunning(m.Connection))
        {
            try
            {
                var b = await supervisor.RequestBackfillAsync(m.Connection, m.Stream, m.Filter, m.Id, context.CancellationToken);
                await context.RespondAsync(new RunBackfillResult(b, []));
            }
            catch (BackfillRejectedException e)
            {
                await context.RespondAsync(new RunBackfillResult(null, [new StartProblem(e.Field, e.Message)]));
            }

            return;
        }

        if (await leases.HeldElsewhereAsync(m.Connection, context.CancellationToken))
        {
            return;
        }

        await context.RespondAsync(new RunBackfillResult(null, [new StartProblem("connection", $"connection '{m.Connection}' is not running; start it, then request the backfill")]));
    }
}

/// <summary>Cancels a backfill on the worker that runs the connection.</summary>
internal sealed class CancelBackfillConsumer(ConnectionSupervisor supervisor, WorkerLeases leases) : IConsumer<CancelBackfill>
{
    public async Task Consume(ConsumeContext<CancelBackfill> context)
    {
        var m = context.Message;
        if (supervisor.IsRunning(m.Connection))
        {
            var cancelled = await supervisor.CancelBackfillAsync(m.Connection, m.Id, context.CancellationToken);
            await context.RespondAsync(new CommandResult(cancelled, cancelled ? [] : [new StartProblem("id", $"backfill '{m.Id}' of '{m.Connection}' is not running")]));
            return;
        }

        if (await leases.HeldElsewhereAsync(m.Connection, context.CancellationToken))
        {
            return;
        }

        await context.RespondAsync(new CommandResult(false, [new StartProblem("connection", $"connection '{m.Connection}' is not running")]));
    }
}

/// <summary>Hands a connection's unfinished backfills (persisted by their sagas) back to it when it starts on this worker.</summary>
internal static partial class BackfillResume
{
    public static async Task ResumeAsync(BackfillStore store, ConnectionSupervisor supervisor, string connection, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var (_, b) in await store.ListAsync(connection, cancellationToken))
        {
            if (b.Finished)
            {
                continue;
            }

            try
            {
                await supervisor.ResumeBackfillAsync(connection, b, cancellationToken);
                LogResumed(logger, connection, b.Id, b.Stream);
            }
            catch (BackfillRejectedException e)
            {
                LogNotResumed(logger, connection, b.Id, e.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Connection}: backfill {Id} of stream {Stream} handed back to the connection (it resumes from its checkpoint)")]
    private static partial void LogResumed(ILogger logger, string connection, string id, string stream);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Connection}: backfill {Id} cannot resume: {Error}")]
    private static partial void LogNotResumed(ILogger logger, string connection, string id, string error);
}
