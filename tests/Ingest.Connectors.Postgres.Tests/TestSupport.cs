using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>Runs <c>ingest</c> as a child process.</summary>
internal static class Cli
{
    public sealed record Outcome(int ExitCode, string Out, string Error);

    public static async Task<Outcome> RunAsync(string dataDir, params string[] args)
    {
        var (code, stdout, stderr) = await Repo.RunIngestAsync(dataDir, null, args);
        return new Outcome(code, stdout, stderr);
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
    public static Running Start(TempDir dir) =>
        new(Repo.Start(dir.Combine("state"), null, "run", dir.Combine("pipeline.yaml"), "--plugins", Repo.Plugins));

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
    public static Task<List<Dictionary<string, object?>>> ReadAsync(string tablePath) => Repo.ReadTableAsync(tablePath);

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
