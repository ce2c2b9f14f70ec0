using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>The Debezium connectors whose JSON shapes the fixtures imitate.</summary>
public enum DebeziumFlavor
{
    Postgres,
    MySql,
    SqlServer,
}

/// <summary>One customer row as the source database holds it.</summary>
internal sealed record Customer(int Id, string Name, decimal Balance, DateTime CreatedAt, DateOnly Birthday, DateTimeOffset UpdatedAt, bool? Vip = null);

/// <summary>
/// Debezium change events (key and value JSON) as its Postgres, MySQL and SQL Server connectors write them with the JSON converter,
/// with <c>schemas.enable</c> on (a <c>schema</c>/<c>payload</c> wrapper, Connect's semantic types) or off (bare payloads, with
/// <c>decimal.handling.mode=string</c> as schemaless deployments use).
/// </summary>
internal static class DebeziumEvents
{
    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    /// <summary>A customer's key.</summary>
    public static string Key(DebeziumFlavor flavor, bool withSchema, int id, string topic)
    {
        var payload = new JsonObject { ["id"] = id };
        if (!withSchema)
        {
            return payload.ToJsonString();
        }

        var schema = new JsonObject
        {
            ["type"] = "struct",
            ["fields"] = new JsonArray(new JsonObject { ["type"] = "int32", ["optional"] = false, ["field"] = "id" }),
            ["optional"] = false,
            ["name"] = topic + ".Key",
        };
        _ = flavor;
        return new JsonObject { ["schema"] = schema, ["payload"] = payload }.ToJsonString();
    }

    /// <summary>A change event; <paramref name="beforeKeyOnly"/> imitates Postgres' REPLICA IDENTITY DEFAULT (a delete's before holds only the key).</summary>
    public static string Value(DebeziumFlavor flavor, bool withSchema, string topic, string op, Customer? before, Customer? after, long offsetHint, bool beforeKeyOnly = false)
    {
        var withVip = (before?.Vip ?? after?.Vip) is not null;
        var payload = new JsonObject
        {
            ["before"] = before is null ? null : beforeKeyOnly ? KeyOnly(before.Id) : Row(flavor, withSchema, before),
            ["after"] = after is null ? null : Row(flavor, withSchema, after),
            ["source"] = Source(flavor, op, offsetHint),
            ["op"] = op,
            ["ts_ms"] = 1_767_225_600_000 + offsetHint,
        };
        if (!withSchema)
        {
            return payload.ToJsonString();
        }

        var rowName = topic + ".Value";
        var schema = new JsonObject
        {
            ["type"] = "struct",
            ["fields"] = new JsonArray(
                new JsonObject { ["type"] = "struct", ["fields"] = Columns(flavor, withVip), ["optional"] = true, ["name"] = rowName, ["field"] = "before" },
                new JsonObject { ["type"] = "struct", ["fields"] = Columns(flavor, withVip), ["optional"] = true, ["name"] = rowName, ["field"] = "after" },
                new JsonObject { ["type"] = "struct", ["fields"] = new JsonArray(new JsonObject { ["type"] = "string", ["optional"] = false, ["field"] = "connector" }), ["optional"] = false, ["name"] = "io.debezium.connector.Source", ["field"] = "source" },
                new JsonObject { ["type"] = "string", ["optional"] = false, ["field"] = "op" },
                new JsonObject { ["type"] = "int64", ["optional"] = true, ["field"] = "ts_ms" }),
            ["optional"] = false,
            ["name"] = topic + ".Envelope",
        };
        return new JsonObject { ["schema"] = schema, ["payload"] = payload }.ToJsonString();
    }

    private static JsonObject KeyOnly(int id) => new() { ["id"] = id, ["name"] = null, ["balance"] = null, ["created_at"] = null, ["birthday"] = null, ["updated_at"] = null };

