using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ingest.Delta;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>A temporary folder, removed at the end.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ingest-pg-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Where the repository's built pieces are (as in Ingest.Engine.Tests).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Plugins => Path.Combine(Root, "artifacts", "plugins");

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

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Ingest.sln).");
    }
}

/// <summary>Runs <c>ingest</c> as a child process.</summary>
internal static class Cli
{
    public sealed record Outcome(int ExitCode, string Out, string Error);

    public static async Task<Outcome> RunAsync(string dataDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.IngestDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGEST_DATA"] = dataDir;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"ingest {string.Join(' ', args)} did not finish in 3 minutes: {await stderr}");
        }

        return new Outcome(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Writes a pipeline of one postgres connection merging each stream into lake/&lt;table&gt;, and runs it once.</summary>
    public static async Task<Outcome> RunOnceAsync(TempDir dir, string config, params string[] tables)
    {
        var streams = string.Join("\n", tables.Select(t => $"      - {{name: public.{t}, mode: merge, table: {t}}}"));
        var yaml = string.Join("\n",
            "lake: ./lake",
            "transport: embedded",
            "commit: {interval: 100ms, maxRows: 5000}",
            "connections:",
            "  - name: pg",
            "    connector: postgres",
            "    config: {" + config + "}",
            "    streams:",
            streams) + "\n";
        var file = dir.Combine("pipeline.yaml");
        await File.WriteAllTextAsync(file, yaml);
        var outcome = await RunAsync(dir.Combine("state"), "run", file, "--once", "--plugins", Repo.Plugins);
        Assert.True(outcome.ExitCode == 0, $"ingest run exited with {outcome.ExitCode}:\n{outcome.Error}\n{outcome.Out}");
        return outcome;
    }
}

/// <summary>Reads tables back.</summary>
internal static class Lake
{
    public static async Task<List<Dictionary<string, object?>>> ReadAsync(string tablePath)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        var rows = new List<Dictionary<string, object?>>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                for (var r = 0; r < batch.Length; r++)
                {
                    var row = new Dictionary<string, object?>(StringComparer.Ordinal);
                    for (var c = 0; c < batch.ColumnCount; c++)
                    {
                        row[batch.Schema.FieldsList[c].Name] = ArrowValues.GetValue(batch.Column(c), r);
                    }

                    rows.Add(row);
                }
            }
        }

        return rows;
    }

    /// <summary>A value in a comparable text form (arrays element by element, bytes as hex, instants as UTC ticks).</summary>
    public static string Show(object? v) => v switch
    {
        null => "null",
        byte[] b => "0x" + Convert.ToHexString(b),
        DateTimeOffset d => d.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("O", CultureInfo.InvariantCulture),
        decimal m => (m / 1.0000000000000000000000000000m).ToString(CultureInfo.InvariantCulture),
        double x => x.ToString("R", CultureInfo.InvariantCulture),
        float x => x.ToString("R", CultureInfo.InvariantCulture),
        bool x => x ? "true" : "false",
        string s => s,
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Show)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    public static string Json(IEnumerable<object?> values) => JsonSerializer.Serialize(values.Select(Show));
}
