using Ingest.Sdk.Connectors;

namespace Ingest.Sdk.Http;

/// <summary>The <c>apiBase</c> setting every HTTP connector takes (proxies, regional endpoints, tests).</summary>
public static class ApiBase
{
    /// <summary>
    /// The base URI to call: <paramref name="configured"/> when set, else <paramref name="defaultBase"/>. Always ends
    /// with <c>/</c> so relative paths append to it.
    /// </summary>
    /// <exception cref="ConnectorException">A configuration error naming <paramref name="field"/> when the value is not an absolute http(s) URL.</exception>
    public static Uri Resolve(string? configured, string defaultBase, string field = "/apiBase")
    {
        ArgumentNullException.ThrowIfNull(defaultBase);
        var text = string.IsNullOrWhiteSpace(configured) ? defaultBase : configured.Trim();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{text}' is not an absolute http(s) URL; set {field.TrimStart('/')} to one such as {defaultBase}.", field);
        }

        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"{field.TrimStart('/')} '{text}' must not have a query or fragment.", field);
        }

        return uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
    }
}
