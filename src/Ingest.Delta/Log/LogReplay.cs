using System.Globalization;
using System.Text.Json.Nodes;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Log;

/// <summary>Builds a <see cref="LogState"/> from the latest checkpoint at or before a version plus the JSON commits after it.</summary>
internal static class LogReplay
{
    public const string LogFolder = "_delta_log/";

    public static string CommitPath(long version) => LogFolder + version.ToString("D20", CultureInfo.InvariantCulture) + ".json";

    public static string CheckpointPath(long version) => LogFolder + version.ToString("D20", CultureInfo.InvariantCulture) + ".checkpoint.parquet";

    public const string LastCheckpointPath = LogFolder + "_last_checkpoint";

    private sealed record Listing(SortedDictionary<long, StoredFile> Commits, SortedDictionary<long, List<string>> Checkpoints);

    private static async Task<Listing> ListAsync(ILogStore store, CancellationToken ct)
    {
        var commits = new SortedDictionary<long, StoredFile>();
        var classic = new Dictionary<long, string>();
        var v2 = new Dictionary<long, string>();
        var multi = new Dictionary<(long Version, int Parts), SortedDictionary<int, string>>();
        foreach (var f in await store.ListAsync(LogFolder, ct).ConfigureAwait(false))
        {
            var name = f.Path[LogFolder.Length..];
            if (name.Length < 21 || !long.TryParse(name.AsSpan(0, 20), NumberStyles.None, CultureInfo.InvariantCulture, out var v) || name[20] != '.')
            {
                continue;
            }

            var rest = name[21..];
            if (rest == "json")
            {
                commits[v] = f;
                continue;
            }

            // PROTOCOL.md "Checkpoints": classic "checkpoint.parquet", multi-part "checkpoint.{part:D10}.{parts:D10}.parquet",
            // v2 "checkpoint.{uuid}.json|parquet". Other names ("{x}.{y}.compacted.json", ".crc") are optional and ignored.
            var parts = rest.Split('.');
            if (parts[0] != "checkpoint")
            {
                continue;
            }

            if (parts is [_, "parquet"])
            {
                classic[v] = f.Path;
            }
            else if (parts is [_, var id, "json" or "parquet"] && Guid.TryParse(id, out _))
            {
                // Several v2 checkpoints of one version are equivalent; keep one deterministically.
                if (!v2.TryGetValue(v, out var existing) || string.CompareOrdinal(f.Path, existing) < 0)
                {
                    v2[v] = f.Path;
                }
            }
            else if (parts is [_, var part, var total, "parquet"]
                && int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var p)
                && int.TryParse(total, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && p >= 1 && p <= n)
            {
                if (!multi.TryGetValue((v, n), out var set))
                {
                    multi[(v, n)] = set = [];
                }

                set[p] = f.Path;
            }
        }

        var checkpoints = new SortedDictionary<long, List<string>>();
        foreach (var ((v, n), set) in multi)
        {
            // Only a complete multi-part checkpoint is usable (a writer may have died between parts).
            if (set.Count == n)
            {
                checkpoints[v] = set.Values.ToList();
            }
        }

        foreach (var (v, path) in classic)
        {
            checkpoints[v] = [path];
        }

        foreach (var (v, path) in v2)
        {
            checkpoints[v] = [path];
        }

        return new Listing(commits, checkpoints);
    }

    /// <summary>
    /// The timestamp of every commit that can be time-travelled to (PROTOCOL.md "In-Commit Timestamps"): the commit's
    /// <c>inCommitTimestamp</c> from the enablement version on when the latest metadata enables them, else the commit
    /// file's modification time, made strictly increasing as Spark's DeltaHistoryManager does.
    /// </summary>
    public static async Task<List<(long Version, DateTimeOffset Timestamp)>> CommitTimestampsAsync(ILogStore store, IReadOnlyDictionary<string, string> latestConfiguration, CancellationToken ct)
    {
        var listing = await ListAsync(store, ct).ConfigureAwait(false);
        var ict = string.Equals(latestConfiguration.GetValueOrDefault("delta.enableInCommitTimestamps"), "true", StringComparison.OrdinalIgnoreCase);
        var ictFrom = ict && long.TryParse(latestConfiguration.GetValueOrDefault("delta.inCommitTimestampEnablementVersion"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ev) ? ev : 0;

        // Versions before the oldest checkpoint cannot be rebuilt once the commits before it are gone.
        var earliest = listing.Commits.ContainsKey(0) ? 0 : listing.Checkpoints.Count > 0 ? listing.Checkpoints.Keys.First() : long.MaxValue;
        var result = new List<(long, DateTimeOffset)>();
        DateTimeOffset? previous = null;
        foreach (var (v, file) in listing.Commits)
        {
            if (v < earliest)
            {
                continue;
            }

            DateTimeOffset ts;
            if (ict && v >= ictFrom)
            {
                var actions = await ReadCommitAsync(store, v, ct).ConfigureAwait(false);
                var ms = actions?.CommitInfo?["inCommitTimestamp"] is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<long>(out var x) ? x
                    : throw new InvalidDataException($"Delta table '{store.Root}' enables in-commit timestamps from version {ictFrom}, but commit {v} has no commitInfo.inCommitTimestamp.");
                ts = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            }
            else
            {
                ts = DateTimeOffset.FromUnixTimeMilliseconds(file.LastModified.ToUnixTimeMilliseconds());
                if (previous is { } p && ts <= p)
                {
                    ts = p.AddMilliseconds(1);
                }
            }

            result.Add((v, ts));
            previous = ts;
        }

        return result;
    }

    /// <summary>The state at <paramref name="version"/> (latest when null); null when the folder holds no table.</summary>
    public static async Task<LogState?> LoadAsync(ILogStore store, long? version, CancellationToken ct)
    {
        var listing = await ListAsync(store, ct).ConfigureAwait(false);
        if (listing.Commits.Count == 0 && listing.Checkpoints.Count == 0)
        {
            return null;
        }

        var latest = Math.Max(listing.Commits.Count > 0 ? listing.Commits.Keys.Max() : -1, listing.Checkpoints.Count > 0 ? listing.Checkpoints.Keys.Max() : -1);
        var target = version ?? latest;
        if (target < 0 || target > latest)
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, $"Delta table '{store.Root}' has versions up to {latest}; version {version} does not exist.");
        }

