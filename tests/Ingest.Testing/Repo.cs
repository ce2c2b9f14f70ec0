using System.Diagnostics;
using Ingest.Delta;

namespace Ingest.Testing;

/// <summary>Where the repository's built pieces are, the <c>ingest</c> CLI as a child process, and Delta tables read back.</summary>
public static class Repo
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The folder holding Ingest.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>Where the connector plugins are built (artifacts/plugins).</summary>
    public static string Plugins => Path.Combine(Root, "artifacts", "plugins");

    /// <summary>The built ingest.dll: next to the tests if they reference the host, else src/Ingest.Host's output in the tests' configuration.</summary>
    public static string IngestDll
    {
        get
        {
            var local = Path.Combine(AppContext.BaseDirectory, "ingest.dll");
            if (File.Exists(local) && File.Exists(Path.Combine(AppContext.BaseDirectory, "ingest.runtimeconfig.json")))
            {
                return local;
            }

            // The host is built by the solution build, in the configuration these tests were built in.
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            var host = Path.Combine(Root, "src", "Ingest.Host", "bin", configuration, "net10.0", "ingest.dll");
            return File.Exists(host) ? host : throw new FileNotFoundException($"ingest.dll is not built (looked in {host}): build Ingest.sln or src/Ingest.Host first");
        }
    }

    /// <summary>Starts <c>dotnet ingest.dll args</c> with INGEST_DATA=<paramref name="dataDir"/> in <paramref name="workDir"/> (null: this process's), output redirected; the caller drains and stops it.</summary>
    public static Process Start(string dataDir, string? workDir, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workDir ?? "" };
        psi.ArgumentList.Add(IngestDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGEST_DATA"] = dataDir;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        return Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>Runs <c>ingest args</c> to the end (see <see cref="Start"/>), killing it and failing with <see cref="TimeoutException"/> after 3 minutes.</summary>
    public static async Task<(int Code, string Out, string Err)> RunIngestAsync(string dataDir, string? workDir, params string[] args)
    {
        using var p = Start(dataDir, workDir, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(RunTimeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"ingest {string.Join(' ', args)} did not finish in {RunTimeout.TotalMinutes} minutes: {await stderr}");
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>All rows of the Delta table at <paramref name="tablePath"/>, as dictionaries.</summary>
    public static async Task<List<Dictionary<string, object?>>> ReadTableAsync(string tablePath)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        var rows = new List<Dictionary<string, object?>>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                rows.AddRange(Rows.Of(batch));
            }
        }

        return rows;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Ingest.sln) above " + AppContext.BaseDirectory);
    }
}
