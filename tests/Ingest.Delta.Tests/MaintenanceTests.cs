using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Parquet;

namespace Ingest.Delta.Tests;

public sealed class MaintenanceTests
{
    private static async Task<DeltaTable> SmallFilesAsync(string path, int files)
    {
        var table = await DeltaTable.OpenOrCreateAsync(path, TestData.IdNameVersion, [], null, CancellationToken.None);
        for (var i = 0; i < files; i++)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Enumerable.Range(i * 10, 10).Select(k => ((long)k, (string?)$"n{k}", 1L)))], new CommitOptions("WRITE"), CancellationToken.None);
        }

        return table;
    }

    [Fact]
    public async Task Optimize_bin_packs_small_files_without_changing_data()
    {
        using var dir = new TempDir();
        var table = await SmallFilesAsync(dir.Path, 5);
        var before = await TestData.ReadAllAsync(table, table.Snapshot);

        var result = await table.OptimizeAsync(null, CancellationToken.None);

        Assert.NotNull(result);
        Assert.Equal(5, result.FilesRemoved);
        Assert.Single(table.Snapshot.Files);
        Assert.Equal(before, await TestData.ReadAllAsync(table, table.Snapshot));
        var lines = await File.ReadAllLinesAsync(Path.Combine(dir.Path, "_delta_log", $"{table.Snapshot.Version:D20}.json"));
        Assert.All(lines.Where(l => l.StartsWith("{\"add\"", StringComparison.Ordinal) || l.StartsWith("{\"remove\"", StringComparison.Ordinal)),
            l => Assert.False(JsonNode.Parse(l)!.AsObject().First().Value!["dataChange"]!.GetValue<bool>()));
        var info = (await table.HistoryAsync(1, CancellationToken.None))[0];
        Assert.Equal("OPTIMIZE", info.Operation);
        Assert.Equal("5", info.OperationMetrics!["numRemovedFiles"]!.GetValue<string>());
        Assert.Equal("1", info.OperationMetrics!["numAddedFiles"]!.GetValue<string>());
        Assert.Null(await table.OptimizeAsync(null, CancellationToken.None));
    }

    [Fact]
    public async Task Optimize_respects_target_size_and_partitions()
    {
        using var dir = new TempDir();
        var schema = TestData.IdNameVersion;
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, schema, ["version"], null, CancellationToken.None);
        for (var i = 0; i < 6; i++)
        {
            await table.AppendAsync([TestData.Rows(schema, [(i, $"n{i}", i % 2)])], new CommitOptions("WRITE"), CancellationToken.None);
        }

        var size = table.Snapshot.Files.Max(f => f.Size);
        await table.OptimizeAsync(size * 2 + 1, CancellationToken.None);

        // Three files per partition, at most two per bin: two outputs per partition, never mixing partitions.
        Assert.Equal(4, table.Snapshot.Files.Count);
        Assert.Equal(6, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
    }

    [Fact]
    public async Task Vacuum_dry_run_lists_unreferenced_old_files_and_vacuum_deletes_them()
    {
        using var dir = new TempDir();
        var table = await SmallFilesAsync(dir.Path, 3);
        await table.OptimizeAsync(null, CancellationToken.None);
        var orphan = Path.Combine(dir.Path, "part-orphan.snappy.parquet");
        await File.WriteAllTextAsync(orphan, "x");
        foreach (var f in Directory.GetFiles(dir.Path, "*.parquet"))
        {
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-8));
        }

        var dry = await table.VacuumAsync(null, dryRun: true, force: false, CancellationToken.None);
        // The removed files' tombstones are fresh (deleted now): only the orphan is past the 7-day retention.
        Assert.Equal(["part-orphan.snappy.parquet"], dry.Files);
        Assert.True(File.Exists(orphan));

        var forced = await table.VacuumAsync(TimeSpan.Zero, dryRun: false, force: true, CancellationToken.None);

        Assert.Equal(4, forced.Files.Count);
        Assert.Single(Directory.GetFiles(dir.Path, "*.parquet"));
        Assert.Equal(30, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
        var history = await table.HistoryAsync(2, CancellationToken.None);
        Assert.Equal(["VACUUM END", "VACUUM START"], history.Select(h => h.Operation));
    }

    [Fact]
    public async Task Vacuum_below_table_retention_is_refused_unless_forced()
    {
        using var dir = new TempDir();
        var table = await SmallFilesAsync(dir.Path, 1);

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => table.VacuumAsync(TimeSpan.FromHours(1), dryRun: true, force: false, CancellationToken.None));

        Assert.Contains("168 h", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Checkpoint_is_written_at_the_configured_interval()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], new Dictionary<string, string> { ["delta.checkpointInterval"] = "3" }, CancellationToken.None);
        for (var i = 0; i < 4; i++)
        {
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(i, "x", 1)])], new CommitOptions("WRITE"), CancellationToken.None);
        }

        Assert.True(File.Exists(Path.Combine(dir.Path, "_delta_log", "00000000000000000003.checkpoint.parquet")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "_delta_log", "00000000000000000002.checkpoint.parquet")));
    }

    [Fact]
    public async Task Describe_reports_schema_protocol_files_bytes_and_rows()
    {
        using var dir = new TempDir();
        var table = await SmallFilesAsync(dir.Path, 2);

        var d = table.Describe();

        Assert.Equal((1, 2), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Equal(2, d.Files);
        Assert.Equal(20, d.Rows);
        Assert.Equal(table.Snapshot.Files.Sum(f => f.Size), d.Bytes);
        Assert.Equal(3, d.Schema.Count);
        Assert.Null(d.WriteRefusal);
    }
}

