using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Stripe;

/// <summary>One Stripe object type: its list path, the <c>object</c> value its events carry, and its columns.</summary>
internal sealed record StripeStream(string Name, string Path, string ObjectType, StreamSchema Schema, bool HasEvents)
{
    public const string RawColumn = "_raw";

    public StreamDescriptor Describe() => new(
        Name,
        Schema,
        ["id"],
        Name == "events" ? ["created"] : [],
        [SyncMode.FullRefresh, SyncMode.Incremental],
        Name == "events"
            ? "Stripe events (the last 30 days at the first read, then every new one)."
            : $"Stripe {ObjectType} objects; {(HasEvents ? "updates and deletions follow from events" : "immutable, new ones listed by created time")}. Fields not typed here are in _raw.");
}

/// <summary>The streams and their typed columns: the common fields of each object; the whole object is kept in <c>_raw</c>.</summary>
internal static class StripeStreams
{
    private static readonly DataType S = DataType.String;
    private static readonly DataType L = DataType.Int64;
    private static readonly DataType B = DataType.Boolean;
    private static readonly DataType T = DataType.Timestamp;
    private static readonly DataType Metadata = new MapType(DataType.String, DataType.String);

    private static readonly StructType Address = new([
        new("line1", S), new("line2", S), new("city", S), new("state", S), new("postal_code", S), new("country", S)]);

    public static IReadOnlyList<StripeStream> All { get; } =
    [
        Object("customers", "customer", true,
            F("email", S), F("name", S), F("phone", S), F("description", S), F("currency", S), F("balance", L),
            F("delinquent", B), F("invoice_prefix", S), F("default_source", S), F("address", Address),
            F("shipping", new StructType([new("name", S), new("phone", S), new("address", Address)]))),
        Object("charges", "charge", true,
            F("amount", L), F("amount_captured", L), F("amount_refunded", L), F("currency", S), F("customer", S),
            F("payment_intent", S), F("invoice", S), F("status", S), F("paid", B), F("captured", B), F("refunded", B),
            F("disputed", B), F("description", S), F("failure_code", S), F("failure_message", S), F("balance_transaction", S),
            F("receipt_email", S), F("payment_method", S),
            F("billing_details", new StructType([new("name", S), new("email", S), new("phone", S), new("address", Address)])),
            F("outcome", new StructType([new("network_status", S), new("reason", S), new("risk_level", S), new("seller_message", S), new("type", S)]))),
        Object("payment_intents", "payment_intent", true,
            F("amount", L), F("amount_received", L), F("amount_capturable", L), F("currency", S), F("customer", S),
            F("status", S), F("description", S), F("payment_method", S), F("latest_charge", S), F("capture_method", S),
            F("invoice", S), F("canceled_at", T), F("cancellation_reason", S)),
        Object("invoices", "invoice", true,
            F("customer", S), F("subscription", S), F("status", S), F("number", S), F("currency", S), F("amount_due", L),
            F("amount_paid", L), F("amount_remaining", L), F("subtotal", L), F("total", L), F("due_date", T),
            F("period_start", T), F("period_end", T), F("attempt_count", L), F("billing_reason", S), F("collection_method", S),
            F("hosted_invoice_url", S),
            F("status_transitions", new StructType([new("finalized_at", T), new("paid_at", T), new("voided_at", T), new("marked_uncollectible_at", T)]))),
        Object("subscriptions", "subscription", true,
            F("customer", S), F("status", S), F("currency", S), F("start_date", T), F("current_period_start", T),
            F("current_period_end", T), F("cancel_at_period_end", B), F("cancel_at", T), F("canceled_at", T), F("ended_at", T),
            F("trial_start", T), F("trial_end", T), F("collection_method", S), F("default_payment_method", S)),
        Object("refunds", "refund", true,
            F("amount", L), F("currency", S), F("charge", S), F("payment_intent", S), F("status", S), F("reason", S),
            F("balance_transaction", S), F("failure_reason", S)),
        Object("products", "product", true,
            F("name", S), F("description", S), F("active", B), F("default_price", S), F("unit_label", S), F("url", S),
            F("updated", T), F("images", new ArrayType(S))),
        Object("prices", "price", true,
            F("product", S), F("active", B), F("currency", S), F("unit_amount", L), F("type", S), F("billing_scheme", S),
            F("lookup_key", S), F("nickname", S), F("tax_behavior", S),
            F("recurring", new StructType([new("interval", S), new("interval_count", L), new("usage_type", S)]))),
        Object("balance_transactions", "balance_transaction", false,
            F("amount", L), F("fee", L), F("net", L), F("currency", S), F("type", S), F("status", S), F("source", S),
            F("reporting_category", S), F("description", S), F("available_on", T), F("exchange_rate", DataType.Double)),
        Object("disputes", "dispute", true,
            F("amount", L), F("currency", S), F("charge", S), F("payment_intent", S), F("status", S), F("reason", S),
            F("is_charge_refundable", B),
            F("evidence_details", new StructType([new("due_by", T), new("has_evidence", B), new("past_due", B), new("submission_count", L)]))),
        new StripeStream("events", "v1/events", "event", new StreamSchema([
            new("id", S, Nullable: false), new("created", T), new("livemode", B), new("type", S), new("api_version", S),
            new("pending_webhooks", L), new("request", new StructType([new("id", S), new("idempotency_key", S)])),
            new("data_object_id", S, Description: "data.object.id: the object the event is about."),
            new("data_object_type", S, Description: "data.object.object, e.g. customer."),
            new(StripeStream.RawColumn, S, Description: "The whole event as JSON.")]), false),
    ];

    public static StripeStream? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    /// <summary>The stream an event's <c>data.object</c> belongs to, by its <c>object</c> field (so <c>charge.refund.updated</c> goes to refunds).</summary>
    public static StripeStream? ForObjectType(string? objectType) =>
        objectType is null || objectType == "event" ? null : All.FirstOrDefault(s => s.ObjectType == objectType);

    private static Field F(string name, DataType type) => new(name, type);

    private static StripeStream Object(string name, string objectType, bool hasEvents, params Field[] fields)
    {
        var columns = new List<Field>
        {
            new("id", S, Nullable: false),
            new("created", T),
            new("livemode", B),
        };
        columns.AddRange(fields);
        columns.Add(new("metadata", Metadata));
        columns.Add(new(StripeStream.RawColumn, S, Description: "The whole object as JSON, for fields without a column."));
        return new StripeStream(name, "v1/" + name, objectType, new StreamSchema(columns), hasEvents);
    }
}
