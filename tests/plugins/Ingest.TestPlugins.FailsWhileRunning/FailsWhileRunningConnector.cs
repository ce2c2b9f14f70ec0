using System.Runtime.CompilerServices;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.TestPlugins.FailsWhileRunning;

/// <summary>A connector that loads and checks fine, but whose read throws after its first batch.</summary>
[IngestConnector("fails-running", Description = "Fails in the middle of a read.")]
public sealed class FailsWhileRunningConnector : ISourceConnector
{
    /// <summary>The message of the exception the read throws.</summary>
    public const string Message = "source connection reset after the first batch";

    private static readonly StreamSchema Schema = new([new Field("id", DataType.Int64, Nullable: false)]);

    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object"}""");

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(CheckResult.Ok("fails-running is reachable."));

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([new StreamDescriptor("numbers", Schema, ["id"], [], [SyncMode.FullRefresh])]));

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => new Reader();

    private sealed class Reader : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            var ids = new Int64Array.Builder().Append(1).Build();
            yield return new ChangeBatch("numbers", new RecordBatch(Schema.ToArrowSchema(), [ids], 1), [ChangeOp.Read], [new SourcePosition(1, 0)], [0]);
            await Task.Yield();
            throw new IOException(Message);
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
