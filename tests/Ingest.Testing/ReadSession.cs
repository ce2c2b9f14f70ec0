using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Testing;

/// <summary>Drives a connector read like the engine does (CDC on the given streams, cancelled after 2 minutes).</summary>
public sealed class ReadSession : IAsyncDisposable
{
    private readonly ISourceReader _reader;
    private readonly IAsyncEnumerator<SourceMessage> _messages;
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromMinutes(2));

    /// <summary>Opens a reader of <paramref name="connector"/> on <paramref name="config"/>, resuming from <paramref name="state"/>.</summary>
    public ReadSession(ISourceConnector connector, JsonElement config, JsonElement? state, params string[] streams)
    {
        ArgumentNullException.ThrowIfNull(connector);
        _reader = connector.OpenReader(new ReadContext("test", config, streams.Select(s => new StreamSelection(s, SyncMode.Cdc)).ToList(), state, NullConnectorLog.Instance));
        _messages = _reader.ReadAsync(_cts.Token).GetAsyncEnumerator(_cts.Token);
    }

    /// <summary>The change batches read so far.</summary>
    public List<ChangeBatch> Batches { get; } = [];

    /// <summary>The last checkpoint read.</summary>
    public Checkpoint? LastCheckpoint { get; private set; }

    /// <summary>Reads until CaughtUp (or until <paramref name="stop"/> says so after a message).</summary>
    public async Task<bool> ReadUntilAsync(Func<SourceMessage, bool> stop)
    {
        ArgumentNullException.ThrowIfNull(stop);
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

    /// <summary>Reads until the reader reports it caught up.</summary>
    public Task<bool> CaughtUpAsync() => ReadUntilAsync(m => m is CaughtUp);

    /// <summary>Acknowledges a checkpoint as durable.</summary>
    public ValueTask AcknowledgeAsync(Checkpoint c) => _reader.AcknowledgeAsync(c, CancellationToken.None);

    /// <summary>The rows read so far of one stream.</summary>
    public List<Dictionary<string, object?>> RowsOf(string stream) => Rows.Of(Batches.Where(b => b.Stream == stream));

    /// <summary>Cancels the read and disposes the reader.</summary>
    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await _messages.DisposeAsync();
        await _reader.DisposeAsync();
        _cts.Dispose();
    }
}
