using Ingest.Engine.Config;
using Ingest.Engine.Running;
using Ingest.Host.Control;
using MassTransit;

namespace Ingest.Host.Web;

/// <summary>What a client sends to start a backfill.</summary>
/// <param name="Stream">The stream to re-read.</param>
/// <param name="Filter">The connector-specific filter (see the stream's backfill help), or null for all of it.</param>
/// <param name="Id">An id to resume (the same id again resumes an unfinished backfill), or null for a new one.</param>
public sealed record BackfillInput(string? Stream, string? Filter, string? Id);

/// <summary>Backfills: run and cancel through the bus; their state comes from the sagas' persisted rows.</summary>
internal sealed partial class ConnectionService
{
    /// <summary>Asks the worker that runs the connection to backfill a stream.</summary>
    public async Task<Outcome<BackfillSnapshot>> RequestBackfillAsync(string name, BackfillInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (await _store.GetAsync(name, cancellationToken) is null)
        {
            return Fail<BackfillSnapshot>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        if (string.IsNullOrWhiteSpace(input.Stream))
        {
            return Fail<BackfillSnapshot>([new ConfigProblem("stream", "required: the stream to backfill")], 400);
        }

        var r = await _runBackfill.GetResponse<RunBackfillResult>(
            new RunBackfill(name, input.Stream, string.IsNullOrWhiteSpace(input.Filter) ? null : input.Filter.Trim(), string.IsNullOrWhiteSpace(input.Id) ? null : input.Id.Trim()),
            cancellationToken,
            RequestTimeout.After(s: 60));
        if (r.Message.Backfill is not { } b)
        {
            var problems = r.Message.Problems.Select(p => new ConfigProblem(p.Field, p.Message)).ToList();
            return Fail<BackfillSnapshot>(problems, problems.Any(p => p.Field == "connection") ? 409 : 400);
        }

        // The saga writes every change; this row only shows the request before its first event arrives.
        await _backfills.AddAsync(name, b, cancellationToken);
        await AuditAsync(name, "backfill", [new ConfigChange("backfill", "added", null, System.Text.Json.JsonSerializer.Serialize(new { b.Id, b.Stream, b.Filter }), false)], cancellationToken);
        return new Outcome<BackfillSnapshot>(b, [], 202);
    }

    /// <summary>A connection's backfills, newest first; null when there is no such connection.</summary>
    public async Task<IReadOnlyList<BackfillSnapshot>?> BackfillsAsync(string name, CancellationToken cancellationToken) =>
        await _store.GetAsync(name, cancellationToken) is null
            ? null
            : (await _backfills.ListAsync(name, cancellationToken)).Select(x => x.Backfill).ToList();

    /// <summary>One backfill.</summary>
    public async Task<Outcome<BackfillSnapshot>> BackfillAsync(string name, string id, CancellationToken cancellationToken)
    {
        if (await _store.GetAsync(name, cancellationToken) is null)
        {
            return Fail<BackfillSnapshot>([new ConfigProblem("name", $"no connection '{name}'")], 404);
        }

        return await _backfills.GetAsync(name, id, cancellationToken) is { } b
            ? new Outcome<BackfillSnapshot>(b, [], 200)
            : Fail<BackfillSnapshot>([new ConfigProblem("id", $"no backfill '{id}' of connection '{name}'")], 404);
    }

    /// <summary>
    /// Cancels a backfill: the worker that runs the connection winds it down (the rows it read stay committed); one whose
    /// connection does not run is marked cancelled at once, so it does not resume when the connection starts.
    /// </summary>
    public async Task<Outcome<BackfillSnapshot>> CancelBackfillAsync(string name, string id, CancellationToken cancellationToken)
    {
        var found = await BackfillAsync(name, id, cancellationToken);
        if (!found.Ok)
        {
            return found;
        }

        var b = found.Value!;
        if (b.Finished)
        {
            return Fail<BackfillSnapshot>([new ConfigProblem("id", $"backfill '{id}' is {b.State} already")], 409);
        }

        var r = await _cancelBackfill.GetResponse<CommandResult>(new CancelBackfill(name, id), cancellationToken, RequestTimeout.After(s: 60));
        if (!r.Message.Accepted)
        {
            b = b with { State = "cancelled", FinishedAt = DateTimeOffset.UtcNow };
            await _publish.Publish(new BackfillProgress(name, b, DateTimeOffset.UtcNow), cancellationToken);
            await _backfills.SaveAsync(name, b, cancellationToken);
        }

        await AuditAsync(name, "cancel-backfill", [new ConfigChange("backfill", "removed", System.Text.Json.JsonSerializer.Serialize(new { b.Id, b.Stream }), null, false)], cancellationToken);
        return new Outcome<BackfillSnapshot>(b, [], 202);
    }
}