        // Newest usable checkpoint first; _last_checkpoint is only a hint (a newer one may exist). A checkpoint that
        // cannot be read (e.g. damaged) is skipped in favour of an older one or of the JSON commits, as Spark does.
        var candidates = listing.Checkpoints.Keys.Where(v => v <= target).OrderDescending().ToList();
        var last = await ReadLastCheckpointAsync(store, ct).ConfigureAwait(false);
        if (last is { } lv && candidates.Remove(lv))
        {
            candidates.Insert(0, lv);
        }

        var state = new LogState();
        long checkpoint = -1;
        Exception? checkpointError = null;
        foreach (var candidate in candidates)
        {
            if (candidate + 1 <= target && !Enumerable.Range(0, (int)Math.Min(target - candidate, int.MaxValue)).All(i => listing.Commits.ContainsKey(candidate + 1 + i)))
            {
                continue;
            }

            try
            {
                var attempt = new LogState();
                await CheckpointReader.ReadAsync(store, listing.Checkpoints[candidate], attempt, ct).ConfigureAwait(false);
                attempt.Version = candidate;
                state = attempt;
                checkpoint = candidate;
                break;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                checkpointError ??= ex;
            }
        }

        if (checkpoint < 0 && checkpointError is not null && !listing.Commits.ContainsKey(0))
        {
            throw new InvalidDataException($"Delta table '{store.Root}': no readable checkpoint at or before version {target} and the log no longer starts at version 0.", checkpointError);
        }

        for (var v = checkpoint + 1; v <= target; v++)
        {
            if (!listing.Commits.ContainsKey(v))
            {
                throw new InvalidDataException($"Delta table '{store.Root}' cannot be read at version {target}: commit {v} is missing (no checkpoint covers it).");
            }

            var commit = await ReadCommitAsync(store, v, ct).ConfigureAwait(false)
                ?? throw new InvalidDataException($"Delta table '{store.Root}': commit {v} vanished while reading.");
            state.Apply(commit, v);
        }

        return state;
    }

    /// <summary>Applies commits after <paramref name="state"/>'s version up to the latest; returns the commits applied.</summary>
    public static async Task<List<(long Version, CommitActions Actions)>> UpdateAsync(ILogStore store, LogState state, CancellationToken ct)
    {
        var applied = new List<(long, CommitActions)>();
        while (true)
        {
            var next = state.Version + 1;
            var actions = await ReadCommitAsync(store, next, ct).ConfigureAwait(false);
            if (actions is null)
            {
                return applied;
            }

            state.Apply(actions, next);
            applied.Add((next, actions));
        }
    }

    /// <summary>The actions of commit <paramref name="version"/>, or null when it does not exist.</summary>
    public static async Task<CommitActions?> ReadCommitAsync(ILogStore store, long version, CancellationToken ct)
    {
        var path = CommitPath(version);
        for (var attempt = 0; ; attempt++)
        {
            var bytes = await store.ReadAsync(path, ct).ConfigureAwait(false);
            if (bytes is null)
            {
                return null;
            }

            try
            {
                return ActionJson.Parse(bytes, path);
            }
            catch (InvalidDataException) when (attempt < 3)
            {
                // A local commit is created then written; a reader can see it half-written for an instant.
                await Task.Delay(50, ct).ConfigureAwait(false);
            }
        }
    }

    public static async Task<long?> ReadLastCheckpointAsync(ILogStore store, CancellationToken ct)
    {
        var bytes = await store.ReadAsync(LastCheckpointPath, ct).ConfigureAwait(false);
        if (bytes is null)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(bytes)?["version"]?.GetValue<long>();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
