using System.Text.Json;
using Ingest.Sdk.Connectors;
using Npgsql;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// PostgreSQL change data capture: a snapshot of the selected tables consistent with a logical replication
/// slot (its exported snapshot, chunked by primary key, read with binary COPY), then every insert, update,
/// delete and truncate from the slot through the <c>pgoutput</c> plugin. The slot's position is confirmed to
/// the server only once the engine acknowledges the checkpoint that covers it.
/// </summary>
[IngestConnector("postgres", Description = "PostgreSQL change data capture (consistent snapshot, then pgoutput logical replication).", DocumentationUrl = "https://github.com/ingest/ingest/tree/main/connectors/Ingest.Connectors.Postgres")]
public sealed class PostgresConnector : ISourceConnector
{
    private static readonly ConnectorSpec SpecInstance = ConnectorSpec.Parse(PostgresOptions.SpecJson);

    /// <inheritdoc />
    public ConnectorSpec Spec => SpecInstance;

    /// <inheritdoc />
    public async Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken)
    {
        try
        {
            return await PgChecks.RunAsync(PostgresOptions.Parse(config), cancellationToken);
        }
        catch (ConnectorException e)
        {
            return CheckResult.Failed(e.Message, e.Field);
        }
        catch (NpgsqlException e)
        {
            return CheckResult.Failed($"PostgreSQL refused a check query: {e.Message}");
        }
    }

    /// <inheritdoc />
    public async Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken)
    {
        var o = PostgresOptions.Parse(config);
        await using var conn = new NpgsqlConnection(o.ConnectionString("ingest-discover"));
        try
        {
            await conn.OpenAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            throw new ConnectorException(e.IsTransient ? ErrorKind.Transient : ErrorKind.Configuration, $"cannot connect to {o.Host} database {o.Database}: {e.Message}", "/host", e);
        }

        var tables = await PgCatalog.LoadAsync(conn, o, cancellationToken);
        return new SourceCatalog(tables.Select(t => t.Descriptor()).ToList());
    }

    /// <inheritdoc />
    public ISourceReader OpenReader(ReadContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = PostgresOptions.Parse(context.Config);
        var state = context.State is { } s && s.ValueKind == JsonValueKind.Object ? PgState.Parse(s) : null;
        return new PostgresReader(options, context.Streams, state, context.Log ?? NullConnectorLog.Instance, context.Backfills, context.ConnectionName);
    }
}
