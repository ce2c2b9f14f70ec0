using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Ingest.Connectors.Sample;
using Ingest.Delta;

namespace Ingest.Engine.Tests.Kafka;

/// <summary>Several sink processes in one consumer group: they share the partitions, and a survivor takes a killed one's.</summary>
public sealed partial class KafkaSinkGroupTests
{
    private const string Config = "{seed: 29, customers: 400, products: 60, orders: 2000, changes: 15000, changesPerSecond: 0, batchSize: 250}";

    [GeneratedRegex(@"\(kafka sink\): assigned (?<parts>.+)$")]
    private static partial Regex AssignedLine();

    [GeneratedRegex(@"(?<topic>[^\s\[]+)\[(?<ids>[\d,]+)\]")]
    private static partial Regex TopicPartitions();

    /// <summary>
    /// Two `ingest run --role sink` processes (children of this test, on the mock cluster it hosts) share the group; one is
    /// SIGKILLed while its partitions still have records to write; the survivor is assigned them after the session timeout,
    /// seeks to the tables' txn versions + 1 and writes the rest: the merge tables equal the source, and the killed member's
    /// partitions moved on past where it left them. (The append tables are not compared: the mock shows aborted records to
    /// read_committed consumers, see KafkaFaultTests.)
    /// </summary>
    [Fact]
    public async Task Two_sink_processes_share_a_group_and_the_survivor_of_a_SIGKILL_takes_its_partitions_leaving_the_merge_tables_exact()
    {
        using var kafka = new MockKafka();
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline(Config, "{interval: 250ms, maxRows: 5000}")
            .Replace("transport: embedded", "transport: " + kafka.Transport, StringComparison.Ordinal));
        var source = await Cli.RunAsync("run", pipeline, "--once", "--role", "source", "--plugins", Repo.Plugins, "--data", dir.Combine("state"));
        Assert.True(source.ExitCode == 0, source.Error);

        var lake = dir.Combine("lake");
        using var survivor = new SinkProcess(dir, pipeline);
        using var victim = new SinkProcess(dir, pipeline);

