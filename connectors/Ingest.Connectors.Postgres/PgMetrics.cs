using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// The connector's metrics (OpenTelemetry picks them up by the meter name): <c>ingest.postgres.slot_lag_bytes</c>, the
/// WAL each running read's replication slot retains (<c>pg_current_wal_lsn() - restart_lsn</c>, measured every
/// heartbeat interval), tagged with the connection and the slot.
/// </summary>
internal static class PgMetrics
{
    public const string MeterName = "Ingest.Connectors.Postgres";
    public const string SlotLagName = "ingest.postgres.slot_lag_bytes";

    private static readonly ConcurrentDictionary<PostgresReader, string> Readers = new();
    private static readonly Meter Meter = new(MeterName);

    // Kept alive by the meter; observed on each collection.
    private static readonly ObservableGauge<long> SlotLag = Meter.CreateObservableGauge(
        SlotLagName, Observe, unit: "By", description: "WAL retained by the replication slot of a running read (pg_current_wal_lsn() - restart_lsn).");

    public static void Register(PostgresReader reader, string connection)
    {
        _ = SlotLag;
        Readers[reader] = connection;
    }

    public static void Unregister(PostgresReader reader) => Readers.TryRemove(reader, out _);

    private static IEnumerable<Measurement<long>> Observe()
    {
        foreach (var (reader, connection) in Readers)
        {
            if (reader.SlotLagBytes >= 0)
            {
                yield return new Measurement<long>(reader.SlotLagBytes, new TagList { { "connection", connection }, { "slot", reader.SlotName } });
            }
        }
    }
}
