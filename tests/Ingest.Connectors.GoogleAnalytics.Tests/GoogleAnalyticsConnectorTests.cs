using System.Security.Cryptography;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;
using static Ingest.Connectors.GoogleAnalytics.Tests.GaTestKit;

namespace Ingest.Connectors.GoogleAnalytics.Tests;

public sealed class GoogleAnalyticsConnectorTests
{
    [Fact]
    public async Task Check_succeeds_with_a_valid_key_property_and_reports()
    {
        using var fake = new FakeGa();
        var result = await GoogleAnalyticsConnector.CheckAsync(Json(Config(fake)), Hooks(), CancellationToken.None);
        Assert.True(result.Succeeded, result.Message);
        Assert.Contains(FakeGa.ClientEmail, result.Message, StringComparison.Ordinal);
        Assert.Contains(fake.Log, l => l.Path.EndsWith("/metadata", StringComparison.Ordinal));
        Assert.Contains(fake.Log, l => l.Path.EndsWith(":runReport", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Check_with_a_key_google_does_not_know_fails_naming_credentialsJson()
    {
        using var fake = new FakeGa();
        using var other = RSA.Create(2048);
        var config = Config(fake);
        config["credentialsJson"] = fake.ServiceAccountJson(signWith: other);
        var result = await GoogleAnalyticsConnector.CheckAsync(Json(config), Hooks(), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/credentialsJson", result.Field);
        Assert.Contains("Invalid JWT Signature", result.Message, StringComparison.Ordinal);
        Assert.Equal(1, fake.TokenRequests);
        Assert.Empty(fake.Log);
    }

    [Theory]
    [InlineData("not json at all", "not JSON")]
    [InlineData("""{"type": "authorized_user", "client_id": "x"}""", "service account key")]
    [InlineData("""{"type": "service_account", "client_email": "a@b.c", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}""", "private_key")]
    [InlineData("""{"type": "service_account", "private_key": "x"}""", "client_email")]
    public async Task Check_with_unusable_credentials_fails_naming_credentialsJson(string credentials, string expected)
    {
        using var fake = new FakeGa();
        var config = Config(fake);
        config["credentialsJson"] = credentials;
        var result = await GoogleAnalyticsConnector.CheckAsync(Json(config), Hooks(), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/credentialsJson", result.Field);
        Assert.Contains(expected, result.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AAAA", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_of_a_property_the_account_cannot_read_fails_naming_propertyId()
    {
        using var fake = new FakeGa();
        var config = Config(fake);
        config["propertyId"] = "987654321";
        var result = await GoogleAnalyticsConnector.CheckAsync(Json(config), Hooks(), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/propertyId", result.Field);
        Assert.Contains("PERMISSION_DENIED", result.Message, StringComparison.Ordinal);
        Assert.Contains(FakeGa.ClientEmail, result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_of_a_report_with_an_unknown_metric_fails_naming_the_report()
    {
        using var fake = new FakeGa();
        var config = Config(fake);
        config["reports"] = new[] { new Dictionary<string, object?> { ["name"] = "t", ["metrics"] = new[] { "activeusers" } } };
        var result = await GoogleAnalyticsConnector.CheckAsync(Json(config), Hooks(), CancellationToken.None);
        Assert.False(result.Succeeded);
        Assert.Equal("/reports/0/metrics", result.Field);
        Assert.Contains("did you mean 'activeUsers'", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Discover_types_columns_from_the_metadata_endpoint_and_keys_each_report_by_its_dimensions_with_date()
    {
        using var fake = new FakeGa();
        var config = Config(fake);
        config["reports"] = new[]
        {
            new Dictionary<string, object?> { ["name"] = "by_country", ["dimensions"] = new[] { "country" }, ["metrics"] = new[] { "activeUsers", "totalRevenue", "bounceRate" } },
            new Dictionary<string, object?> { ["name"] = "daily", ["metrics"] = new[] { "sessions" } },
        };
        var catalog = await GoogleAnalyticsConnector.DiscoverAsync(Json(config), Hooks(), CancellationToken.None);
        var s = catalog.Find("by_country")!;
        Assert.Equal(["date", "country"], s.PrimaryKey);
        Assert.Equal(["date", "country", "activeUsers", "totalRevenue", "bounceRate"], s.Schema.Columns.Select(c => c.Name));
        Assert.Equal([DataType.Date, DataType.String, DataType.Int64, DataType.Double, DataType.Double], s.Schema.Columns.Select(c => c.Type));
        Assert.False(s.Schema["date"].Nullable);
        Assert.Equal(["date"], s.CursorFields);
        Assert.Equal(GaStream.BackfillExample, s.Backfill!.FilterExample);
        Assert.Equal(["date"], catalog.Find("daily")!.PrimaryKey);
        Assert.Single(fake.Log, l => l.Path.EndsWith("/metadata", StringComparison.Ordinal));
        Assert.DoesNotContain(fake.Log, l => l.Path.EndsWith(":runReport", StringComparison.Ordinal));
    }

    [Fact]
    public void Spec_marks_the_key_secret_and_requires_property_key_and_reports()
    {
        var spec = new GoogleAnalyticsConnector().Spec;
        Assert.Equal(["/credentialsJson"], spec.SecretPaths());
        Assert.Equal(["propertyId", "credentialsJson", "reports"], spec.ConfigSchema["required"]!.AsArray().Select(n => (string)n!));
        var attribute = typeof(GoogleAnalyticsConnector).GetCustomAttributes(typeof(IngestConnectorAttribute), false).Cast<IngestConnectorAttribute>().Single();
        Assert.Equal("google-analytics", attribute.Name);
    }

    [Theory]
    [InlineData("propertyId", "\"G-ABC123\"", "/propertyId")]
    [InlineData("startDate", "\"01/02/2024\"", "/startDate")]
    [InlineData("lookbackDays", "-1", "/lookbackDays")]
    [InlineData("apiBase", "\"ftp://x\"", "/apiBase")]
    [InlineData("reports", "[]", "/reports")]
    [InlineData("reports", "[{\"name\": \"a\", \"metrics\": []}]", "/reports/0/metrics")]
    [InlineData("reports", "[{\"name\": \"a\", \"metrics\": [\"sessions\"]}, {\"name\": \"A\", \"metrics\": [\"sessions\"]}]", "/reports/1/name")]
    [InlineData("concurrency", "11", "/concurrency")]
    public void Options_refuse_bad_values_naming_the_field(string field, string json, string expected)
    {
        using var fake = new FakeGa();
        var config = Config(fake);
        config[field] = JsonDocument.Parse(json).RootElement.Clone();
        var e = Assert.Throws<ConnectorException>(() => GaOptions.Parse(Json(config)));
        Assert.Equal(ErrorKind.Configuration, e.Kind);
        Assert.Equal(expected, e.Field);
    }

    [Fact]
    public void Options_add_date_to_the_dimensions_and_apply_defaults()
    {
        var json = JsonDocument.Parse("""{"propertyId": "properties/42", "credentialsJson": "{}", "reports": [{"name": "r", "dimensions": ["country"], "metrics": ["sessions"]}]}""").RootElement;
        var o = GaOptions.Parse(json, new DateOnly(2025, 6, 1));
        Assert.Equal("42", o.PropertyId);
        Assert.Equal(["date", "country"], o.Reports[0].Dimensions);
        Assert.Equal(3, o.LookbackDays);
        Assert.Equal(new DateOnly(2023, 6, 1), o.StartDate);
        Assert.Equal(new Uri("https://analyticsdata.googleapis.com/"), o.ApiBase);
    }

    [Fact]
    public void Quota_windows_reset_at_the_next_hour_and_at_midnight_pacific()
    {
        var now = new DateTimeOffset(2025, 7, 1, 10, 17, 3, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2025, 7, 1, 11, 0, 0, TimeSpan.Zero), GaQuotaGate.DefaultResetAt(now, QuotaWindow.Hour));
        // 10:17 UTC is 03:17 PDT (UTC-7): the day resets at the next local midnight, 07:00 UTC on 2 July.
        Assert.Equal(new DateTimeOffset(2025, 7, 2, 7, 0, 0, TimeSpan.Zero), GaQuotaGate.DefaultResetAt(now, QuotaWindow.Day));
    }
}
