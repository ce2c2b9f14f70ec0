using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;
using Npgsql;

namespace Ingest.Connectors.Postgres;

/// <summary>A captured table.</summary>
internal sealed class PgTable
{
    public PgTable(string schemaName, string name, uint oid, char replicaIdentity, long? estimatedRows, IReadOnlyList<PgColumn> columns, IReadOnlyList<string> primaryKey, IReadOnlyList<string> warnings, bool partitioned = false)
    {
        Partitioned = partitioned;
        SchemaName = schemaName;
        Name = name;
        Oid = oid;
        ReplicaIdentity = replicaIdentity;
        EstimatedRows = estimatedRows;
        Columns = columns;
        PrimaryKey = primaryKey;
        Warnings = warnings;
        Schema = new StreamSchema(columns.Select(c => new Field(c.Name, c.Type, c.Nullable)).ToList());
        KeyOrdinals = primaryKey.Select(k => columns.ToList().FindIndex(c => c.Name == k)).ToArray();
    }

    public string SchemaName { get; }
    public string Name { get; }
    public uint Oid { get; }
    public char ReplicaIdentity { get; }
    public long? EstimatedRows { get; }
    public IReadOnlyList<PgColumn> Columns { get; }
    public IReadOnlyList<string> PrimaryKey { get; }
    public int[] KeyOrdinals { get; }
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>A partitioned table (relkind <c>p</c>): read as a whole, its partitions never appear as streams.</summary>
    public bool Partitioned { get; }
    public StreamSchema Schema { get; }

    /// <summary>The stream name, <c>schema.table</c>.</summary>
    public string StreamName => SchemaName + "." + Name;

    /// <summary>The quoted <c>"schema"."table"</c>.</summary>
    public string QuotedName => PgTypes.Quote(SchemaName) + "." + PgTypes.Quote(Name);

    /// <summary>Whether updates and deletes can be captured (a key, or REPLICA IDENTITY FULL).</summary>
    public bool Identifiable => PrimaryKey.Count > 0 || ReplicaIdentity == 'f';

    public StreamDescriptor Descriptor() => new(
        StreamName,
        Schema,
        PrimaryKey,
        [],
        [SyncMode.Cdc],
        (Partitioned ? "Partitioned table " : "Table ") + QuotedName + (Warnings.Count > 0 ? " (" + string.Join("; ", Warnings) + ")" : ""),
        EstimatedRows,
        // Backfills read the table in primary-key chunks between watermarks: a key is needed.
        PrimaryKey.Count > 0 ? new BackfillSupport("a SQL condition on the table's columns", "updated_at > '2024-06-01'") : null)
    {
        // The checkpoint lists the streams it covers; a stream selected later gets its own snapshot within the resumed read.
        JoinsRunningRead = true,
    };
}

/// <summary>Reads the catalog: tables, columns with their mapped types, primary keys, row estimates.</summary>
internal static class PgCatalog
{
    public static async Task<List<PgTable>> LoadAsync(NpgsqlConnection connection, PostgresOptions options, CancellationToken cancellationToken)
    {
        var tables = new List<(string Schema, string Name, uint Oid, char Ident, long? Rows, bool Partitioned)>();
        await using (var cmd = new NpgsqlCommand(
            """
            SELECT n.nspname, c.relname, c.oid, c.relreplident, c.reltuples::float8, c.relkind = 'p'
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
            ORDER BY 1, 2
            """, connection))
        await using (var r = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            while (await r.ReadAsync(cancellationToken))
            {
                var name = r.GetString(0) + "." + r.GetString(1);
                if (options.Selects(name))
                {
                    var est = r.GetDouble(4);
                    tables.Add((r.GetString(0), r.GetString(1), r.GetFieldValue<uint>(2), r.GetChar(3), est < 0 ? null : (long)est, r.GetBoolean(5)));
                }
            }
        }

        if (tables.Count == 0)
        {
            return [];
        }

        var oids = tables.Select(t => t.Oid).ToArray();
        var columns = new Dictionary<uint, List<PgColumn>>();
        var warnings = new Dictionary<uint, List<string>>();
        await using (var cmd = new NpgsqlCommand(
            """
            SELECT a.attrelid, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod),
                   b.typname, b.typtype, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                   CASE WHEN b.typcategory = 'A' THEN e.typname END, COALESCE(e.typtype, 'b')
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
            WHERE a.attrelid = ANY(@oids) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attrelid, a.attnum
            """, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter("oids", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Oid) { Value = oids });
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var oid = r.GetFieldValue<uint>(0);
                if (!columns.TryGetValue(oid, out var list))
                {
                    columns[oid] = list = [];
                    warnings[oid] = [];
                }

                list.Add(PgTypes.Map(
                    r.GetString(1), r.GetString(3), r.GetString(4), r.GetChar(5), r.GetInt32(6),
                    r.IsDBNull(7) ? null : r.GetString(7), r.GetChar(8), !r.GetBoolean(2), options.NumericMapping, warnings[oid]));
            }
        }

        var keys = new Dictionary<uint, List<string>>();
        await using (var cmd = new NpgsqlCommand(
            """
            SELECT i.indrelid, a.attname
            FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indisprimary AND i.indrelid = ANY(@oids)
            ORDER BY i.indrelid, k.ord
            """, connection))
        {
            cmd.Parameters.Add(new NpgsqlParameter("oids", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Oid) { Value = oids });
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var oid = r.GetFieldValue<uint>(0);
                if (!keys.TryGetValue(oid, out var list))
                {
                    keys[oid] = list = [];
                }

                list.Add(r.GetString(1));
            }
        }

        return tables
            .Where(t => columns.ContainsKey(t.Oid))
            .Select(t => new PgTable(t.Schema, t.Name, t.Oid, t.Ident, t.Rows, columns[t.Oid], keys.TryGetValue(t.Oid, out var k) ? k : [], warnings[t.Oid], t.Partitioned))
            .ToList();
    }
}
