using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace Ingest.Host.Tests;

/// <summary>
/// The UI in a real browser: Debian's Chromium (/usr/bin/chromium, installed by test.sh) driven headless by
/// Playwright. A machine without it fails these tests; they never skip. Screenshots of each step go to
/// artifacts/test-results/screenshots.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class BrowserTests(IngestServerFixture server) : IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private IPage _page = null!;

    private static string Screenshots { get; } = Path.Combine(Repo.Root, "artifacts", "test-results", "screenshots");

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: ./test.sh installs it (apt-get install chromium)");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        });
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.BaseAddress.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        // Generous: the suite runs test assemblies in parallel on two cores, and a save round-trips through the bus.
        context.SetDefaultTimeout(45_000);
        context.SetDefaultNavigationTimeout(45_000);
        _page = await context.NewPageAsync();
        Directory.CreateDirectory(Screenshots);
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    private async Task LoginAsync()
    {
        await _page.GotoAsync("/");
        await _page.WaitForURLAsync(u => u.Contains("/login", StringComparison.Ordinal));
        await _page.FillAsync("#password", server.Password);
        await _page.ClickAsync("button[type=submit]");
        await _page.WaitForSelectorAsync("h1:has-text('Connections')");
    }

    private Task ShotAsync(string name) => _page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });

    private static long Number(string text) => long.Parse(text.Replace(",", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);

    [Fact]
    public async Task Login_with_the_printed_password_shows_the_sample_connection_running_with_rows_counting_up()
    {
        await _page.GotoAsync("/");
        await _page.WaitForURLAsync(u => u.Contains("/login", StringComparison.Ordinal));
        await _page.FillAsync("#password", "not-the-password");
        await _page.ClickAsync("button[type=submit]");
        await _page.WaitForSelectorAsync("text=Wrong user or password");
        await ShotAsync("01-login-refused");

        await LoginAsync();
        var row = _page.Locator("tr[data-connection=sample]");
        await row.Locator(".badge:has-text('running')").WaitForAsync();
        var cell = row.Locator(".rows-committed");
        await _page.WaitForFunctionAsync("() => Number(document.querySelector('tr[data-connection=sample] .rows-committed').textContent.replace(/,/g, '')) > 0");
        var first = Number(await cell.TextContentAsync() ?? "0");
        await ShotAsync("02-connections");

        // The sample keeps changing about five times a second; the list refreshes itself.
        await _page.WaitForFunctionAsync($"() => Number(document.querySelector('tr[data-connection=sample] .rows-committed').textContent.replace(/,/g, '')) > {first}");
        Assert.True(Number(await cell.TextContentAsync() ?? "0") > first);

        await row.Locator("a").ClickAsync();
        await _page.WaitForSelectorAsync("#stream-status tr[data-stream=orders]");
        await _page.WaitForSelectorAsync("svg.chart polyline");
        await _page.WaitForTimeoutAsync(2000);
        await ShotAsync("03-connection");
        Assert.True(Number(await _page.Locator("#rows-committed").TextContentAsync() ?? "0") > 0);
        Assert.Equal(4, await _page.Locator("#stream-status tbody tr").CountAsync());

        // The connection's log: the engine's lines for it, newest first; the level filter hides information lines.
        await _page.WaitForSelectorAsync("#log li[data-level=information]");
        Assert.Contains("sample", await _page.Locator("#log li").First.TextContentAsync() ?? "", StringComparison.Ordinal);
        await ShotAsync("03b-connection-log");
        await _page.SelectOptionAsync("#log-level", "warning");
        await _page.WaitForFunctionAsync("() => document.querySelectorAll('#log li[data-level=information]').length === 0");
        Assert.Equal(0, await _page.Locator("#log li[data-level=debug], #log li[data-level=information]").CountAsync());
    }

    [Fact]
    public async Task Connection_is_created_through_the_generated_form_tested_and_its_streams_chosen()
    {
        await LoginAsync();
        await _page.GotoAsync("/connectors");
        await _page.ClickAsync("[data-connector=vault] a:has-text('New connection')");
        await _page.WaitForSelectorAsync("[data-field='config.host'] input");

        // Every construct of the schema is rendered: text, number, password, enum, nested object with a boolean.
        Assert.Equal("password", await _page.GetAttributeAsync("[data-field='config.password'] input", "type"));
        Assert.Equal("number", await _page.GetAttributeAsync("[data-field='config.port'] input", "type"));
        Assert.Equal("default: 8200", await _page.GetAttributeAsync("[data-field='config.port'] input", "placeholder"));
        Assert.Equal(3, await _page.Locator("[data-field='config.region'] select option").CountAsync());
        Assert.True(await _page.IsCheckedAsync("[data-field='config.tls.enabled'] input[type=checkbox]"));
        Assert.Equal("password", await _page.GetAttributeAsync("[data-field='config.tls.clientKey'] input", "type"));
        await _page.WaitForSelectorAsync("text=The vault's host name.");

        await _page.FillAsync("#f-name", "vault-ui");
        await _page.ClickAsync("#save");
        await _page.WaitForSelectorAsync("[data-field='config.host'] .field-error");
        Assert.Contains("required", await _page.TextContentAsync("[data-field='config.host'] .field-error") ?? "", StringComparison.Ordinal);
        await ShotAsync("04-form-errors");

        await _page.FillAsync("[data-field='config.host'] input", "vault.example");
        await _page.FillAsync("[data-field='config.password'] input", "wrong");
        await _page.SelectOptionAsync("[data-field='config.region'] select", "us");
        await _page.ClickAsync("#test");
        await _page.WaitForSelectorAsync("#check-result.error");
        Assert.Contains("refused the password", await _page.TextContentAsync("#check-result") ?? "", StringComparison.Ordinal);
        Assert.Contains("refused the password", await _page.TextContentAsync("[data-field='config.password'] .field-error") ?? "", StringComparison.Ordinal);

        await _page.FillAsync("[data-field='config.password'] input", "open-sesame");
        await _page.ClickAsync("#test");
        await _page.WaitForSelectorAsync("#check-result.ok");
        Assert.Contains("Connected to vault.example.", await _page.TextContentAsync("#check-result") ?? "", StringComparison.Ordinal);

        await _page.ClickAsync("#discover");
        await _page.WaitForSelectorAsync("#streams tr[data-stream=audit]");
        await _page.UncheckAsync("#streams tr[data-stream=audit] input.stream-select");
        await _page.SelectOptionAsync("#streams tr[data-stream=keys] select", "append");
        await ShotAsync("05-form-discovered");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/vault-ui", StringComparison.Ordinal));
        await _page.WaitForSelectorAsync("h1:has-text('vault-ui')");
        Assert.DoesNotContain("open-sesame", await _page.ContentAsync(), StringComparison.Ordinal);

        using var api = await server.LoginAsync();
        var saved = (JsonObject)JsonNode.Parse(await api.GetStringAsync(new Uri("api/connections/vault-ui", UriKind.Relative)))!;
        Assert.Equal("vault.example", saved["config"]!["host"]!.GetValue<string>());
        Assert.Equal("us", saved["config"]!["region"]!.GetValue<string>());
        Assert.Equal("********", saved["config"]!["password"]!.GetValue<string>());
        Assert.Equal("""[{"name":"keys","mode":"append"}]""", saved["streams"]!.ToJsonString());

        // Editing shows the secret masked, and saving without touching it keeps it.
        await _page.GotoAsync("/connections/vault-ui/edit");
        await _page.WaitForSelectorAsync("[data-field='config.password'] input");
        Assert.Equal("********", await _page.InputValueAsync("[data-field='config.password'] input"));
        await _page.FillAsync("[data-field='config.port'] input", "8300");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/vault-ui", StringComparison.Ordinal));
        var check = (JsonObject)JsonNode.Parse(await (await api.PostAsync(new Uri("api/connections/vault-ui/check", UriKind.Relative), null)).Content.ReadAsStringAsync())!;
        Assert.True(check["succeeded"]!.GetValue<bool>(), check.ToJsonString());
    }

    [Fact]
    public async Task Connection_page_starts_and_stops_a_connection_and_shows_its_rows()
    {
        using (var api = await server.LoginAsync())
        {
            var created = await api.PostAsJsonAsync("api/connections", new { name = "ui-run", connector = "sample", config = new { seed = 9, customers = 30, products = 5, orders = 40, changes = 50, changesPerSecond = 10, batchSize = 50 } });
            Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        }

        await LoginAsync();
        await _page.GotoAsync("/connections/ui-run");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('idle')");
        await _page.ClickAsync("#start");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('running')");
        await _page.WaitForFunctionAsync("() => Number(document.querySelector('#rows-committed').textContent.replace(/,/g, '')) >= 30");
        Assert.Equal(4, await _page.Locator("#stream-status tbody tr").CountAsync());
        await _page.WaitForSelectorAsync("#usage tbody tr[data-stream=customers]");
        Assert.True(Number(await _page.Locator("#usage tr[data-stream=customers] td").Nth(2).TextContentAsync() ?? "0") > 0);

        await _page.ClickAsync("#pause");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('paused')");
        await ShotAsync("08-connection-paused");
        await _page.ClickAsync("#resume");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('running')");
        await _page.ClickAsync("#stop");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('stopped')");
        await _page.WaitForSelectorAsync("#start");
    }

    [Fact]
    public async Task Connection_page_shows_the_connectors_figures_in_megabytes_beside_the_streams()
    {
        using (var api = await server.LoginAsync())
        {
            var created = await api.PostAsJsonAsync("api/connections", new { name = "ui-figures", connector = "vault", config = new { host = "v", password = "open-sesame" } });
            Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        }

        await LoginAsync();
        await _page.GotoAsync("/connections/ui-figures");
        await _page.WaitForSelectorAsync("h1 .badge:has-text('idle')");
        Assert.Equal(0, await _page.Locator("#figures").CountAsync());
        await _page.ClickAsync("#start");

        // The vault test plugin reports 13,002,342 bytes of key cache.
        var figure = _page.Locator("#figures [data-figure=cache_bytes]");
        await figure.WaitForAsync();
        await ShotAsync("08b-connection-figures");
        Assert.Equal("key cache", await figure.Locator("dt").TextContentAsync());
        Assert.Equal("12.4 MB", await figure.Locator("dd").TextContentAsync());
    }

    [Fact]
    public async Task Generated_form_edits_arrays_and_a_oneOf_group_and_shows_them_again_when_editing()
    {
        await LoginAsync();
        await _page.GotoAsync("/connectors");
        await _page.ClickAsync("[data-connector=vault] a:has-text('New connection')");
        await _page.WaitForSelectorAsync("[data-field='config.host'] input");
        await _page.FillAsync("#f-name", "vault-forms");
        await _page.FillAsync("[data-field='config.host'] input", "vault.example");
        await _page.FillAsync("[data-field='config.password'] input", "open-sesame");

        // An array of strings: add two, remove the first.
        await _page.ClickAsync("[data-field='config.tags'] button.add");
        await _page.FillAsync("[data-field='config.tags[0]'] input", "blue");
        await _page.ClickAsync("[data-field='config.tags'] button.add");
        await _page.FillAsync("[data-field='config.tags[1]'] input", "green");
        await _page.ClickAsync("[data-field='config.tags[0]'] button.remove");
        await _page.WaitForFunctionAsync("() => document.querySelectorAll(\"[data-field='config.tags'] .array-item\").length === 1");
        Assert.Equal("green", await _page.InputValueAsync("[data-field='config.tags[0]'] input"));

        // An array of integers and an array of objects (each item a nested form).
        await _page.ClickAsync("[data-field='config.timeouts'] button.add");
        await _page.FillAsync("[data-field='config.timeouts[0]'] input", "5");
        await _page.ClickAsync("[data-field='config.replicas'] button.add");
        await _page.FillAsync("[data-field='config.replicas[0].host'] input", "replica-1");
        await _page.FillAsync("[data-field='config.replicas[0].weight'] input", "3");
        Assert.Equal("default: 1", await _page.GetAttributeAsync("[data-field='config.replicas[0].weight'] input", "placeholder"));

        // A oneOf group: a select of the alternatives by title, then the chosen one's fields.
        var modes = await _page.Locator("[data-field='config.mode'] select.one-of-select option").AllTextContentsAsync();
        Assert.Equal(["—", "Full scan", "Incremental"], modes);
        await _page.SelectOptionAsync("[data-field='config.mode'] select.one-of-select", new SelectOptionValue { Label = "Full scan" });
        await _page.WaitForSelectorAsync("[data-field='config.mode.batch'] input");
        await _page.SelectOptionAsync("[data-field='config.mode'] select.one-of-select", new SelectOptionValue { Label = "Incremental" });
        await _page.WaitForSelectorAsync("[data-field='config.mode.cursor'] input");
        Assert.Equal(0, await _page.Locator("[data-field='config.mode.batch']").CountAsync());
        await _page.WaitForSelectorAsync("text=Reads keys changed since the last run.");

        // The chosen alternative's required field is refused on that field.
        await _page.ClickAsync("#save");
        await _page.WaitForSelectorAsync("[data-field='config.mode.cursor'] .field-error");
        await ShotAsync("06-form-arrays-oneof");
        await _page.FillAsync("[data-field='config.mode.cursor'] input", "updated_at");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/vault-forms", StringComparison.Ordinal));

        using var api = await server.LoginAsync();
        var config = JsonNode.Parse(await api.GetStringAsync(new Uri("api/connections/vault-forms", UriKind.Relative)))!["config"]!;
        Assert.Equal("""["green"]""", config["tags"]!.ToJsonString());
        Assert.Equal("[5]", config["timeouts"]!.ToJsonString());
        Assert.Equal("""[{"host":"replica-1","weight":3}]""", config["replicas"]!.ToJsonString());
        Assert.Equal("""{"kind":"incremental","cursor":"updated_at"}""", config["mode"]!.ToJsonString());

        // Editing renders the saved values: the chosen alternative, the items.
        await _page.GotoAsync("/connections/vault-forms/edit");
        await _page.WaitForSelectorAsync("[data-field='config.mode.cursor'] input");
        Assert.Equal("updated_at", await _page.InputValueAsync("[data-field='config.mode.cursor'] input"));
        Assert.Equal("Incremental", await _page.Locator("[data-field='config.mode'] select.one-of-select option:checked").TextContentAsync());
        Assert.Equal("green", await _page.InputValueAsync("[data-field='config.tags[0]'] input"));
        Assert.Equal("replica-1", await _page.InputValueAsync("[data-field='config.replicas[0].host'] input"));
        await ShotAsync("07-form-edit-arrays-oneof");
    }

    [Fact]
    public async Task Audit_page_shows_who_changed_a_connection_and_that_its_secret_changed_without_the_value()
    {
        using (var api = await server.LoginAsync())
        {
            Assert.Equal(System.Net.HttpStatusCode.Created, (await api.PostAsJsonAsync("api/connections", new { name = "ui-audit", connector = "vault", config = new { host = "a", password = "pw-one-111" } })).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.OK, (await api.PutAsJsonAsync("api/connections/ui-audit", new { connector = "vault", config = new { host = "b", password = "pw-two-222" } })).StatusCode);
        }

        await LoginAsync();
        await _page.ClickAsync("nav a:has-text('Audit')");
        await _page.WaitForSelectorAsync("#audit tr[data-connection=ui-audit][data-action=update]");
        var update = _page.Locator("#audit tr[data-connection=ui-audit][data-action=update]");
        Assert.Contains("admin", await update.TextContentAsync() ?? "", StringComparison.Ordinal);
        Assert.Contains("secret changed", await update.Locator("li[data-field='config.password']").TextContentAsync() ?? "", StringComparison.Ordinal);
        Assert.Contains("\"a\" → \"b\"", await update.Locator("li[data-field='config.host']").TextContentAsync() ?? "", StringComparison.Ordinal);
        await _page.WaitForSelectorAsync("#audit tr[data-connection=ui-audit][data-action=create]");
        var html = await _page.ContentAsync();
        Assert.DoesNotContain("pw-one-111", html, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-two-222", html, StringComparison.Ordinal);
        await ShotAsync("09-audit");
    }

    [Fact]
    public async Task Table_page_shows_the_preview_schema_and_history_of_a_sample_table()
    {
        using (var api = await server.LoginAsync())
        {
            // The sample connection's first commit creates its tables.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !(await api.GetStringAsync(new Uri("api/tables", UriKind.Relative))).Contains("sample/orders", StringComparison.Ordinal))
            {
                await Task.Delay(250);
            }
        }

        await LoginAsync();
        await _page.ClickAsync("nav a:has-text('Tables')");
        await _page.ClickAsync("#tables tr[data-table='sample/orders'] a");
        await _page.WaitForSelectorAsync("#preview tbody tr");
        Assert.True(await _page.Locator("#preview tbody tr").CountAsync() > 0);
        Assert.Equal(1, await _page.Locator("#preview thead th:text-is('_position')").CountAsync());
        await ShotAsync("06-table-preview");

        await _page.ClickAsync(".tabs button:has-text('Schema')");
        await _page.WaitForSelectorAsync("#schema td:text-is('id')");
        await _page.ClickAsync(".tabs button:has-text('History')");
        await _page.WaitForSelectorAsync("#history tbody tr");
        Assert.True(await _page.Locator("#history tbody tr").CountAsync() > 0);
        await ShotAsync("07-table-history");
    }

    [Fact]
    public async Task Connection_exports_as_yaml_and_the_file_imports_as_a_new_connection()
    {
        using (var api = await server.LoginAsync())
        {
            var created = await api.PostAsJsonAsync("api/connections", new { name = "ui-export", connector = "vault", config = new { host = "vault.example", password = "ui-export-secret" } });
            Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        }

        await LoginAsync();
        await _page.GotoAsync("/connections/ui-export");
        var download = await _page.RunAndWaitForDownloadAsync(() => _page.ClickAsync("#export"));
        Assert.Equal("ui-export.yaml", download.SuggestedFilename);
        var yaml = await File.ReadAllTextAsync(await download.PathAsync());
        Assert.Contains("connector: \"vault\"", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("ui-export-secret", yaml, StringComparison.Ordinal);

        await _page.GotoAsync("/");
        await _page.ClickAsync("#import-link");
        await _page.FillAsync("#import-yaml", yaml.Replace("name: \"ui-export\"", "name: \"ui-imported\"", StringComparison.Ordinal).Replace("host: \"vault.example\"", "host: 42", StringComparison.Ordinal));
        await _page.ClickAsync("#import");
        await _page.WaitForSelectorAsync("#import-errors li[data-field='connections[0].config.host']");
        Assert.Contains("import.yaml:", await _page.TextContentAsync("#import-errors") ?? "", StringComparison.Ordinal);

        await _page.FillAsync("#import-yaml", yaml.Replace("name: \"ui-export\"", "name: \"ui-imported\"", StringComparison.Ordinal));
        await _page.ClickAsync("#import");
        await _page.WaitForSelectorAsync("#import-result a[href='/connections/ui-imported']");
        Assert.Contains("password", await _page.TextContentAsync("#import-warnings") ?? "", StringComparison.Ordinal);
        await ShotAsync("10-import");
        await _page.ClickAsync("#import-result a[href='/connections/ui-imported']");
        await _page.WaitForSelectorAsync("h1:has-text('ui-imported')");
    }

    [Fact]
    public async Task Secrets_in_array_items_and_oneOf_alternatives_show_masked_and_survive_a_save_from_the_form()
    {
        using var api = await server.LoginAsync();
        var created = await api.PostAsJsonAsync("api/connections", new
        {
            name = "ui-nested-secrets",
            connector = "vault",
            config = new
            {
                host = "vault.example",
                password = "open-sesame",
                replicas = new[] { new { host = "r1", password = "pw-r1" } },
                mode = new { kind = "incremental", cursor = "c", token = "tok-c" },
            },
        });
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);

        await LoginAsync();
        await _page.GotoAsync("/connections/ui-nested-secrets/edit");
        await _page.WaitForSelectorAsync("[data-field='config.replicas[0].password'] input");
        Assert.Equal("password", await _page.GetAttributeAsync("[data-field='config.replicas[0].password'] input", "type"));
        Assert.Equal("********", await _page.InputValueAsync("[data-field='config.replicas[0].password'] input"));
        Assert.Equal("password", await _page.GetAttributeAsync("[data-field='config.mode.token'] input", "type"));
        Assert.Equal("********", await _page.InputValueAsync("[data-field='config.mode.token'] input"));
        var html = await _page.ContentAsync();
        Assert.DoesNotContain("pw-r1", html, StringComparison.Ordinal);
        Assert.DoesNotContain("tok-c", html, StringComparison.Ordinal);
        await ShotAsync("11-nested-secrets");

        await _page.FillAsync("[data-field='config.replicas[0].weight'] input", "4");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/ui-nested-secrets", StringComparison.Ordinal));
        Assert.DoesNotContain("pw-r1", await _page.ContentAsync(), StringComparison.Ordinal);
        var check = JsonNode.Parse(await (await api.PostAsync(new Uri("api/connections/ui-nested-secrets/check", UriKind.Relative), null)).Content.ReadAsStringAsync())!;
        Assert.True(check["succeeded"]!.GetValue<bool>(), check.ToJsonString());
        var saved = JsonNode.Parse(await api.GetStringAsync(new Uri("api/connections/ui-nested-secrets", UriKind.Relative)))!;
        Assert.Equal(4, saved["config"]!["replicas"]![0]!["weight"]!.GetValue<int>());
    }

    [Fact]
    public async Task Discovered_stream_gets_its_own_table_path_in_the_form_and_a_bad_one_is_marked()
    {
        await LoginAsync();
        await _page.GotoAsync("/connections/new?connector=sample");
        await _page.WaitForSelectorAsync("#discover");
        await _page.FillAsync("#f-name", "ui-tables");
        await _page.ClickAsync("#discover");
        await _page.WaitForSelectorAsync("#streams tr[data-stream=customers] input.table-path");
        Assert.Equal("ui-tables/customers", await _page.GetAttributeAsync("#streams tr[data-stream=customers] input.table-path", "placeholder"));
        await _page.FillAsync("#streams tr[data-stream=customers] input.table-path", "../elsewhere");
        await _page.ClickAsync("#save");
        await _page.WaitForSelectorAsync("#streams tr[data-stream=customers] td.invalid .field-error");
        Assert.Contains("folder/table", await _page.TextContentAsync("#streams tr[data-stream=customers] .field-error") ?? "", StringComparison.Ordinal);
        await ShotAsync("12-table-path-error");

        await _page.FillAsync("#streams tr[data-stream=customers] input.table-path", "crm/clients");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/ui-tables", StringComparison.Ordinal));
        using var api = await server.LoginAsync();
        var saved = JsonNode.Parse(await api.GetStringAsync(new Uri("api/connections/ui-tables", UriKind.Relative)))!;
        var customers = saved["streams"]!.AsArray().Single(x => x!["name"]!.GetValue<string>() == "customers")!;
        Assert.Equal("crm/clients", customers["table"]!.GetValue<string>());

        // Editing shows the chosen table again.
        await _page.GotoAsync("/connections/ui-tables/edit");
        await _page.ClickAsync("#discover");
        await _page.WaitForSelectorAsync("#streams tr[data-stream=customers] input.table-path");
        Assert.Equal("crm/clients", await _page.InputValueAsync("#streams tr[data-stream=customers] input.table-path"));
    }

    [Fact]
    public async Task Unticked_column_is_left_out_of_the_saved_stream_and_key_columns_cannot_be_unticked()
    {
        await LoginAsync();
        await _page.GotoAsync("/connections/new?connector=sample");
        await _page.WaitForSelectorAsync("#discover");
        await _page.FillAsync("#f-name", "ui-columns");
        await _page.ClickAsync("#discover");
        const string Id = "#streams tr[data-stream=customers] input.column-select[data-column=id]";
        const string Email = "#streams tr[data-stream=customers] input.column-select[data-column=email]";
        await _page.WaitForSelectorAsync(Email);
        Assert.True(await _page.IsDisabledAsync(Id));
        Assert.True(await _page.IsCheckedAsync(Id));
        await _page.UncheckAsync(Email);
        await ShotAsync("14-column-unticked");
        await _page.ClickAsync("#save");
        await _page.WaitForURLAsync(u => u.EndsWith("/connections/ui-columns", StringComparison.Ordinal));

        using var api = await server.LoginAsync();
        var saved = JsonNode.Parse(await api.GetStringAsync(new Uri("api/connections/ui-columns", UriKind.Relative)))!;
        var customers = saved["streams"]!.AsArray().Single(x => x!["name"]!.GetValue<string>() == "customers")!;
        Assert.Equal(["id", "full_name", "country", "loyalty_points", "created_at", "updated_at"], customers["columns"]!.AsArray().Select(c => c!.GetValue<string>()));
        var orders = saved["streams"]!.AsArray().Single(x => x!["name"]!.GetValue<string>() == "orders")!;
        Assert.Null(orders["columns"]);

        // Editing shows the unticked column again.
        await _page.GotoAsync("/connections/ui-columns/edit");
        await _page.ClickAsync("#discover");
        await _page.WaitForSelectorAsync(Email);
        Assert.False(await _page.IsCheckedAsync(Email));
        Assert.True(await _page.IsCheckedAsync("#streams tr[data-stream=customers] input.column-select[data-column=country]"));
    }

    [Fact]
    public async Task Backfill_button_runs_a_backfill_whose_progress_bar_reaches_100_percent_and_survives_a_reload()
    {
        using (var api = await server.LoginAsync())
        {
            await BackfillTests.StartSampleAsync(api, "ui-backfill", customers: 3000, batchSize: 50);
        }

        await LoginAsync();
        await _page.GotoAsync("/connections/ui-backfill");
        await _page.WaitForSelectorAsync("#stream-status tr[data-stream=customers] button.backfill");
        var filter = _page.Locator("#stream-status tr[data-stream=customers] input.backfill-filter");
        Assert.Contains("1..1000", await filter.GetAttributeAsync("placeholder") ?? "", StringComparison.Ordinal);
        await filter.FillAsync("1..2500");
        await _page.ClickAsync("#stream-status tr[data-stream=customers] button.backfill");
        await _page.WaitForSelectorAsync("#backfills tr[data-stream=customers] .progress");
        await ShotAsync("13-backfill-running");
        await _page.WaitForSelectorAsync("#backfills tr[data-stream=customers][data-state=completed] .progress[data-percent='100']", new PageWaitForSelectorOptions { Timeout = 60_000 });
        Assert.Contains("100%", await _page.TextContentAsync("#backfills tr[data-stream=customers] .percent") ?? "", StringComparison.Ordinal);
        Assert.Equal("1..2500", await _page.TextContentAsync("#backfills tr[data-stream=customers] code"));
        await ShotAsync("14-backfill-completed");

        await _page.ReloadAsync();
        await _page.WaitForSelectorAsync("#backfills tr[data-stream=customers][data-state=completed] .progress[data-percent='100']");
        Assert.Equal(0, await _page.Locator("#backfills button.cancel-backfill").CountAsync());
    }
}