public sealed class WriterFeatureTests
{
    private static string Golden(string name) => Path.Combine(TestData.SharedDir(), "delta-golden", "tables", name);

    private static string CopyGolden(string name, TempDir dir)
    {
        var source = Golden(name);
        foreach (var f in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir.Path, Path.GetRelativePath(source, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }

        return dir.Path;
    }

    [Theory]
    [InlineData("dbr_8_1_generated_columns", "generatedColumns")]
    [InlineData("table-with-columnmapping-mode-name", "columnMapping")]
    public async Task Spark_table_with_a_writer_feature_we_lack_is_refused_by_name(string name, string feature)
    {
        using var dir = new TempDir();
        var table = (await DeltaTable.TryOpenAsync(CopyGolden(name, dir), CancellationToken.None))!;
        var rows = new List<RecordBatch>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            rows.Add(b);
        }

        var version = table.Snapshot.Version;
        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => table.AppendAsync(rows, new CommitOptions("WRITE"), CancellationToken.None));

        Assert.Contains($"'{feature}'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(version, table.Snapshot.Version);
        Assert.NotNull(table.Describe().WriteRefusal);
    }

    [Theory]
    [InlineData("rowTracking")]
    [InlineData("domainMetadata")]
    [InlineData("identityColumns")]
    [InlineData("v2Checkpoint")]
    public async Task Table_listing_a_writer_feature_we_do_not_implement_is_refused_by_name(string feature)
    {
        using var t = new HandWrittenTable();
        t.Commit(0,
            HandWrittenTable.Protocol(feature == "v2Checkpoint" ? 3 : 1, 7, feature == "v2Checkpoint" ? [feature] : null, ["appendOnly", feature]),
            HandWrittenTable.Metadata(HandWrittenTable.Schema(HandWrittenTable.Field("id", "long")), []));
        var table = (await DeltaTable.TryOpenAsync(t.Path, CancellationToken.None))!;

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => table.CommitEmptyAsync(new CommitOptions("WRITE"), CancellationToken.None));

