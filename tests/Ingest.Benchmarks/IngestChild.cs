using System.Diagnostics;
using System.Globalization;

namespace Ingest.Benchmarks;

/// <summary>
/// One-shot runs: <c>ingest run &lt;pipeline&gt; --once</c> as a child process, as a user would, measured: wall time and peak
/// resident set (VmHWM, polled every 50 ms until the child exits). Its output is printed only when it fails.
/// </summary>
internal sealed partial class IngestChild
{
    public static async Task<(double Seconds, long PeakKib, int Exit)> RunOnceAsync(
        string ingestDll, string pipeline, string plugins, IEnumerable<string>? extraArgs = null, IReadOnlyDictionary<string, string>? environment = null, string? workDir = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workDir is not null)
        {
            psi.WorkingDirectory = workDir;
        }

        foreach (var a in new[] { ingestDll, "run", pipeline, "--once", "--plugins", plugins }.Concat(extraArgs ?? []))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peak = 0;
        while (!p.HasExited)
        {
            peak = Math.Max(peak, ReadVmHwmKib(p.Id));
            await Task.Delay(50);
        }

        await p.WaitForExitAsync();
        sw.Stop();
        if (p.ExitCode != 0)
        {
            Console.Error.WriteLine(await stdout);
            Console.Error.WriteLine(await stderr);
        }

        return (sw.Elapsed.TotalSeconds, peak, p.ExitCode);
    }

    /// <summary>VmHWM (the peak resident set so far) of a process in KiB; 0 when it is gone.</summary>
    public static long ReadVmHwmKib(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // The process exited between polls.
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }
}
