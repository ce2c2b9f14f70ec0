using System.Globalization;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Npgsql;

namespace Ingest.Connectors.Postgres;

/// <summary>How a read starts when no checkpoint exists.</summary>
internal enum SnapshotMode
{
    /// <summary>Copy the selected tables, then stream changes.</summary>
    Initial,
    /// <summary>Stream changes only, from the moment the slot is created.</summary>
    Never,
    /// <summary>Copy the selected tables and stop (no streaming; the slot is dropped afterwards).</summary>
    InitialOnly,
}

/// <summary>How unconstrained <c>numeric</c> columns map.</summary>
internal enum NumericMapping
{
    /// <summary><c>decimal(38,18)</c>: values are rounded to 18 fractional digits; more than 20 integer digits fail.</summary>
    Decimal,
    /// <summary><c>string</c>: the exact text PostgreSQL prints.</summary>
    String,
}

/// <summary>The PostgreSQL connector's configuration (see <see cref="SpecJson"/>).</summary>
internal sealed record PostgresOptions
{
    public string Host { get; init; } = "localhost";
    public int Port { get; init; } = 5432;
    public string Database { get; init; } = "";
    public string Username { get; init; } = "";
    public string? Password { get; init; }
    public SslMode SslMode { get; init; } = SslMode.Prefer;
    public IReadOnlyList<string> Tables { get; init; } = ["public.*"];
    public IReadOnlyList<string> ExcludeTables { get; init; } = [];
    public string SlotName { get; init; } = "ingest_slot";
    public string PublicationName { get; init; } = "ingest_publication";
    public SnapshotMode SnapshotMode { get; init; } = SnapshotMode.Initial;
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);
    public int ChunkSize { get; init; } = 10_000;
    public NumericMapping NumericMapping { get; init; } = NumericMapping.Decimal;
    public long SlotLagWarningBytes { get; init; } = 1L << 30;

    /// <summary>The JSON Schema (draft 2020-12) of the configuration.</summary>
    public const string SpecJson = """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "title": "PostgreSQL (change data capture)",
          "description": "A consistent snapshot of the selected tables, then every insert, update, delete and truncate through logical replication (pgoutput). Needs wal_level = logical and a role with REPLICATION.",
          "type": "object",
          "additionalProperties": false,
          "required": ["host", "database", "username"],
          "properties": {
            "host": { "type": "string", "title": "Host", "description": "Server host name or IP address (or a Unix socket directory).", "minLength": 1 },
            "port": { "type": "integer", "title": "Port", "default": 5432, "minimum": 1, "maximum": 65535 },
            "database": { "type": "string", "title": "Database", "minLength": 1 },
            "username": { "type": "string", "title": "User name", "description": "A role with LOGIN and REPLICATION (see the connector's README for the grants).", "minLength": 1 },
            "password": { "type": "string", "title": "Password", "secret": true },
            "sslMode": { "type": "string", "title": "SSL mode", "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"], "default": "prefer" },
            "tables": { "type": "array", "title": "Tables", "description": "Tables to capture as schema.table patterns; * matches any run of characters. Default: every table of public.", "items": { "type": "string", "minLength": 1 }, "default": ["public.*"] },
            "excludeTables": { "type": "array", "title": "Excluded tables", "description": "schema.table patterns removed from the selection.", "items": { "type": "string", "minLength": 1 }, "default": [] },
            "slotName": { "type": "string", "title": "Replication slot", "description": "The logical replication slot the connector creates and owns.", "pattern": "^[a-z0-9_]{1,63}$", "default": "ingest_slot" },
            "publicationName": { "type": "string", "title": "Publication", "description": "Created FOR TABLE the selected tables when absent (the role must own them); tables missing from an existing publication are added.", "minLength": 1, "maxLength": 63, "default": "ingest_publication" },
            "snapshotMode": { "type": "string", "title": "Snapshot mode", "description": "initial: copy the tables, then stream. never: stream only. initial_only: copy the tables and stop.", "enum": ["initial", "never", "initial_only"], "default": "initial" },
            "heartbeatInterval": { "type": "string", "title": "Heartbeat interval", "description": "When no change arrives for this long, the connector writes a logical message (pg_logical_emit_message) so the slot advances on a quiet database. A duration such as 10s, 500ms or 1m.", "pattern": "^[0-9]+(ms|s|m)$", "default": "10s" },
            "chunkSize": { "type": "integer", "title": "Chunk size", "description": "Rows per snapshot and backfill chunk (keyset pagination by primary key); a checkpoint follows each chunk.", "default": 10000, "minimum": 1, "maximum": 10000000 },
            "numericMapping": { "type": "string", "title": "Unconstrained numeric", "description": "How numeric columns without precision map: decimal is decimal(38,18); string keeps the exact text.", "enum": ["decimal", "string"], "default": "decimal" },
            "slotLagWarningBytes": { "type": "integer", "title": "Slot lag warning", "description": "A warning is logged when the replication slot retains more WAL than this many bytes (pg_current_wal_lsn() - restart_lsn), checked every heartbeat interval.", "default": 1073741824, "minimum": 1 }
          }
        }
        """;

    /// <summary>Parses and validates a configuration.</summary>
    /// <exception cref="ConnectorException">Of kind <see cref="ErrorKind.Configuration"/>, naming the field.</exception>
    public static PostgresOptions Parse(JsonElement config)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw new ConnectorException(ErrorKind.Configuration, "The postgres connector's configuration must be a JSON object with at least host, database and username.", "");
        }

        var o = new PostgresOptions();
        foreach (var p in config.EnumerateObject())
        {
            o = p.Name switch
            {
                "host" => o with { Host = Text(p) },
                "port" => o with { Port = (int)Integer(p, 1, 65535) },
                "database" => o with { Database = Text(p) },
                "username" => o with { Username = Text(p) },
                "password" => o with { Password = p.Value.ValueKind == JsonValueKind.Null ? null : Text(p, allowEmpty: true) },
                "sslMode" => o with { SslMode = ParseSslMode(p) },
                "tables" => o with { Tables = Patterns(p) },
                "excludeTables" => o with { ExcludeTables = Patterns(p) },
                "slotName" => o with { SlotName = ParseSlotName(p) },
                "publicationName" => o with { PublicationName = Text(p) },
                "snapshotMode" => o with { SnapshotMode = Choice(p, ("initial", SnapshotMode.Initial), ("never", SnapshotMode.Never), ("initial_only", SnapshotMode.InitialOnly)) },
                "heartbeatInterval" => o with { HeartbeatInterval = Duration(p) },
                "chunkSize" => o with { ChunkSize = (int)Integer(p, 1, 10_000_000) },
                "numericMapping" => o with { NumericMapping = Choice(p, ("decimal", NumericMapping.Decimal), ("string", NumericMapping.String)) },
                "slotLagWarningBytes" => o with { SlotLagWarningBytes = Integer(p, 1, long.MaxValue) },
                _ => throw new ConnectorException(ErrorKind.Configuration,
                    $"Unknown setting '{p.Name}': the postgres connector takes host, port, database, username, password, sslMode, tables, excludeTables, slotName, publicationName, snapshotMode, heartbeatInterval, chunkSize, numericMapping and slotLagWarningBytes.",
                    "/" + p.Name),
            };
        }

        if (o.Database.Length == 0)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Set 'database': the database whose tables are captured.", "/database");
        }

        if (o.Username.Length == 0)
        {
            throw new ConnectorException(ErrorKind.Configuration, "Set 'username': a role with LOGIN and REPLICATION.", "/username");
        }

        return o;
    }

    /// <summary>A connection string; the session settings fix the text forms the connector parses (ISO dates, UTC, exact floats, hex bytea).</summary>
    public string ConnectionString(string applicationName = "ingest")
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Database = Database,
            Username = Username,
            Password = Password,
            SslMode = SslMode,
            ApplicationName = applicationName,
            Options = "-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex",
            Timeout = 15,
            CommandTimeout = 0,
            Pooling = false,
            ReadBufferSize = 256 * 1024,
        };
        return b.ConnectionString;
    }

    private static string Text(JsonProperty p, bool allowEmpty = false)
    {
        if (p.Value.ValueKind != JsonValueKind.String || (!allowEmpty && p.Value.GetString()!.Length == 0))
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a non-empty string.", "/" + p.Name);
        }

        return p.Value.GetString()!;
    }

    private static long Integer(JsonProperty p, long min, long max)
    {
        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var v) || v < min || v > max)
        {
            throw new ConnectorException(ErrorKind.Configuration, string.Create(CultureInfo.InvariantCulture, $"'{p.Name}' must be an integer from {min} to {max}."), "/" + p.Name);
        }

        return v;
    }

    private static T Choice<T>(JsonProperty p, params (string Name, T Value)[] choices)
    {
        var s = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
        foreach (var (name, value) in choices)
        {
            if (string.Equals(name, s, StringComparison.Ordinal))
            {
                return value;
            }
        }

        throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be one of {string.Join(", ", choices.Select(c => c.Name))}.", "/" + p.Name);
    }

    private static SslMode ParseSslMode(JsonProperty p) => Choice(p,
        ("disable", SslMode.Disable), ("allow", SslMode.Allow), ("prefer", SslMode.Prefer),
        ("require", SslMode.Require), ("verify-ca", SslMode.VerifyCA), ("verify-full", SslMode.VerifyFull));

    private static string ParseSlotName(JsonProperty p)
    {
        var s = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : "";
        if (s.Length is 0 or > 63 || s.Any(c => c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_')))
        {
            throw new ConnectorException(ErrorKind.Configuration, "'slotName' must be 1 to 63 characters of lower-case letters, digits and underscores (PostgreSQL's rule for slot names).", "/slotName");
        }

        return s;
    }

    private static List<string> Patterns(JsonProperty p)
    {
        if (p.Value.ValueKind != JsonValueKind.Array)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be an array of schema.table patterns.", "/" + p.Name);
        }

        var list = new List<string>();
        var i = 0;
        foreach (var e in p.Value.EnumerateArray())
        {
            var s = e.ValueKind == JsonValueKind.String ? e.GetString()! : "";
            if (s.Split('.').Length != 2 || s.StartsWith('.') || s.EndsWith('.'))
            {
                throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' entry '{e}' is not a schema.table pattern (e.g. public.orders or sales.*).", $"/{p.Name}/{i}");
            }

            list.Add(s);
            i++;
        }

        return list;
    }

    internal static TimeSpan Duration(JsonProperty p)
    {
        var s = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : "";
        var (digits, unit) = s.EndsWith("ms", StringComparison.Ordinal) ? (s[..^2], 1L)
            : s.EndsWith('s') ? (s[..^1], 1000L)
            : s.EndsWith('m') ? (s[..^1], 60_000L)
            : ("", 0L);
        if (unit == 0 || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n * unit < 100 || n * unit > 3_600_000)
        {
            throw new ConnectorException(ErrorKind.Configuration, $"'{p.Name}' must be a duration from 100ms to 60m such as 10s, 500ms or 1m (got '{s}').", "/" + p.Name);
        }

        return TimeSpan.FromMilliseconds(n * unit);
    }

    /// <summary>Whether <paramref name="name"/> (schema.table) matches a pattern where * is any run of characters.</summary>
    public static bool Matches(string pattern, string name)
    {
        return Match(pattern.AsSpan(), name.AsSpan());

        static bool Match(ReadOnlySpan<char> p, ReadOnlySpan<char> s)
        {
            while (p.Length > 0)
            {
                if (p[0] == '*')
                {
                    p = p[1..];
                    for (var i = 0; i <= s.Length; i++)
                    {
                        if (Match(p, s[i..]))
                        {
                            return true;
                        }
                    }

                    return false;
                }

                if (s.Length == 0 || p[0] != s[0])
                {
                    return false;
                }

                p = p[1..];
                s = s[1..];
            }

            return s.Length == 0;
        }
    }

    /// <summary>Whether the table is selected by <see cref="Tables"/> and not removed by <see cref="ExcludeTables"/>.</summary>
    public bool Selects(string name) => Tables.Any(t => Matches(t, name)) && !ExcludeTables.Any(t => Matches(t, name));
}
