using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ingest.Testing;

/// <summary>
/// One <c>moto_server</c> process (moto's S3-compatible API) on a free loopback port: started by the S3 fixtures of the
/// connector and Delta tests, killed on dispose. Fails loudly (with the server's output) when it cannot start.
/// </summary>
public sealed class MotoProcess : IAsyncDisposable
{
    private Process? _process;
    private readonly StringBuilder _output = new();

    /// <summary>The server's base address, e.g. <c>http://127.0.0.1:PORT</c>.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>
    /// Starts the server and waits until it answers. <paramref name="initialNoAuthActions"/> turns authentication on
    /// after that many unauthenticated calls (moto's <c>INITIAL_NO_AUTH_ACTION_COUNT</c>); null leaves it off.
    /// </summary>
    public async Task StartAsync(int? initialNoAuthActions)
    {
        var exe = FindMotoServer();
        var port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-H", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        if (initialNoAuthActions is { } n)
        {
            psi.Environment["INITIAL_NO_AUTH_ACTION_COUNT"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException($"Cannot start {exe}.");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"moto_server exited with {_process.ExitCode} before answering:\n{Output}");
            }

            try
            {
                using var r = await http.GetAsync(new Uri(Endpoint + "/moto-api/"));
                if (r.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"moto_server did not answer on {Endpoint} within 30 s:\n{Output}");
            }

            await Task.Delay(100);
        }

    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
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

    /// <summary>Kills the server.</summary>
    public ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        return ValueTask.CompletedTask;
    }

    private static string FindMotoServer()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, "moto_server");
            if (File.Exists(p))
            {
                return p;
            }
        }

        var home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        var shim = Path.Combine(home, ".pyenv", "shims", "moto_server");
        return File.Exists(shim)
            ? shim
            : throw new InvalidOperationException("moto_server is not on PATH (pip install 'moto[server]'); the S3 tests need it.");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
