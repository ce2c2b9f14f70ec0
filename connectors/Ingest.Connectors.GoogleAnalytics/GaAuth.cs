using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Auth.OAuth2.Responses;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.GoogleAnalytics;

/// <summary>
/// The service-account credential (Google.Apis.Auth): a JWT assertion signed with the key's private key, exchanged at the
/// key's own <c>token_uri</c> for an access token with the <c>analytics.readonly</c> scope.
/// </summary>
internal static class GaAuth
{
    public const string Scope = "https://www.googleapis.com/auth/analytics.readonly";
    private const string Field = "/credentialsJson";

    /// <summary>Parses the key; every problem is a configuration error naming <c>credentialsJson</c> (never quoting the key).</summary>
    public static ServiceAccountCredential Create(string credentialsJson)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(credentialsJson);
        }
        catch (JsonException e)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"credentialsJson is not JSON (line {e.LineNumber + 1}): paste the whole service account key file.", Field, e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConnectorException(ErrorKind.Configuration, "credentialsJson must be a service account key: a JSON object.", Field);
            }

            var type = Text(root, "type");
            if (type != "service_account")
            {
                throw new ConnectorException(ErrorKind.Configuration, $"credentialsJson is a '{type ?? "?"}' credential; a service account key (\"type\": \"service_account\") is needed.", Field);
            }

            var email = Text(root, "client_email") ?? throw new ConnectorException(ErrorKind.Configuration, "credentialsJson has no client_email.", Field);
            var key = Text(root, "private_key") ?? throw new ConnectorException(ErrorKind.Configuration, "credentialsJson has no private_key.", Field);
            var tokenUri = Text(root, "token_uri") ?? GoogleAuthConsts.OidcTokenUrl;
            if (!Uri.TryCreate(tokenUri, UriKind.Absolute, out var parsed) || (parsed.Scheme != Uri.UriSchemeHttps && parsed.Scheme != Uri.UriSchemeHttp))
            {
                throw new ConnectorException(ErrorKind.Configuration, "credentialsJson's token_uri is not an http(s) URL.", Field);
            }

            var initializer = new ServiceAccountCredential.Initializer(email, tokenUri)
            {
                Scopes = [Scope],
                ProjectId = Text(root, "project_id"),
                KeyId = Text(root, "private_key_id"),
            };
            try
            {
                return new ServiceAccountCredential(initializer.FromPrivateKey(key));
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException or FormatException or InvalidOperationException or NotSupportedException or IndexOutOfRangeException or OverflowException)
            {
                throw new ConnectorException(ErrorKind.Configuration, "credentialsJson's private_key is not a readable RSA private key (PEM): paste the key file unchanged.", Field, e);
            }
        }
    }

    /// <summary>The failure of a token request, as a configuration error (a wrong or revoked key) or a transient one.</summary>
    public static ConnectorException Translate(Exception e, string email) => e switch
    {
        TokenResponseException t when t.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
            new ConnectorException(ErrorKind.Configuration, $"Google refused the service account key of {email} ({t.Error?.Error}: {t.Error?.ErrorDescription}). Check credentialsJson: the key may be deleted, disabled or not this account's.", Field, e),
        TokenResponseException t => new ConnectorException(ErrorKind.Transient, $"Google's token endpoint failed ({(int?)t.StatusCode} {t.Error?.Error}): {t.Error?.ErrorDescription}", null, e),
        _ => new ConnectorException(ErrorKind.Transient, $"Cannot get an access token for {email}: {e.Message}", null, e),
    };

    private static string? Text(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : null;
}

/// <summary>
/// Puts the bearer token on every request. On a 401 (the token expired or was revoked before its stated expiry) it gets a
/// new token and sends the request once more: the inner pipeline paces and retries that attempt like any other.
/// </summary>
internal sealed class GoogleAuthHandler(ServiceAccountCredential credential, IConnectorLog log) : DelegatingHandler
{
    private readonly SemaphoreSlim _refresh = new(1, 1);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var token = await TokenAsync(request, cancellationToken).ConfigureAwait(false);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        response.Dispose();
        log.Write(ConnectorLogLevel.Information, $"{request.Method} {request.RequestUri?.AbsolutePath} got 401: refreshing the access token of {credential.Id}.");
        var fresh = await RefreshAsync(token, cancellationToken).ConfigureAwait(false);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fresh);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private async Task<string> TokenAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await credential.GetAccessTokenForRequestAsync(request.RequestUri?.GetLeftPart(UriPartial.Authority), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TokenResponseException or HttpRequestException)
        {
            throw GaAuth.Translate(e, credential.Id);
        }
    }

    /// <summary>Gets a new token unless another request already replaced the one that failed.</summary>
    private async Task<string> RefreshAsync(string failed, CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (credential.Token?.AccessToken is { } current && current != failed)
            {
                return current;
            }

            await credential.RequestAccessTokenAsync(cancellationToken).ConfigureAwait(false);
            return credential.Token?.AccessToken ?? throw new ConnectorException(ErrorKind.Transient, "Google's token endpoint returned no access token.");
        }
        catch (Exception e) when (e is TokenResponseException or HttpRequestException)
        {
            throw GaAuth.Translate(e, credential.Id);
        }
        finally
        {
            _refresh.Release();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _refresh.Dispose();
        }

        base.Dispose(disposing);
    }
}
