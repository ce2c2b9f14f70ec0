using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Host.Cli;
using Ingest.Sdk.Records;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests;

/// <summary>A temporary folder, removed at the end.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ingest-engine-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public string Write(string name, string text)
    {
        var p = Combine(name);
        File.WriteAllText(p, text);
        return p;
    }

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

/// <summary>Where the repository's built pieces are.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    /// <summary>The built plugins (the sample connector is built there by the Host's project references).</summary>
    public static string Plugins => Path.Combine(Root, "artifacts", "plugins");

    /// <summary>The built ingest.dll, for child processes.</summary>
    public static string IngestDll
    {
        get
        {
            var local = Path.Combine(AppContext.BaseDirectory, "ingest.dll");
            if (File.Exists(local) && File.Exists(Path.Combine(AppContext.BaseDirectory, "ingest.runtimeconfig.json")))
            {
                return local;
            }

            var host = Path.Combine(Root, "src", "Ingest.Host", "bin", "Debug", "net10.0", "ingest.dll");
            return File.Exists(host) ? host : throw new FileNotFoundException("ingest.dll is not built (looked next to the tests and in src/Ingest.Host/bin/Debug/net10.0).");
        }
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

/// <summary>Runs the CLI in-process or as a child process.</summary>
internal static class Cli
{
    public sealed record Outcome(int ExitCode, string Out, string Error);

    public static async Task<Outcome> RunAsync(params string[] args)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        return await RunAsync(args, cts.Token);
    }

    public static async Task<Outcome> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var output = new StringWriter(CultureInfo.InvariantCulture);
        var error = new StringWriter(CultureInfo.InvariantCulture);
        var context = new CliContext(TextWriter.Synchronized(output), TextWriter.Synchronized(error), Interactive: false, _ => NullLoggerFactory.Instance);
        var code = await IngestCli.InvokeAsync(args, context, cancellationToken);
        return new Outcome(code, output.ToString(), error.ToString());
    }

    /// <summary>Starts <c>dotnet ingest.dll args</c>.</summary>
    public static Process Start(string dataDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Repo.IngestDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGEST_DATA"] = dataDir;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        return p;
    }
}

/// <summary>Reads tables back and compares values by type.</summary>
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

    public static string Key(IReadOnlyDictionary<string, object?> row, IReadOnlyList<string> keys) =>
        string.Join("|", keys.Select(k => Convert.ToString(row[k], CultureInfo.InvariantCulture)));

    /// <summary>Null when equal, else what differs. Types must match, values compare by value.</summary>
    public static string? Diff(string where, IReadOnlyDictionary<string, object?> expected, IReadOnlyDictionary<string, object?> actual)
    {
        var sb = new StringBuilder();
        foreach (var (column, e) in expected)
        {
            if (!actual.TryGetValue(column, out var a))
            {
                sb.Append($"{where}: column {column} missing; ");
                continue;
            }

            if (!SameValue(e, a))
            {
                sb.Append($"{where}.{column}: expected {Show(e)} but table has {Show(a)}; ");
            }
        }

        return sb.Length == 0 ? null : sb.ToString();
    }

    private static string Show(object? v) => v is null ? "null" : $"{v} ({v.GetType().Name})";

    public static bool SameValue(object? e, object? a)
    {
        if (e is null || a is null)
        {
            return e is null && a is null;
        }

        if (e.GetType() != a.GetType())
        {
            return false;
        }

        return e switch
        {
            decimal d => d == (decimal)a,
            DateTimeOffset t => t.UtcTicks == ((DateTimeOffset)a).UtcTicks,
            byte[] b => b.AsSpan().SequenceEqual((byte[])a),
            _ => e.Equals(a),
        };
    }
}
