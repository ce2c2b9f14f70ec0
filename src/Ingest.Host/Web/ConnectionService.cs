using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Ingest.Engine.Config;
using Ingest.Engine.Control;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Plugins;
using Ingest.Host.Control;
using MassTransit;
using Ingest.Host.Config;

namespace Ingest.Host.Web;

/// <summary>A connector in the catalog.</summary>
public sealed record ConnectorView(string Name, string Version, string SdkVersion, string Description, string DocumentationUrl, JsonObject ConfigSchema, IReadOnlyList<string> SecretFields);

/// <summary>A stream selection as clients send and see it.</summary>
/// <param name="Name">The stream.</param>
/// <param name="Mode"><c>merge</c>, <c>append</c>, <c>history</c> or <c>overwrite</c>.</param>
/// <param name="Table">The table's path in the lake (<c>folder/table</c>), or null for <c>&lt;connection&gt;/&lt;stream&gt;</c>.</param>
/// <param name="Columns">The columns written to the table (merge and history must keep the key), or null for every column.</param>
public sealed record StreamChoiceView(
    string Name,
    string Mode,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Table = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Columns = null);

/// <summary>What a client sends to create or change a connection.</summary>
/// <param name="Name">The connection's name (<c>[a-z0-9_-]+</c>).</param>
/// <param name="Connector">The connector.</param>
/// <param name="Config">The configuration; a secret equal to the mask keeps its saved value.</param>
/// <param name="Streams">The selected streams, or null for all.</param>
public sealed record ConnectionInput(string? Name, string? Connector, JsonObject? Config, IReadOnlyList<StreamChoiceView>? Streams);

/// <summary>A connection as clients see it: secrets masked.</summary>
public sealed record ConnectionView(
    string Name,
    string Connector,
    JsonObject Config,
    IReadOnlyList<StreamChoiceView>? Streams,
    string Lake,
    bool Enabled,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    ConnectionStatusView Status);

/// <summary>A connection's live status.</summary>
/// <param name="State">idle, starting, running, retrying, completed, stopped or failed.</param>
/// <param name="Error">The last error.</param>
/// <param name="RowsPerSecond">Rows read per second now.</param>
/// <param name="RowsRead">Rows read in this run.</param>
/// <param name="RowsCommitted">Rows committed in this run.</param>
/// <param name="LastCommitVersion">The newest table version any stream committed.</param>
/// <param name="LastCommitAt">When.</param>
/// <param name="Streams">Per stream.</param>
/// <param name="Rates">Recent rows/s, oldest first.</param>
/// <param name="RecentErrors">Recent errors, newest first.</param>
/// <param name="Figures">
/// The connector's latest figures about the whole connection (e.g. a PostgreSQL slot's <c>retained_wal_bytes</c>),
/// each with its name, label, value and unit; empty when it reports none.
/// </param>
public sealed record ConnectionStatusView(
    string State,
    string? Error,
    double RowsPerSecond,
    long RowsRead,
    long RowsCommitted,
    long? LastCommitVersion,
    DateTimeOffset? LastCommitAt,
    IReadOnlyList<StreamSnapshot> Streams,
    IReadOnlyList<RatePoint> Rates,
    IReadOnlyList<ErrorEntry> RecentErrors,
    IReadOnlyList<Ingest.Sdk.Records.ConnectorFigure> Figures);

/// <summary>A result, or the problems that refused it (field and message) with an HTTP status.</summary>
public sealed record Outcome<T>(T? Value, IReadOnlyList<ConfigProblem> Problems, int Status)
{
    /// <summary>Whether it worked.</summary>
    public bool Ok => Problems.Count == 0;
}

/// <summary>What the UI and the REST API do with connections: validation, secrets, and commands through the bus.</summary>
internal sealed partial class ConnectionService
{
    private readonly IConfigStore _store;
    private readonly PluginHost _plugins;
    private readonly StatusBoard _board;
    private readonly ConnectionLogBook _logs;
    private readonly BackfillStore _backfills;
    private readonly IRequestClient<RunBackfill> _runBackfill;
    private readonly IRequestClient<CancelBackfill> _cancelBackfill;
    private readonly IPublishEndpoint _publish;
    private readonly IRequestClient<StartConnection> _start;
    private readonly IRequestClient<StopConnection> _stop;
    private readonly IRequestClient<CheckConnection> _check;
    private readonly IRequestClient<DiscoverConnection> _discover;
    private readonly IRequestClient<PauseConnection> _pause;
    private readonly CurrentUser _user;
    private readonly ISecretProtector _protector;
    private readonly string _lake;

