using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Ingest.Delta.Tests;

/// <summary>
/// A real S3 API for the S3 table tests: one <c>moto_server</c> (moto 5 honours <c>If-None-Match: *</c> on PutObject)
/// on a free loopback port, without authentication. Fails loudly when it cannot start. The start logic is the
/// minimal part of tests/Ingest.Connectors.S3.Tests' fixture.
/// </summary>
public sealed class MotoServer : IAsyncLifetime
{
    private Process? _process;
    private readonly StringBuilder _output = new();

    public string Endpoint { get; private set; } = "";

    public AmazonS3Client Client { get; private set; } = null!;

    /// <summary>Storage options for tables on this server.</summary>
    public DeltaStorageOptions Storage => new(new Uri(Endpoint), "us-east-1", "testing", "testing");

    public async Task InitializeAsync()
    {
        var exe = FindMotoServer();
        int port;
        using (var l = new TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }

        Endpoint = $"http://127.0.0.1:{port}";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-H", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
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

        Client = new AmazonS3Client(new BasicAWSCredentials("testing", "testing"), new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
    }

    /// <summary>A new, empty bucket of the test's own.</summary>
    public async Task<string> CreateBucketAsync()
    {
        var name = "delta-" + Guid.NewGuid().ToString("N")[..12];
        await Client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>Every key of the bucket.</summary>
    public async Task<List<string>> KeysAsync(string bucket)
    {
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = bucket };
        do
        {
            var response = await Client.ListObjectsV2Async(request);
            keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = response.IsTruncated == true ? response.NextContinuationToken : null;
        }
        while (request.ContinuationToken is not null);

        return keys;
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

    public Task DisposeAsync()
    {
        Client?.Dispose();
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        return Task.CompletedTask;
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
            : throw new InvalidOperationException("moto_server is not on PATH (pip install 'moto[server]'); the S3 table tests need it.");
    }
}

[CollectionDefinition(Name)]
public sealed class MotoCollection : ICollectionFixture<MotoServer>
{
    public const string Name = "moto";
}
