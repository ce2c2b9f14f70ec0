using Ingest.Host.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Ingest.Host.Api;

/// <summary>Login and logout: the form posts of the UI and a JSON login for API clients (both set the same cookie).</summary>
internal static class AccountEndpoints
{
    /// <summary>A JSON login.</summary>
    /// <param name="User">The user name.</param>
    /// <param name="Password">The password.</param>
    public sealed record LoginRequest(string? User, string? Password);

    /// <summary>A token to create.</summary>
    /// <param name="Name">What it is for.</param>
    public sealed record TokenRequest(string? Name);

    /// <summary>A created token.</summary>
    /// <param name="Name">What it is for.</param>
    /// <param name="Token">The token, shown once.</param>
    public sealed record TokenResponse(string Name, string Token);

    public static void MapAccountEndpoints(this WebApplication app)
    {
        // The login form is a static page with an antiforgery token, which form binding validates.
        app.MapPost("/account/login", async ([FromForm] string? user, [FromForm] string? password, [FromForm] string? returnUrl, AdminAccount admin, HttpContext http) =>
        {
            var target = returnUrl is { Length: > 0 } r && r.StartsWith('/') && !r.StartsWith("//", StringComparison.Ordinal) && !r.StartsWith("/\\", StringComparison.Ordinal) ? r : "/";
            if (!await admin.VerifyAsync(user, password, http.RequestAborted))
            {
                return Results.Redirect($"/login?error=1&returnUrl={Uri.EscapeDataString(target)}");
            }

            await IngestServer.SignInAsync(http, admin.User);
            return Results.LocalRedirect(target);
        }).AllowAnonymous().ExcludeFromDescription();

        app.MapPost("/account/logout", async (HttpContext http) =>
        {
            await http.SignOutAsync();
            return Results.Redirect("/login");
        }).ExcludeFromDescription();

        app.MapPost("/api/tokens", async (TokenRequest body, ApiTokens tokens, HttpContext http) =>
        {
            if (string.IsNullOrWhiteSpace(body.Name))
            {
                return IngestApi.Problem([new Ingest.Engine.Config.ConfigProblem("name", "required: say what the token is for")], StatusCodes.Status400BadRequest);
            }

            var token = await tokens.CreateAsync(body.Name, http.RequestAborted);
            return Results.Ok(new TokenResponse(body.Name, token));
        }).WithTags("auth").WithSummary("Creates an API token (sent as 'Authorization: Bearer <token>'); it is shown once.");

        app.MapPost("/api/auth/login", async (LoginRequest body, AdminAccount admin, HttpContext http) =>
        {
            if (!await admin.VerifyAsync(body.User, body.Password, http.RequestAborted))
            {
                return Results.Problem(title: "Login failed", detail: "wrong user or password", statusCode: StatusCodes.Status401Unauthorized);
            }

            await IngestServer.SignInAsync(http, admin.User);
            return Results.NoContent();
        }).AllowAnonymous().WithTags("auth").WithSummary("Logs in; the answer sets the session cookie the API accepts.").DisableAntiforgery();
    }
}
