using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Ingest.Delta;
using Ingest.Sdk.Records;
using Npgsql;

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
        var file = await WritePipelineAsync(dir, config, tables);
        var outcome = await RunAsync(dir.Combine("state"), "run", file, "--once", "--plugins", Repo.Plugins);
        Assert.True(outcome.ExitCode == 0, $"ingest run exited with {outcome.ExitCode}:\n{outcome.Error}\n{outcome.Out}");
        return outcome;
    }

    /// <summary>Starts <c>ingest run</c> (continuous) on the pipeline of <see cref="WritePipelineAsync"/>; the caller stops it.</summary>
    public static Running Start(TempDir dir)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Repo.IngestDll, "run", dir.Combine("pipeline.yaml"), "--plugins", Repo.Plugins })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGEST_DATA"] = dir.Combine("state");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        return new Running(Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start"));
    }

    /// <summary>A running <c>ingest run</c>; its output is collected as it comes.</summary>
    public sealed class Running : IDisposable
    {
        private readonly System.Text.StringBuilder _output = new();

        public Running(Process process)
        {
            Process = process;
            process.OutputDataReceived += (_, e) => Append(e.Data);
            process.ErrorDataReceived += (_, e) => Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>SIGKILL: no shutdown code runs.</summary>
        public async Task KillAsync()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }

            await Process.WaitForExitAsync();
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }

            Process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_output)
                {
                    _output.AppendLine(line);
                }
            }
        }
    }

    /// <summary>Writes the pipeline file (one postgres connection, each table merged into lake/&lt;table&gt;) and returns its path.</summary>
    public static async Task<string> WritePipelineAsync(TempDir dir, string config, params string[] tables)
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
        return file;
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

/// <summary>Compares a merge table with its source table.</summary>
internal static class Mirror
{
    /// <summary>The source's rows (<c>SELECT *</c> by the first column) and the lake table's rows (without <c>_</c> columns), as text, in the same order.</summary>
    public static async Task<(List<string> Expected, List<string> Actual)> RowsAsync(string connectionString, string table, string tablePath)
    {
        var expected = new List<string>();
        await using (var conn = new NpgsqlConnection(connectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"SELECT * FROM {table} ORDER BY 1", conn);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                var values = new object?[r.FieldCount];
                for (var i = 0; i < r.FieldCount; i++)
                {
                    values[i] = r.IsDBNull(i) ? null : r.GetValue(i);
                }

                expected.Add(string.Join("|", values.Select(Lake.Show)));
            }
        }

        var rows = await Lake.ReadAsync(tablePath);
        var actual = rows
            .Select(row => string.Join("|", row.Where(kv => !kv.Key.StartsWith('_')).Select(kv => Lake.Show(kv.Value))))
            .OrderBy(s => long.Parse(s.Split('|')[0], CultureInfo.InvariantCulture))
            .ToList();
        return (expected, actual);
    }

    /// <summary>Polls until the lake table equals the source (a running pipeline catches up), failing with the difference after <paramref name="timeout"/>.</summary>
    public static async Task WaitEqualAsync(string connectionString, string table, string tablePath, TimeSpan timeout, Func<string> context)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = "";
        while (true)
        {
            try
            {
                var (expected, actual) = await RowsAsync(connectionString, table, tablePath);
                if (expected.SequenceEqual(actual))
                {
                    return;
                }

                last = $"{expected.Count} source rows, {actual.Count} lake rows; first difference: source {expected.Except(actual).FirstOrDefault()} lake {actual.Except(expected).FirstOrDefault()}";
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or NpgsqlException)
            {
                last = e.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{table}: the lake did not converge to the source in {timeout.TotalSeconds} s ({last}).\n{context()}");
            }

            await Task.Delay(300);
        }
    }
}
