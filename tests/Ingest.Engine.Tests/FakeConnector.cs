using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Tests;

/// <summary>
/// A scripted connector: stream <c>items</c> (id long key, name string) and <c>events</c> (no key). Each read
/// emits <see cref="Rows"/> rows in batches of <see cref="BatchSize"/>, a checkpoint {"next": n} after each batch,
/// then CaughtUp, then ends. Failures can be injected per read.
/// </summary>
internal sealed class FakeConnector : ISourceConnector
{
    public static readonly StreamSchema ItemsSchema = new([new Field("id", DataType.Int64, false), new Field("name", DataType.String)]);

    public int Rows { get; init; } = 100;

    public int BatchSize { get; init; } = 10;

    /// <summary>Called with (read number, rows emitted so far) before each batch; may throw.</summary>
    public Action<int, int>? BeforeBatch { get; init; }

    public Func<CheckResult>? Check { get; init; }

    public bool BreakPositions { get; init; }

    public Exception? DiscoverFailure { get; init; }

    /// <summary>When set, a progress note the reader sends with each batch.</summary>
    public string? Note { get; init; }

    public int Reads => _reads;

    public List<JsonElement?> States { get; } = [];

    public List<long> Acknowledged { get; } = [];

    private int _reads;

    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
         "properties":{"size":{"type":"integer","minimum":1},"mode":{"enum":["a","b"]},"host":{"type":"string"},
                       "ratio":{"type":"number"},"flag":{"type":"boolean"},
                       "nested":{"type":"object","properties":{"port":{"type":"integer"}}}},
         "required":["host"]}
        """);

    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(Check?.Invoke() ?? CheckResult.Ok());

    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        DiscoverFailure is { } failure ? Task.FromException<SourceCatalog>(failure) : Task.FromResult(new SourceCatalog([
            new StreamDescriptor("items", ItemsSchema, ["id"], [], [SyncMode.Cdc]),
            new StreamDescriptor("events", ItemsSchema, [], [], [SyncMode.Incremental]),
        ]));

    public ISourceReader OpenReader(ReadContext context)
    {
        var read = Interlocked.Increment(ref _reads);
        lock (States)
        {
            States.Add(context.State);
        }

        return new Reader(this, context, read);
    }

    private sealed class Reader(FakeConnector owner, ReadContext context, int read) : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var next = context.State is { } s ? s.GetProperty("next").GetInt32() : 0;
            while (next < owner.Rows)
            {
                owner.BeforeBatch?.Invoke(read, next);
                foreach (var stream in context.Streams)
                {
                    var b = new ChangeBatchBuilder(stream.Name, ItemsSchema);
                    for (var i = next; i < Math.Min(owner.Rows, next + owner.BatchSize); i++)
                    {
                        var pos = owner.BreakPositions && i == 15 ? 3UL : (ulong)i + 1;
                        b.BeginRow(ChangeOp.Insert, new SourcePosition(pos, 0), 1_700_000_000_000_000 + i);
                        b.SetInt64(0, i);
                        b.SetString(1, $"item {i}");
                        b.EndRow();
                    }

                    yield return b.Build();
                    if (owner.Note is { } note)
                    {
                        yield return new StreamProgress(stream.Name, StreamPhase.Streaming, next + owner.BatchSize, null, message: note);
                    }
                }

                next = Math.Min(owner.Rows, next + owner.BatchSize);
                yield return Checkpoint.From(new { next });
                await Task.Yield();
            }

            yield return CaughtUp.Instance;
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken)
        {
            lock (owner.Acknowledged)
            {
                owner.Acknowledged.Add(checkpoint.State.GetProperty("next").GetInt32());
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
