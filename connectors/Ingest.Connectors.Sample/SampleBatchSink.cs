using Ingest.Sdk.Records;
using static Ingest.Connectors.Sample.SampleData;

namespace Ingest.Connectors.Sample;

/// <summary>Writes generated rows into one <see cref="ChangeBatchBuilder"/> per stream with the typed setters (no boxing).</summary>
internal sealed class SampleBatchSink : ISampleSink
{
    private readonly SampleGenerator _generator;
    private readonly ChangeBatchBuilder[] _builders;
    private readonly byte[] _text = new byte[4096];

    public SampleBatchSink(SampleGenerator generator, int initialCapacity)
    {
        _generator = generator;
        _builders = new ChangeBatchBuilder[SampleStreams.Count];
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            _builders[s] = new ChangeBatchBuilder(SampleStreams.Names[s], SampleStreams.Schemas[s], initialCapacity);
        }
    }

    /// <summary>The streams whose rows are kept; rows of other streams are dropped.</summary>
    public bool[] Enabled { get; set; } = new bool[SampleStreams.Count];

    /// <summary>Rows kept since the last <see cref="Build"/> of every stream.</summary>
    public int PendingRows { get; private set; }

    public int Count(int stream) => _builders[stream].Count;

    public ChangeBatch Build(int stream)
    {
        PendingRows -= _builders[stream].Count;
        return _builders[stream].Build();
    }

    /// <summary>
    /// The source timestamp of the rows generated next (the reader's wall clock sets it per event); null gives each row
    /// the synthetic time of its sequence number.
    /// </summary>
    public long? SourceMicros { get; set; }

    public void Row(int stream, ChangeOp op, long sequence, int id, int lineNo) =>
        RowAt(stream, op, new SourcePosition((ulong)sequence, 0), SourceMicros ?? SampleGenerator.TimestampOf(sequence), id, lineNo);

    /// <summary>A row at an explicit position (backfill rows sit between change events: (sequence, 1..n)).</summary>
    public void RowAt(int stream, ChangeOp op, SourcePosition position, long timestampMicros, int id, int lineNo)
    {
        if (!Enabled[stream])
        {
            return;
        }

        var b = _builders[stream];
        var g = _generator;
        b.BeginRow(op, position, timestampMicros);
        if (op == ChangeOp.Delete)
        {
            b.SetInt64(0, id);
            if (stream == SampleStreams.OrderLines)
            {
                b.SetInt32(1, lineNo);
            }
        }
        else
        {
            switch (stream)
            {
                case SampleStreams.Customers:
                {
                    b.SetInt64(0, id);
                    var text = new Utf8Text(_text);
                    g.WriteEmail(id, ref text);
                    b.SetStringUtf8(1, text.Written);
                    text = new Utf8Text(_text);
                    g.WriteFullName(id, ref text);
                    b.SetStringUtf8(2, text.Written);
                    var country = g.CountryIndex(id);
                    if (country >= 0)
                    {
                        b.SetStringUtf8(3, CountriesUtf8[country]);
                    }

                    var loyalty = g.LoyaltyPoints(id);
                    if (loyalty >= 0)
                    {
                        b.SetInt32(4, loyalty);
                    }

                    b.SetTimestampMicros(5, g.CustomerCreatedAt(id));
                    b.SetTimestampMicros(6, g.CustomerUpdatedAt(id));
                    break;
                }

                case SampleStreams.Products:
                {
                    b.SetInt64(0, id);
                    var text = new Utf8Text(_text);
                    g.WriteSku(id, ref text);
                    b.SetStringUtf8(1, text.Written);
                    text = new Utf8Text(_text);
                    g.WriteProductName(id, ref text);
                    b.SetStringUtf8(2, text.Written);
                    text = new Utf8Text(_text);
                    g.WriteDescription(id, ref text);
                    b.SetStringUtf8(3, text.Written);
                    b.SetDecimalUnscaled(4, g.PriceCents(id));
                    var category = g.CategoryIndex(id);
                    if (category >= 0)
                    {
                        b.SetStringUtf8(5, CategoriesUtf8[category]);
                    }

                    b.SetBoolean(6, g.Active(id));
                    b.SetTimestampMicros(7, g.ProductUpdatedAt(id));
                    break;
                }

                case SampleStreams.Orders:
                {
                    b.SetInt64(0, id);
                    b.SetInt64(1, g.OrderCustomer(id));
                    b.SetStringUtf8(2, StatusesUtf8[g.StatusIndex(id)]);
                    b.SetDecimalUnscaled(3, g.TotalCents(id));
                    b.SetStringUtf8(4, CurrenciesUtf8[g.CurrencyIndex(id)]);
                    b.SetTimestampMicros(5, g.OrderedAt(id));
                    var shipped = g.ShippedOn(id);
                    if (shipped >= 0)
                    {
                        b.SetDate(6, shipped);
                    }

                    var note = g.NoteIndex(id);
                    if (note >= 0)
                    {
                        b.SetStringUtf8(7, NotesUtf8[note]);
                    }

                    b.SetTimestampMicros(8, g.OrderUpdatedAt(id));
                    break;
                }

                default:
                {
                    b.SetInt64(0, id);
                    b.SetInt32(1, lineNo);
                    b.SetInt64(2, g.LineProduct(id, lineNo));
                    b.SetInt32(3, g.Quantity(id, lineNo));
                    b.SetDecimalUnscaled(4, g.UnitPriceCents(id, lineNo));
                    var discount = g.Discount(id, lineNo);
                    if (discount >= 0)
                    {
                        b.SetDecimalUnscaled(5, discount);
                    }

                    break;
                }
            }
        }

        b.EndRow();
        PendingRows++;
    }
}
