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

    private sealed record Listing(SortedDictionary<long, string> Commits, SortedDictionary<long, List<string>> Checkpoints);

    private static async Task<Listing> ListAsync(ILogStore store, CancellationToken ct)
    {
        var commits = new SortedDictionary<long, string>();
        var checkpoints = new SortedDictionary<long, List<string>>();
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
                commits[v] = f.Path;
            }
            else if (rest.StartsWith("checkpoint", StringComparison.Ordinal) && rest.EndsWith(".parquet", StringComparison.Ordinal))
            {
                // Classic single file ("checkpoint.parquet") or multi-part ("checkpoint.0000000001.0000000002.parquet").
                var parts = rest.Split('.');
                if (parts.Length == 2 || parts.Length == 4)
                {
                    if (!checkpoints.TryGetValue(v, out var list))
                    {
                        checkpoints[v] = list = [];
                    }

                    list.Add(f.Path);
                }
            }
        }

        // Keep only complete multi-part checkpoints.
        foreach (var (v, list) in checkpoints.ToList())
        {
            if (list.Count > 1 || list[0].Split('.').Length == 5)
            {
                var expected = int.Parse(list[0].Split('.')[^2], CultureInfo.InvariantCulture);
                if (list.Count != expected)
                {
                    checkpoints.Remove(v);
                }
            }
        }

        return new Listing(commits, checkpoints);
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
