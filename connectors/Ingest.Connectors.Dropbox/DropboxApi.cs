using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Dropbox;

/// <summary>A Dropbox route answered 409 with an error tag (e.g. <c>reset</c>, <c>path/not_found</c>).</summary>
internal sealed class DropboxApiException(string route, string tag, string summary)
    : Exception($"Dropbox {route}: {summary}")
{
    public string Tag { get; } = tag;
}

/// <summary>
/// Dropbox API v2 over HttpClient: RPC routes on the API host, downloads on the content host. Short-lived
/// access tokens come from <c>oauth2/token</c> (refresh-token grant) and are renewed on <c>expired_access_token</c>;
/// 429 waits <c>Retry-After</c> (or the error's <c>retry_after</c>); 5xx retries with backoff.
/// </summary>
internal sealed class DropboxApi : IDisposable
{
    private const int MaxAttempts = 8;
    private readonly DropboxOptions _options;
    private readonly HttpClient _http;
    private readonly IConnectorLog _log;
    private readonly SemaphoreSlim _tokenLock = new(1, 1);
    private string? _token;

    public DropboxApi(DropboxOptions options, IConnectorLog log, HttpMessageHandler? handler = null)
    {
        _options = options;
        _log = log;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = TimeSpan.FromMinutes(10);
        _token = options.RefreshToken is null ? options.AccessToken : null;
    }

    /// <summary>Calls an RPC route (e.g. <c>files/list_folder</c>) with a JSON body.</summary>
    public async Task<JsonElement> RpcAsync(string route, object body, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.Serialize(body);
        using var response = await SendAsync(route, () =>
        {
            var r = new HttpRequestMessage(HttpMethod.Post, new Uri(_options.ApiBase, "2/" + route));
            r.Content = new StringContent(json, Encoding.UTF8, "application/json");
            return r;
        }, cancellationToken).ConfigureAwait(false);
        await using var s = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var doc = await JsonDocument.ParseAsync(s, cancellationToken: cancellationToken).ConfigureAwait(false);
        return doc.RootElement.Clone();
    }

    /// <summary>Downloads a file (<c>files/download</c>); <paramref name="path"/> may be <c>rev:...</c>. The caller disposes the stream.</summary>
    public async Task<Stream> DownloadAsync(string path, CancellationToken cancellationToken)
    {
        // Dropbox-API-Arg must be ASCII: System.Text.Json escapes everything else as \uXXXX.
        var arg = JsonSerializer.Serialize(new { path });
        var response = await SendAsync("files/download", () =>
        {
            var r = new HttpRequestMessage(HttpMethod.Post, new Uri(_options.ContentBase, "2/files/download"));
            r.Headers.TryAddWithoutValidation("Dropbox-API-Arg", arg);
            return r;
        }, cancellationToken, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
    }

    private async Task<HttpResponseMessage> SendAsync(string route, Func<HttpRequestMessage> create, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        var refreshed = false;
        for (var attempt = 1; ; attempt++)
        {
            var token = await TokenAsync(cancellationToken).ConfigureAwait(false);
            using var request = create();
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (attempt < MaxAttempts)
            {
                _log.Write(ConnectorLogLevel.Warning, $"Dropbox {route}: {e.Message}; retrying.");
                await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (response.IsSuccessStatusCode)
            {
                return response;
            }

            using (response)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                var (tag, summary) = ErrorOf(text);
                switch (response.StatusCode)
                {
                    case HttpStatusCode.Unauthorized when tag == "expired_access_token" && _options.RefreshToken is not null && !refreshed:
                        _log.Write(ConnectorLogLevel.Information, "Dropbox access token expired; refreshing it.");
                        await RefreshTokenAsync(token, cancellationToken).ConfigureAwait(false);
                        refreshed = true;
                        continue;
                    case HttpStatusCode.Unauthorized:
                        throw new ConnectorException(ErrorKind.Configuration, $"Dropbox refused the credentials ({summary}): check the refresh token, app key and secret.", _options.RefreshToken is null ? "/accessToken" : "/refreshToken");
                    case HttpStatusCode.TooManyRequests when attempt < MaxAttempts:
                    {
                        var wait = RetryAfter(response, text);
                        _log.Write(ConnectorLogLevel.Information, $"Dropbox {route}: rate limited; waiting {wait.TotalSeconds:0.#} s.");
                        await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    case HttpStatusCode.Conflict:
                        throw new DropboxApiException(route, tag, summary);
                    case >= HttpStatusCode.InternalServerError when attempt < MaxAttempts:
                        await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
                        continue;
                    case HttpStatusCode.Forbidden:
                        throw new ConnectorException(ErrorKind.Configuration, $"Dropbox {route}: the app lacks a permission ({summary}); it needs files.metadata.read and files.content.read.", "/refreshToken");
                    default:
                        throw new ConnectorException(response.StatusCode >= HttpStatusCode.InternalServerError || response.StatusCode == HttpStatusCode.TooManyRequests ? ErrorKind.Transient : ErrorKind.Fatal,
                            string.Create(CultureInfo.InvariantCulture, $"Dropbox {route} answered {(int)response.StatusCode}: {summary}"));
                }
            }
        }
    }

    private static TimeSpan Backoff(int attempt) => TimeSpan.FromMilliseconds(Math.Min(30_000, 200 * (1 << Math.Min(attempt, 8))));

    private static TimeSpan RetryAfter(HttpResponseMessage response, string body)
    {
        if (response.Headers.RetryAfter?.Delta is { } delta)
        {
            return delta;
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("error", out var e) && e.TryGetProperty("retry_after", out var ra) && ra.TryGetDouble(out var s))
            {
                return TimeSpan.FromSeconds(s);
            }
        }
        catch (JsonException)
        {
        }

        return TimeSpan.FromSeconds(1);
    }

    private static (string Tag, string Summary) ErrorOf(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var summary = doc.RootElement.TryGetProperty("error_summary", out var s) ? s.GetString() ?? "" : body;
            var tag = doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object && e.TryGetProperty(".tag", out var t) ? t.GetString() ?? "" : "";
            return (tag, summary);
        }
        catch (JsonException)
        {
            return ("", body.Length > 200 ? body[..200] : body);
        }
    }

    private async Task<string> TokenAsync(CancellationToken cancellationToken)
    {
        if (_token is { } t)
        {
            return t;
        }

        await RefreshTokenAsync(null, cancellationToken).ConfigureAwait(false);
        return _token!;
    }

    private async Task RefreshTokenAsync(string? stale, CancellationToken cancellationToken)
    {
        await _tokenLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_token is not null && _token != stale)
            {
                return; // another call refreshed it meanwhile
            }

            using var form = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = _options.RefreshToken!,
                ["client_id"] = _options.AppKey!,
                ["client_secret"] = _options.AppSecret!,
            });
            using var response = await _http.PostAsync(new Uri(_options.ApiBase, "oauth2/token"), form, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new ConnectorException(ErrorKind.Configuration,
                    string.Create(CultureInfo.InvariantCulture, $"Dropbox refused the refresh token ({(int)response.StatusCode}): check refreshToken, appKey and appSecret."), "/refreshToken");
            }

            using var doc = JsonDocument.Parse(text);
            _token = doc.RootElement.GetProperty("access_token").GetString();
        }
        finally
        {
            _tokenLock.Release();
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _tokenLock.Dispose();
    }

    /// <summary>The response body; disposing it disposes the response.</summary>
    private sealed class ResponseStream(HttpResponseMessage response, Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
