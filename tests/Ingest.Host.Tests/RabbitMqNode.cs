using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Ingest.Host.Tests;

/// <summary>
/// A real RabbitMQ node (Debian's <c>rabbitmq-server</c>, which test.sh installs) on free loopback ports, with its own
/// node name, data, logs, config, plugins and epmd port in a temp folder owned by the <c>rabbitmq</c> user (started as
/// root, the server switches to that user). It stops with <c>rabbitmqctl -n NODE stop</c> and then ends its own epmd.
/// A machine without the server fails the tests that use it.
/// </summary>
public sealed class RabbitMqNode : IAsyncLifetime
{
    private const string Server = "/usr/sbin/rabbitmq-server";
    private const string Ctl = "/usr/sbin/rabbitmqctl";
    private readonly StringBuilder _output = new();
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private Process? _process;

    /// <summary>The node's folder.</summary>
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "ingest-rabbitmq-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>The node name.</summary>
    public string NodeName { get; } = $"ingest-test-{Guid.NewGuid().ToString("N")[..8]}@localhost";

    /// <summary>The AMQP port.</summary>
    public int Port { get; private set; }

    /// <summary>The broker as <c>ingest serve --bus</c> takes it.</summary>
    public string Uri => $"rabbitmq://guest:guest@127.0.0.1:{Port}/";

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        if (!File.Exists(Server))
        {
            throw new InvalidOperationException($"{Server} is missing: ./test.sh installs it (apt-get install rabbitmq-server)");
        }

        Port = FreePort();
        Directory.CreateDirectory(Path.Combine(Folder, "mnesia"));
        Directory.CreateDirectory(Path.Combine(Folder, "log"));
        await File.WriteAllTextAsync(Path.Combine(Folder, "enabled_plugins"), "[].\n");
        await File.WriteAllTextAsync(Path.Combine(Folder, "rabbitmq.conf"), $"listeners.tcp.default = 127.0.0.1:{Port}\n");
        await RunAsync("chown", ["-R", "rabbitmq:rabbitmq", Folder]);

        _environment["RABBITMQ_NODENAME"] = NodeName;
        _environment["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1";
        _environment["RABBITMQ_NODE_PORT"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _environment["RABBITMQ_DIST_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        _environment["RABBITMQ_MNESIA_BASE"] = Path.Combine(Folder, "mnesia");
        _environment["RABBITMQ_LOG_BASE"] = Path.Combine(Folder, "log");
        _environment["RABBITMQ_FEATURE_FLAGS_FILE"] = Path.Combine(Folder, "feature_flags");
        _environment["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(Folder, "enabled_plugins");
        _environment["RABBITMQ_CONFIG_FILE"] = Path.Combine(Folder, "rabbitmq.conf");
        // Its own epmd, so that ending it afterwards leaves any other Erlang node on the machine alone.
        _environment["ERL_EPMD_PORT"] = FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);

        var start = Info(Server, []);
        _process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + Server);
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"rabbitmq-server exited with {_process.ExitCode}:\n{Output}");
            }

            if (Output.Contains("Starting broker... completed", StringComparison.Ordinal) && await ListensAsync())
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"RabbitMQ did not listen on {Port} within 60 s:\n{Output}");
            }

            await Task.Delay(250);
        }
    }

    /// <summary>Everything the node printed.</summary>
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

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            await RunAsync(Ctl, ["-n", NodeName, "stop"]);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }

            // The node started an epmd on its own port, which outlives it.
            await RunAsync("epmd", ["-kill"]);
            _process.Dispose();
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private async Task<bool> ListensAsync()
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private ProcessStartInfo Info(string file, string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetTempPath() };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in _environment)
        {
            info.Environment[k] = v;
        }

        return info;
    }

    private async Task RunAsync(string file, string[] args)
    {
        using var p = Process.Start(Info(file, args)) ?? throw new InvalidOperationException("could not start " + file);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Append($"{file} {string.Join(' ', args)}: exit {p.ExitCode} {await stdout} {await stderr}");
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

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
