using System.Globalization;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Records;
using static Ingest.Connectors.Sample.SampleData;

namespace Ingest.Connectors.Sample;

/// <summary>
/// What the sample source holds, computed straight from the generator (not by reading through the
/// connector), so tests can compare a pipeline's output with it. Values have the CLR shapes of
/// <see cref="ArrowValues.GetValue"/>: long, int, string, decimal, bool, DateTimeOffset, DateOnly, null.
/// </summary>
internal static class SampleExpectations
{
    /// <summary>Options parsed exactly as the connector parses its config.</summary>
    public static SampleOptions ParseOptions(JsonElement config) => SampleOptions.Parse(config);

    /// <summary>
    /// State of every stream after the snapshot and the first <paramref name="changeEvents"/> change events:
    /// stream -> key -> row. The key is the key column values joined with "|" (invariant culture).
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyDictionary<string, object?>>> FinalState(SampleOptions options, long changeEvents)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyDictionary<string, object?>>>(StringComparer.Ordinal);
        foreach (var (stream, events) in Events(options, changeEvents))
        {
            var keys = SampleStreams.Keys[SampleStreams.IndexOf(stream)];
            var table = new Dictionary<string, IReadOnlyDictionary<string, object?>>(StringComparer.Ordinal);
            foreach (var e in events)
            {
                var key = KeyOf(e.Row, keys);
                if (e.Op == ChangeOp.Delete)
                {
                    table.Remove(key);
                }
                else
                {
                    table[key] = e.Row;
                }
            }

            result[stream] = table;
        }

        return result;
    }

    /// <summary>Every row event in emission order per stream, snapshot rows included.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<SampleEvent>> Events(SampleOptions options, long changeEvents)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(changeEvents);
        var generator = new SampleGenerator(options);
        var sink = new DictionarySink(generator);
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            var total = generator.SnapshotRows(s);
            for (var offset = 0L; offset < total; offset += 65_536)
            {
                generator.EmitSnapshot(s, offset, (int)Math.Min(65_536, total - offset), sink);
            }
        }

        while (generator.EventsApplied < changeEvents)
        {
            generator.ApplyNextEvent(sink);
        }

        var result = new Dictionary<string, IReadOnlyList<SampleEvent>>(StringComparer.Ordinal);
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            result[SampleStreams.Names[s]] = sink.Events[s];
        }

        return result;
    }

    /// <summary>The key of a row: its key column values joined with "|".</summary>
    public static string KeyOf(IReadOnlyDictionary<string, object?> row, IReadOnlyList<string> keyColumns)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(keyColumns);
        return string.Join("|", keyColumns.Select(k => Convert.ToString(row[k], CultureInfo.InvariantCulture)));
    }

    private static DateTimeOffset Instant(long micros) => new(DateTime.UnixEpoch.Ticks + (micros * 10), TimeSpan.Zero);

    private static decimal Cents(long cents) => new((int)(cents & 0xFFFFFFFF), (int)(cents >> 32), 0, false, 2);

    private sealed class DictionarySink(SampleGenerator generator) : ISampleSink
    {
        private readonly byte[] _buffer = new byte[4096];

        public List<SampleEvent>[] Events { get; } = [[], [], [], []];

        private string Text(Utf8Text text) => Encoding.UTF8.GetString(text.Written);

        public void Row(int stream, ChangeOp op, long sequence, int id, int lineNo)
        {
            var g = generator;
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            if (op == ChangeOp.Delete)
            {
                if (stream == SampleStreams.OrderLines)
                {
                    row["order_id"] = (long)id;
                    row["line_no"] = lineNo;
                }
                else
                {
                    row["id"] = (long)id;
                }
            }
            else
            {
                switch (stream)
                {
                    case SampleStreams.Customers:
                    {
                        row["id"] = (long)id;
                        var text = new Utf8Text(_buffer);
                        g.WriteEmail(id, ref text);
                        row["email"] = Text(text);
                        text = new Utf8Text(_buffer);
                        g.WriteFullName(id, ref text);
                        row["full_name"] = Text(text);
                        var country = g.CountryIndex(id);
                        row["country"] = country < 0 ? null : Countries[country];
                        var loyalty = g.LoyaltyPoints(id);
                        row["loyalty_points"] = loyalty < 0 ? null : loyalty;
                        row["created_at"] = Instant(g.CustomerCreatedAt(id));
                        row["updated_at"] = Instant(g.CustomerUpdatedAt(id));
                        break;
                    }

                    case SampleStreams.Products:
                    {
                        row["id"] = (long)id;
                        var text = new Utf8Text(_buffer);
                        g.WriteSku(id, ref text);
                        row["sku"] = Text(text);
                        text = new Utf8Text(_buffer);
                        g.WriteProductName(id, ref text);
                        row["name"] = Text(text);
                        text = new Utf8Text(_buffer);
                        g.WriteDescription(id, ref text);
                        row["description"] = Text(text);
                        row["price"] = Cents(g.PriceCents(id));
                        var category = g.CategoryIndex(id);
                        row["category"] = category < 0 ? null : Categories[category];
                        row["active"] = g.Active(id);
                        row["updated_at"] = Instant(g.ProductUpdatedAt(id));
                        break;
                    }

                    case SampleStreams.Orders:
                    {
                        row["id"] = (long)id;
                        row["customer_id"] = (long)g.OrderCustomer(id);
                        row["status"] = Statuses[g.StatusIndex(id)];
                        row["total"] = Cents(g.TotalCents(id));
                        row["currency"] = Currencies[g.CurrencyIndex(id)];
                        row["ordered_at"] = Instant(g.OrderedAt(id));
                        var shipped = g.ShippedOn(id);
                        row["shipped_on"] = shipped < 0 ? null : DateOnly.FromDateTime(DateTime.UnixEpoch).AddDays(shipped);
                        var note = g.NoteIndex(id);
                        row["note"] = note < 0 ? null : Notes[note];
                        row["updated_at"] = Instant(g.OrderUpdatedAt(id));
                        break;
                    }

                    default:
                    {
                        row["order_id"] = (long)id;
                        row["line_no"] = lineNo;
                        row["product_id"] = (long)g.LineProduct(id, lineNo);
                        row["quantity"] = g.Quantity(id, lineNo);
                        row["unit_price"] = Cents(g.UnitPriceCents(id, lineNo));
                        var discount = g.Discount(id, lineNo);
                        row["discount"] = discount < 0 ? null : new decimal(discount, 0, 0, false, 4);
                        break;
                    }
                }
            }

            Events[stream].Add(new SampleEvent(op, new SourcePosition((ulong)sequence, 0), row));
        }
    }
}

/// <summary>One row event of the sample source.</summary>
/// <param name="Op">What happened (Read for snapshot rows).</param>
/// <param name="Position">Its source position: (global sequence, 0).</param>
/// <param name="Row">Column name -> value; deletes carry the key columns only.</param>
internal sealed record SampleEvent(ChangeOp Op, SourcePosition Position, IReadOnlyDictionary<string, object?> Row);
