using System.Globalization;
using Ingest.Sdk.Connectors;
using Npgsql;

namespace Ingest.Connectors.Postgres;

/// <summary>What Check verifies, each failure naming what is missing and how to fix it.</summary>
internal static class PgChecks
{
    public static async Task<CheckResult> RunAsync(PostgresOptions o, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(o.ConnectionString("ingest-check"));
        try
        {
            await conn.OpenAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            return CheckResult.Failed($"Cannot connect to {o.Host}:{o.Port.ToString(CultureInfo.InvariantCulture)} database {o.Database} as {o.Username}: {e.Message}", "/host");
        }

        var walLevel = await ScalarAsync<string>(conn, "SHOW wal_level", cancellationToken);
        if (walLevel != "logical")
        {
            return CheckResult.Failed($"wal_level is '{walLevel}' but logical replication needs 'logical': run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.");
        }

        var (replication, super) = await RoleAsync(conn, cancellationToken);
        if (!replication && !super)
        {
            return CheckResult.Failed($"Role {o.Username} lacks the REPLICATION attribute: run ALTER ROLE {PgTypes.Quote(o.Username)} WITH REPLICATION; as a superuser.", "/username");
        }

        var tables = await PgCatalog.LoadAsync(conn, o, cancellationToken);
        if (tables.Count == 0)
        {
            return CheckResult.Failed($"No table of database {o.Database} matches tables [{string.Join(", ", o.Tables)}] minus excludeTables [{string.Join(", ", o.ExcludeTables)}].", "/tables");
        }

        foreach (var t in tables)
        {
            if (!t.Identifiable)
            {
                return CheckResult.Failed($"Table {t.StreamName} has no primary key and its REPLICA IDENTITY is not FULL, so PostgreSQL cannot publish its updates and deletes: add a primary key, or run ALTER TABLE {t.QuotedName} REPLICA IDENTITY FULL; or leave it out with excludeTables.", "/tables");
            }
        }

        var canSelect = await ScalarAsync<string?>(conn,
            "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(@oids) AND NOT has_table_privilege(c.oid, 'SELECT')",
            cancellationToken, ("oids", tables.Select(t => t.Oid).ToArray()));
        if (canSelect is not null)
        {
            return CheckResult.Failed($"Role {o.Username} cannot read {canSelect}: run GRANT SELECT ON {canSelect} TO {PgTypes.Quote(o.Username)};", "/username");
        }

        var publication = await PublicationProblemAsync(conn, o, tables, super, cancellationToken);
        if (publication is not null)
        {
            return CheckResult.Failed(publication, "/publicationName");
        }

        var slot = await SlotProblemAsync(conn, o, cancellationToken);
        if (slot is not null)
        {
            return CheckResult.Failed(slot, "/slotName");
        }

        return CheckResult.Ok($"Connected to PostgreSQL {conn.PostgreSqlVersion}; wal_level is logical; {tables.Count.ToString(CultureInfo.InvariantCulture)} table(s) selected: {string.Join(", ", tables.Take(10).Select(t => t.StreamName))}{(tables.Count > 10 ? ", ..." : "")}.");
    }

