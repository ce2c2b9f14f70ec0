using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using NpgsqlTypes;

namespace Ingest.Benchmarks;

/// <summary>
/// `ingest run` as a child process (so its peak RSS is its own): the `dotnet ingest.dll` of this build's configuration
/// with the plugins of artifacts/plugins, its peak RSS (VmHWM) sampled every 50 ms until it exits or is stopped.
/// </summary>
internal sealed partial class IngestChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Task _sampler;
    private long _peakKib;

    private IngestChild(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _sampler = Task.Run(async () =>
        {
            while (!_process.HasExited)
            {
                var kib = ReadVmHwmKib(_process.Id);
                if (kib > Interlocked.Read(ref _peakKib))
                {
                    Interlocked.Exchange(ref _peakKib, kib);
                }

                await Task.Delay(50);
            }
        });
    }

    /// <summary>Peak RSS of the child so far, in MB (10^6 bytes).</summary>
    public double PeakRssMb => Interlocked.Read(ref _peakKib) * 1024 / 1e6;

    public bool HasExited => _process.HasExited;

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

    /// <summary>The repository's ingest.dll and plugin folder for this build's configuration, or an error text.</summary>
    public static (string IngestDll, string Plugins, string? Problem) Locate()
    {
        var meta = typeof(IngestChild).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().ToDictionary(a => a.Key, a => a.Value);
        var root = meta["IngestRepoRoot"]!;
        var configuration = meta["IngestConfiguration"]!;
        var ingestDll = Path.Combine(root, "src", "Ingest.Host", "bin", configuration, "net10.0", "ingest.dll");
        var plugins = Path.Combine(root, "artifacts", "plugins");
        var problem = File.Exists(ingestDll) && Directory.Exists(Path.Combine(plugins, "Ingest.Connectors.Postgres"))
            ? null
            : $"ingest.dll ({ingestDll}) or the postgres plugin ({plugins}) is missing: build tests/Ingest.Benchmarks in {configuration} first.";
        return (ingestDll, plugins, problem);
    }

    /// <summary>Starts <c>ingest run pipeline [--once]</c> in <paramref name="workDir"/> (state under workDir/state), with extra environment variables (e.g. DOTNET_gcServer=0).</summary>
    public static IngestChild Start(string ingestDll, string plugins, string pipeline, string workDir, bool once, IReadOnlyDictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workDir,
        };
        psi.ArgumentList.Add(ingestDll);
        psi.ArgumentList.Add("run");
        psi.ArgumentList.Add(pipeline);
        if (once)
        {
            psi.ArgumentList.Add("--once");
        }

        psi.ArgumentList.Add("--plugins");
        psi.ArgumentList.Add(plugins);
        psi.Environment["INGEST_DATA"] = Path.Combine(workDir, "state");
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        return new IngestChild(Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start"));
    }

    /// <summary>Waits for the child to exit by itself; its exit code.</summary>
    public async Task<int> WaitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        await _sampler;
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        await _sampler;
        _process.Dispose();
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

/// <summary>One Delta commit as the watcher saw it appear.</summary>
/// <param name="Version">The table version.</param>
/// <param name="SeenMs">When its log file was first seen, on the benchmark's clock (ms).</param>
/// <param name="Lsn">The PostgreSQL checkpoint's LSN its commitInfo records (0 when none).</param>
/// <param name="SnapshotDone">True when that checkpoint has no snapshot progress left (streaming).</param>
/// <param name="Rows">Output rows of the commit (operationMetrics numOutputRows, or numTargetRowsInserted+Updated for merges; -1 when absent).</param>
/// <param name="Metrics">The commit's operation and operationMetrics as written (for the report).</param>
internal sealed record SeenCommit(long Version, double SeenMs, ulong Lsn, bool SnapshotDone, long Rows, string Metrics);

