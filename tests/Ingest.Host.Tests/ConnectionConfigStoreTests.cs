using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;
using Microsoft.AspNetCore.DataProtection;

namespace Ingest.Host.Tests;

public sealed class ConnectionConfigStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ingest-config-store-" + Guid.NewGuid().ToString("N")[..8]);

    private sealed class Protector(IDataProtectionProvider provider) : ISecretProtector
    {
        private readonly IDataProtector _p = provider.CreateProtector("test");

        public string Protect(string plaintext) => _p.Protect(plaintext);

        public string Unprotect(string protectedText) => _p.Unprotect(protectedText);
    }

    private Protector NewProtector() => new(DataProtectionProvider.Create(new DirectoryInfo(Path.Combine(_dir, "keys"))));

    private static readonly string[] Secrets = ["/password", "/tls/clientKey"];

    private static StoredConnection Connection(string name) => new(
        name,
        "vault",
        new JsonObject { ["host"] = "h", ["password"] = "pa55", ["tls"] = new JsonObject { ["clientKey"] = "k3y", ["enabled"] = true } },
        [new StreamChoice("keys", SinkMode.Merge), new StreamChoice("audit", SinkMode.History)],
        "/lake",
        true,
        DateTimeOffset.UtcNow,
        DateTimeOffset.UtcNow);

    [Fact]
    public async Task Secrets_are_encrypted_on_disk_and_decrypted_after_a_reopen()
    {
        var path = Path.Combine(_dir, "ingest.db");
        await using (var store = await ConnectionConfigStore.OpenAsync(path, NewProtector(), CancellationToken.None))
        {
            Assert.True(await store.CreateAsync(Connection("a"), Secrets, CancellationToken.None));
            Assert.False(await store.CreateAsync(Connection("a"), Secrets, CancellationToken.None));
        }

        var raw = System.Text.Encoding.UTF8.GetString(await File.ReadAllBytesAsync(path));
        Assert.DoesNotContain("pa55", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("k3y", raw, StringComparison.Ordinal);

        await using (var store = await ConnectionConfigStore.OpenAsync(path, NewProtector(), CancellationToken.None))
        {
            var c = await store.GetAsync("a", CancellationToken.None);
            Assert.NotNull(c);
            Assert.Equal("pa55", c.Config["password"]!.GetValue<string>());
            Assert.Equal("k3y", c.Config["tls"]!["clientKey"]!.GetValue<string>());
            Assert.Equal([new StreamChoice("keys", SinkMode.Merge), new StreamChoice("audit", SinkMode.History)], c.Streams);
            Assert.True(c.Enabled);
            Assert.True(await store.SetEnabledAsync("a", false, CancellationToken.None));
            Assert.False((await store.GetAsync("a", CancellationToken.None))!.Enabled);
            Assert.True(await store.DeleteAsync("a", CancellationToken.None));
            Assert.Empty(await store.ListAsync(CancellationToken.None));
        }
    }

    [Fact]
    public void Masking_hides_every_secret_and_restoring_takes_the_saved_value_only_where_the_mask_came_back()
    {
        var saved = Connection("a").Config;
        var masked = ConnectionSecrets.Masked(saved, Secrets);
        Assert.Equal(ConnectionSecrets.Mask, masked["password"]!.GetValue<string>());
        Assert.Equal(ConnectionSecrets.Mask, masked["tls"]!["clientKey"]!.GetValue<string>());
        Assert.Equal("h", masked["host"]!.GetValue<string>());
        Assert.Equal("pa55", saved["password"]!.GetValue<string>());

        masked["tls"]!["clientKey"] = "new-key";
        var restored = ConnectionSecrets.Restore(masked, saved, Secrets);
        Assert.Equal("pa55", restored["password"]!.GetValue<string>());
        Assert.Equal("new-key", restored["tls"]!["clientKey"]!.GetValue<string>());
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
