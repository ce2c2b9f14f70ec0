using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Sample;

/// <summary>The sample connector's configuration (see <see cref="SampleOptions.SpecJson"/> for its JSON Schema).</summary>
/// <param name="Seed">Everything generated is a function of the seed.</param>
/// <param name="Customers">Customers in the snapshot.</param>
/// <param name="Products">Products in the snapshot.</param>
/// <param name="Orders">Orders in the snapshot (1 to 5 lines each).</param>
/// <param name="Changes">Change events that exist when a read starts (the backlog after the snapshot).</param>
/// <param name="ChangesPerSecond">New change events per second after the backlog; 0 ends the read after it.</param>
/// <param name="BatchSize">Rows per batch.</param>
/// <param name="Clock">Where the changes' source timestamps come from (the data values never depend on it).</param>
internal sealed record SampleOptions(
    long Seed = 42,
    int Customers = 1000,
    int Products = 200,
    int Orders = 5000,
    long Changes = 10_000,
    double ChangesPerSecond = 10,
    int BatchSize = 5000,
    SampleClock Clock = SampleClock.Wall)
{
    public const int MaxCustomers = 10_000_000;
    public const int MaxProducts = 1_000_000;
    public const int MaxOrders = 10_000_000;
    public const long MaxChanges = 1_000_000_000;
    public const double MaxChangesPerSecond = 1_000_000;
    public const int MaxBatchSize = 1_000_000;

    /// <summary>The JSON Schema (draft 2020-12) of the configuration.</summary>
    public const string SpecJson = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "Sample e-commerce source",
          "description": "Generates customers, products, orders and order lines, then a stream of inserts, updates and deletes. Everything is a function of the seed.",
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "seed": { "type": "integer", "title": "Seed", "description": "The same seed gives the same rows, the same changes and the same positions.", "default": 42 },
            "customers": { "type": "integer", "title": "Customers", "description": "Customers in the snapshot.", "default": 1000, "minimum": 0, "maximum": 10000000 },
            "products": { "type": "integer", "title": "Products", "description": "Products in the snapshot.", "default": 200, "minimum": 0, "maximum": 1000000 },
            "orders": { "type": "integer", "title": "Orders", "description": "Orders in the snapshot, with 1 to 5 lines each. Needs at least one customer and one product.", "default": 5000, "minimum": 0, "maximum": 10000000 },
            "changes": { "type": "integer", "title": "Change backlog", "description": "Change events that already exist when a read starts: the backlog after the snapshot. The read says it has caught up once they are read.", "default": 10000, "minimum": 0, "maximum": 1000000000 },
            "changesPerSecond": { "type": "number", "title": "Changes per second", "description": "After the backlog, new change events keep coming at this rate until the read is stopped. 0 ends the read after the backlog.", "default": 10, "minimum": 0, "maximum": 1000000 },
            "batchSize": { "type": "integer", "title": "Batch size", "description": "Rows per batch; a checkpoint follows every batch.", "default": 5000, "minimum": 1, "maximum": 1000000 },
            "clock": { "type": "string", "title": "Source clock", "description": "wall: each change carries the time the sample source made it (live changes now, the backlog in the recent past), so the lag is real. synthetic: 2025-01-01 plus 10 ms per sequence number, the same on every read (for byte-identical output in tests and benchmarks). The data values are the same either way.", "enum": ["wall", "synthetic"], "default": "wall" }
          }
        }
        """;

    /// <summary>Parses and validates a configuration; missing properties take their defaults.</summary>
    /// <exception cref="ConnectorException">Of kind <see cref="ErrorKind.Configuration"/>, naming the field.</exception>
    public static SampleOptions Parse(JsonElement config)
    {
        var o = new SampleOptions();
        if (config.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return o;
        }

        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The sample connector's configuration must be a JSON object.", "");
        }

        foreach (var p in config.EnumerateObject())
        {
            o = p.Name switch
            {
                "seed" => o with { Seed = Integer(p, long.MinValue, long.MaxValue) },
                "customers" => o with { Customers = (int)Integer(p, 0, MaxCustomers) },
                "products" => o with { Products = (int)Integer(p, 0, MaxProducts) },
                "orders" => o with { Orders = (int)Integer(p, 0, MaxOrders) },
                "changes" => o with { Changes = Integer(p, 0, MaxChanges) },
                "changesPerSecond" => o with { ChangesPerSecond = Number(p, 0, MaxChangesPerSecond) },
                "batchSize" => o with { BatchSize = (int)Integer(p, 1, MaxBatchSize) },
                "clock" => o with { Clock = ClockOf(p) },
                _ => throw new ConnectorException(
                    ErrorKind.Configuration,
                    $"Unknown setting '{p.Name}': the sample connector takes seed, customers, products, orders, changes, changesPerSecond, batchSize and clock.",
                    "/" + p.Name),
            };
        }

        if (o.Orders > 0 && (o.Customers == 0 || o.Products == 0))
        {
            throw new ConnectorException(ErrorKind.Configuration, "Orders need at least one customer and one product: set 'customers' and 'products' above 0, or 'orders' to 0.", "/orders");
        }

        return o;
    }

    private static long Integer(JsonProperty p, long min, long max)
    {
        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var v))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a whole number, not {p.Value.GetRawText()}.", "/" + p.Name);
        }

        if (v < min || v > max)
        {
            throw new ConnectorException(
                ErrorKind.Configuration,
                string.Create(CultureInfo.InvariantCulture, $"'{p.Name}' must be between {min} and {max}, not {v}."),
                "/" + p.Name);
        }

        return v;
    }

    private static SampleClock ClockOf(JsonProperty p) => p.Value.ValueKind == JsonValueKind.String
        ? p.Value.GetString() switch
        {
            "wall" => SampleClock.Wall,
            "synthetic" => SampleClock.Synthetic,
            _ => throw new ConnectorException(ErrorKind.Configuration, $"'clock' must be \"wall\" or \"synthetic\", not {p.Value.GetRawText()}.", "/clock"),
        }
        : throw new ConnectorException(ErrorKind.Configuration, $"'clock' must be \"wall\" or \"synthetic\", not {p.Value.GetRawText()}.", "/clock");

    private static double Number(JsonProperty p, double min, double max)
    {
        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var v) || !double.IsFinite(v))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a number, not {p.Value.GetRawText()}.", "/" + p.Name);
        }

        if (v < min || v > max)
        {
            throw new ConnectorException(
                ErrorKind.Configuration,
                string.Create(CultureInfo.InvariantCulture, $"'{p.Name}' must be between {min} and {max}, not {v}."),
                "/" + p.Name);
        }

        return v;
    }

    /// <summary>A short hash of what decides the generated data (seed and snapshot sizes), kept in checkpoints.</summary>
    public string Fingerprint() =>
        (SampleData.Hash(Seed, 99, Customers, Orders) ^ SampleData.Hash(Seed, 98, Products)).ToString("x16", CultureInfo.InvariantCulture);
}

/// <summary>Where the source timestamps of the sample's rows come from.</summary>
internal enum SampleClock
{
    /// <summary>The time the sample source made each change: real, so the engine's lag means something.</summary>
    Wall,

    /// <summary><see cref="SampleGenerator.TimestampOf"/> of each row's sequence number: identical on every read.</summary>
    Synthetic,
}
