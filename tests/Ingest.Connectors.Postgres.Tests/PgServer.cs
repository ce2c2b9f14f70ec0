using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>
/// A real PostgreSQL 15 in a temporary folder owned by the postgres OS user (tests run as root), on a free
/// loopback port, with trust authentication. Fails loudly when it cannot start.
/// </summary>
public sealed class PgServer : IAsyncLifetime
{
    private const string Bin = "/usr/lib/postgresql/15/bin";
    private readonly string _walLevel;

    public PgServer()
        : this("logical")
    {
    }

    private PgServer(string walLevel)
    {
        _walLevel = walLevel;
        Dir = Path.Combine(Path.GetTempPath(), "ingest-pg-" + Guid.NewGuid().ToString("N")[..10]);
    }

    /// <summary>A second server with another wal_level (for Check's messages).</summary>
    public static PgServer WithWalLevel(string walLevel) => new(walLevel);

    public string Dir { get; }

    public int Port { get; private set; }

    /// <summary>The superuser's connection string to <paramref name="database"/>.</summary>
    public string Admin(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=false;Timeout=15";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Dir);
        await RunAsync("chown", "-R", "postgres:postgres", Dir);
        await RunAsync("runuser", "-u", "postgres", "--", Bin + "/initdb", "-D", Path.Combine(Dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale");
        Port = FreePort();
        var opts = $"-p {Port} -k {Dir} -c listen_addresses=127.0.0.1 -c wal_level={_walLevel} -c max_replication_slots=40 -c max_wal_senders=40 -c fsync=off -c synchronous_commit=off";
        await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(Dir, "data"), "-l", Path.Combine(Dir, "server.log"), "-w", "-t", "60", "-o", opts, "start");
        await ExecAsync("postgres", "CREATE ROLE ingest LOGIN REPLICATION");
    }

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(Dir, "data"), "-m", "immediate", "-w", "stop");
        }
        finally
        {
            try
            {
                Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// Restarts the server keeping its port and settings: a fast shutdown (every connection is terminated), or when
    /// that does not finish in 10 s, an immediate one (crash recovery at start). A fast shutdown waits for each logical
    /// walsender to see its client confirm the WAL it was sent, which a client confirming only what is durable in the
    /// lake may not do in time. Returns whether the fast shutdown was enough.
    /// </summary>
    public async Task<bool> RestartAsync()
    {
        try
        {
            await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(Dir, "data"), "-l", Path.Combine(Dir, "server.log"), "-m", "fast", "-w", "-t", "10", "restart");
            return true;
        }
        catch (InvalidOperationException)
        {
            await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(Dir, "data"), "-l", Path.Combine(Dir, "server.log"), "-m", "immediate", "-w", "-t", "60", "restart");
            return false;
        }
    }

    /// <summary>A fresh database owned by the <c>ingest</c> role.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "db_" + Guid.NewGuid().ToString("N")[..10];
        await ExecAsync("postgres", $"CREATE DATABASE {name} OWNER ingest");
        return name;
    }

    /// <summary>The ingest role's connection string to <paramref name="database"/>.</summary>
    public string User(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=ingest;Database={database};Pooling=false;Timeout=15";

    public async Task ExecAsync(string database, string sql, string? user = null)
    {
        await using var conn = new NpgsqlConnection(user is null ? Admin(database) : $"Host=127.0.0.1;Port={Port};Username={user};Database={database};Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string database, string sql)
    {
        await using var conn = new NpgsqlConnection(Admin(database));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>The connector configuration for <paramref name="database"/> as the ingest role, as flow YAML/JSON fields.</summary>
    public string Config(string database, string slot, string extra = "") =>
        $"\"host\": \"127.0.0.1\", \"port\": {Port}, \"database\": \"{database}\", \"username\": \"ingest\", \"slotName\": \"{slot}\", \"publicationName\": \"pub_{slot}\", \"heartbeatInterval\": \"1s\"{extra}";

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"PostgreSQL fixture: '{file} {string.Join(' ', args)}' exited with {p.ExitCode}: {await stderr}{await stdout}");
        }
    }
}

[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PgServer>
{
}
