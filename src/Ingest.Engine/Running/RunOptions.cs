namespace Ingest.Engine.Running;

/// <summary>How a run behaves.</summary>
public sealed record RunOptions
{
    /// <summary>Stop each connection once it caught up and committed (<c>ingest run --once</c>).</summary>
    public bool Once { get; init; }

    /// <summary>Restarts after transient failures before the connection is given up (reset whenever a restart commits again).</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The first restart delay; it doubles per attempt.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest restart delay.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A table without new rows gets an empty commit (recording progress) when its last commit is older than this.</summary>
    public TimeSpan IdleCommitAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Messages buffered between a reader and its sink (backpressure beyond that).</summary>
    public int ChannelCapacity { get; init; } = 16;
}