        // Both members hold partitions once the group settled on two members.
        var deadline = Stopwatch.StartNew();
        while (victim.Owned.Count == 0 || survivor.Owned.Count == 0 || survivor.Owned.Overlaps(victim.Owned))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"the group did not split the partitions between the two sinks:\n{survivor.Log}\n---\n{victim.Log}");
            Assert.False(victim.Exited || survivor.Exited, $"a sink exited early:\n{survivor.Log}\n---\n{victim.Log}");
            await Task.Delay(100);
        }

        await Task.Delay(500);
        var victimOwned = victim.Owned.ToHashSet();
        var survivorAssignmentsBefore = survivor.Assignments;
        var atKill = await WhileWrittenAsync(() => TxnVersionsAsync(lake));
        victim.Kill();

        // The survivor writes on (its own partitions, then the victim's once the group dropped the dead member).
        string? diff = "not read yet";
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            Assert.False(survivor.Exited, $"the surviving sink exited:\n{survivor.Log}");
            diff = await WhileWrittenAsync(() => MergeTablesDiffAsync(lake));
            if (diff is null)
            {
                break;
            }

            await Task.Delay(500);
        }

        Assert.True(diff is null, $"the merge tables did not reach the source state: {diff}\n{survivor.Log}");
        var final = await TxnVersionsAsync(lake);
        survivor.Kill();

        Assert.True(survivor.Assignments > survivorAssignmentsBefore, $"the survivor was not assigned partitions again after the kill:\n{survivor.Log}");
        Assert.True(victimOwned.IsSubsetOf(survivor.Owned), $"the survivor does not own the victim's partitions ({string.Join(" ", victimOwned)}):\n{survivor.Log}");
        var movedOn = victimOwned.Where(p => final.GetValueOrDefault(p, -1) > atKill.GetValueOrDefault(p, -1)).ToList();
        Assert.True(movedOn.Count > 0, $"the victim had written all its partitions before it was killed ({string.Join(" ", victimOwned)}): the scenario is too small");
    }

    /// <summary>
    /// Reads a table a live process is committing to: LocalLogStore lists the log directory and then stats each entry, so a
    /// commit's temporary file renamed in between fails the listing (FileNotFoundException); read again.
    /// </summary>
    private static async Task<T> WhileWrittenAsync<T>(Func<Task<T>> read)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await read();
            }
            catch (FileNotFoundException) when (attempt < 20)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>The smallest txn version per partition (<c>topic:partition</c>) over the merge tables.</summary>
    private static async Task<Dictionary<string, long>> TxnVersionsAsync(string lake)
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var stream in SampleLake.Streams)
        {
            var table = await DeltaTable.TryOpenAsync(Path.Combine(lake, "shop", stream), CancellationToken.None);
            foreach (var (appId, version) in table?.Snapshot.TxnVersions ?? new Dictionary<string, long>())
            {
                if (appId.StartsWith("kafka:", StringComparison.Ordinal))
                {
                    var key = appId["kafka:".Length..];
                    result[key] = result.TryGetValue(key, out var v) ? Math.Min(v, version) : version;
                }
            }
        }

        return result;
    }

    /// <summary>Null when every merge table equals the generator's final state, else the first difference.</summary>
    private static async Task<string?> MergeTablesDiffAsync(string lake)
    {
        var json = SampleLake.YamlFlowToJson(Config);
        var options = SampleExpectations.ParseOptions(json);
        var final = SampleExpectations.FinalState(options, options.Changes);
        var catalog = await new SampleConnector().DiscoverAsync(json, CancellationToken.None);
        foreach (var stream in SampleLake.Streams)
        {
            var path = Path.Combine(lake, "shop", stream);
            if (await DeltaTable.TryOpenAsync(path, CancellationToken.None) is null)
            {
                return $"{stream}: no table yet";
            }

            var keys = catalog.Find(stream)!.PrimaryKey;
            var rows = await Lake.ReadAsync(path);
            if (rows.Count != final[stream].Count)
            {
                return $"{stream}: {rows.Count} rows, the source has {final[stream].Count}";
            }

            foreach (var row in rows)
            {
                var key = Lake.Key(row, keys);
                if (!final[stream].TryGetValue(key, out var expected))
                {
                    return $"{stream}: key {key} is not at the source";
                }

                if (Lake.Diff($"{stream}[{key}]", expected, row) is { } d)
                {
                    return d;
                }
            }
        }

        return null;
    }

    /// <summary>A running `ingest run --role sink` child process and the partitions its log says it was assigned last.</summary>
    private sealed class SinkProcess : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly Lock _gate = new();
        private HashSet<string> _owned = [];
        private int _assignments;

        public SinkProcess(TempDir dir, string pipeline)
        {
            _process = Cli.Start(dir.Combine("state"), "run", pipeline, "--role", "sink", "--plugins", Repo.Plugins);
            _process.OutputDataReceived += (_, e) => OnLine(e.Data);
            _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        /// <summary>The partitions (<c>topic:partition</c>) of the last assignment.</summary>
        public HashSet<string> Owned
        {
            get
            {
                lock (_gate)
                {
                    return [.. _owned];
                }
            }
        }

        public int Assignments => Volatile.Read(ref _assignments);

        public bool Exited => _process.HasExited;

        public string Log => string.Join("\n", _lines.TakeLast(40));

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            _lines.Enqueue(line);
            if (AssignedLine().Match(line) is { Success: true } m)
            {
                var owned = new HashSet<string>(StringComparer.Ordinal);
                foreach (Match t in TopicPartitions().Matches(m.Groups["parts"].Value))
                {
                    foreach (var id in t.Groups["ids"].Value.Split(','))
                    {
                        owned.Add($"{t.Groups["topic"].Value}:{id}");
                    }
                }

                lock (_gate)
                {
                    _owned = owned;
                }

                Interlocked.Increment(ref _assignments);
            }
        }

        /// <summary>SIGKILL, and waits for the exit.</summary>
        public void Kill()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.WaitForExit();
        }

        public void Dispose()
        {
            Kill();
            _process.Dispose();
        }
    }
}
