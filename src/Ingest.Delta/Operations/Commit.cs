using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Delta.Log;
using Ingest.Delta.Storage;

namespace Ingest.Delta.Operations;

/// <summary>The actions of one commit being made, and what it read (for conflict checks).</summary>
internal sealed class PendingCommit
{
    public required CommitOptions Options { get; init; }

    public ProtocolAction? Protocol { get; init; }

    public MetadataAction? Metadata { get; init; }

    public List<AddFile> Adds { get; init; } = [];

    public List<RemoveAction> Removes { get; init; } = [];

    /// <summary>Change data files (<c>cdc</c> actions), when the table records its change data feed.</summary>
    public List<AddFile> ChangeFiles { get; init; } = [];

    public Dictionary<string, string> Metrics { get; init; } = [];

    public Dictionary<string, string> DefaultParameters { get; init; } = [];

    public bool IsBlindAppend { get; init; }

    /// <summary>Files whose content this commit depends on: a concurrent remove of any of them is a conflict.</summary>
    public HashSet<string> ReadFiles { get; init; } = new(StringComparer.Ordinal);

    public long RowsWritten { get; init; }

    /// <summary>For a merge: whether a file added by a concurrent commit may hold a key this commit matched or inserted.</summary>
    public Func<AddFile, bool>? ConflictsWithAdd { get; init; }

    private long? _txnTime;

    public CommitActions ToActions(long? inCommitTimestamp = null)
    {
        var c = new CommitActions { Protocol = Protocol, Metadata = Metadata };
        if (inCommitTimestamp is { } ict)
        {
            c.CommitInfo = new JsonObject { ["inCommitTimestamp"] = ict };
        }

        c.Adds.AddRange(Adds);
        c.Removes.AddRange(Removes);
        _txnTime ??= DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var t in Options.Txns ?? [])
        {
            c.Txns.Add(new TxnEntry(t.AppId, t.Version, _txnTime));
        }

        return c;
    }

    public byte[] Serialize(long readVersion, string txnId, long? inCommitTimestamp = null)
    {
        var now = inCommitTimestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var commitInfo = new JsonObject();
        if (inCommitTimestamp is { } ict)
        {
            // PROTOCOL.md "In-Commit Timestamps": the first field of the first action of every commit.
            commitInfo["inCommitTimestamp"] = ict;
        }

        commitInfo["timestamp"] = now;
        commitInfo["operation"] = Options.Operation;
        var parameters = new JsonObject();
        foreach (var (k, v) in DefaultParameters)
        {
            parameters[k] = v;
        }

        foreach (var (k, v) in Options.OperationParameters ?? new Dictionary<string, string>())
        {
            parameters[k] = v;
        }

        commitInfo["operationParameters"] = parameters;
        if (readVersion >= 0)
        {
            commitInfo["readVersion"] = readVersion;
        }

        commitInfo["isolationLevel"] = "Serializable";
        commitInfo["isBlindAppend"] = IsBlindAppend;
        var metrics = new JsonObject();
        foreach (var (k, v) in Metrics)
        {
            metrics[k] = v;
        }

        commitInfo["operationMetrics"] = metrics;
        commitInfo["engineInfo"] = "Ingest/" + DeltaTable.EngineVersion;
        commitInfo["txnId"] = txnId;
        foreach (var (k, v) in Options.AppMetadata ?? [])
        {
            commitInfo[k] = v?.DeepClone();
        }

        using var ms = new MemoryStream();
        void Line(Action<Utf8JsonWriter> write)
        {
            using (var w = new Utf8JsonWriter(ms, ActionJson.WriterOptions))
            {
                write(w);
            }

            ms.WriteByte((byte)'\n');
        }

        Line(w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("commitInfo");
            commitInfo.WriteTo(w);
            w.WriteEndObject();
        });
        if (Protocol is not null)
        {
            Line(w => ActionJson.WriteProtocol(w, Protocol));
        }

        if (Metadata is not null)
        {
            Line(w => ActionJson.WriteMetadata(w, Metadata));
        }

        var actions = ToActions();
        foreach (var t in actions.Txns)
        {
            Line(w => ActionJson.WriteTxn(w, t));
        }

        foreach (var r in Removes)
        {
            Line(w => ActionJson.WriteRemove(w, r));
        }

        foreach (var a in Adds)
        {
            Line(w => ActionJson.WriteAdd(w, a));
        }

        foreach (var c in ChangeFiles)
        {
            Line(w => ActionJson.WriteCdc(w, c));
        }

        return ms.ToArray();
    }

    /// <summary>Throws when a commit that won the race invalidates this one (PROTOCOL.md leaves the rules to writers; these follow Spark's).</summary>
    public void CheckConflicts(long winnerVersion, CommitActions winner, string table)
    {
        if (winner.Protocol is not null || winner.Metadata is not null)
        {
            throw new DeltaConcurrencyException($"Commit {winnerVersion} to '{table}' changed the table's protocol or metadata while {Options.Operation} was running; retry the operation.");
        }

        foreach (var t in Options.Txns ?? [])
        {
            if (winner.Txns.Any(w => w.AppId == t.AppId))
            {
                throw new DeltaConcurrencyException($"Commit {winnerVersion} to '{table}' also wrote txn appId '{t.AppId}'; re-read the table's txn version before retrying.");
            }
        }

        if (ConflictsWithAdd is not null)
        {
            foreach (var a in winner.Adds)
            {
                if (a.DataChange && ConflictsWithAdd(a))
                {
                    throw new DeltaConcurrencyException($"Commit {winnerVersion} to '{table}' added file '{a.Path}' that may hold keys this {Options.Operation} changes; retry the operation.");
                }
            }
        }

        foreach (var r in winner.Removes)
        {
            if (ReadFiles.Contains(r.Path) || Removes.Any(x => x.Path == r.Path))
            {
                throw new DeltaConcurrencyException($"Commit {winnerVersion} to '{table}' removed file '{r.Path}' that this {Options.Operation} read or rewrote; retry the operation.");
            }
        }
    }
}

