using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests;

/// <summary>
/// A connector with one keyed stream <c>people</c> whose batches each carry their own schema (so a read can change shape
/// midway) and may leave values unchanged. Each step is one batch then a checkpoint <c>{"step": n}</c>; a read resumes
/// after the step its state names (as a real connector does), then sends CaughtUp and ends.
/// </summary>
internal sealed class SchemaScriptConnector(StreamSchema discovered, IReadOnlyList<SchemaScriptConnector.Step> steps) : ISourceConnector
{
    /// <summary>One row: its values in the step's column order; <paramref name="Unchanged"/> lists columns the source did not send.</summary>
    public sealed record Row(ChangeOp Op, ulong Position, object?[] Values, int[]? Unchanged = null);

    public sealed record Step(StreamSchema Schema, params Row[] Rows)
    {
        /// <summary>Whether a checkpoint follows the batch (false: the next step's rows commit with this one's).</summary>
        public bool Checkpoint { get; init; } = true;

        /// <summary>A wait before the batch (lets the engine commit what came before).</summary>
        public TimeSpan Pause { get; init; }
    }

    /// <summary>Fail the read (transiently) before this step, once.</summary>
    public int? FailBeforeStep { get; set; }

    public int Reads { get; private set; }

    /// <summary>The stream's sync mode (full refresh for overwrite tables).</summary>
    public SyncMode SyncMode { get; init; } = SyncMode.Cdc;

    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object","properties":{}}""");

    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(CheckResult.Ok());

    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([new StreamDescriptor("people", discovered, ["id"], [], [SyncMode])]));

    public ISourceReader OpenReader(ReadContext context)
    {
        Reads++;
        return new Reader(this, context.State is { } s ? s.GetProperty("step").GetInt32() : 0);
    }

    public static ChangeBatch Build(StreamSchema schema, IEnumerable<Row> rows)
    {
        var b = new ChangeBatchBuilder("people", schema);
        foreach (var r in rows)
        {
            b.BeginRow(r.Op, new SourcePosition(r.Position, 0), 1_700_000_000_000_000 + (long)r.Position * 1_000_000);
            for (var c = 0; c < schema.Count && r.Op != ChangeOp.Truncate; c++)
            {
                if (r.Unchanged?.Contains(c) == true)
                {
                    b.SetUnchanged(c);
                    continue;
                }

                switch (r.Values[c])
                {
                    case null: b.SetNull(c); break;
                    case int i: b.SetInt32(c, i); break;
                    case long l: b.SetInt64(c, l); break;
                    case string s: b.SetString(c, s); break;
                    case double d: b.SetDouble(c, d); break;
                    case bool f: b.SetBoolean(c, f); break;
                    case object o: b.SetValue(c, o); break;
                }
            }

            b.EndRow();
        }

        return b.Build();
    }

    private sealed class Reader(SchemaScriptConnector owner, int from) : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            for (var i = from; i < owner.Steps.Count; i++)
            {
                if (owner.FailBeforeStep == i)
                {
                    owner.FailBeforeStep = null;
                    throw new IOException("source went away");
                }

                if (owner.Steps[i].Pause > TimeSpan.Zero)
                {
                    await Task.Delay(owner.Steps[i].Pause, cancellationToken);
                }

                yield return Build(owner.Steps[i].Schema, owner.Steps[i].Rows);
                if (owner.Steps[i].Checkpoint)
                {
                    yield return Sdk.Records.Checkpoint.From(new { step = i + 1 });
                }

                await Task.Yield();
            }

            yield return CaughtUp.Instance;
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public IReadOnlyList<Step> Steps => steps;

    /// <summary>Runs one connection <c>c</c> with this stream spec (e.g. <c>{name: people, mode: merge}</c>) once, to its end.</summary>
    public static async Task<RunResult> RunAsync(TempDir dir, ISourceConnector connector, string stream, ILoggerFactory? logs = null, int maxAttempts = 1)
    {
        var yaml = $"lake: ./lake\ncommit: {{interval: 10ms}}\nconnections:\n  - name: c\n    connector: s\n    config: {{}}\n    streams:\n      - {stream}\n";
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));
        var bound = await PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["s"] = connector }, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var options = new RunOptions { Once = true, RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = maxAttempts };
        return await PipelineRunner.RunAsync(bound, options, null, logs ?? NullLoggerFactory.Instance, new RunStatus(), timeout.Token);
    }
}

/// <summary>Collects log messages (for asserting on warnings).</summary>
internal sealed class ListLoggerFactory : ILoggerFactory, ILogger
{
    public List<(LogLevel Level, string Message)> Entries { get; } = [];

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        lock (Entries)
        {
            Entries.Add((logLevel, formatter(state, exception)));
        }
    }

    public void Dispose()
    {
    }
}
