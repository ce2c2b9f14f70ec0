using System.Runtime.CompilerServices;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;
using Newtonsoft.Json;

namespace Ingest.TestPlugins.Shared;

/// <summary>
/// A connector that really uses Newtonsoft.Json: compiled into two plugins that reference different
/// Newtonsoft versions, so the host must load each plugin's own copy.
/// </summary>
public abstract class NewtonsoftConnectorBase : ISourceConnector
{
    /// <summary>The stream the reader yields.</summary>
    public const string StreamName = "documents";

    private static readonly StreamSchema Schema = new(
    [
        new Field("id", DataType.Int64, Nullable: false),
        new Field("json", DataType.String, Nullable: false),
    ]);

    /// <summary>The connector's name, written into the JSON it produces.</summary>
    protected abstract string ConnectorName { get; }

    /// <summary>The version of the Newtonsoft.Json assembly this plugin's code is bound to.</summary>
    public static Version NewtonsoftVersion => typeof(JsonConvert).Assembly.GetName().Version!;

    /// <inheritdoc />
    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object","properties":{"greeting":{"type":"string"}}}""");

    /// <summary>Serializes a document with Newtonsoft.Json.</summary>
    protected string Serialize(long id) =>
        JsonConvert.SerializeObject(new { id, connector = ConnectorName, newtonsoft = NewtonsoftVersion.ToString() });

    /// <inheritdoc />
    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(CheckResult.Ok($"Newtonsoft.Json {NewtonsoftVersion} wrote {Serialize(0)}"));
    }

    /// <inheritdoc />
    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var stream = new StreamDescriptor(StreamName, Schema, ["id"], [], [SyncMode.FullRefresh], Serialize(0));
        return Task.FromResult(new SourceCatalog([stream]));
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context) => new Reader(this);

    private sealed class Reader(NewtonsoftConnectorBase connector) : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            cancellationToken.ThrowIfCancellationRequested();
            var ids = new Int64Array.Builder().Append(1).Build();
            var json = new StringArray.Builder().Append(connector.Serialize(1)).Build();
            var data = new RecordBatch(Schema.ToArrowSchema(), [ids, json], 1);
            yield return new ChangeBatch(StreamName, data, [ChangeOp.Read], [new SourcePosition(1, 0)], [0]);
            yield return Checkpoint.From(new { offset = 1 });
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
