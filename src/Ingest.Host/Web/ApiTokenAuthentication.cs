using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Ingest.Engine.Config;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Ingest.Host.Config;

namespace Ingest.Host.Web;

/// <summary>API tokens for REST clients: <c>Authorization: Bearer ingest_…</c>. Only a SHA-256 of each token is stored.</summary>
internal sealed class ApiTokens(IConfigStore store, AdminAccount admin)
{
    private const string Prefix = "api-token:";

    /// <summary>Creates a token for the admin; it is returned once and cannot be read back.</summary>
    public async Task<string> CreateAsync(string name, CancellationToken cancellationToken)
    {
        var token = "ingest_" + RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 40);
        await store.SetSettingAsync(Prefix + Hash(token), $"{admin.User}\n{name}", cancellationToken);
        return token;
    }

    /// <summary>The user and token name of a valid token, or null.</summary>
    public async Task<(string User, string Name)?> FindAsync(string token, CancellationToken cancellationToken)
    {
        var value = await store.GetSettingAsync(Prefix + Hash(token), cancellationToken);
        if (value is null)
        {
            return null;
        }

        var parts = value.Split('\n', 2);
        return (parts[0], parts.Length > 1 ? parts[1] : "");
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>Authenticates requests that carry an API token.</summary>
internal sealed class ApiTokenAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiTokens tokens)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var found = await tokens.FindAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted);
        if (found is not { } t)
        {
            return AuthenticateResult.Fail("unknown API token");
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, t.User), new Claim(ClaimTypes.Role, "admin"), new Claim("token", t.Name)], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}
