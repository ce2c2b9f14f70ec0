namespace Ingest.Host.Web;

/// <summary>Which parts of the host a node runs.</summary>
public enum NodeRole
{
    /// <summary>Web UI, REST API and workers in one process (the default).</summary>
    All,
    /// <summary>Web UI and REST API; connections run on worker nodes.</summary>
    Web,
    /// <summary>Runs connections; serves no UI.</summary>
    Worker,
}

/// <summary>How <c>ingest serve</c> runs.</summary>
/// <param name="Urls">Where Kestrel listens (<c>http://localhost:5080</c>).</param>
/// <param name="DataPath">The data folder (full path): config store, keys, state, lake.</param>
/// <param name="Role">Which parts run.</param>
/// <param name="PluginDirectories">Plugin folders, or empty for the defaults.</param>
/// <param name="AdminPassword">The admin password from configuration (<c>INGEST_ADMIN_PASSWORD</c>), or null to generate one at first start.</param>
/// <param name="AdminUser">The admin user name (<c>INGEST_ADMIN_USER</c>, default <c>admin</c>).</param>
/// <param name="CreateSample">Whether the first start creates and starts the sample connection.</param>
internal sealed record ServeOptions(string Urls, string DataPath, NodeRole Role, IReadOnlyList<string> PluginDirectories, string? AdminPassword, string AdminUser, bool CreateSample)
{
    /// <summary>The default address.</summary>
    public const string DefaultUrls = "http://localhost:5080";

    /// <summary>The default data folder: <c>$INGEST_DATA</c>, else <c>./.ingest-data</c>.</summary>
    public static string DefaultDataPath() =>
        Path.GetFullPath(Environment.GetEnvironmentVariable("INGEST_DATA") is { Length: > 0 } env ? env : ".ingest-data");

    /// <summary>The RabbitMQ broker the control plane uses, or null for the in-process bus (one node).</summary>
    public RabbitMqSettings? RabbitMq { get; init; }

    /// <summary>The PostgreSQL config store's connection string, or null for SQLite in the data folder.</summary>
    public string? PostgresConfigStore { get; init; }

    /// <summary>The config store.</summary>
    public string ConfigStorePath => Path.Combine(DataPath, "ingest.db");

    /// <summary>The engine's state store (progress cache, runs, errors).</summary>
    public string StateStorePath => Path.Combine(DataPath, "state.db");

    /// <summary>The Data Protection key ring that encrypts secrets at rest.</summary>
    public string KeysPath => Path.Combine(DataPath, "keys");

    /// <summary>The local lake.</summary>
    public string LakePath => Path.Combine(DataPath, "lake");

    /// <summary>Whether this node runs the UI and API.</summary>
    public bool RunsWeb => Role is NodeRole.All or NodeRole.Web;

    /// <summary>Whether this node runs connections.</summary>
    public bool RunsWorker => Role is NodeRole.All or NodeRole.Worker;
}
