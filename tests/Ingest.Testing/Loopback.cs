using System.Net;
using System.Net.Sockets;

namespace Ingest.Testing;

/// <summary>Loopback ports for the in-process fakes of internet APIs.</summary>
public static class Loopback
{
    /// <summary>
    /// Starts <paramref name="listener"/> on a free loopback port and returns its base address
    /// (<c>http://127.0.0.1:PORT</c>, no trailing slash). A port found free can be taken by another process before the
    /// listener binds it (test assemblies and servers start in parallel), so a refused start tries another port.
    /// </summary>
    public static string Start(HttpListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        for (var attempt = 1; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var baseUrl = FormattableString.Invariant($"http://127.0.0.1:{port}");
            try
            {
                listener.Prefixes.Add(baseUrl + "/");
                listener.Start();
                return baseUrl;
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Prefixes.Clear();
            }
        }
    }
}
