namespace Ingest.Sdk.Http;

/// <summary>
/// A sliding log of the last <c>limit</c> send times: a request goes only when the one <c>limit</c> places back is at
/// least a second old, so no one-second window ever holds more than <c>limit</c> requests. It backs the token bucket,
/// whose timer-driven refills can, when a tick runs late, let a few more through in some second.
/// </summary>
internal sealed class RequestWindow
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);
    private readonly long[] _sent;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private int _next;
    private int _count;

    public RequestWindow(int limit, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        _sent = new long[limit];
        _time = time;
    }

    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            TimeSpan wait;
            lock (_gate)
            {
                var now = _time.GetTimestamp();
                if (_count < _sent.Length)
                {
                    _count++;
                }
                else if ((wait = Window - _time.GetElapsedTime(_sent[_next], now)) > TimeSpan.Zero)
                {
                    goto Wait;
                }

                _sent[_next] = now;
                _next = (_next + 1) % _sent.Length;
                return;
            }

        Wait:
            await Task.Delay(wait + TimeSpan.FromMilliseconds(1), _time, cancellationToken).ConfigureAwait(false);
        }
    }
}
