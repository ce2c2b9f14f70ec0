using Ingest.Engine.Config;
using Microsoft.AspNetCore.DataProtection;

namespace Ingest.Host.Web;

/// <summary>Encrypts connection secrets with ASP.NET Core Data Protection (keys in the data folder), once the host attached its provider.</summary>
internal sealed class DeferredSecretProtector : ISecretProtector
{
    private IDataProtector? _protector;

    /// <summary>Attaches the host's provider.</summary>
    public void Attach(IDataProtectionProvider provider) => _protector = provider.CreateProtector("Ingest.ConnectionSecrets.v1");

    public string Protect(string plaintext) => Protector.Protect(plaintext);

    public string Unprotect(string protectedText) => Protector.Unprotect(protectedText);

    private IDataProtector Protector => _protector ?? throw new InvalidOperationException("secrets cannot be read or written before the host has started");
}
