using System.Text.Json.Nodes;
using Ingest.Engine.Config;
using Ingest.Host.Control;
using Ingest.Host.Web;

namespace Ingest.Host.Api;

/// <summary>The REST API under <c>/api</c>; errors are RFC 7807 problem details whose <c>errors</c> name the field.</summary>
internal static class IngestApi
{
    /// <summary>A configuration to check or discover; <c>connection</c> names a saved connection whose masked secrets to use.</summary>
    /// <param name="Connector">The connector.</param>
    /// <param name="Config">The configuration.</param>
    /// <param name="Connection">A saved connection, or null.</param>
    public sealed record ConfigRequest(string? Connector, JsonObject? Config, string? Connection);

    public static void MapIngestApi(this WebApplication app)
    {
        var api = app.MapGroup("/api");

        api.MapGet("/connectors", (ConnectionService s) => s.Connectors())
            .WithTags("connectors").WithSummary("The loaded connector plugins with their configuration schemas.");
        api.MapGet("/connectors/{name}", (string name, ConnectionService s) =>
                s.Connector(name) is { } c ? Results.Ok(c) : NotFound("name", $"no connector '{name}'"))
            .WithTags("connectors").WithSummary("One connector.");

        var connections = api.MapGroup("/connections").WithTags("connections");
        connections.MapGet("/", (ConnectionService s, CancellationToken ct) => s.ListAsync(ct))
            .WithSummary("Every connection with its status; secrets are masked.");
        connections.MapGet("/{name}", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.GetAsync(name, ct) is { } c ? Results.Ok(c) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("One connection with its status (state, per-stream rows, rows/s, last commit, recent errors).");
        connections.MapPost("/", async (ConnectionInput input, ConnectionService s, CancellationToken ct) =>
                Answer(await s.CreateAsync(input, ct), v => Results.Created($"/api/connections/{v.Name}", v)))
            .WithSummary("Creates a connection; the configuration is validated against the connector's JSON Schema.");
        connections.MapPut("/{name}", async (string name, ConnectionInput input, ConnectionService s, CancellationToken ct) =>
                Answer(await s.UpdateAsync(name, input, ct), Results.Ok))
            .WithSummary("Changes a connection; a secret sent back as \"********\" keeps its saved value.");
        connections.MapDelete("/{name}", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.DeleteAsync(name, ct) ? Results.NoContent() : NotFound("name", $"no connection '{name}'"))
            .WithSummary("Stops and deletes a connection; its tables stay in the lake.");
        connections.MapPost("/{name}/start", async (string name, ConnectionService s, CancellationToken ct) =>
                Answer(await s.StartAsync(name, ct), Results.Ok))
            .WithSummary("Starts the connection on a worker (StartConnection on the bus).");
        connections.MapPost("/{name}/stop", async (string name, ConnectionService s, CancellationToken ct) =>
                Answer(await s.StopAsync(name, ct), Results.Ok))
            .WithSummary("Stops the connection after it committed what its last checkpoint covers (StopConnection on the bus).");
        connections.MapPost("/{name}/pause", async (string name, ConnectionService s, CancellationToken ct) =>
                Answer(await s.PauseAsync(name, ct), Results.Ok))
            .WithSummary("Pauses a running connection: it stops reading after a commit and shows as paused (PauseConnection on the bus).");
        connections.MapPost("/{name}/resume", async (string name, ConnectionService s, CancellationToken ct) =>
                Answer(await s.ResumeAsync(name, ct), Results.Ok))
            .WithSummary("Resumes a paused connection from the lake's progress.");
        connections.MapGet("/{name}/usage", async (string name, int? limit, ConnectionService s, CancellationToken ct) =>
                await s.UsageAsync(name, Math.Clamp(limit ?? 200, 1, 5000), ct) is { } u ? Results.Ok(u) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("Rows and bytes ingested per run and stream, newest run first.");
        connections.MapGet("/{name}/log", async (string name, string? level, int? limit, ConnectionService s, CancellationToken ct) =>
                Answer(await s.LogAsync(name, level, Math.Clamp(limit ?? 200, 1, ConnectionLogBook.Capacity), ct), Results.Ok))
            .WithSummary("The connection's recent log lines (oldest first) at level or above: debug, information (default), warning, error, critical.");
        connections.MapGet("/{name}/export", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.ExportAsync(name, ct) is { } yaml ? Results.Text(yaml, "application/yaml; charset=utf-8") : NotFound("name", $"no connection '{name}'"))
            .Produces<string>(StatusCodes.Status200OK, "application/yaml")
            .WithSummary("The connection as a pipeline file (what `ingest run` reads); secrets are left out, a comment stands where each was.");
        connections.MapPost("/import", async (HttpRequest request, string? file, ConnectionService s, CancellationToken ct) =>
            {
                using var reader = new StreamReader(request.Body);
                var yaml = await reader.ReadToEndAsync(ct);
                return Answer(await s.ImportAsync(yaml, file, ct), v => Results.Created("/api/connections", v));
            })
            .Accepts<string>("application/yaml", "text/yaml", "text/plain")
            .WithSummary("Creates the connections of a pipeline file (the request body); nothing is created unless all are valid, and each error names the field and its line and column.");
        connections.MapPost("/{name}/backfills", async (string name, BackfillInput input, ConnectionService s, CancellationToken ct) =>
                Answer(await s.RequestBackfillAsync(name, input, ct), b => Results.Accepted($"/api/connections/{name}/backfills/{b.Id}", b)))
            .WithSummary("Starts a backfill of a stream of the running connection (RunBackfill on the bus); the same id again resumes an unfinished one.");
        connections.MapGet("/{name}/backfills", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.BackfillsAsync(name, ct) is { } list ? Results.Ok(list) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("The connection's backfills, newest first: state (pending, running, completed, cancelled, failed), rows done and expected.");
        connections.MapGet("/{name}/backfills/{id}", async (string name, string id, ConnectionService s, CancellationToken ct) =>
                Answer(await s.BackfillAsync(name, id, ct), Results.Ok))
            .WithSummary("One backfill.");
        connections.MapDelete("/{name}/backfills/{id}", async (string name, string id, ConnectionService s, CancellationToken ct) =>
                Answer(await s.CancelBackfillAsync(name, id, ct), b => Results.Accepted($"/api/connections/{name}/backfills/{b.Id}", b)))
            .WithSummary("Cancels a backfill (CancelBackfill on the bus); the rows it read stay committed.");
        api.MapGet("/audit", (string? connection, int? limit, ConnectionService s, CancellationToken ct) => s.AuditAsync(connection, Math.Clamp(limit ?? 200, 1, 5000), ct))
            .WithTags("audit").WithSummary("Who changed which connection when and what, newest first; secrets only show that they changed.");
        connections.MapPost("/{name}/check", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.GetAsync(name, ct) is { } c ? Answer(await s.CheckAsync(c.Connector, c.Config, name, ct), Results.Ok) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("Runs the connector's Check on the saved configuration.");
        connections.MapPost("/{name}/discover", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.GetAsync(name, ct) is { } c ? Answer(await s.DiscoverAsync(c.Connector, c.Config, name, ct), Results.Ok) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("Runs the connector's Discover on the saved configuration.");
        connections.MapGet("/{name}/status", async (string name, ConnectionService s, CancellationToken ct) =>
                await s.GetAsync(name, ct) is { } c ? Results.Ok(c.Status) : NotFound("name", $"no connection '{name}'"))
            .WithSummary("The connection's live status.");

        api.MapPost("/check", async (ConfigRequest r, ConnectionService s, CancellationToken ct) => Answer(await s.CheckAsync(r.Connector, r.Config, r.Connection, ct), Results.Ok))
            .WithTags("connections").WithSummary("Runs Check on a configuration that is not saved (yet).");
        api.MapPost("/discover", async (ConfigRequest r, ConnectionService s, CancellationToken ct) => Answer(await s.DiscoverAsync(r.Connector, r.Config, r.Connection, ct), Results.Ok))
            .WithTags("connections").WithSummary("Runs Discover on a configuration that is not saved (yet).");

        var tables = api.MapGroup("/tables").WithTags("tables");
        tables.MapGet("/", (TableService t, CancellationToken ct) => t.ListAsync(ct))
            .WithSummary("The Delta tables in the lake.");
        tables.MapGet("/{connection}/{stream}", async (string connection, string stream, int? history, TableService t, CancellationToken ct) =>
                await t.GetAsync($"{connection}/{stream}", Math.Clamp(history ?? 50, 1, 1000), ct) is { } d ? Results.Ok(d) : NotFound("table", $"no table '{connection}/{stream}'"))
            .WithSummary("A table's schema and version history (operation and metrics per commit).");
        tables.MapGet("/{connection}/{stream}/preview", async (string connection, string stream, int? limit, TableService t, CancellationToken ct) =>
                await t.PreviewAsync($"{connection}/{stream}", Math.Clamp(limit ?? 50, 1, 1000), ct) is { } p ? Results.Ok(p) : NotFound("table", $"no table '{connection}/{stream}'"))
            .WithSummary("The first rows of the table's newest version.");
    }

    private static IResult Answer<T>(Outcome<T> outcome, Func<T, IResult> ok)
    {
        if (outcome.Ok)
        {
            return ok(outcome.Value!);
        }

        if (outcome.Status == StatusCodes.Status404NotFound)
        {
            return NotFound(outcome.Problems[0].Field, outcome.Problems[0].Message);
        }

        return Problem(outcome.Problems, outcome.Status);
    }

    /// <summary>A validation problem: <c>errors</c> maps each field to its messages; <c>detail</c> says the first.</summary>
    internal static IResult Problem(IReadOnlyList<ConfigProblem> problems, int status) =>
        Results.ValidationProblem(
            problems.GroupBy(p => p.Field.Length > 0 ? p.Field : "connection").ToDictionary(g => g.Key, g => g.Select(p => p.Message).ToArray()),
            detail: string.Join("; ", problems.Select(p => p.Field.Length > 0 ? $"{p.Field}: {p.Message}" : p.Message)),
            statusCode: status,
            title: status == StatusCodes.Status409Conflict ? "Conflict" : "The request is invalid");

    private static IResult NotFound(string field, string message) =>
        Results.Problem(title: "Not found", detail: message, statusCode: StatusCodes.Status404NotFound, extensions: new Dictionary<string, object?> { ["field"] = field });
}
