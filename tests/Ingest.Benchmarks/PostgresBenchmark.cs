using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Apache.Arrow;
using Ingest.Connectors.Postgres;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Npgsql;
using NpgsqlTypes;

namespace Ingest.Benchmarks;

/// <summary>
/// The PostgreSQL connector's benchmark (issue 4), against yardsticks measured in the same run on the same server:
/// <list type="number">
/// <item>Snapshot of N rows (bigint, int, text, numeric(12,2), timestamptz, text) through the reader, against
/// <c>COPY ... TO STDOUT (FORMAT binary)</c> read value by value and discarded by Npgsql.</item>
/// <item>An UPDATE burst of M rows decoded through the reader, against <c>pg_recvlogical</c> (pgoutput) reading the same
/// WAL to /dev/null.</item>
/// <item>A steady write rate: latency from just before COMMIT to the reader yielding the batch (p50, p99), and rows/s.</item>
/// </list>
/// Reports peak RSS (VmHWM) of this process. Starts its own PostgreSQL 15 (initdb in a temp folder, as the tests do).
/// </summary>
internal static class PostgresBenchmark
{
    private const string Bin = "/usr/lib/postgresql/15/bin";

    public static async Task<int> RunAsync(string[] args)
    {
        var rows = 1_000_000L;
        var burst = -1L;
        var rate = 5_000;
        var seconds = 20;
        var chunk = 10_000;
        for (var i = 0; i < args.Length - 1; i++)
        {
            switch (args[i])
            {
                case "--rows": rows = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--burst": burst = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rate": rate = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--chunk": chunk = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
            }
        }

        burst = burst < 0 ? Math.Min(rows, 500_000) : Math.Min(burst, rows);
        await using var server = await Server.StartAsync();
        var cs = server.ConnectionString;
        Console.WriteLine($"PostgreSQL benchmark (Release: dotnet run -c Release --project tests/Ingest.Benchmarks -- postgres --rows N [--burst M] [--rate R] [--seconds S] [--chunk C]): PostgreSQL 15 on 127.0.0.1:{server.Port}, {rows:N0} rows, burst {burst:N0}, steady {rate:N0} changes/s for {seconds} s, {Environment.ProcessorCount} cores");

        var load = Stopwatch.StartNew();
        await ExecAsync(cs, $"""
            CREATE TABLE bench (id bigint PRIMARY KEY, i int NOT NULL, t text, n numeric(12,2), ts timestamptz, u text);
            INSERT INTO bench SELECT g, g % 1000, 'text value ' || g, (g % 100000) / 100.0, '2024-01-01'::timestamptz + g * interval '1 second', md5(g::text)
              FROM generate_series(1, {rows}) g;
            """);
        await ExecAsync(cs, "VACUUM ANALYZE bench");
        Console.WriteLine($"loaded in {load.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine();

        // 1. Snapshot against binary COPY.
        var copy = await CopyBaselineAsync(cs);
        var config = Config(server.Port, "bench_snapshot", $"\"snapshotMode\": \"initial_only\", \"chunkSize\": {chunk}");
        var snap = Stopwatch.StartNew();
        var snapRows = 0L;
        await using (var reader = Open(config, null))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    snapRows += b.Length;
                    b.Dispose();
                }
            }
        }

        snap.Stop();
        var snapshotRss = PeakRssMiB();
        Console.WriteLine("| measure | rows | seconds | rows/s | yardstick seconds | ratio |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine(Row($"snapshot (reader, chunkSize {chunk}) vs COPY binary", snapRows, snap.Elapsed.TotalSeconds, copy.TotalSeconds));

        // 2. UPDATE burst: both consumers read the same WAL, after it is written.
        var streamConfig = Config(server.Port, "bench_stream", "\"snapshotMode\": \"never\", \"heartbeatInterval\": \"1s\"");
        Checkpoint? start = null;
        await using (var reader = Open(streamConfig, null))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is Checkpoint c)
                {
                    start = c;
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        await ExecAsync(cs, "CREATE PUBLICATION bench_recv FOR TABLE bench");
        await ExecAsync(cs, "SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')");
        await ExecAsync(cs, $"UPDATE bench SET i = i + 1 WHERE id <= {burst}");
        var end = await ScalarAsync<NpgsqlLogSequenceNumber>(cs, "SELECT pg_current_wal_lsn()");
        var recv = await RecvLogicalAsync(server, end);

        var decode = Stopwatch.StartNew();
        var decoded = 0L;
        await using (var reader = Open(streamConfig, start!.State))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    decoded += b.Length;
                    b.Dispose();
                }

                if (decoded >= burst)
                {
                    break;
                }
            }
        }

        decode.Stop();
        Console.WriteLine(Row("UPDATE burst decoded (reader) vs pg_recvlogical", decoded, decode.Elapsed.TotalSeconds, recv.TotalSeconds));

        // 3. Steady rate: latency from commit to yield.
        var (latencies, steadyRows, steadySeconds) = await SteadyAsync(cs, streamConfig, rows, rate, seconds);
        latencies.Sort();
        Console.WriteLine(Row($"steady {rate:N0} changes/s (reader throughput)", steadyRows, steadySeconds, double.NaN));
        Console.WriteLine();
        Console.WriteLine($"latency commit -> batch yielded: p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms ({latencies.Count:N0} transactions)");
        Console.WriteLine($"peak RSS (this process): after the snapshot {snapshotRss:F0} MiB, at the end {PeakRssMiB():F0} MiB");
        return 0;
    }

    private static string Row(string name, long rows, double seconds, double yardstick) =>
        string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {rows:N0} | {seconds:F2} | {rows / seconds:N0} | {(double.IsNaN(yardstick) ? "-" : yardstick.ToString("F2", CultureInfo.InvariantCulture))} | {(double.IsNaN(yardstick) ? "-" : (seconds / yardstick).ToString("F2", CultureInfo.InvariantCulture) + "x")} |");

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    private static ISourceReader Open(JsonElement config, JsonElement? state) =>
        new PostgresConnector().OpenReader(new ReadContext("bench", config, [new StreamSelection("public.bench", SyncMode.Cdc)], state, NullConnectorLog.Instance));

    private static JsonElement Config(int port, string slot, string extra)
    {
        using var doc = JsonDocument.Parse($$"""{"host": "127.0.0.1", "port": {{port}}, "database": "postgres", "username": "postgres", "slotName": "{{slot}}", "publicationName": "pub_{{slot}}", {{extra}}}""");
        return doc.RootElement.Clone();
    }

    /// <summary>The yardstick: every value of the table read by a plain client over binary COPY, and discarded.</summary>
    private static async Task<TimeSpan> CopyBaselineAsync(string cs)
    {
        var sw = Stopwatch.StartNew();
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        long sum = 0;
        await using (var copy = await conn.BeginBinaryExportAsync("COPY bench TO STDOUT (FORMAT binary)"))
        {
            while (await copy.StartRowAsync() != -1)
            {
                sum += await copy.ReadAsync<long>(NpgsqlDbType.Bigint);
                sum += await copy.ReadAsync<int>(NpgsqlDbType.Integer);
                sum += (await copy.ReadAsync<string>(NpgsqlDbType.Text)).Length;
                sum += (long)await copy.ReadAsync<decimal>(NpgsqlDbType.Numeric);
                sum += (await copy.ReadAsync<DateTime>(NpgsqlDbType.TimestampTz)).Ticks & 1;
                sum += (await copy.ReadAsync<string>(NpgsqlDbType.Text)).Length;
            }
        }

        GC.KeepAlive(sum);
        return sw.Elapsed;
    }

    private static async Task<TimeSpan> RecvLogicalAsync(Server server, NpgsqlLogSequenceNumber end)
    {
        var psi = new ProcessStartInfo(Bin + "/pg_recvlogical") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     "-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", "postgres", "--slot", "bench_recv", "--start",
                     "--endpos", end.ToString(), "-o", "proto_version=1", "-o", "publication_names=bench_recv", "-f", "/dev/null", "--no-loop",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        sw.Stop();
        return p.ExitCode == 0 ? sw.Elapsed : throw new InvalidOperationException($"pg_recvlogical exited with {p.ExitCode}: {err}");
    }

    /// <summary>
    /// Writes <paramref name="rate"/> changes/s (transactions of 50 updates every 10 ms) for <paramref name="seconds"/>,
    /// each transaction tagged with its number in column <c>t</c>; the reader's batches give the yield time per tag.
    /// </summary>
    private static async Task<(List<double> Latencies, long Rows, double Seconds)> SteadyAsync(string cs, JsonElement config, long tableRows, int rate, int seconds)
    {
        const int perTxn = 50;
        var txns = rate * seconds / perTxn;
        var committing = new double[txns];
        var seen = new double[txns];
        var clock = Stopwatch.StartNew();
        Checkpoint? start = null;
        var reader = Open(config, null);
        await using var messages = reader.ReadAsync(CancellationToken.None).GetAsyncEnumerator();
        while (await messages.MoveNextAsync())
        {
            if (messages.Current is Checkpoint c)
            {
                start = c;
                await reader.AcknowledgeAsync(c, CancellationToken.None);
            }
            else if (messages.Current is CaughtUp)
            {
                break;
            }
        }

        var writer = Task.Run(async () =>
        {
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync();
            var random = new Random(3);
            var interval = TimeSpan.FromSeconds(perTxn / (double)rate);
            var next = clock.Elapsed;
            for (var n = 0; n < txns; n++)
            {
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait);
                }

                next += interval;
                var first = random.NextInt64(1, Math.Max(2, tableRows - perTxn));
                await using var tx = await conn.BeginTransactionAsync();
                await using (var cmd = new NpgsqlCommand($"UPDATE bench SET t = 'steady {n}', i = i + 1 WHERE id BETWEEN {first} AND {first + perTxn - 1}", conn, tx))
                {
                    await cmd.ExecuteNonQueryAsync();
                }

                committing[n] = clock.Elapsed.TotalMilliseconds;
                await tx.CommitAsync();
            }
        });

        var rows = 0L;
        var tagged = 0;
        var began = clock.Elapsed.TotalSeconds;
        while (tagged < txns && await messages.MoveNextAsync())
        {
            if (messages.Current is ChangeBatch b)
            {
                var now = clock.Elapsed.TotalMilliseconds;
                rows += b.Length;
                var t = (StringArray)b.Data.Column(b.Data.Schema.GetFieldIndex("t"));
                for (var i = 0; i < b.Length; i++)
                {
                    var text = t.GetString(i);
                    if (text is not null && text.StartsWith("steady ", StringComparison.Ordinal)
                        && int.Parse(text.AsSpan(7), CultureInfo.InvariantCulture) is var n && n < txns && seen[n] == 0)
                    {
                        seen[n] = now;
                        tagged++;
                    }
                }

                b.Dispose();
            }
            else if (messages.Current is Checkpoint c)
            {
                await reader.AcknowledgeAsync(c, CancellationToken.None);
            }
        }

        var elapsed = clock.Elapsed.TotalSeconds - began;
        await writer;
        await reader.DisposeAsync();
        GC.KeepAlive(start);
        var latencies = new List<double>(txns);
        for (var n = 0; n < txns; n++)
        {
            if (seen[n] > 0)
            {
                latencies.Add(Math.Max(0, seen[n] - committing[n]));
            }
        }

        return (latencies, rows, elapsed);
    }

    private static double PeakRssMiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        return double.NaN;
    }

    private static async Task ExecAsync(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 0 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>A throwaway PostgreSQL 15 (the tests' fixture, reduced): initdb as the postgres user, wal_level=logical, a free port.</summary>
    private sealed class Server : IAsyncDisposable
    {
        private Server(string dir, int port)
        {
            Dir = dir;
            Port = port;
        }

        public string Dir { get; }
        public int Port { get; }
        public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false;Timeout=15;Command Timeout=0";

        public static async Task<Server> StartAsync()
        {
            var dir = Path.Combine(Path.GetTempPath(), "ingest-pgbench-" + Guid.NewGuid().ToString("N")[..10]);
            Directory.CreateDirectory(dir);
            await RunAsync("chown", "-R", "postgres:postgres", dir);
            await RunAsync("runuser", "-u", "postgres", "--", Bin + "/initdb", "-D", Path.Combine(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale");
            int port;
            using (var l = new TcpListener(IPAddress.Loopback, 0))
            {
                l.Start();
                port = ((IPEndPoint)l.LocalEndpoint).Port;
            }

            var opts = $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c shared_buffers=256MB -c max_wal_size=4GB";
            await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(dir, "data"), "-l", Path.Combine(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start");
            return new Server(dir, port);
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await RunAsync("runuser", "-u", "postgres", "--", Bin + "/pg_ctl", "-D", Path.Combine(Dir, "data"), "-m", "immediate", "-w", "stop");
            }
            finally
            {
                Directory.Delete(Dir, recursive: true);
            }
        }

        private static async Task RunAsync(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException($"'{file} {string.Join(' ', args)}' exited with {p.ExitCode}: {await stderr}{await stdout}");
            }
        }
    }
}
