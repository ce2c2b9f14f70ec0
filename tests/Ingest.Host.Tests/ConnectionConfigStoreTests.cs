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
    public async Task Store_of_the_first_schema_version_migrates_keeping_its_connections()
    {
        var path = Path.Combine(_dir, "old.db");
        Directory.CreateDirectory(_dir);
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await db.OpenAsync();
            await using var cmd = db.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE connections(name TEXT PRIMARY KEY, connector TEXT NOT NULL, config TEXT NOT NULL, streams TEXT,
                    lake TEXT NOT NULL, enabled INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
                CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO connections VALUES('old', 'sample', '{"seed":1}', NULL, '/lake', 1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
                PRAGMA user_version=1;
                """;
            await cmd.ExecuteNonQueryAsync();
        }

        await using var store = await ConnectionConfigStore.OpenAsync(path, NewProtector(), CancellationToken.None);
        var old = await store.GetAsync("old", CancellationToken.None);
        Assert.NotNull(old);
        Assert.True(old.Enabled);
        Assert.False(old.Paused);
        Assert.True(await store.SetPausedAsync("old", true, CancellationToken.None));
        Assert.True((await store.GetAsync("old", CancellationToken.None))!.Paused);
        Assert.Empty(await store.ListAuditAsync(null, 10, CancellationToken.None));
    }

    [Fact]
    public async Task Usage_adds_up_per_run_and_stream_and_lists_the_newest_run_first()
    {
        await using var store = await ConnectionConfigStore.OpenAsync(Path.Combine(_dir, "ingest.db"), NewProtector(), CancellationToken.None);
        var run1 = new DateTimeOffset(2026, 1, 1, 10, 0, 0, TimeSpan.Zero);
        var run2 = run1.AddHours(1);
        await store.AddUsageAsync("c", run1, "orders", 10, 1000, 1, run1.AddSeconds(1), CancellationToken.None);
        await store.AddUsageAsync("c", run1, "orders", 5, 300, 2, run1.AddSeconds(9), CancellationToken.None);
        await store.AddUsageAsync("c", run2, "orders", 7, 700, 1, run2.AddSeconds(1), CancellationToken.None);
        await store.AddUsageAsync("other", run1, "orders", 99, 99, 1, run1, CancellationToken.None);

        var usage = await store.ListUsageAsync("c", 10, CancellationToken.None);
        Assert.Equal(2, usage.Count);
        Assert.Equal((run2, 7L, 700L, 1), (usage[0].RunStartedAt, usage[0].Rows, usage[0].Bytes, usage[0].Commits));
        Assert.Equal((run1, 15L, 1300L, 3), (usage[1].RunStartedAt, usage[1].Rows, usage[1].Bytes, usage[1].Commits));
        Assert.Equal((run1.AddSeconds(1), run1.AddSeconds(9)), (usage[1].FirstAt, usage[1].LastAt));
    }

    [Fact]
    public void Protected_config_hides_secrets_and_unprotects_to_the_original()
    {
        var config = JsonNode.Parse("""{"host":"h","password":"pa55","tls":{"clientKey":"k3y","enabled":true}}""")!.AsObject();
        var protector = NewProtector();
        var onTheWire = ConnectionSecrets.Protected(config, Secrets, protector);
        var text = onTheWire.ToJsonString();
        Assert.DoesNotContain("pa55", text, StringComparison.Ordinal);
        Assert.DoesNotContain("k3y", text, StringComparison.Ordinal);
        Assert.StartsWith(ConnectionSecrets.EncryptedPrefix, onTheWire["password"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("h", onTheWire["host"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(config, ConnectionSecrets.Unprotected(onTheWire, protector)));
        // Protecting twice does not encrypt the encrypted value again.
        Assert.True(JsonNode.DeepEquals(onTheWire, ConnectionSecrets.Protected(onTheWire, Secrets, protector)));
    }

    [Fact]
    public void Config_diff_names_changed_leaves_and_elides_secret_values()
    {
        var before = JsonNode.Parse("""{"host":"a","password":"old-pw","tls":{"enabled":true,"clientKey":"k1"},"tags":["x"]}""")!.AsObject();
        var after = JsonNode.Parse("""{"host":"b","password":"new-pw","tls":{"enabled":true},"tags":["x","y"],"port":1}""")!.AsObject();
        var changes = ConfigDiff.Compare(before, after, Secrets);
        Assert.Equal(
            ["config.host changed \"a\" \"b\" False", "config.password changed - - True", "config.port added - 1 False",
             "config.tags changed [\"x\"] [\"x\",\"y\"] False", "config.tls.clientKey removed - - True"],
            changes.Select(c => $"{c.Field} {c.Kind} {c.From ?? "-"} {c.To ?? "-"} {c.Secret}"));
        Assert.Empty(ConfigDiff.Compare(before, (JsonObject)before.DeepClone(), Secrets));
    }

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
