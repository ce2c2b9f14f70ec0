using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.MailChimp;

/// <summary>One MailChimp collection: its name, key, the JSON array its pages hold, and its typed columns.</summary>
internal sealed record MailChimpStream(string Name, IReadOnlyList<string> Key, string ArrayName, StreamSchema Schema, string Description, IReadOnlyList<string> Cursor)
{
    public const string RawColumn = "_raw";

    public StreamDescriptor Describe() => new(Name, Schema, Key, Cursor, [SyncMode.FullRefresh, SyncMode.Incremental], Description);
}

/// <summary>The streams and their typed columns: the documented fields of each object; the whole object is kept in <c>_raw</c>.</summary>
internal static class MailChimpStreams
{
    private static readonly DataType S = DataType.String;
    private static readonly DataType L = DataType.Int64;
    private static readonly DataType D = DataType.Double;
    private static readonly DataType B = DataType.Boolean;
    private static readonly DataType T = DataType.Timestamp;

    public static MailChimpStream Lists { get; } = new("lists", ["id"], "lists", Schema(
        new("id", S, Nullable: false), F("web_id", L), F("name", S),
        F("contact", Struct(("company", S), ("address1", S), ("address2", S), ("city", S), ("state", S), ("zip", S), ("country", S), ("phone", S))),
        F("permission_reminder", S), F("use_archive_bar", B),
        F("campaign_defaults", Struct(("from_name", S), ("from_email", S), ("subject", S), ("language", S))),
        F("notify_on_subscribe", S), F("notify_on_unsubscribe", S), F("date_created", T), F("list_rating", L),
        F("email_type_option", B), F("subscribe_url_short", S), F("subscribe_url_long", S), F("beamer_address", S),
        F("visibility", S), F("double_optin", B), F("has_welcome", B), F("marketing_permissions", B),
        F("stats", Struct(("member_count", L), ("unsubscribe_count", L), ("cleaned_count", L), ("member_count_since_send", L),
            ("unsubscribe_count_since_send", L), ("cleaned_count_since_send", L), ("campaign_count", L), ("campaign_last_sent", T),
            ("merge_field_count", L), ("avg_sub_rate", D), ("avg_unsub_rate", D), ("target_sub_rate", D), ("open_rate", D),
            ("click_rate", D), ("last_sub_date", T), ("last_unsub_date", T)))),
        "Audiences (lists) with their settings and statistics; re-read every pass, a list gone from MailChimp is deleted.", []);

    public static MailChimpStream Members { get; } = new("members", ["list_id", "id"], "members", Schema(
        new("list_id", S, Nullable: false), new("id", S, Nullable: false, Description: "MD5 of the lower-case email: unique within its list only."),
        F("email_address", S), F("unique_email_id", S), F("contact_id", S), F("full_name", S), F("web_id", L), F("email_type", S),
        F("status", S, "subscribed, unsubscribed, cleaned, pending, transactional or archived (a deleted member is archived)."),
        F("unsubscribe_reason", S), F("consents_to_one_to_one_messaging", B),
        F("merge_fields", new MapType(S, S), "Merge fields by tag; non-text values (addresses) as JSON."),
        F("interests", new MapType(S, B)),
        F("stats", Struct(("avg_open_rate", D), ("avg_click_rate", D))),
        F("ip_signup", S), F("timestamp_signup", T), F("ip_opt", S), F("timestamp_opt", T), F("member_rating", L),
        F("last_changed", T), F("language", S), F("vip", B), F("email_client", S),
        F("location", Struct(("latitude", D), ("longitude", D), ("gmtoff", L), ("dstoff", L), ("country_code", S), ("timezone", S), ("region", S))),
        F("source", S), F("tags_count", L), F("tags", new ArrayType(Struct(("id", L), ("name", S))))),
        "Members of every audience, keyed by (list_id, id); read incrementally by last_changed. Archived, unsubscribed and cleaned members keep their row with that status.",
        ["last_changed"]);

    public static MailChimpStream Campaigns { get; } = new("campaigns", ["id"], "campaigns", Schema(
        new("id", S, Nullable: false), F("web_id", L), F("parent_campaign_id", S), F("type", S), F("create_time", T),
        F("archive_url", S), F("long_archive_url", S), F("status", S), F("emails_sent", L), F("send_time", T),
        F("content_type", S), F("needs_block_refresh", B), F("resendable", B),
        F("recipients", Struct(("list_id", S), ("list_is_active", B), ("list_name", S), ("segment_text", S), ("recipient_count", L))),
        F("settings", Struct(("subject_line", S), ("preview_text", S), ("title", S), ("from_name", S), ("reply_to", S),
            ("use_conversation", B), ("to_name", S), ("folder_id", S), ("authenticate", B), ("auto_footer", B), ("inline_css", B),
            ("auto_tweet", B), ("fb_comments", B), ("timewarp", B), ("template_id", L), ("drag_and_drop", B))),
        F("tracking", Struct(("opens", B), ("html_clicks", B), ("text_clicks", B), ("goal_tracking", B), ("ecomm360", B),
            ("google_analytics", S), ("clicktale", S))),
        F("report_summary", Struct(("opens", L), ("unique_opens", L), ("open_rate", D), ("clicks", L), ("subscriber_clicks", L), ("click_rate", D)))),
        "Campaigns with their settings; re-read every pass (MailChimp has no change filter for them).", ["create_time"]);

    public static MailChimpStream Reports { get; } = new("reports", ["id"], "reports", Schema(
        new("id", S, Nullable: false, Description: "The campaign's id."), F("campaign_title", S), F("type", S), F("list_id", S),
        F("list_is_active", B), F("list_name", S), F("subject_line", S), F("preview_text", S), F("emails_sent", L),
        F("abuse_reports", L), F("unsubscribed", L), F("send_time", T),
        F("bounces", Struct(("hard_bounces", L), ("soft_bounces", L), ("syntax_errors", L))),
        F("forwards", Struct(("forwards_count", L), ("forwards_opens", L))),
        F("opens", Struct(("opens_total", L), ("unique_opens", L), ("open_rate", D), ("last_open", T))),
        F("clicks", Struct(("clicks_total", L), ("unique_clicks", L), ("unique_subscriber_clicks", L), ("click_rate", D), ("last_click", T))),
        F("list_stats", Struct(("sub_rate", D), ("unsub_rate", D), ("open_rate", D), ("click_rate", D)))),
        "Campaign statistics (one row per sent campaign, keyed by the campaign's id); re-read every pass as the figures change.", []);

    public static MailChimpStream Unsubscribes { get; } = new("unsubscribes", ["campaign_id", "email_id"], "unsubscribes", Schema(
        new("campaign_id", S, Nullable: false), new("email_id", S, Nullable: false), F("email_address", S),
        F("merge_fields", new MapType(S, S)), F("vip", B), F("timestamp", T), F("reason", S), F("list_id", S), F("list_is_active", B)),
        "Members who unsubscribed through a campaign, per campaign; only new ones are read after the first pass.", ["timestamp"]);

    public static IReadOnlyList<MailChimpStream> All { get; } = [Lists, Members, Campaigns, Reports, Unsubscribes];

    public static MailChimpStream? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    private static Field F(string name, DataType type, string? description = null) => new(name, type, Description: description);

    private static StructType Struct(params (string Name, DataType Type)[] fields) => new(fields.Select(f => new Field(f.Name, f.Type)).ToList());

    private static StreamSchema Schema(params Field[] fields) =>
        new([.. fields, new(MailChimpStream.RawColumn, S, Description: "The whole object as JSON, for fields without a column.")]);
}
