using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.S3.Tests;

/// <summary>A temporary folder, removed at the end.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ingest-s3-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Writes a file (folders created) with a modification time <paramref name="secondsAgo"/> before now, so reading order is known.</summary>
    public string Write(string relative, string text, int secondsAgo = 0, Encoding? encoding = null) =>
        WriteBytes(relative, (encoding ?? new UTF8Encoding(false)).GetBytes(text), secondsAgo);

    public string WriteBytes(string relative, byte[] bytes, int secondsAgo = 0)
    {
        var p = Combine(relative.Split('/'));
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        File.SetLastWriteTimeUtc(p, DateTime.UtcNow.AddSeconds(-secondsAgo - 1));
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

internal static class Compress
{
    public static byte[] Gzip(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest))
        {
            gz.Write(Encoding.UTF8.GetBytes(text));
        }

        return ms.ToArray();
    }
}

/// <summary>Schemas as text (StreamSchema.ToString prints record internals for primitive types).</summary>
internal static class Describe
{
    public static string Schema(StreamSchema s) => string.Join(", ", s.Columns.Select(c => $"{c.Name} {c.Type.DisplayName}{(c.Nullable ? "" : " not null")}"));
}

/// <summary>Rows of batches as dictionaries, for assertions.</summary>
internal static class Rows
{
    public static List<Dictionary<string, object?>> Of(RecordBatch batch)
    {
        var rows = new List<Dictionary<string, object?>>();
        for (var r = 0; r < batch.Length; r++)
        {
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var c = 0; c < batch.ColumnCount; c++)
            {
                row[batch.Schema.FieldsList[c].Name] = ArrowValues.GetValue(batch.Column(c), r);
            }

            rows.Add(row);
        }

        return rows;
    }

    public static List<Dictionary<string, object?>> Of(IEnumerable<ChangeBatch> batches) => batches.SelectMany(b => Of(b.Data)).ToList();
}

/// <summary>Drives a connector read like the engine does.</summary>
internal sealed class ReadSession : IAsyncDisposable
{
    private readonly ISourceReader _reader;
    private readonly IAsyncEnumerator<SourceMessage> _messages;
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromMinutes(2));

    public ReadSession(JsonElement config, JsonElement? state, params string[] streams)
    {
        var connector = new S3Connector();
        _reader = connector.OpenReader(new ReadContext("test", config, streams.Select(s => new StreamSelection(s, SyncMode.Cdc)).ToList(), state, NullConnectorLog.Instance));
        _messages = _reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
    }

    public List<ChangeBatch> Batches { get; } = [];

    public Checkpoint? LastCheckpoint { get; private set; }

    /// <summary>Reads until CaughtUp (or until <paramref name="stop"/> says so after a message).</summary>
    public async Task<bool> ReadUntilAsync(Func<SourceMessage, bool> stop)
    {
        while (await _messages.MoveNextAsync())
        {
            var m = _messages.Current;
            switch (m)
            {
                case ChangeBatch b: Batches.Add(b); break;
                case Checkpoint c: LastCheckpoint = c; break;
            }

            if (stop(m))
            {
                return true;
            }
        }

        return false;
    }

    public Task<bool> CaughtUpAsync() => ReadUntilAsync(m => m is CaughtUp);

    public ValueTask AcknowledgeAsync(Checkpoint c) => _reader.AcknowledgeAsync(c, CancellationToken.None);

    public List<Dictionary<string, object?>> RowsOf(string stream) => Rows.Of(Batches.Where(b => b.Stream == stream));

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await _messages.DisposeAsync();
        await _reader.DisposeAsync();
        _cts.Dispose();
    }
}

/// <summary>Where the repository's built pieces are, and the CLI as a child process.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Plugins => Path.Combine(Root, "artifacts", "plugins");

    public static string IngestDll =>
        Path.Combine(Root, "src", "Ingest.Host", "bin", "Debug", "net10.0", "ingest.dll") is var p && File.Exists(p)
            ? p
            : throw new FileNotFoundException("ingest.dll is not built (src/Ingest.Host/bin/Debug/net10.0).");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root above " + AppContext.BaseDirectory);
    }

    public static async Task<(int Code, string Out, string Err)> RunIngestAsync(string dataDir, string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workDir };
        psi.ArgumentList.Add(IngestDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGEST_DATA"] = dataDir;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    public static async Task<List<Dictionary<string, object?>>> ReadTableAsync(string tablePath)
    {
        var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"No table at {tablePath}");
        var rows = new List<Dictionary<string, object?>>();
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (batch)
            {
                rows.AddRange(Rows.Of(batch));
            }
        }

        return rows;
    }
}