/// <summary>
/// Polls a Delta table's <c>_delta_log</c> every few milliseconds for the next version's JSON commit and records when
/// each appeared and the LSN of the connector checkpoint in its commitInfo (what the commit makes visible).
/// </summary>
internal sealed class DeltaLogWatcher : IAsyncDisposable
{
    private readonly string _log;
    private readonly Stopwatch _clock;
    private readonly List<SeenCommit> _seen = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _next;

    public DeltaLogWatcher(string tablePath, Stopwatch clock, int pollMs)
    {
        _log = Path.Combine(tablePath, "_delta_log");
        _clock = clock;
        _loop = Task.Run(() => LoopAsync(pollMs, _stop.Token));
    }

    public IReadOnlyList<SeenCommit> Seen
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    /// <summary>Waits until a commit with a streaming checkpoint at or past <paramref name="lsn"/> appeared; returns it.</summary>
    public async Task<SeenCommit> WaitForLsnAsync(ulong lsn, TimeSpan timeout, Func<bool> childAlive, CancellationToken cancellationToken)
    {
        var deadline = _clock.Elapsed + timeout;
        while (true)
        {
            lock (_seen)
            {
                foreach (var c in _seen)
                {
                    if (c.SnapshotDone && c.Lsn >= lsn)
                    {
                        return c;
                    }
                }
            }

            if (_clock.Elapsed > deadline || !childAlive())
            {
                throw new TimeoutException($"no commit in {_log} reached LSN {new NpgsqlLogSequenceNumber(lsn)} (ingest {(childAlive() ? "still running" : "exited")})");
            }

            await Task.Delay(5, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task LoopAsync(int pollMs, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var file = Path.Combine(_log, _next.ToString("D20", CultureInfo.InvariantCulture) + ".json");
            string text;
            try
            {
                text = await File.ReadAllTextAsync(file, cancellationToken);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
            {
                await Task.Delay(pollMs, cancellationToken);
                continue;
            }

            var seenMs = _clock.Elapsed.TotalMilliseconds;
            (ulong Lsn, bool SnapshotDone, long Rows, string Metrics) parsed;
            try
            {
                parsed = Parse(text);
            }
            catch (JsonException)
            {
                // Caught mid-write: read it again.
                await Task.Delay(1, cancellationToken);
                continue;
            }

            var (lsn, done, rows, metrics) = parsed;
            lock (_seen)
            {
                _seen.Add(new SeenCommit(_next, seenMs, lsn, done, rows, metrics));
            }

            _next++;
        }
    }

    private static (ulong Lsn, bool SnapshotDone, long Rows, string Metrics) Parse(string text)
    {
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var doc = JsonDocument.Parse(line);
            if (!doc.RootElement.TryGetProperty("commitInfo", out var info))
            {
                continue;
            }

            long rows = -1;
            var metrics = (info.TryGetProperty("operation", out var op) ? op.GetString() : null) ?? "";
            if (info.TryGetProperty("operationMetrics", out var m))
            {
                metrics += " " + m.GetRawText();
                rows = Metric(m, "numOutputRows") is var o && o >= 0 ? o : Metric(m, "numTargetRowsInserted") + Metric(m, "numTargetRowsUpdated");
            }

            if (info.TryGetProperty("ingest", out var ingest) && ingest.TryGetProperty("checkpoint", out var cp) && cp.ValueKind == JsonValueKind.Object
                && cp.TryGetProperty("lsn", out var lsn) && NpgsqlLogSequenceNumber.TryParse(lsn.GetString() ?? "", out var value))
            {
                var done = !cp.TryGetProperty("snapshot", out var snap) || snap.ValueKind == JsonValueKind.Null;
                return ((ulong)value, done, rows, metrics);
            }

            return (0, false, rows, metrics);
        }

        return (0, false, -1, "");
    }

    private static long Metric(JsonElement metrics, string name) =>
        !metrics.TryGetProperty(name, out var v) ? -1
        : v.ValueKind == JsonValueKind.Number ? v.GetInt64()
        : v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), CultureInfo.InvariantCulture, out var n) ? n
        : -1;
}
