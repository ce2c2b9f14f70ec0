using System.Security.Claims;
using Ingest.Engine.Config;
using Ingest.Engine.Control;
using Ingest.Engine.Plugins;
using Ingest.Engine.State;
using Ingest.Host.Api;
using Ingest.Host.Cli;
using Ingest.Host.Components;
using Ingest.Host.Config;
using Ingest.Host.Control;
using MassTransit;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;

namespace Ingest.Host.Web;

/// <summary><c>ingest serve</c>: the web UI, REST API and workers of one node.</summary>
internal static partial class IngestServer
{
    /// <summary>The data folder's stores, opened before the host is built (and closed after it is disposed).</summary>
    private sealed class Stores(IConfigStore config, StateStore state, BackfillStore backfills, DeferredSecretProtector protector) : IAsyncDisposable
    {
        public IConfigStore Config { get; } = config;

        public BackfillStore Backfills { get; } = backfills;

        public StateStore State { get; } = state;

        public DeferredSecretProtector Protector { get; } = protector;

        public static async Task<Stores> OpenAsync(ServeOptions options, CancellationToken cancellationToken)
        {
            Directory.CreateDirectory(options.DataPath);
            Directory.CreateDirectory(options.LakePath);
            var keys = Directory.CreateDirectory(options.KeysPath);
            if (!OperatingSystem.IsWindows())
            {
                keys.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            }

            // The config store needs the Data Protection provider, which the host's services create: it is attached once they exist.
            var protector = new DeferredSecretProtector();
            IConfigStore config = options.PostgresConfigStore is { } pg
                ? await PostgresConfigStore.OpenAsync(pg, protector, cancellationToken)
                : new SqliteConfigStore(await ConnectionConfigStore.OpenAsync(options.ConfigStorePath, protector, cancellationToken));
            var state = await StateStore.OpenAsync(options.StateStorePath, cancellationToken);
            var backfills = options.PostgresConfigStore is { } pgBackfills
                ? await BackfillStore.OpenPostgresAsync(pgBackfills, cancellationToken)
                : await BackfillStore.OpenAsync(options.ConfigStorePath, cancellationToken);
            return new Stores(config, state, backfills, protector);
        }

        public async ValueTask DisposeAsync()
        {
            await Config.DisposeAsync();
            await State.DisposeAsync();
            await Backfills.DisposeAsync();
        }
    }

    /// <summary>Builds the node: sets the admin password at first start, creates the sample connection once.</summary>
    private static async Task<WebApplication> BuildAsync(ServeOptions options, Stores stores, CliContext context, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(IngestServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            Args = [],
        });
        // A build's wwwroot and the framework's Blazor script are static web assets; outside Development
        // the host only finds them when told to (a published build has them in wwwroot and skips this).
        builder.WebHost.UseStaticWebAssets();
        builder.WebHost.UseUrls(options.Urls);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("MassTransit", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        // Without a machine key store on Linux the Data Protection keys are plain files: they live in
        // <data>/keys, readable by this user only (set below), which is what that warning is about.
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager", LogLevel.Error);

        options = options with { RabbitMq = options.RabbitMq ?? RabbitMqSettings.FromConfiguration(builder.Configuration) };
        builder.Services.AddSingleton(stores.Config).AddSingleton(stores.State).AddSingleton(stores.Backfills).AddSingleton<ISecretProtector>(stores.Protector);
        builder.Services
            .AddIngestData(options)
            .AddIngestControlPlane(options);
        if (options.RunsWeb)
        {
            builder.Services.AddIngestWeb(options);
        }

        var app = builder.Build();
        stores.Protector.Attach(app.Services.GetRequiredService<IDataProtectionProvider>());
        var store = stores.Config;
        var password = options.RunsWeb ? await app.Services.GetRequiredService<AdminAccount>().EnsureAsync(cancellationToken) : null;
        if (password is not null)
        {
            await context.Out.WriteLineAsync($"ingest: admin login: user '{options.AdminUser}', password '{password}' (shown once; stored hashed in {options.ConfigStorePath}; set INGEST_ADMIN_PASSWORD to choose it)");
        }

        if (options.CreateSample)
        {
            await SampleConnection.EnsureAsync(store, app.Services.GetRequiredService<PluginHost>(), options, cancellationToken);
        }

        if (options.Role == NodeRole.Web && options.RabbitMq is null)
        {
            await context.Error.WriteLineAsync("ingest: role 'web' on the in-process bus: no worker runs connections in this process (start web and worker nodes with --bus rabbitmq://... to share the work).");
        }

        app.MapIngest(options);
        return app;
    }

