using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Sample;

/// <summary>The four streams, their schemas and column ordinals.</summary>
internal static class SampleStreams
{
    public const int Customers = 0;
    public const int Products = 1;
    public const int Orders = 2;
    public const int OrderLines = 3;
    public const int Count = 4;

    public static readonly string[] Names = ["customers", "products", "orders", "order_lines"];

    public static readonly StreamSchema[] Schemas =
    [
        new(
        [
            new Field("id", DataType.Int64, false, "Customer id."),
            new Field("email", DataType.String, false),
            new Field("full_name", DataType.String, false),
            new Field("country", DataType.String, true, "ISO 3166-1 alpha-2 code."),
            new Field("loyalty_points", DataType.Int32, true),
            new Field("created_at", DataType.Timestamp, false),
            new Field("updated_at", DataType.Timestamp, false),
        ]),
        new(
        [
            new Field("id", DataType.Int64, false, "Product id."),
            new Field("sku", DataType.String, false),
            new Field("name", DataType.String, false),
            new Field("description", DataType.String, false),
            new Field("price", DataType.Decimal(10, 2), false),
            new Field("category", DataType.String, true),
            new Field("active", DataType.Boolean, false),
            new Field("updated_at", DataType.Timestamp, false),
        ]),
        new(
        [
            new Field("id", DataType.Int64, false, "Order id."),
            new Field("customer_id", DataType.Int64, false),
            new Field("status", DataType.String, false, "pending, paid, shipped, delivered or cancelled."),
            new Field("total", DataType.Decimal(12, 2), false),
            new Field("currency", DataType.String, false),
            new Field("ordered_at", DataType.Timestamp, false),
            new Field("shipped_on", DataType.Date, true),
            new Field("note", DataType.String, true),
            new Field("updated_at", DataType.Timestamp, false),
        ]),
        new(
        [
            new Field("order_id", DataType.Int64, false),
            new Field("line_no", DataType.Int32, false),
            new Field("product_id", DataType.Int64, false),
            new Field("quantity", DataType.Int32, false),
            new Field("unit_price", DataType.Decimal(10, 2), false),
            new Field("discount", DataType.Decimal(5, 4), true, "Fraction off the line, e.g. 0.1500."),
        ]),
    ];

    public static readonly string[][] Keys = [["id"], ["id"], ["id"], ["order_id", "line_no"]];

    private static readonly string[] Descriptions =
    [
        "People who buy: inserted, their e-mail and loyalty points updated, deleted when they have no orders.",
        "The catalogue: prices change and products are switched on and off.",
        "Orders move forward pending, paid, shipped, delivered (or cancelled); cancelled orders are deleted.",
        "The lines of each order (1 to 5), inserted and deleted with their order.",
    ];

    public static int IndexOf(string name) => Array.IndexOf(Names, name);

    public static StreamDescriptor Descriptor(int stream, long estimatedRows) => new(
        Names[stream],
        Schemas[stream],
        Keys[stream],
        Schemas[stream].IndexOf("updated_at") >= 0 ? ["updated_at"] : [],
        [SyncMode.Cdc, SyncMode.FullRefresh],
        Descriptions[stream],
        estimatedRows,
        new BackfillSupport(
            stream == OrderLines ? "an order id range, first..last (empty: every line)" : "an id range, first..last (empty: every row)",
            "1..1000"))
    {
        JoinsRunningRead = true,
    };
}
