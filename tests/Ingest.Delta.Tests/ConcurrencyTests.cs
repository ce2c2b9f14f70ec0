using System.Diagnostics;
using System.Globalization;
using Apache.Arrow;

namespace Ingest.Delta.Tests;

public sealed class ConcurrencyTests
{
    private static string StressDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingest.sln")))
        {
            dir = dir.Parent;
        }

        var config = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<Configuration>/net10.0
        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("No Ingest.sln above the test binaries."),
            "tests", "Ingest.Delta.Stress", "bin", config, "net10.0", "Ingest.Delta.Stress.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("The stress writer is not built (dotnet build tests/Ingest.Delta.Tests builds it).", dll);
    }

    [Fact]
    public async Task Two_processes_appending_and_merging_lose_no_commit_and_never_corrupt_the_table()
    {
        using var dir = new TempDir();
        var table = Path.Combine(dir.Path, "t");
        var dll = StressDll();
        var workers = Enumerable.Range(1, 2).Select(w =>
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { dll, table, w.ToString(CultureInfo.InvariantCulture), "3", Path.Combine(dir.Path, $"report-{w}.txt") })
            {
                psi.ArgumentList.Add(a);
            }

            return Process.Start(psi)!;
        }).ToList();
        var outputs = new List<string>();
        foreach (var p in workers)
        {
            using (p)
            {
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
                await p.WaitForExitAsync(timeout.Token);
                outputs.Add(await stdout);
                Assert.True(p.ExitCode == 0, $"worker exited {p.ExitCode}: {await stderr}");
            }
        }

        // What the workers say they committed.
        var expected = new Dictionary<long, long>();
        for (var w = 1; w <= 2; w++)
        {
            foreach (var line in await File.ReadAllLinesAsync(Path.Combine(dir.Path, $"report-{w}.txt")))
            {
                var parts = line.Split(' ');
                expected[long.Parse(parts[0], CultureInfo.InvariantCulture)] = long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }

        var t = (await DeltaTable.TryOpenAsync(table, CancellationToken.None))!;
        var actual = new Dictionary<long, long>();
        await foreach (var b in t.ScanAsync(t.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    Assert.True(actual.TryAdd(((Int64Array)b.Column(0)).GetValue(i)!.Value, ((Int64Array)b.Column(2)).GetValue(i)!.Value), "a row appears twice");
                }
            }
        }

        Assert.True(expected.Count > 40, string.Join(" | ", outputs));
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.OrderBy(kv => kv.Key), actual.OrderBy(kv => kv.Key));
        Assert.Contains(expected.Keys, k => k >> 40 == 1);
        Assert.Contains(expected.Keys, k => k >> 40 == 2);

        // The two really raced: some commits were made after losing version N to the other process (read version < N - 1).
        var history = await t.HistoryAsync(null, CancellationToken.None);
        Assert.Contains(history, h => h.CommitInfo["readVersion"] is { } rv && rv.GetValue<long>() < h.Version - 1);

        // Every version is readable, from the log alone and through checkpoints, and its rows match its stats.
        var commits = Directory.GetFiles(Path.Combine(table, "_delta_log"), "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Enumerable.Range(0, (int)t.Snapshot.Version + 1).Select(v => $"{v:D20}.json"), commits);
        for (var v = 0L; v <= t.Snapshot.Version; v++)
        {
            var s = await t.GetSnapshotAsync(v, CancellationToken.None);
            Assert.Equal(s.RowCount, await TestData.CountAsync(t, s));
        }
    }
}
