using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Ingest.Connectors.Postgres.Tests;
using Ingest.Engine.Config;
using Ingest.Engine.Pipelines;
using Ingest.Host.Config;
using Microsoft.AspNetCore.DataProtection;

namespace Ingest.Host.Tests;

/// <summary>The config store on a real PostgreSQL (the server the connector tests start), and a host that uses it.</summary>
public sealed class PostgresConfigStoreTests : IClassFixture<PgServer>, IDisposable
{
    private readonly PgServer _pg;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ingest-pg-store-" + Guid.NewGuid().ToString("N")[..8]);

    public PostgresConfigStoreTests(PgServer pg) => _pg = pg;

    private sealed class Protector(IDataProtectionProvider provider) : ISecretProtector
    {
        private readonly IDataProtector _p = provider.CreateProtector("test");

        public string Protect(string plaintext) => _p.Protect(plaintext);

        public string Unprotect(string protectedText) => _p.Unprotect(protectedText);
    }

    private async Task<string> DatabaseUriAsync() => $"postgresql://ingest@127.0.0.1:{_pg.Port}/{await _pg.CreateDatabaseAsync()}";

    [Fact]
    public async Task Store_keeps_connections_with_encrypted_secrets_leases_audit_usage_and_settings()
    {
        var uri = await DatabaseUriAsync();
        var connectionString = PostgresConfigStore.ConnectionString(uri, "--config-store");
        var protector = new Protector(DataProtectionProvider.Create(new DirectoryInfo(Path.Combine(_dir, "keys"))));
        var now = DateTimeOffset.UtcNow;
        var c = new StoredConnection("pg-vault", "vault", new JsonObject { ["host"] = "h", ["password"] = "pg-secret-99" },
            [new StreamChoice("keys", SinkMode.Merge, "crm/keys", ["id", "value"])], "/lake", true, now, now);
        await using (var store = await PostgresConfigStore.OpenAsync(connectionString, protector, CancellationToken.None))
        {
            Assert.True(await store.CreateAsync(c, ["/password"], CancellationToken.None));
            Assert.False(await store.CreateAsync(c, ["/password"], CancellationToken.None));
            Assert.True(await store.SetPausedAsync("pg-vault", true, CancellationToken.None));
            Assert.True(await store.TryAcquireLeaseAsync("pg-vault", "w1", TimeSpan.FromSeconds(30), CancellationToken.None));
            Assert.False(await store.TryAcquireLeaseAsync("pg-vault", "w2", TimeSpan.FromSeconds(30), CancellationToken.None));
            await store.AddAuditAsync(new AuditEntry(0, now, "admin", "pg-vault", "create", [new ConfigChange("config.password", "added", null, null, true)]), CancellationToken.None);
            await store.AddUsageAsync("pg-vault", now, "keys", 10, 100, 1, now, CancellationToken.None);
            await store.AddUsageAsync("pg-vault", now, "keys", 5, 50, 1, now, CancellationToken.None);
            Assert.True(await store.TryAddSettingAsync("k", "v1", CancellationToken.None));
            Assert.False(await store.TryAddSettingAsync("k", "v2", CancellationToken.None));
        }

        // Reopened (the migration does not run twice): everything is there, the secret decrypts, the raw row holds no secret.
        await using (var store = await PostgresConfigStore.OpenAsync(connectionString, protector, CancellationToken.None))
        {
            var read = await store.GetAsync("pg-vault", CancellationToken.None);
            Assert.NotNull(read);
            Assert.Equal("pg-secret-99", read.Config["password"]!.GetValue<string>());
            Assert.True(read.Paused);
            Assert.Equal("crm/keys", Assert.Single(read.Streams!).Table);
            Assert.Equal(["id", "value"], read.Streams![0].Columns);
            Assert.Equal("w1", await store.LeaseOwnerAsync("pg-vault", CancellationToken.None));
            var audit = Assert.Single(await store.ListAuditAsync("pg-vault", 10, CancellationToken.None));
            Assert.True(audit.Changes[0].Secret);
            var usage = Assert.Single(await store.ListUsageAsync("pg-vault", 10, CancellationToken.None));
            Assert.Equal((15L, 150L, 2), (usage.Rows, usage.Bytes, usage.Commits));
            Assert.Equal("v1", await store.GetSettingAsync("k", CancellationToken.None));
            Assert.True(await store.DeleteAsync("pg-vault", CancellationToken.None));
            Assert.Empty(await store.ListAsync(CancellationToken.None));
        }

        var db = connectionString.Split(';').Single(p => p.StartsWith("Database=", StringComparison.Ordinal))["Database=".Length..];
        Assert.Equal(1, await _pg.ScalarAsync<int>(db, "SELECT version FROM ingest_schema"));
    }

    [Fact]
    public async Task Host_with_the_postgresql_config_store_keeps_its_connections_there()
    {
        var uri = await DatabaseUriAsync();
        await using var server = new IngestServerFixture(Path.Combine(_dir, "data"), ["--config-store", uri, "--no-sample"]);
        await server.InitializeAsync();
        using var client = await server.LoginAsync();
        var created = await client.PostAsJsonAsync("api/connections", new { name = "pg-hosted", connector = "vault", config = new { host = "h", password = "pg-hosted-secret" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.False(File.Exists(Path.Combine(_dir, "data", "ingest.db")), "nothing of the config store is in the data folder");

        var db = uri[(uri.LastIndexOf('/') + 1)..];
        Assert.Equal("vault", await _pg.ScalarAsync<string>(db, "SELECT connector FROM connections WHERE name = 'pg-hosted'"));
        var raw = await _pg.ScalarAsync<string>(db, "SELECT config FROM connections WHERE name = 'pg-hosted'");
        Assert.DoesNotContain("pg-hosted-secret", raw, StringComparison.Ordinal);
        Assert.Contains("enc:v1:", raw, StringComparison.Ordinal);
        var check = JsonNode.Parse(await (await client.PostAsync(new Uri("api/connections/pg-hosted/check", UriKind.Relative), null)).Content.ReadAsStringAsync())!;
        Assert.Contains("refused the password", check["message"]!.GetValue<string>(), StringComparison.Ordinal);

        // The backfill sagas' rows live there too.
        await BackfillTests.StartSampleAsync(client, "pg-backfill", customers: 40, batchSize: 20);
        var r = await client.PostAsJsonAsync("api/connections/pg-backfill/backfills", new { stream = "customers", filter = "1..10" });
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        var id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        await BackfillTests.WaitForBackfillAsync(client, "pg-backfill", id, b => b["state"]!.GetValue<string>() == "completed");
        Assert.Equal("completed", await _pg.ScalarAsync<string>(db, $"SELECT state FROM host_backfills WHERE id = '{id}'"));
        await client.PostAsync(new Uri("api/connections/pg-backfill/stop", UriKind.Relative), null);
    }

    [Theory]
    [InlineData("mysql://x@h/db")]
    [InlineData("postgresql://user@host")]
    [InlineData("not a uri")]
    public void Config_store_option_refuses_what_is_not_a_postgresql_uri(string uri)
    {
        var e = Assert.Throws<FormatException>(() => PostgresConfigStore.ConnectionString(uri, "--config-store"));
        Assert.Contains("postgresql://user:password@host:port/database", e.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