    private static async Task<(bool Replication, bool Super)> RoleAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetBoolean(0), r.GetBoolean(1));
    }

    /// <summary>Null when the publication exists with every table, or can be created or completed by this role.</summary>
    private static async Task<string?> PublicationProblemAsync(NpgsqlConnection conn, PostgresOptions o, List<PgTable> tables, bool super, CancellationToken ct)
    {
        var owner = await ScalarAsync<string?>(conn, "SELECT pg_get_userbyid(pubowner)::text FROM pg_publication WHERE pubname = @p", ct, ("p", o.PublicationName));
        var notOwned = await ScalarAsync<string?>(conn,
            "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(@oids) AND NOT pg_has_role(c.relowner, 'USAGE')",
            ct, ("oids", tables.Select(t => t.Oid).ToArray()));
        if (owner is null)
        {
            var canCreate = super || (await ScalarAsync<bool>(conn, "SELECT has_database_privilege(current_database(), 'CREATE')", ct) && notOwned is null);
            return canCreate
                ? null
                : $"Publication {o.PublicationName} does not exist and role {o.Username} cannot create it{(notOwned is null ? " (it lacks CREATE on the database)" : $" (it does not own {notOwned})")}: as the tables' owner run CREATE PUBLICATION {PgTypes.Quote(o.PublicationName)} FOR TABLE {string.Join(", ", tables.Select(t => t.QuotedName))} WITH (publish_via_partition_root = true);";
        }

        var missing = await ScalarAsync<string?>(conn,
            """
            SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = ANY(@oids)
              AND NOT EXISTS (SELECT 1 FROM pg_publication_tables pt WHERE pt.pubname = @p AND pt.schemaname = n.nspname AND pt.tablename = c.relname)
            """, ct, ("oids", tables.Select(t => t.Oid).ToArray()), ("p", o.PublicationName));
        if (missing is null)
        {
            return null;
        }

        var isOwner = super || await ScalarAsync<bool>(conn, "SELECT pg_has_role(pubowner, 'USAGE') FROM pg_publication WHERE pubname = @p", ct, ("p", o.PublicationName));
        return isOwner && (super || notOwned is null)
            ? null
            : $"Publication {o.PublicationName} does not include {missing} and role {o.Username} cannot add them: as the owner run ALTER PUBLICATION {PgTypes.Quote(o.PublicationName)} ADD TABLE {missing};";
    }

    /// <summary>Null when the slot exists and is idle, or can be created.</summary>
    private static async Task<string?> SlotProblemAsync(NpgsqlConnection conn, PostgresOptions o, CancellationToken ct)
    {
        // A pipeline that crashed or lost its connection leaves the slot "active" until its walsender notices the dead
        // connection: give it a moment before reporting the slot as used by someone else.
        var deadline = DateTime.UtcNow + SlotReleaseWait;
        string? problem;
        while ((problem = await SlotProblemOnceAsync(conn, o, ct)) is not null && problem.Contains(" is in use ", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        }

        return problem;
    }

    /// <summary>How long Check waits for an active slot to be released before reporting it in use.</summary>
    internal static TimeSpan SlotReleaseWait { get; } = TimeSpan.FromSeconds(10);

    private static async Task<string?> SlotProblemOnceAsync(NpgsqlConnection conn, PostgresOptions o, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT plugin, database, active_pid FROM pg_replication_slots WHERE slot_name = @s", conn);
        cmd.Parameters.AddWithValue("s", o.SlotName);
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (await r.ReadAsync(ct))
            {
                var plugin = r.IsDBNull(0) ? "(physical)" : r.GetString(0);
                var database = r.IsDBNull(1) ? "" : r.GetString(1);
                if (plugin != "pgoutput" || database != o.Database)
                {
                    return $"Replication slot {o.SlotName} exists but belongs to plugin {plugin} on database '{database}': choose another slotName, or drop it with SELECT pg_drop_replication_slot('{o.SlotName}');";
                }

                return r.IsDBNull(2)
                    ? null
                    : $"Replication slot {o.SlotName} is in use by another process (pid {r.GetInt32(2).ToString(CultureInfo.InvariantCulture)}): stop that reader, or choose another slotName.";
            }
        }

        var free = await ScalarAsync<long>(conn, "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)", ct);
        if (free <= 0)
        {
            return $"Replication slot {o.SlotName} does not exist and cannot be created: every slot allowed by max_replication_slots is taken. Drop an unused slot (SELECT pg_drop_replication_slot(name)) or raise max_replication_slots and restart.";
        }

        var senders = await ScalarAsync<int>(conn, "SELECT current_setting('max_wal_senders')::int", ct);
        return senders > 0 ? null : "max_wal_senders is 0: set it to at least 1 (ALTER SYSTEM SET max_wal_senders = 10;) and restart PostgreSQL.";
    }

    internal static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.Add(value is uint[]
                ? new NpgsqlParameter(name, NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Oid) { Value = value }
                : new NpgsqlParameter(name, value));
        }

        var v = await cmd.ExecuteScalarAsync(ct);
        return v is null or DBNull ? default! : (T)v;
    }
}
