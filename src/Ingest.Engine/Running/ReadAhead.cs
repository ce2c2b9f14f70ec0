namespace Ingest.Engine.Running;

/// <summary>
/// How many bytes of change batches a reader may have read ahead of its sink. The channel between them bounds messages;
/// this bounds memory, whatever the connector's batch size: small batches no longer stall the reader while the sink
/// commits (16 messages were five 10k-row batches with their checkpoints), large ones cannot pile up. One batch larger
/// than the limit still passes when nothing else is in flight. One taker (the reader's pump), one releaser (the sink).
/// </summary>
internal sealed class ReadAhead(long limitBytes)
{
    private readonly object _gate = new();
    private long _inFlight;
    private TaskCompletionSource? _released;

    /// <summary>Bytes read ahead and not yet taken by the sink.</summary>
    public long InFlight
    {
        get
        {
            lock (_gate)
            {
                return _inFlight;
            }
        }
    }

    /// <summary>Waits until <paramref name="bytes"/> more fit under the limit, then counts them.</summary>
    public async ValueTask TakeAsync(long bytes, CancellationToken ct)
    {
        while (true)
        {
            Task released;
            lock (_gate)
            {
                if (_inFlight == 0 || _inFlight + bytes <= limitBytes)
                {
                    _inFlight += bytes;
                    return;
                }

                _released ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                released = _released.Task;
            }

            await released.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>The sink took <paramref name="bytes"/> off the channel.</summary>
    public void Release(long bytes)
    {
        TaskCompletionSource? released;
        lock (_gate)
        {
            _inFlight = Math.Max(0, _inFlight - bytes);
            released = _released;
            _released = null;
        }

        released?.TrySetResult();
    }
}