    /// <summary>Runs the node until <paramref name="stop"/> fires.</summary>
    public static async Task<int> RunAsync(ServeOptions options, CliContext context, CancellationToken stop)
    {
        await using var stores = await Stores.OpenAsync(options, stop);
        WebApplication built;
        try
        {
            built = await BuildAsync(options, stores, context, stop);
        }
        catch (FormatException e)
        {
            await context.Error.WriteLineAsync("ingest: " + e.Message);
            return ExitCodes.InvalidInput;
        }

        await using var app = built;
        await app.StartAsync(stop);
        var bus = app.Services.GetRequiredService<ServeOptions>().RabbitMq?.Display ?? "in-process";
        foreach (var url in options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            await context.Out.WriteLineAsync($"ingest: serving {url} (role {options.Role.ToString().ToLowerInvariant()}, data {options.DataPath}, bus {bus})");
        }

        await context.Out.FlushAsync(stop);
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C or SIGTERM: stop gracefully below.
        }

        await app.StopAsync(CancellationToken.None);
        return ExitCodes.Ok;
    }

    /// <summary>The plugins, Data Protection (keys in the data folder) and the admin account; the stores are registered by the caller.</summary>
    public static IServiceCollection AddIngestData(this IServiceCollection services, ServeOptions options)
    {
        services.AddSingleton(options);
        services.AddProblemDetails();
        services.AddDataProtection()
            .SetApplicationName("ingest")
            .PersistKeysToFileSystem(new DirectoryInfo(options.KeysPath));
        services.AddSingleton(sp => PluginHost.Load(
            options.PluginDirectories.Count > 0 ? options.PluginDirectories : PluginHost.DefaultDirectories(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Ingest.Plugins")));
        services.AddSingleton<AdminAccount>();
        return services;
    }

    /// <summary>The MassTransit bus: worker consumers on worker nodes, the status board on web nodes.</summary>
    public static IServiceCollection AddIngestControlPlane(this IServiceCollection services, ServeOptions options)
    {
        services.AddSingleton<StatusBoard>();
        services.AddSingleton<ConnectionLogBook>();
        if (options.RunsWorker)
        {
            services.AddSingleton<ConnectionLogCapture>();
            services.AddSingleton<ILoggerProvider>(sp => sp.GetRequiredService<ConnectionLogCapture>());
            services.AddSingleton(sp =>
            {
                var plugins = sp.GetRequiredService<PluginHost>();
                var connectors = plugins.Plugins.ToDictionary(p => p.Name, p => p.Connector, StringComparer.Ordinal);
                return new ConnectionSupervisor(() => connectors, sp.GetRequiredService<StateStore>(), sp.GetRequiredService<ILoggerFactory>());
            });
            services.AddSingleton<WorkerLeases>();
            services.AddHostedService<WorkerService>();
        }

        services.AddMassTransit(x =>
        {
            if (options.RunsWorker)
            {
                // Start, stop and pause reach every worker (each its own temporary queue); the one holding the connection's lease answers.
                var worker = Guid.NewGuid().ToString("N")[..12];
                x.AddConsumer<StartConnectionConsumer>().Endpoint(e => Instance(e, worker));
                x.AddConsumer<StopConnectionConsumer>().Endpoint(e => Instance(e, worker));
                x.AddConsumer<PauseConnectionConsumer>().Endpoint(e => Instance(e, worker));
                x.AddConsumer<RunBackfillConsumer>().Endpoint(e => Instance(e, worker));
                x.AddConsumer<CancelBackfillConsumer>().Endpoint(e => Instance(e, worker));
                x.AddConsumer<CheckConnectionConsumer>();
                x.AddConsumer<DiscoverConnectionConsumer>();
            }

            if (options.RunsWeb)
            {
                // Every web node needs every status event: its own temporary queue, not one it shares with the other web nodes.
                x.AddConsumer<StatusBoardConsumer>().Endpoint(e => Instance(e, Guid.NewGuid().ToString("N")[..12]));
                x.AddConsumer<ConnectionLogConsumer>().Endpoint(e => Instance(e, Guid.NewGuid().ToString("N")[..12]));

                // The backfill sagas: every web node keeps them all (each its own queue) and writes the same rows.
                x.AddSagaStateMachine<BackfillStateMachine, BackfillSaga>().InMemoryRepository().Endpoint(e => Instance(e, Guid.NewGuid().ToString("N")[..12]));
            }

            x.AddRequestClient<StartConnection>();
            x.AddRequestClient<StopConnection>();
            x.AddRequestClient<CheckConnection>();
            x.AddRequestClient<DiscoverConnection>();
            x.AddRequestClient<PauseConnection>();
            x.AddRequestClient<RunBackfill>();
            x.AddRequestClient<CancelBackfill>();
            if (options.RabbitMq is { } rabbit)
            {
                x.UsingRabbitMq((ctx, cfg) =>
                {
                    cfg.Host(rabbit.Host, rabbit.Port, rabbit.VirtualHost, h =>
                    {
                        h.Username(rabbit.Username);
                        h.Password(rabbit.Password);
                    });
                    cfg.ConfigureEndpoints(ctx);
                });
            }
            else
            {
                x.UsingInMemory((ctx, cfg) => cfg.ConfigureEndpoints(ctx));
            }
        });

        // Hosted services added after this one start once the bus is up.
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        if (options.RunsWeb)
        {
            services.AddHostedService<BackfillRestorer>();
        }

        return services;
    }

    private static void Instance(IEndpointRegistrationConfigurator endpoint, string instance)
    {
        endpoint.InstanceId = instance;
        endpoint.Temporary = true;
    }

    /// <summary>Authentication, the REST API, OpenAPI and the Blazor UI.</summary>
    public static IServiceCollection AddIngestWeb(this IServiceCollection services, ServeOptions options)
    {
        services.AddScoped<ConnectionService>();
        services.AddHttpContextAccessor();
        services.AddScoped<CurrentUser>();
        services.AddSingleton<TableService>();
        services.AddOpenApi();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));
        services.AddSingleton<ApiTokens>();
        // One scheme that reads a bearer API token when the request has one, else the session cookie.
        services.AddAuthentication("Ingest")
            .AddPolicyScheme("Ingest", "cookie or API token", o => o.ForwardDefaultSelector = ctx =>
                ctx.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                    ? ApiTokenAuthenticationHandler.SchemeName
                    : CookieAuthenticationDefaults.AuthenticationScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(ApiTokenAuthenticationHandler.SchemeName, null)
            .AddCookie(o =>
            {
                o.Cookie.Name = "ingest.auth";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.LoginPath = "/login";
                o.ExpireTimeSpan = TimeSpan.FromHours(12);
                o.SlidingExpiration = true;
                // The API answers 401/403; only pages redirect to the login form.
                o.Events.OnRedirectToLogin = ctx => Deny(ctx, StatusCodes.Status401Unauthorized);
                o.Events.OnRedirectToAccessDenied = ctx => Deny(ctx, StatusCodes.Status403Forbidden);
            });
        services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        services.AddCascadingAuthenticationState();
        services.AddAntiforgery();
        services.AddRazorComponents().AddInteractiveServerComponents();
        return services;
    }

    private static Task Deny(RedirectContext<CookieAuthenticationOptions> ctx, int status)
    {
        if (ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal) || ctx.Request.Path.StartsWithSegments("/openapi", StringComparison.Ordinal))
        {
            ctx.Response.StatusCode = status;
            return Task.CompletedTask;
        }

        ctx.Response.Redirect(ctx.RedirectUri);
        return Task.CompletedTask;
    }

    private static void MapIngest(this WebApplication app, ServeOptions options)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapGet("/healthz", () => Results.Text("ok")).AllowAnonymous().ExcludeFromDescription();
        if (!options.RunsWeb)
        {
            // A worker serves nothing but its health.
            return;
        }

        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.MapStaticAssets().AllowAnonymous();
        app.MapOpenApi();

        app.MapAccountEndpoints();
        app.MapIngestApi();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
    }

    /// <summary>Signs the admin in with a cookie.</summary>
    internal static async Task SignInAsync(HttpContext http, string user)
    {
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user), new Claim(ClaimTypes.Role, "admin")], CookieAuthenticationDefaults.AuthenticationScheme);
        await http.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
    }
}
