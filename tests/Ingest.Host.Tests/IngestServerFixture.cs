using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Ingest.Host.Tests;

/// <summary>
/// A real <c>ingest serve</c> process (the built executable, Kestrel on a free loopback port) with its own
/// data folder, the repo's connector plugins and the host tests' <c>vault</c> plugin. Its first start prints
/// the admin password, which the tests read from its output as a user would.
/// </summary>
public sealed partial class IngestServerFixture : IAsyncLifetime, IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly string[] _extraArgs;
    private readonly bool _ownsData;
    private Process? _process;

    /// <summary>A server on a new data folder (deleted at the end).</summary>
    public IngestServerFixture()
        : this(null, [])
    {
    }

    /// <summary>A server on <paramref name="dataPath"/> (kept at the end when given) with more arguments.</summary>
    internal IngestServerFixture(string? dataPath, string[] extraArgs)
    {
        _ownsData = dataPath is null;
        DataPath = dataPath ?? Path.Combine(Path.GetTempPath(), "ingest-host-tests-" + Guid.NewGuid().ToString("N")[..8]);
        _extraArgs = extraArgs;
    }

    /// <summary>The server's base address.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The data folder.</summary>
    public string DataPath { get; }

    /// <summary>The admin password the server printed (empty when it printed none: not a first start).</summary>
    public string Password { get; private set; } = "";

    /// <summary>Wait for the password line (a first start prints one).</summary>
    public bool ExpectPassword { get; init; } = true;

    /// <summary>Everything the server printed so far.</summary>
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

    [GeneratedRegex("password '([^']+)'")]
    private static partial Regex PasswordLine();

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var port = FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
        var host = Repo.HostExecutable;
        if (!File.Exists(host))
        {
            throw new InvalidOperationException($"The host is not built: {host} is missing.");
        }

        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(host)!,
        };
        foreach (var a in new[] { host, "serve", "--urls", BaseAddress.ToString().TrimEnd('/'), "--data", DataPath, "--plugins", Repo.Plugins, "--plugins", Repo.HostTestPlugins }.Concat(_extraArgs))
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove("INGEST_ADMIN_PASSWORD");
        start.Environment.Remove("INGEST_DATA");
        start.Environment.Remove("INGEST_PLUGINS");
        _process = Process.Start(start) ?? throw new InvalidOperationException("could not start the host");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = BaseAddress };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The host exited with {_process.ExitCode}:\n{Output}");
            }

            try
            {
                if ((await http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode == HttpStatusCode.OK)
                {
                    if (PasswordLine().Match(Output) is { Success: true } m)
                    {
                        Password = m.Groups[1].Value;
                        return;
                    }

                    if (!ExpectPassword)
                    {
                        return;
                    }
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The host did not answer within 60 s:\n{Output}");
            }

            await Task.Delay(200);
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

    /// <summary>A client logged in as the admin (cookie).</summary>
    public async Task<HttpClient> LoginAsync(string? password = null)
    {
        var client = Anonymous();
        var r = await client.PostAsJsonAsync("api/auth/login", new { user = "admin", password = password ?? Password });
        Assert.Equal(HttpStatusCode.NoContent, r.StatusCode);
        return client;
    }

    /// <summary>A client with a cookie jar and no login.</summary>
    public HttpClient Anonymous() =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(90) };

    /// <summary>The server's process id.</summary>
    public int ProcessId => _process?.Id ?? 0;

    /// <summary>Kills the server at once (SIGKILL): nothing of it runs its shutdown, as when a machine dies.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    ValueTask IAsyncDisposable.DisposeAsync() => new(DisposeAsync());

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            // SIGTERM: the host stops its connections after committing, as on Ctrl+C.
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process?.Dispose();
        if (!_ownsData)
        {
            return;
        }

        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>The tests that share one server run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<IngestServerFixture>
{
    public const string Name = "server";
}

/// <summary>Paths in the repository.</summary>
public static class Repo
{
    /// <summary>The repository root (the folder with Ingest.sln).</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The build configuration of these tests (Debug or Release), which the host was built with.</summary>
    public static string Configuration { get; } = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;

    /// <summary>The built <c>ingest</c> executable.</summary>
    public static string HostExecutable => Path.Combine(Root, "src", "Ingest.Host", "bin", Configuration, "net10.0", "ingest.dll");

    /// <summary>The repo's connector plugins.</summary>
    public static string Plugins => Path.Combine(Root, "artifacts", "plugins");

    /// <summary>The host tests' plugins (the vault connector).</summary>
    public static string HostTestPlugins => Path.Combine(Root, "artifacts", "host-test-plugins");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Ingest.sln not found above " + AppContext.BaseDirectory);
    }
}