        Assert.Contains($"'{feature}'", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(t.LogPath(HandWrittenTable.CommitName(1))));
    }

    [Fact]
    public async Task Append_into_in_commit_timestamp_table_writes_increasing_in_commit_timestamp_first()
    {
        using var dir = new TempDir();
        var table = (await DeltaTable.TryOpenAsync(CopyGolden("cdc_ict_table", dir), CancellationToken.None))!;
        var previous = (await table.HistoryAsync(1, CancellationToken.None))[0].CommitInfo["inCommitTimestamp"]!.GetValue<long>();
        var copies = new List<RecordBatch>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                copies.Add(ArrowKernels.Take(b, Enumerable.Range(0, b.Length).ToArray()));
            }
        }

        await table.AppendAsync(copies, new CommitOptions("WRITE"), CancellationToken.None);
        await table.CommitEmptyAsync(new CommitOptions("WRITE"), CancellationToken.None);

        var history = await table.HistoryAsync(2, CancellationToken.None);
        var first = JsonNode.Parse(File.ReadLines(Path.Combine(dir.Path, "_delta_log", $"{history[1].Version:D20}.json")).First())!["commitInfo"]!.AsObject();
        Assert.Equal("inCommitTimestamp", first.First().Key);
        Assert.True(history[1].CommitInfo["inCommitTimestamp"]!.GetValue<long>() > previous);
        Assert.True(history[0].CommitInfo["inCommitTimestamp"]!.GetValue<long>() > history[1].CommitInfo["inCommitTimestamp"]!.GetValue<long>());
        Assert.Equal(4, await TestData.CountAsync(table, table.Snapshot));
    }

    [Fact]
    public async Task New_table_with_in_commit_timestamps_lists_the_feature()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], new Dictionary<string, string> { ["delta.enableInCommitTimestamps"] = "true" }, CancellationToken.None);

        await table.CommitEmptyAsync(new CommitOptions("WRITE"), CancellationToken.None);

        var d = table.Describe();
        Assert.Equal((1, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Contains("inCommitTimestamp", d.WriterFeatures);
        var history = await table.HistoryAsync(null, CancellationToken.None);
        Assert.All(history, h => Assert.NotNull(h.CommitInfo["inCommitTimestamp"]));
        Assert.True(history[0].CommitInfo["inCommitTimestamp"]!.GetValue<long>() > history[1].CommitInfo["inCommitTimestamp"]!.GetValue<long>());
    }

    [Fact]
    public async Task Append_only_table_refuses_a_merge_but_takes_appends()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], new Dictionary<string, string> { ["delta.appendOnly"] = "true" }, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => table.DeleteAllAsync(new CommitOptions("DELETE"), CancellationToken.None));

        Assert.Contains("append-only", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Tables Spark wrote that this library can write: each takes its own rows again and reads back twice as many.</summary>
    [Theory]
    [InlineData("simple_table")]
    [InlineData("basic_partitioned")]
    [InlineData("basic-decimal-table")]
    [InlineData("data-reader-primitives")]
    [InlineData("data-reader-timestamp_ntz")]
    [InlineData("delta-2.2.0-partitioned-types")]
    [InlineData("delta-0.8.0-null-partition")]
    [InlineData("table-with-dv-small")]
    [InlineData("basic-with-inserts-deletes-checkpoint")]
    public async Task Append_into_golden_spark_table_reads_back_old_and_new_rows(string name)
    {
        using var dir = new TempDir();
        var table = (await DeltaTable.TryOpenAsync(CopyGolden(name, dir), CancellationToken.None))!;
        var before = await RenderAsync(table);
        var original = table.Snapshot.Files.Select(f => f.Path).ToHashSet();
        var copies = new List<RecordBatch>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                copies.Add(ArrowKernels.Take(b, Enumerable.Range(0, b.Length).ToArray()));
            }
        }

        await table.AppendAsync(copies, new CommitOptions("WRITE"), CancellationToken.None);

        var reopened = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        var after = await RenderAsync(reopened);
        Assert.Equal(before.Concat(before).Order(StringComparer.Ordinal), after);
        // Old Spark files may lack stats; ours carry numRecords for the rows appended.
        var added = reopened.Snapshot.Files.Where(f => !original.Contains(f.Path)).ToList();
        Assert.NotEmpty(added);
        Assert.Equal(before.Count, added.Sum(f => JsonNode.Parse(f.Stats!)!["numRecords"]!.GetValue<long>()));
    }

    private static async Task<List<string>> RenderAsync(DeltaTable table)
    {
        var rows = new List<string>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    rows.Add(ArrowRender.Row(b, i));
                }
            }
        }

        rows.Sort(StringComparer.Ordinal);
        return rows;
    }
}