/// <summary>Runs the put-if-absent commit loop: on a lost race, re-read the winners, check conflicts, retry as the next version.</summary>
internal static class Committer
{
    public const int MaxAttempts = 100;

    public static async Task<(long Version, LogState State)> CommitAsync(ILogStore store, LogState readState, PendingCommit pending, CancellationToken ct)
    {
        var state = readState.Clone();
        var readVersion = state.Version;
        var txnId = Guid.NewGuid().ToString();
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var version = state.Version + 1;
            var ict = await InCommitTimestampAsync(store, state, pending, ct).ConfigureAwait(false);
            var bytes = pending.Serialize(readVersion, txnId, ict);
            if (await store.PutIfAbsentAsync(LogReplay.CommitPath(version), bytes, ct).ConfigureAwait(false))
            {
                state.Apply(pending.ToActions(ict), version);
                return (version, state);
            }

            var winners = await LogReplay.UpdateAsync(store, state, ct).ConfigureAwait(false);
            foreach (var (v, actions) in winners)
            {
                pending.CheckConflicts(v, actions, store.Root);
            }
        }

        throw new DeltaConcurrencyException($"Could not commit {pending.Options.Operation} to '{store.Root}' after {MaxAttempts} attempts: other writers kept committing first.");
    }

    /// <summary>
    /// The commit's in-commit timestamp when the table enables them (PROTOCOL.md "In-Commit Timestamps"): the later of now
    /// and the previous commit's plus one millisecond, so that commit times strictly increase with versions.
    /// </summary>
    private static async Task<long?> InCommitTimestampAsync(ILogStore store, LogState state, PendingCommit pending, CancellationToken ct)
    {
        var config = (pending.Metadata ?? state.Metadata)?.Configuration;
        if (config is null || !WriterFeatures.IsTrue(config, "delta.enableInCommitTimestamps"))
        {
            return null;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var previous = state.LastInCommitTimestamp;
        if (previous is null && state.Version >= 0)
        {
            // Loaded from a checkpoint: the latest commit file still holds it.
            var latest = await LogReplay.ReadCommitAsync(store, state.Version, ct).ConfigureAwait(false);
            previous = latest?.CommitInfo?["inCommitTimestamp"] is JsonValue v && v.TryGetValue<long>(out var ms) ? ms : null;
        }

        return previous is { } p ? Math.Max(now, p + 1) : now;
    }

    public static string Metric(long value) => value.ToString(CultureInfo.InvariantCulture);
}