    public ConnectionService(
        IConfigStore store,
        PluginHost plugins,
        StatusBoard board,
        ConnectionLogBook logs,
        BackfillStore backfills,
        IRequestClient<RunBackfill> runBackfill,
        IRequestClient<CancelBackfill> cancelBackfill,
        IPublishEndpoint publish,
        IRequestClient<StartConnection> start,
        IRequestClient<StopConnection> stop,
        IRequestClient<CheckConnection> check,
        IRequestClient<DiscoverConnection> discover,
        IRequestClient<PauseConnection> pause,
        CurrentUser user,
        ISecretProtector protector,
        ServeOptions options)
    {
        _store = store;
        _plugins = plugins;
        _board = board;
        _logs = logs;
        _backfills = backfills;
        _runBackfill = runBackfill;
        _cancelBackfill = cancelBackfill;
        _publish = publish;
        _start = start;
        _stop = stop;
        _check = check;
        _discover = discover;
        _pause = pause;
        _user = user;
        _protector = protector;
        _lake = options.LakePath;
    }

    [GeneratedRegex("^[a-z0-9_-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9_.-]*/[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]
    private static partial Regex TablePattern();

    /// <summary>Why a stream's table path cannot be used, or null when it can.</summary>
    internal static string? TableProblem(string table) =>
        TablePattern().IsMatch(table) && !table.Split('/').Any(p => p is "." or "..")
            ? null
            : $"expected a table path inside the lake as folder/table (letters, digits, '_', '-', '.'), such as shop/orders_v2, got \"{table}\"";

    /// <summary>The lake folder.</summary>
    public string LakePath => _lake;

    /// <summary>The loaded connectors.</summary>
    public IReadOnlyList<ConnectorView> Connectors() =>
        _plugins.Plugins.OrderBy(p => p.Name, StringComparer.Ordinal).Select(View).ToList();

    /// <summary>One connector, or null.</summary>
    public ConnectorView? Connector(string name) => _plugins.Find(name) is { } p ? View(p) : null;

    private static ConnectorView View(PluginInfo p) =>
        new(p.Name, p.Version, p.SdkVersion.ToString(3), p.Description, p.DocumentationUrl, (JsonObject)p.Connector.Spec.ConfigSchema.DeepClone(), p.Connector.Spec.SecretPaths());

    /// <summary>Every connection.</summary>
    public async Task<IReadOnlyList<ConnectionView>> ListAsync(CancellationToken cancellationToken) =>
        (await _store.ListAsync(cancellationToken)).Select(View).ToList();

    /// <summary>One connection, or null.</summary>
    public async Task<ConnectionView?> GetAsync(string name, CancellationToken cancellationToken) =>
        await _store.GetAsync(name, cancellationToken) is { } c ? View(c) : null;

    /// <summary>Creates a connection (not started).</summary>
    public async Task<Outcome<ConnectionView>> CreateAsync(ConnectionInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var problems = new List<ConfigProblem>();
        if (string.IsNullOrEmpty(input.Name))
        {
            problems.Add(new ConfigProblem("name", "required"));
        }
        else if (!NamePattern().IsMatch(input.Name))
        {
            problems.Add(new ConfigProblem("name", $"'{input.Name}' is not a valid name: use lower-case letters, digits, '_' and '-'"));
        }

        var (config, streams) = Validate(input, null, problems);
        if (problems.Count > 0)
        {
            return Fail<ConnectionView>(problems, 400);
        }

        var now = DateTimeOffset.UtcNow;
        var stored = new StoredConnection(input.Name!, input.Connector!, config!, streams, _lake, false, now, now);
        if (!await SaveNewAsync(stored, "create", cancellationToken))
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"a connection named '{input.Name}' exists already")], 409);
        }

        return new Outcome<ConnectionView>(View(stored), [], 201);
    }

    /// <summary>Stores a new connection (secrets encrypted) and audits it; false when the name is taken.</summary>
    private async Task<bool> SaveNewAsync(StoredConnection stored, string action, CancellationToken cancellationToken)
    {
        var secrets = Secrets(stored.Connector);
        if (!await _store.CreateAsync(stored with { Config = SecretFields.Protected(stored.Config, secrets, _protector) }, secrets, cancellationToken))
        {
            return false;
        }

        var created = new List<ConfigChange> { new("connector", "added", null, JsonValue.Create(stored.Connector).ToJsonString(), false) };
        created.AddRange(Diff(null, stored.Config, secrets));
        if (ConfigDiff.Value("streams", null, StreamsJson(stored.Streams)) is { } sc)
        {
            created.Add(sc);
        }

        await AuditAsync(stored.Name, action, created, cancellationToken);
        return true;
    }

    // The audit's view of a change: secrets (also those inside arrays, which the diff shows whole) never written.
    private static IReadOnlyList<ConfigChange> Diff(JsonObject? before, JsonObject? after, IReadOnlyList<string> patterns)
    {
        var (b, a) = SecretFields.ForAudit(before, after, patterns);
        var pointers = SecretFields.In(before, patterns).Concat(SecretFields.In(after, patterns)).Concat(patterns).Distinct(StringComparer.Ordinal).ToList();
        return ConfigDiff.Compare(b, a, pointers);
    }

    /// <summary>Changes a connection's connector, configuration or streams (a running connection picks them up at its next start).</summary>
    public async Task<Outcome<ConnectionView>> UpdateAsync(string name, ConnectionInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var saved = await _store.GetAsync(name, cancellationToken);
        if (saved is null)
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        var problems = new List<ConfigProblem>();
        if (input.Name is { Length: > 0 } n && n != name)
        {
            problems.Add(new ConfigProblem("name", "a connection cannot be renamed (its tables and progress are named after it)"));
        }

        var (config, streams) = Validate(input with { Connector = input.Connector ?? saved.Connector }, saved, problems);
        if (problems.Count > 0)
        {
            return Fail<ConnectionView>(problems, 400);
        }

        var updated = saved with { Connector = input.Connector ?? saved.Connector, Config = config!, Streams = streams, UpdatedAt = DateTimeOffset.UtcNow };
        await _store.UpdateAsync(updated with { Config = SecretFields.Protected(updated.Config, Secrets(updated.Connector), _protector) }, Secrets(updated.Connector), cancellationToken);
        var changes = new List<ConfigChange>();
        if (ConfigDiff.Value("connector", JsonValue.Create(saved.Connector), JsonValue.Create(updated.Connector)) is { } cc)
        {
            changes.Add(cc);
        }

        // A secret of either connector counts as one: neither value is written to the log.
        changes.AddRange(Diff(saved.Config, updated.Config, Secrets(saved.Connector).Union(Secrets(updated.Connector)).ToList()));
        if (ConfigDiff.Value("streams", StreamsJson(saved.Streams), StreamsJson(updated.Streams)) is { } sc)
        {
            changes.Add(sc);
        }

        await AuditAsync(name, "update", changes, cancellationToken);
        return new Outcome<ConnectionView>(View(updated), [], 200);
    }

    /// <summary>Stops and deletes a connection; its tables stay in the lake.</summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        if (await _store.GetAsync(name, cancellationToken) is null)
        {
            return false;
        }

        await _store.SetEnabledAsync(name, false, cancellationToken);
        await _stop.GetResponse<CommandResult>(new StopConnection(name), cancellationToken, RequestTimeout.After(s: 60));
        var deleted = await _store.DeleteAsync(name, cancellationToken);
        _logs.Forget(name);
        await _backfills.DeleteAsync(name, cancellationToken);
        await AuditAsync(name, "delete", [], cancellationToken);
        return deleted;
    }

    /// <summary>Starts a connection on a worker (and keeps it started across restarts).</summary>
    public async Task<Outcome<ConnectionView>> StartAsync(string name, CancellationToken cancellationToken)
    {
        if (!await _store.SetEnabledAsync(name, true, cancellationToken))
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        var paused = (await _store.GetAsync(name, cancellationToken))?.Paused == true;
        await _store.SetPausedAsync(name, false, cancellationToken);
        var r = await _start.GetResponse<CommandResult>(new StartConnection(name), cancellationToken, RequestTimeout.After(s: 60));
        if (!r.Message.Accepted)
        {
            await _store.SetEnabledAsync(name, false, cancellationToken);
            return Fail<ConnectionView>(r.Message.Problems.Select(p => new ConfigProblem(p.Field, p.Message)).ToList(), 400);
        }

        await AuditAsync(name, paused ? "resume" : "start", [], cancellationToken);

        return new Outcome<ConnectionView>((await GetAsync(name, cancellationToken))!, [], 200);
    }

    /// <summary>Stops a connection after it committed what its last checkpoint covers.</summary>
    public async Task<Outcome<ConnectionView>> StopAsync(string name, CancellationToken cancellationToken)
    {
        if (!await _store.SetEnabledAsync(name, false, cancellationToken))
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        await _store.SetPausedAsync(name, false, cancellationToken);
        await _stop.GetResponse<CommandResult>(new StopConnection(name), cancellationToken, RequestTimeout.After(s: 60));
        await AuditAsync(name, "stop", [], cancellationToken);
        return new Outcome<ConnectionView>((await GetAsync(name, cancellationToken))!, [], 200);
    }

    /// <summary>Pauses a running connection: it stops reading after a commit, stays enabled and shows as paused.</summary>
    public async Task<Outcome<ConnectionView>> PauseAsync(string name, CancellationToken cancellationToken)
    {
        if (await _store.GetAsync(name, cancellationToken) is null)
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        await _store.SetPausedAsync(name, true, cancellationToken);
        var r = await _pause.GetResponse<CommandResult>(new PauseConnection(name), cancellationToken, RequestTimeout.After(s: 60));
        if (!r.Message.Accepted)
        {
            await _store.SetPausedAsync(name, false, cancellationToken);
            return Fail<ConnectionView>([new ConfigProblem("state", $"connection '{name}' is not running, so it cannot pause")], 409);
        }

        await AuditAsync(name, "pause", [], cancellationToken);
        return new Outcome<ConnectionView>((await GetAsync(name, cancellationToken))!, [], 200);
    }

    /// <summary>Resumes a paused connection from the lake's progress.</summary>
    public async Task<Outcome<ConnectionView>> ResumeAsync(string name, CancellationToken cancellationToken)
    {
        var c = await _store.GetAsync(name, cancellationToken);
        if (c is null)
        {
            return Fail<ConnectionView>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        if (!c.Paused)
        {
            return Fail<ConnectionView>([new ConfigProblem("state", $"connection '{name}' is not paused")], 409);
        }

        return await StartAsync(name, cancellationToken);
    }

    /// <summary>
    /// The connection's recent log lines (oldest first, the newest <paramref name="limit"/>) at <paramref name="level"/>
    /// or above (default information).
    /// </summary>
    public async Task<Outcome<IReadOnlyList<LogLine>>> LogAsync(string name, string? level, int limit, CancellationToken cancellationToken)
    {
        if (await _store.GetAsync(name, cancellationToken) is null)
        {
            return Fail<IReadOnlyList<LogLine>>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        var min = string.IsNullOrEmpty(level) ? "information" : level;
        if (ConnectionLogBook.Rank(min) < 0)
        {
            return Fail<IReadOnlyList<LogLine>>([new ConfigProblem("level", $"expected one of {string.Join(", ", ConnectionLogBook.Levels)}, got \"{level}\"")], 400);
        }

        return new Outcome<IReadOnlyList<LogLine>>(_logs.Lines(name, min, limit), [], 200);
    }

    /// <summary>The audit log, newest first (of one connection when <paramref name="connection"/> is given).</summary>
    public Task<IReadOnlyList<AuditEntry>> AuditAsync(string? connection, int limit, CancellationToken cancellationToken) =>
        _store.ListAuditAsync(connection, limit, cancellationToken);

    /// <summary>Rows and bytes per run and stream, newest run first; null when there is no such connection.</summary>
    public async Task<IReadOnlyList<UsageEntry>?> UsageAsync(string name, int limit, CancellationToken cancellationToken) =>
        await _store.GetAsync(name, cancellationToken) is null ? null : await _store.ListUsageAsync(name, limit, cancellationToken);

    private async Task AuditAsync(string connection, string action, IReadOnlyList<ConfigChange> changes, CancellationToken cancellationToken) =>
        await _store.AddAuditAsync(new AuditEntry(0, DateTimeOffset.UtcNow, await _user.NameAsync(), connection, action, changes), cancellationToken);

    private static JsonNode? StreamsJson(IReadOnlyList<StreamChoice>? streams) =>
        streams is null ? null : new JsonArray(streams.Select(s =>
        {
            var o = new JsonObject { ["name"] = s.Name, ["mode"] = s.Mode.ToString().ToLowerInvariant() };
            if (s.Table is not null)
            {
                o["table"] = s.Table;
            }

            if (s.Columns is not null)
            {
                o["columns"] = new JsonArray(s.Columns.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray());
            }

            return (JsonNode)o;
        }).ToArray());

    /// <summary>Runs Check on a configuration; <paramref name="savedName"/> restores masked secrets from that saved connection.</summary>
    public async Task<Outcome<CheckConnectionResult>> CheckAsync(string? connector, JsonObject? config, string? savedName, CancellationToken cancellationToken)
    {
        var (c, problems) = await PrepareAsync(connector, config, savedName, cancellationToken);
        if (problems.Count > 0)
        {
            return Fail<CheckConnectionResult>(problems, 400);
        }

        var r = await _check.GetResponse<CheckConnectionResult>(new CheckConnection(connector!, OnTheBus(connector!, c!)), cancellationToken, RequestTimeout.After(s: 60));
        return new Outcome<CheckConnectionResult>(r.Message, [], 200);
    }

    /// <summary>Runs Discover on a configuration.</summary>
    public async Task<Outcome<DiscoverConnectionResult>> DiscoverAsync(string? connector, JsonObject? config, string? savedName, CancellationToken cancellationToken)
    {
        var (c, problems) = await PrepareAsync(connector, config, savedName, cancellationToken);
        if (problems.Count > 0)
        {
            return Fail<DiscoverConnectionResult>(problems, 400);
        }

        var r = await _discover.GetResponse<DiscoverConnectionResult>(new DiscoverConnection(connector!, OnTheBus(connector!, c!)), cancellationToken, RequestTimeout.After(s: 120));
        return new Outcome<DiscoverConnectionResult>(r.Message, [], 200);
    }

    /// <summary>The configuration as a bus message carries it: secrets encrypted with the nodes' shared key ring (a broker never sees them).</summary>
    internal string OnTheBus(string connector, JsonObject config) => SecretFields.Protected(config, Secrets(connector), _protector).ToJsonString();

    private async Task<(JsonObject? Config, List<ConfigProblem> Problems)> PrepareAsync(string? connector, JsonObject? config, string? savedName, CancellationToken cancellationToken)
    {
        var saved = savedName is null ? null : await _store.GetAsync(savedName, cancellationToken);
        var problems = new List<ConfigProblem>();
        var (c, _) = Validate(new ConnectionInput(savedName, connector ?? saved?.Connector, config, null), saved, problems);
        return (c, problems);
    }

    private (JsonObject? Config, IReadOnlyList<StreamChoice>? Streams) Validate(ConnectionInput input, StoredConnection? saved, List<ConfigProblem> problems)
    {
        if (string.IsNullOrEmpty(input.Connector))
        {
            problems.Add(new ConfigProblem("connector", "required"));
            return (null, null);
        }

        var plugin = _plugins.Find(input.Connector);
        if (plugin is null)
        {
            problems.Add(new ConfigProblem("connector", $"unknown connector '{input.Connector}'; loaded connectors: {string.Join(", ", _plugins.Plugins.Select(p => p.Name).Order(StringComparer.Ordinal))}"));
            return (null, null);
        }

        var secrets = plugin.Connector.Spec.SecretPaths();
        var config = SecretFields.Restore(input.Config ?? [], saved?.Connector == input.Connector ? saved.Config : null, secrets);
        using (var doc = JsonDocument.Parse(config.ToJsonString()))
        {
            problems.AddRange(ConfigValidator.Validate(input.Connector, plugin.Connector.Spec, doc.RootElement));
        }

        List<StreamChoice>? streams = null;
        if (input.Streams is { } chosen)
        {
            streams = [];
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < chosen.Count; i++)
            {
                var s = chosen[i];
                if (string.IsNullOrEmpty(s.Name))
                {
                    problems.Add(new ConfigProblem($"streams[{i}].name", "required"));
                    continue;
                }

                if (!seen.Add(s.Name))
                {
                    problems.Add(new ConfigProblem($"streams[{i}].name", $"stream '{s.Name}' is selected twice"));
                }

                if (!Enum.TryParse<SinkMode>(s.Mode, ignoreCase: true, out var mode) || !Enum.IsDefined(mode) || int.TryParse(s.Mode, out _))
                {
                    var names = string.Join(", ", Enum.GetNames<SinkMode>().Select(n => $"\"{n.ToLowerInvariant()}\""));
                    problems.Add(new ConfigProblem($"streams[{i}].mode", $"expected one of {names}, got \"{s.Mode}\""));
                    continue;
                }

                var table = string.IsNullOrWhiteSpace(s.Table) ? null : s.Table.Trim();
                if (table is not null && TableProblem(table) is { } tp)
                {
                    problems.Add(new ConfigProblem($"streams[{i}].table", tp));
                    continue;
                }

                if (ColumnsProblem(s.Columns) is { } cp)
                {
                    problems.Add(new ConfigProblem($"streams[{i}].columns{cp.Index}", cp.Message));
                    continue;
                }

                streams.Add(new StreamChoice(s.Name, mode, table, s.Columns?.ToList()));
            }

            // Two streams writing one table would overwrite each other's rows and progress.
            foreach (var g in streams.GroupBy(s => (s.Table ?? $"{input.Name ?? saved?.Name}/{s.Name}").ToLowerInvariant()).Where(g => g.Count() > 1))
            {
                var second = g.Skip(1).First();
                problems.Add(new ConfigProblem($"streams[{streams.IndexOf(second)}].table", $"streams {string.Join(" and ", g.Select(x => $"'{x.Name}'"))} would write the same table '{g.Key}'"));
            }
        }

        return (config, streams);
    }

    /// <summary>
    /// The shape of a column list (names are checked against the stream when the connection is bound, as in a pipeline
    /// file); Index is "" or "[i]".
    /// </summary>
    internal static (string Index, string Message)? ColumnsProblem(IReadOnlyList<string>? columns)
    {
        if (columns is null)
        {
            return null;
        }

        if (columns.Count == 0)
        {
            return ("", "expected at least one column, or null for every column");
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < columns.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(columns[i]))
            {
                return ($"[{i}]", "expected a column name");
            }

            if (!seen.Add(columns[i]))
            {
                return ($"[{i}]", $"column '{columns[i]}' is listed twice");
            }
        }

        return null;
    }

    private IReadOnlyList<string> Secrets(string connector) => _plugins.Find(connector)?.Connector.Spec.SecretPaths() ?? [];

    private ConnectionView View(StoredConnection c)
    {
        var live = _board.Get(c.Name);
        var s = live?.Snapshot;
        var status = new ConnectionStatusView(
            s?.State ?? (c.Paused && c.Enabled ? "paused" : "idle"),
            s?.Error,
            live?.RowsPerSecond ?? 0,
            s?.Streams.Sum(x => x.RowsRead) ?? 0,
            s?.Streams.Sum(x => x.RowsCommitted) ?? 0,
            s?.Streams.Max(x => x.LastCommitVersion),
            s?.Streams.Max(x => x.LastCommitAt),
            s?.Streams ?? [],
            live?.Rates ?? [],
            live?.Errors ?? [],
            s?.Figures ?? []);
        return new ConnectionView(
            c.Name,
            c.Connector,
            SecretFields.Masked(c.Config, Secrets(c.Connector)),
            c.Streams?.Select(x => new StreamChoiceView(x.Name, x.Mode.ToString().ToLowerInvariant(), x.Table, x.Columns)).ToList(),
            c.LakePath,
            c.Enabled,
            c.CreatedAt,
            c.UpdatedAt,
            status);
    }

    private static Outcome<T> Fail<T>(IReadOnlyList<ConfigProblem> problems, int status) => new(default, problems, status);
}
