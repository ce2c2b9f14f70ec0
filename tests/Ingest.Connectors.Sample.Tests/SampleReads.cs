using System.Buffers;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.Sample.Tests;

/// <summary>Reads through the public connector and turns messages into comparable values.</summary>
internal static class SampleReads
{
    public static readonly string[] AllStreams = ["customers", "products", "orders", "order_lines"];

    public static JsonElement Config(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>A small source; <paramref name="clock"/> null leaves the clock at its default (wall).</summary>
    public static JsonElement SmallConfig(long changes = 400, double rate = 0, int batchSize = 37, long seed = 7, string? clock = null) => Config(
        $$"""{"seed":{{seed}},"customers":40,"products":12,"orders":90,"changes":{{changes}},"changesPerSecond":{{rate.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"batchSize":{{batchSize}}{{(clock is null ? "" : $",\"clock\":\"{clock}\"")}}}""");

    /// <summary>The wall clock now, in microseconds since 1970 (as source timestamps are).</summary>
    public static long NowMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public static ReadContext Context(JsonElement config, JsonElement? state = null, IReadOnlyList<StreamSelection>? streams = null) =>
        new("test", config, streams ?? AllStreams.Select(s => new StreamSelection(s, SyncMode.Cdc)).ToList(), state, NullConnectorLog.Instance);

    /// <summary>Reads a finite read to its end, as text lines (one per message).</summary>
    public static async Task<List<Message>> ReadAllAsync(ReadContext context, CancellationToken cancellationToken = default)
    {
        var connector = new SampleConnector();
        await using var reader = connector.OpenReader(context);
        var result = new List<Message>();
        await foreach (var m in reader.ReadAsync(cancellationToken))
        {
            result.Add(Message.From(m));
        }

        return result;
    }
}

/// <summary>
/// A read message as plain data: text for comparison (<see cref="Content"/> leaves out the source timestamps, which the
/// wall clock makes differ between reads), and for batches the decoded rows.
/// </summary>
internal sealed record Message(string Text, string Kind, JsonElement? State, string? Stream, IReadOnlyList<RowEvent> Rows, string Content)
{
    public static Message From(SourceMessage message)
    {
        switch (message)
        {
            case ChangeBatch batch:
                using (batch)
                {
                    var rows = new List<RowEvent>(batch.Length);
                    var sb = new StringBuilder().Append("batch ").Append(batch.Stream);
                    var content = new StringBuilder().Append("batch ").Append(batch.Stream);
                    for (var i = 0; i < batch.Length; i++)
                    {
                        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
                        for (var c = 0; c < batch.Data.ColumnCount; c++)
                        {
                            values[batch.Data.Schema.GetFieldByIndex(c).Name] = ArrowValues.GetValue(batch.Data.Column(c), i);
                        }

                        var buffer = new ArrayBufferWriter<byte>();
                        using (var w = new Utf8JsonWriter(buffer))
                        {
                            ArrowValues.WriteRowJson(w, batch.Data, i);
                        }

                        var json = Encoding.UTF8.GetString(buffer.WrittenSpan);
                        rows.Add(new RowEvent(batch.Stream, batch.Ops[i], batch.Positions[i], batch.SourceTimestampsMicros[i], values));
                        sb.Append('\n').Append(batch.Ops[i].Code()).Append(' ').Append(batch.Positions[i]).Append(' ')
                          .Append(batch.SourceTimestampsMicros[i]).Append(' ').Append(json);
                        content.Append('\n').Append(batch.Ops[i].Code()).Append(' ').Append(batch.Positions[i]).Append(' ').Append(json);
                    }

                    return new Message(sb.ToString(), "batch", null, batch.Stream, rows, content.ToString());
                }

            case Checkpoint c:
                return Plain("checkpoint " + c.State.GetRawText(), "checkpoint", c.State, null);
            case StreamProgress p:
                return Plain($"progress {p.Stream} {p.Phase} {p.RowsDone} {p.RowsTotal}", "progress", null, p.Stream);
            case BackfillDone d:
                return Plain($"backfilldone {d.Id} {d.Stream} {d.Rows}", "backfilldone", null, d.Stream);
            case CaughtUp:
                return Plain("caughtup", "caughtup", null, null);
            default:
                throw new InvalidOperationException($"Unexpected message {message.GetType().Name}.");
        }
    }

    private static Message Plain(string text, string kind, JsonElement? state, string? stream) => new(text, kind, state, stream, [], text);
}

internal sealed record RowEvent(string Stream, ChangeOp Op, SourcePosition Position, long SourceTimestampMicros, IReadOnlyDictionary<string, object?> Values);
