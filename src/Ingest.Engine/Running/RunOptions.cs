namespace Ingest.Engine.Running;

/// <summary>Which half of a Kafka pipeline a process runs (<c>ingest run --role</c>); the embedded transport always runs both.</summary>
public enum RunRole
{
    /// <summary>Sources producing to Kafka and sinks consuming from it.</summary>
    All,
    /// <summary>Only the connectors, producing to Kafka.</summary>
    Source,
    /// <summary>Only the Delta sinks, consuming from Kafka.</summary>
    Sink,
}

/// <summary>How a run behaves.</summary>
public sealed record RunOptions
{
    /// <summary>Stop each connection once it caught up and committed (<c>ingest run --once</c>).</summary>
    public bool Once { get; init; }

    /// <summary>The half of a Kafka pipeline to run (ignored by the embedded transport).</summary>
    public RunRole Role { get; init; } = RunRole.All;

    /// <summary>Restarts after transient failures before the connection is given up (reset whenever a restart commits again).</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The first restart delay; it doubles per attempt.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest restart delay.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A table without new rows gets an empty commit (recording progress) when its last commit is older than this.</summary>
    public TimeSpan IdleCommitAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Merge, history and overwrite tables hold their covered rows in memory until the commit (appends write them to
    /// files as they are covered): a commit is due once those rows hold this many bytes of Arrow buffers, whatever the
    /// commit policy's interval and row count. A merge commit needs several times its rows' bytes while it runs (the
    /// newest row per key gathered, the Parquet writer's row group), so this bounds the process's memory.
    /// </summary>
    public long CommitBytes { get; init; } = 16L << 20;

    /// <summary>Messages buffered between a reader and its sink (backpressure beyond that; see also <see cref="ReadAheadBytes"/>).</summary>
    /// <remarks>
    /// 16 messages are ~5 batches with their checkpoints and progress: a stop or a crash leaves little read and not
    /// committed, whatever the batch size (with 1,024 a small-batch backfill was read, and committed by the stop, before a
    /// stop landed; the host's backfill-restart test showed it). It costs a 1M-row snapshot ~10% (the reader waits while
    /// the sink commits). Large batches are bounded by <see cref="ReadAheadBytes"/> as well.
    /// </remarks>
    public int ChannelCapacity { get; init; } = 16;

    /// <summary>
    /// Bytes of change batches (their Arrow buffers) a reader may read ahead of its sink, e.g. while the sink commits;
    /// backpressure beyond that. A single larger batch still passes alone.
    /// </summary>
    public long ReadAheadBytes { get; init; } = 16L << 20;
}
