using Ingest.Sdk.Records;
using static Ingest.Connectors.Sample.SampleData;

namespace Ingest.Connectors.Sample;

/// <summary>Receives each generated row; the generator's state holds the row's after-image while it is called.</summary>
internal interface ISampleSink
{
    /// <summary>A row of <paramref name="stream"/>: an entity id (the order id for order lines) and, for order lines, the line number.</summary>
    void Row(int stream, ChangeOp op, long sequence, int id, int lineNo);
}

/// <summary>
/// The e-commerce world: the snapshot (a pure function of the seed) and change event k (a function of
/// the seed, k and the state the first k-1 events left). Sequences are global: the snapshot takes
/// 1..N in emission order (customers, products, orders, order lines), then each change row the next one.
/// </summary>
internal sealed class SampleGenerator
{
    /// <summary>2025-01-01T00:00:00Z: snapshot rows were last changed before it, change events happen after it.</summary>
    public static readonly long BaseMicros = (new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>
    /// The generated data's clock advances 10 ms per sequence number (the <c>updated_at</c> of change rows); the synthetic
    /// source clock uses it too, the wall clock does not (see <see cref="SampleTimeline"/>).
    /// </summary>
    public const long MicrosPerSequence = 10_000;

    private const long Day = 86_400_000_000L;
    private const int TagCustomer = 1;
    private const int TagProduct = 2;
    private const int TagOrder = 3;
    private const int TagLine = 4;
    private const int TagEvent = 5;
    private const long MaxPriceCents = 9_999_999;

    private const byte Pending = 0;
    private const byte Paid = 1;
    private const byte Shipped = 2;
    private const byte Delivered = 3;
    private const byte Cancelled = 4;

    private static readonly int[] Quantities = [1, 1, 1, 1, 2, 2, 2, 3, 4, 5, 10];
    private static readonly int[] Discounts = [500, 1000, 1500, 2000, 2500];

    private readonly long _seed;
    private readonly int _products;
    private readonly long[] _snapshotStart = new long[SampleStreams.Count];
    private readonly long[] _snapshotRows = new long[SampleStreams.Count];
    private readonly int[] _lineStart;

    // A line's unit price is the product's price when the order was placed (at most 5 lines per order: index id * 5 + line - 1).
    private int[] _linePrice;

    private int _customerCount;
    private bool[] _custExists;
    private int[] _custEmailVersion;
    private int[] _custLoyalty;
    private long[] _custCreated;
    private long[] _custUpdated;
    private int[] _custOrders;
    private int[] _custPos;
    private int[] _liveCustomers;
    private int _liveCount;

    private readonly long[] _prodPrice;
    private readonly bool[] _prodActive;
    private readonly long[] _prodUpdated;

    private int _orderCount;
    private bool[] _orderExists;
    private int[] _orderCustomer;
    private byte[] _orderStatus;
    private long[] _orderTotal;
    private long[] _orderedAt;
    private int[] _orderShippedOn;
    private long[] _orderUpdated;
    private int[] _orderPos;
    private int[] _openOrders;
    private int _openCount;
    private int[] _cancelledOrders;
    private int _cancelledCount;

    public SampleGenerator(SampleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _seed = options.Seed;
        _products = options.Products;

        var c = options.Customers;
        _customerCount = c;
        _custExists = new bool[c + 1];
        _custEmailVersion = new int[c + 1];
        _custLoyalty = new int[c + 1];
        _custCreated = new long[c + 1];
        _custUpdated = new long[c + 1];
        _custOrders = new int[c + 1];
        _custPos = new int[c + 1];
        _liveCustomers = new int[c + 1];
        for (var id = 1; id <= c; id++)
        {
            var created = BaseMicros - Day - PickLong(Hash(_seed, TagCustomer, id, 1), 3 * 365 * Day);
            _custCreated[id] = created;
            _custUpdated[id] = created + PickLong(Hash(_seed, TagCustomer, id, 2), BaseMicros - created);
            _custLoyalty[id] = Pick(Hash(_seed, TagCustomer, id, 3), 100) < 15 ? -1 : Pick(Hash(_seed, TagCustomer, id, 4), 5000);
            _custExists[id] = true;
            AddLive(id);
        }

        var p = options.Products;
        _prodPrice = new long[p + 1];
        _prodActive = new bool[p + 1];
        _prodUpdated = new long[p + 1];
        for (var id = 1; id <= p; id++)
        {
            _prodPrice[id] = 99 + PickLong(Hash(_seed, TagProduct, id, 1), 99_901);
            _prodActive[id] = Pick(Hash(_seed, TagProduct, id, 2), 100) < 93;
            _prodUpdated[id] = BaseMicros - PickLong(Hash(_seed, TagProduct, id, 3), 180 * Day);
        }

        var o = options.Orders;
        _orderCount = o;
        _orderExists = new bool[o + 1];
        _orderCustomer = new int[o + 1];
        _orderStatus = new byte[o + 1];
        _orderTotal = new long[o + 1];
        _orderedAt = new long[o + 1];
        _orderShippedOn = new int[o + 1];
        _orderUpdated = new long[o + 1];
        _orderPos = new int[o + 1];
        _openOrders = new int[o + 1];
        _cancelledOrders = new int[Math.Max(1, o / 8)];
        _lineStart = new int[o + 2];
        _linePrice = new int[(o + 1) * MaxLines];
        var lines = 0;
        for (var id = 1; id <= o; id++)
        {
            var customer = 1 + Pick(Hash(_seed, TagOrder, id, 1), c);
            var r = Pick(Hash(_seed, TagOrder, id, 2), 100);
            var status = r < 15 ? Pending : r < 30 ? Paid : r < 45 ? Shipped : r < 90 ? Delivered : Cancelled;
            var orderedAt = BaseMicros - (6 * Day) - PickLong(Hash(_seed, TagOrder, id, 3), 365 * Day);
            _orderExists[id] = true;
            _orderCustomer[id] = customer;
            _orderStatus[id] = status;
            _orderedAt[id] = orderedAt;
            _orderShippedOn[id] = status is Shipped or Delivered ? DayOf(orderedAt) + 1 + Pick(Hash(_seed, TagOrder, id, 4), 4) : -1;
            _orderUpdated[id] = orderedAt + PickLong(Hash(_seed, TagOrder, id, 5), BaseMicros - orderedAt);
            FixLinePrices(id);
            _orderTotal[id] = OrderTotal(id);
            _custOrders[customer]++;
            if (status is Pending or Paid or Shipped)
            {
                AddOpen(id);
            }
            else if (status == Cancelled)
            {
                AddCancelled(id);
            }

            _lineStart[id] = lines;
            lines += LineCount(id);
        }

        _lineStart[o + 1] = lines;
        _snapshotRows[SampleStreams.Customers] = c;
        _snapshotRows[SampleStreams.Products] = p;
        _snapshotRows[SampleStreams.Orders] = o;
        _snapshotRows[SampleStreams.OrderLines] = lines;
        var next = 1L;
        for (var s = 0; s < SampleStreams.Count; s++)
        {
            _snapshotStart[s] = next;
            next += _snapshotRows[s];
        }

        NextSequence = next;
    }

    public SampleOptions Options { get; }

    /// <summary>The sequence the next change row takes.</summary>
    public long NextSequence { get; private set; }

    /// <summary>Change events applied so far.</summary>
    public long EventsApplied { get; private set; }

    /// <summary>Change rows generated so far, per stream.</summary>
    public long[] ChangeRows { get; } = new long[SampleStreams.Count];

    public long SnapshotRows(int stream) => _snapshotRows[stream];

    public long SnapshotStart(int stream) => _snapshotStart[stream];

    /// <summary>The highest entity id a stream has had so far (order ids for order lines); ids start at 1.</summary>
    public int MaxId(int stream) => stream switch
    {
        SampleStreams.Customers => _customerCount,
        SampleStreams.Products => _products,
        _ => _orderCount,
    };

    /// <summary>Whether the entity exists now (for order lines: whether the order does).</summary>
    public bool Exists(int stream, int id) => id >= 1 && id <= MaxId(stream) && stream switch
    {
        SampleStreams.Customers => _custExists[id],
        SampleStreams.Products => true,
        _ => _orderExists[id],
    };

    /// <summary>The data time of <paramref name="sequence"/>: the source timestamp with <see cref="SampleClock.Synthetic"/>.</summary>
    public static long TimestampOf(long sequence) => BaseMicros + (sequence * MicrosPerSequence);

    private static int DayOf(long micros) => (int)(micros / Day);

    // ---- snapshot ----

    /// <summary>Generates snapshot rows [offset, offset + count) of a stream, as they are before any change event.</summary>
    public void EmitSnapshot(int stream, long offset, int count, ISampleSink sink)
    {
        var seq = _snapshotStart[stream] + offset;
        if (stream != SampleStreams.OrderLines)
        {
            for (var i = 0; i < count; i++)
            {
                sink.Row(stream, ChangeOp.Read, seq + i, (int)(offset + 1 + i), 0);
            }

            return;
        }

        // The order whose lines hold row `offset`: the last order starting at or before it.
        var pos = Array.BinarySearch(_lineStart, 1, Options.Orders, (int)offset);
        var order = pos >= 0 ? pos : ~pos - 1;
        while (order < Options.Orders && _lineStart[order + 1] <= offset)
        {
            order++;
        }

        var line = (int)(offset - _lineStart[order]) + 1;
        for (var i = 0; i < count; i++)
        {
            sink.Row(stream, ChangeOp.Read, seq + i, order, line);
            if (++line > LineCount(order))
            {
                order++;
                line = 1;
            }
        }
    }

    // ---- change events ----

    private enum EventKind
    {
        NewCustomer,
        NewOrder,
        MoveOrder,
        UpdateProduct,
        UpdateCustomer,
        DeleteOrder,
        DeleteCustomer,
    }

    /// <summary>Applies the next change event; rows go to <paramref name="sink"/> when given (null: replay silently).</summary>
    public void ApplyNextEvent(ISampleSink? sink)
    {
        var k = ++EventsApplied;
        var rng = new SampleRng(Hash(_seed, TagEvent, k));
        var roll = rng.Next(100);
        var kind = roll switch
        {
            < 15 => EventKind.NewCustomer,
            < 35 => EventKind.NewOrder,
            < 65 => EventKind.MoveOrder,
            < 75 => EventKind.UpdateProduct,
            < 90 => EventKind.UpdateCustomer,
            < 96 => EventKind.DeleteOrder,
            _ => EventKind.DeleteCustomer,
        };
        var now = TimestampOf(NextSequence);

        // Each kind falls back to one that is always possible in the end (a new customer).
        while (true)
        {
            switch (kind)
            {
                case EventKind.DeleteCustomer:
                    for (var attempt = 0; attempt < 4 && _liveCount > 0; attempt++)
                    {
                        var id = _liveCustomers[rng.Next(_liveCount)];
                        if (_custOrders[id] == 0)
                        {
                            Emit(sink, SampleStreams.Customers, ChangeOp.Delete, id, 0);
                            RemoveLive(id);
                            _custExists[id] = false;
                            return;
                        }
                    }

                    kind = EventKind.UpdateCustomer;
                    break;

                case EventKind.DeleteOrder:
                    if (_cancelledCount > 0)
                    {
                        var id = _cancelledOrders[rng.Next(_cancelledCount)];
                        var n = LineCount(id);
                        for (var line = 1; line <= n; line++)
                        {
                            Emit(sink, SampleStreams.OrderLines, ChangeOp.Delete, id, line);
                        }

                        Emit(sink, SampleStreams.Orders, ChangeOp.Delete, id, 0);
                        RemoveCancelled(id);
                        _orderExists[id] = false;
                        _custOrders[_orderCustomer[id]]--;
                        return;
                    }

                    kind = EventKind.MoveOrder;
                    break;

                case EventKind.MoveOrder:
                    if (_openCount > 0)
                    {
                        var id = _openOrders[rng.Next(_openCount)];
                        var r = rng.Next(100);
                        var status = _orderStatus[id] switch
                        {
                            Pending => r < 85 ? Paid : Cancelled,
                            Paid => r < 92 ? Shipped : Cancelled,
                            _ => Delivered,
                        };
                        _orderStatus[id] = status;
                        _orderUpdated[id] = now;
                        if (status == Shipped)
                        {
                            _orderShippedOn[id] = DayOf(now);
                        }
                        else if (status is Delivered or Cancelled)
                        {
                            RemoveOpen(id);
                            if (status == Cancelled)
                            {
                                AddCancelled(id);
                            }
                        }

                        Emit(sink, SampleStreams.Orders, ChangeOp.Update, id, 0);
                        return;
                    }

                    kind = EventKind.NewOrder;
                    break;

                case EventKind.UpdateProduct:
                    if (_products > 0)
                    {
                        var id = 1 + rng.Next(_products);
                        if (rng.Next(100) < 80)
                        {
                            var change = rng.Next(401) - 200; // -20.0% .. +20.0%
                            var price = ((_prodPrice[id] * (1000 + change)) + 500) / 1000;
                            _prodPrice[id] = Math.Clamp(price, 50, MaxPriceCents);
                        }
                        else
                        {
                            _prodActive[id] = !_prodActive[id];
                        }

                        _prodUpdated[id] = now;
                        Emit(sink, SampleStreams.Products, ChangeOp.Update, id, 0);
                        return;
                    }

                    kind = EventKind.UpdateCustomer;
                    break;

                case EventKind.UpdateCustomer:
                    if (_liveCount > 0)
                    {
                        var id = _liveCustomers[rng.Next(_liveCount)];
                        if (rng.Next(100) < 40)
                        {
                            _custEmailVersion[id]++;
                        }
                        else
                        {
                            _custLoyalty[id] = Math.Max(0, _custLoyalty[id]) + 10 + rng.Next(491);
                        }

                        _custUpdated[id] = now;
                        Emit(sink, SampleStreams.Customers, ChangeOp.Update, id, 0);
                        return;
                    }

                    kind = EventKind.NewCustomer;
                    break;

                case EventKind.NewOrder:
                    if (_liveCount > 0 && _products > 0)
                    {
                        var customer = _liveCustomers[rng.Next(_liveCount)];
                        var id = ++_orderCount;
                        EnsureOrderCapacity(id);
                        _orderExists[id] = true;
                        _orderCustomer[id] = customer;
                        _orderStatus[id] = Pending;
                        _orderedAt[id] = now;
                        _orderUpdated[id] = now;
                        _orderShippedOn[id] = -1;
                        FixLinePrices(id);
                        _orderTotal[id] = OrderTotal(id);
                        _custOrders[customer]++;
                        AddOpen(id);
                        Emit(sink, SampleStreams.Orders, ChangeOp.Insert, id, 0);
                        var n = LineCount(id);
                        for (var line = 1; line <= n; line++)
                        {
                            Emit(sink, SampleStreams.OrderLines, ChangeOp.Insert, id, line);
                        }

                        return;
                    }

                    kind = EventKind.NewCustomer;
                    break;

                default:
                {
                    var id = ++_customerCount;
                    EnsureCustomerCapacity(id);
                    _custExists[id] = true;
                    _custEmailVersion[id] = 0;
                    _custLoyalty[id] = 0;
                    _custCreated[id] = now;
                    _custUpdated[id] = now;
                    _custOrders[id] = 0;
                    AddLive(id);
                    Emit(sink, SampleStreams.Customers, ChangeOp.Insert, id, 0);
                    return;
                }
            }
        }
    }

    private void Emit(ISampleSink? sink, int stream, ChangeOp op, int id, int line)
    {
        var seq = NextSequence++;
        ChangeRows[stream]++;
        sink?.Row(stream, op, seq, id, line);
    }

    // ---- live lists (swap-remove, O(1)) ----

    private void AddLive(int id)
    {
        if (_liveCount == _liveCustomers.Length)
        {
            Array.Resize(ref _liveCustomers, _liveCount * 2);
        }

        _custPos[id] = _liveCount;
        _liveCustomers[_liveCount++] = id;
    }

    private void RemoveLive(int id)
    {
        var pos = _custPos[id];
        var last = _liveCustomers[--_liveCount];
        _liveCustomers[pos] = last;
        _custPos[last] = pos;
    }

    private void AddOpen(int id)
    {
        if (_openCount == _openOrders.Length)
        {
            Array.Resize(ref _openOrders, Math.Max(16, _openCount * 2));
        }

        _orderPos[id] = _openCount;
        _openOrders[_openCount++] = id;
    }

    private void RemoveOpen(int id)
    {
        var pos = _orderPos[id];
        var last = _openOrders[--_openCount];
        _openOrders[pos] = last;
        _orderPos[last] = pos;
    }

    private void AddCancelled(int id)
    {
        if (_cancelledCount == _cancelledOrders.Length)
        {
            Array.Resize(ref _cancelledOrders, Math.Max(16, _cancelledCount * 2));
        }

        _orderPos[id] = _cancelledCount;
        _cancelledOrders[_cancelledCount++] = id;
    }

    private void RemoveCancelled(int id)
    {
        var pos = _orderPos[id];
        var last = _cancelledOrders[--_cancelledCount];
        _cancelledOrders[pos] = last;
        _orderPos[last] = pos;
    }

    private void EnsureCustomerCapacity(int id)
    {
        if (id < _custExists.Length)
        {
            return;
        }

        var n = Math.Max(16, _custExists.Length * 2);
        Array.Resize(ref _custExists, n);
        Array.Resize(ref _custEmailVersion, n);
        Array.Resize(ref _custLoyalty, n);
        Array.Resize(ref _custCreated, n);
        Array.Resize(ref _custUpdated, n);
        Array.Resize(ref _custOrders, n);
        Array.Resize(ref _custPos, n);
    }

    private void EnsureOrderCapacity(int id)
    {
        if (id < _orderExists.Length)
        {
            return;
        }

        var n = Math.Max(16, _orderExists.Length * 2);
        Array.Resize(ref _orderExists, n);
        Array.Resize(ref _orderCustomer, n);
        Array.Resize(ref _orderStatus, n);
        Array.Resize(ref _orderTotal, n);
        Array.Resize(ref _orderedAt, n);
        Array.Resize(ref _orderShippedOn, n);
        Array.Resize(ref _orderUpdated, n);
        Array.Resize(ref _orderPos, n);
        Array.Resize(ref _linePrice, n * MaxLines);
    }

    private const int MaxLines = 5;

    private void FixLinePrices(int orderId)
    {
        var n = LineCount(orderId);
        for (var line = 1; line <= n; line++)
        {
            _linePrice[(orderId * MaxLines) + line - 1] = checked((int)_prodPrice[LineProduct(orderId, line)]);
        }
    }

    // ---- customers ----

    public void WriteFullName(int id, ref Utf8Text text)
    {
        text.Append(FirstNames[Pick(Hash(_seed, TagCustomer, id, 5), FirstNames.Length)]);
        text.Append((byte)' ');
        text.Append(LastNames[Pick(Hash(_seed, TagCustomer, id, 6), LastNames.Length)]);
    }

    public void WriteEmail(int id, ref Utf8Text text)
    {
        var version = _custEmailVersion[id];
        text.AppendLower(FirstNames[Pick(Hash(_seed, TagCustomer, id, 5), FirstNames.Length)]);
        text.Append((byte)'.');
        text.AppendLower(LastNames[Pick(Hash(_seed, TagCustomer, id, 6), LastNames.Length)]);
        text.Append(id);
        if (version > 0)
        {
            text.Append((byte)'+');
            text.Append(version);
        }

        text.Append((byte)'@');
        text.Append(Domains[Pick(Hash(_seed, TagCustomer, id, 1000 + version), Domains.Length)]);
    }

    /// <summary>Index into <see cref="SampleData.Countries"/>, or -1 for null.</summary>
    public int CountryIndex(int id) =>
        Pick(Hash(_seed, TagCustomer, id, 8), 100) < 8 ? -1 : Pick(Hash(_seed, TagCustomer, id, 9), Countries.Length);

    /// <summary>Loyalty points, or -1 for null.</summary>
    public int LoyaltyPoints(int id) => _custLoyalty[id];

    public long CustomerCreatedAt(int id) => _custCreated[id];

    public long CustomerUpdatedAt(int id) => _custUpdated[id];

    // ---- products ----

    /// <summary>Index into <see cref="SampleData.Categories"/>, or -1 for null.</summary>
    public int CategoryIndex(int id) =>
        Pick(Hash(_seed, TagProduct, id, 11), 100) < 5 ? -1 : Pick(Hash(_seed, TagProduct, id, 12), Categories.Length);

    public void WriteSku(int id, ref Utf8Text text)
    {
        var category = CategoryIndex(id);
        text.Append(category < 0 ? "GEN"u8 : CategoryCodes[category]);
        text.Append((byte)'-');
        text.Append(id, "D6");
    }

    public void WriteProductName(int id, ref Utf8Text text)
    {
        text.Append(Adjectives[Pick(Hash(_seed, TagProduct, id, 13), Adjectives.Length)]);
        text.Append((byte)' ');
        text.Append(Materials[Pick(Hash(_seed, TagProduct, id, 14), Materials.Length)]);
        text.Append((byte)' ');
        text.Append(Nouns[Pick(Hash(_seed, TagProduct, id, 15), Nouns.Length)]);
    }

    /// <summary>200 to 2000 characters of sentences. Needs a buffer of 2100 bytes.</summary>
    public void WriteDescription(int id, ref Utf8Text text)
    {
        var target = 200 + Pick(Hash(_seed, TagProduct, id, 16), 1780);
        var rng = new SampleRng(Hash(_seed, TagProduct, id, 17));
        var start = text.Length;
        while (text.Length - start < target)
        {
            var words = 6 + rng.Next(9);
            for (var w = 0; w < words; w++)
            {
                var word = Words[rng.Next(Words.Length)];
                if (w == 0)
                {
                    if (text.Length > start)
                    {
                        text.Append((byte)' ');
                    }

                    text.Append((byte)(word[0] - 32));
                    text.Append(word.AsSpan(1));
                }
                else
                {
                    text.Append((byte)' ');
                    text.Append(word);
                }
            }

            text.Append((byte)'.');
        }
    }

    public long PriceCents(int id) => _prodPrice[id];

    public bool Active(int id) => _prodActive[id];

    public long ProductUpdatedAt(int id) => _prodUpdated[id];

    // ---- orders ----

    public int OrderCustomer(int id) => _orderCustomer[id];

    /// <summary>Index into <see cref="SampleData.Statuses"/>.</summary>
    public int StatusIndex(int id) => _orderStatus[id];

    public long TotalCents(int id) => _orderTotal[id];

    public int CurrencyIndex(int id) => Pick(Hash(_seed, TagOrder, id, 20), Currencies.Length);

    public long OrderedAt(int id) => _orderedAt[id];

    /// <summary>Days since 1970-01-01, or -1 for null.</summary>
    public int ShippedOn(int id) => _orderShippedOn[id];

    /// <summary>Index into <see cref="SampleData.Notes"/>, or -1 for null.</summary>
    public int NoteIndex(int id) =>
        Pick(Hash(_seed, TagOrder, id, 21), 100) < 80 ? -1 : Pick(Hash(_seed, TagOrder, id, 22), Notes.Length);

    public long OrderUpdatedAt(int id) => _orderUpdated[id];

    public int LineCount(int orderId) => LineCount(_seed, orderId);

    private static int LineCount(long seed, int orderId) => 1 + Pick(Hash(seed, TagOrder, orderId, 10), 5);

    /// <summary>Snapshot rows per stream, without building the state.</summary>
    public static long[] SnapshotRowCounts(SampleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var lines = 0L;
        for (var id = 1; id <= options.Orders; id++)
        {
            lines += LineCount(options.Seed, id);
        }

        return [options.Customers, options.Products, options.Orders, lines];
    }

    // ---- order lines ----

    private ulong LineHash(int orderId, int line, int field) => Hash(_seed, TagLine, ((long)orderId * 8) + line, field);

    public int LineProduct(int orderId, int line) => 1 + Pick(LineHash(orderId, line, 1), _products);

    public int Quantity(int orderId, int line) => Quantities[Pick(LineHash(orderId, line, 2), Quantities.Length)];

    /// <summary>The product's price when the line is generated (lines are never updated).</summary>
    public long UnitPriceCents(int orderId, int line) => _linePrice[(orderId * MaxLines) + line - 1];

    /// <summary>Unscaled at 4 decimals (1500 = 0.1500), or -1 for null.</summary>
    public int Discount(int orderId, int line) =>
        Pick(LineHash(orderId, line, 3), 100) < 70 ? -1 : Discounts[Pick(LineHash(orderId, line, 4), Discounts.Length)];

    private long OrderTotal(int orderId)
    {
        var total = 0L;
        var n = LineCount(orderId);
        for (var line = 1; line <= n; line++)
        {
            var gross = Quantity(orderId, line) * UnitPriceCents(orderId, line);
            var discount = Discount(orderId, line);
            total += discount < 0 ? gross : ((gross * (10_000 - discount)) + 5_000) / 10_000;
        }

        return total;
    }
}
