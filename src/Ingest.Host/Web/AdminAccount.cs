using System.Security.Cryptography;
using Ingest.Engine.Config;
using Microsoft.AspNetCore.Identity;
using Ingest.Host.Config;

namespace Ingest.Host.Web;

/// <summary>The admin login: one account, its password hashed in the config store.</summary>
internal sealed class AdminAccount(IConfigStore store, ServeOptions options)
{
    private const string HashKey = "admin.passwordHash";
    private const string UserKey = "admin.user";
    private static readonly PasswordHasher<string> Hasher = new();

    /// <summary>The admin user name.</summary>
    public string User => options.AdminUser;

    /// <summary>
    /// Sets the password at first start: the configured one, else a generated one that is returned to be shown once.
    /// A configured password always replaces the stored hash (so it can be rotated through configuration).
    /// </summary>
    public async Task<string?> EnsureAsync(CancellationToken cancellationToken)
    {
        await store.SetSettingAsync(UserKey, options.AdminUser, cancellationToken);
        if (options.AdminPassword is { Length: > 0 } configured)
        {
            await store.SetSettingAsync(HashKey, Hasher.HashPassword(options.AdminUser, configured), cancellationToken);
            return null;
        }

        var generated = Generate();
        return await store.TryAddSettingAsync(HashKey, Hasher.HashPassword(options.AdminUser, generated), cancellationToken) ? generated : null;
    }

    /// <summary>Whether the user name and password are the admin's.</summary>
    public async Task<bool> VerifyAsync(string? user, string? password, CancellationToken cancellationToken)
    {
        if (user is null || password is null || !string.Equals(user, options.AdminUser, StringComparison.Ordinal))
        {
            return false;
        }

        var hash = await store.GetSettingAsync(HashKey, cancellationToken);
        return hash is not null && Hasher.VerifyHashedPassword(user, hash, password) != PasswordVerificationResult.Failed;
    }

    private static string Generate()
    {
        // 16 characters from an alphabet without look-alikes (0/O, 1/l/I): about 90 bits.
        const string alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        return RandomNumberGenerator.GetString(alphabet, 16);
    }
}