    private static JsonObject Source(DebeziumFlavor flavor, string op, long n)
    {
        var s = new JsonObject
        {
            ["version"] = "2.7.3.Final",
            ["name"] = "dbserver1",
            ["ts_ms"] = 1_767_225_600_000 + n,
            ["snapshot"] = op == "r" ? "true" : "false",
            ["db"] = "inventory",
        };
        switch (flavor)
        {
            case DebeziumFlavor.Postgres:
                s["connector"] = "postgresql";
                s["schema"] = "public";
                s["table"] = "customers";
                s["txId"] = 700 + n;
                s["lsn"] = 33_000_000 + (n * 64);
                break;
            case DebeziumFlavor.MySql:
                s["connector"] = "mysql";
                s["table"] = "customers";
                s["server_id"] = 223344;
                s["file"] = "mysql-bin.000003";
                s["pos"] = 154 + (n * 300);
                s["row"] = 0;
                break;
            default:
                s["connector"] = "sqlserver";
                s["schema"] = "dbo";
                s["table"] = "customers";
                s["change_lsn"] = $"00000027:00000758:{n:0000}";
                s["commit_lsn"] = $"00000027:00000758:{n + 1:0000}";
                s["event_serial_no"] = 1;
                break;
        }

        return s;
    }

    private static JsonArray Columns(DebeziumFlavor flavor, bool withVip)
    {
        var created = flavor switch
        {
            DebeziumFlavor.Postgres => Semantic("int64", "io.debezium.time.MicroTimestamp", "created_at", true),
            DebeziumFlavor.MySql => Semantic("int64", "io.debezium.time.Timestamp", "created_at", true),
            _ => Semantic("int64", "io.debezium.time.NanoTimestamp", "created_at", true),
        };
        var columns = new JsonArray(
            new JsonObject { ["type"] = "int32", ["optional"] = false, ["field"] = "id" },
            new JsonObject { ["type"] = "string", ["optional"] = true, ["field"] = "name" },
            new JsonObject
            {
                ["type"] = "bytes",
                ["optional"] = true,
                ["name"] = "org.apache.kafka.connect.data.Decimal",
                ["version"] = 1,
                ["parameters"] = new JsonObject { ["scale"] = "2", ["connect.decimal.precision"] = "10" },
                ["field"] = "balance",
            },
            created,
            Semantic("int32", "io.debezium.time.Date", "birthday", true),
            Semantic("string", "io.debezium.time.ZonedTimestamp", "updated_at", true));
        if (withVip)
        {
            columns.Add(new JsonObject { ["type"] = "boolean", ["optional"] = true, ["field"] = "vip" });
        }

        return columns;
    }

    private static JsonObject Semantic(string type, string name, string field, bool optional) =>
        new() { ["type"] = type, ["optional"] = optional, ["name"] = name, ["version"] = 1, ["field"] = field };

    private static JsonObject Row(DebeziumFlavor flavor, bool withSchema, Customer c)
    {
        var micros = (c.CreatedAt - DateTime.UnixEpoch).Ticks / 10;
        var row = new JsonObject
        {
            ["id"] = c.Id,
            ["name"] = c.Name,
            ["balance"] = withSchema ? Convert.ToBase64String(Unscaled(c.Balance, 2)) : c.Balance.ToString("0.00", CultureInfo.InvariantCulture),
            ["created_at"] = flavor switch
            {
                DebeziumFlavor.Postgres => micros,
                DebeziumFlavor.MySql => micros / 1000,
                _ => micros * 1000,
            },
            ["birthday"] = c.Birthday.DayNumber - EpochDay,
            ["updated_at"] = c.UpdatedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture),
        };
        if (c.Vip is { } vip)
        {
            row["vip"] = vip;
        }

        return row;
    }

    /// <summary>Kafka Connect's Decimal bytes: the unscaled value, big-endian two's complement.</summary>
    private static byte[] Unscaled(decimal value, int scale) =>
        new BigInteger(decimal.Round(value * (decimal)Math.Pow(10, scale))).ToByteArray(isUnsigned: false, isBigEndian: true);
}
