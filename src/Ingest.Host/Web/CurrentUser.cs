using Microsoft.AspNetCore.Components.Authorization;

namespace Ingest.Host.Web;

/// <summary>Who is acting, for the audit log: the API request's user, or the Blazor circuit's.</summary>
internal sealed class CurrentUser(IHttpContextAccessor http, IServiceProvider services)
{
    public async Task<string> NameAsync()
    {
        if (http.HttpContext?.User.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name })
        {
            return http.HttpContext.User.FindFirst("token")?.Value is { } token ? $"{name} (token {token})" : name;
        }

        if (services.GetService<AuthenticationStateProvider>() is { } provider)
        {
            try
            {
                var state = await provider.GetAuthenticationStateAsync();
                if (state.User.Identity is { IsAuthenticated: true, Name: { Length: > 0 } n })
                {
                    return n;
                }
            }
            catch (InvalidOperationException)
            {
                // Not in a circuit: no authentication state was set.
            }
        }

        return "unknown";
    }
}
