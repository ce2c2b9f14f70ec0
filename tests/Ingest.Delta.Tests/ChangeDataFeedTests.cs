using System.Text.Json.Nodes;

namespace Ingest.Delta.Tests;

public sealed class ChangeDataFeedTests
{
    private static readonly CommitOptions Merge = new("MERGE");

    private static IEnumerable<(long, string?, long)> Range(long from, long count, string name = "v1", long version = 1) =>
        Enumerable.Range(0, (int)count).Select(i => (from + i, (string?)$"{name}-{from + i}", version));

    private static async Task<DeltaTable> CdfTableAsync(TempDir dir, bool deletionVectors = false, IReadOnlyList<string>? partitionBy = null)
    {
        var config = new Dictionary<string, string> { ["delta.enableChangeDataFeed"] = "true" };
        if (deletionVectors)
        {
            config["delta.enableDeletionVectors"] = "true";
        }

        return await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, partitionBy ?? [], config, CancellationToken.None);
    }

    /// <summary>The commit's actions of one kind, from its JSON.</summary>
    private static List<JsonObject> Actions(TempDir dir, long version, string kind) =>
        File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", $"{version:D20}.json"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => o.ContainsKey(kind))
            .Select(o => o[kind]!.AsObject())
            .ToList();

    /// <summary>The change rows of one commit, read by DuckDB from its cdc files: (id, name, version, _change_type), ordered.</summary>
    private static List<(long Id, string? Name, long Version, string Type)> Changes(TempDir dir, long version)
    {
        var files = Actions(dir, version, "cdc").Select(c => Path.Combine(dir.Path, Uri.UnescapeDataString(c["path"]!.GetValue<string>()))).ToList();
        Assert.NotEmpty(files);
        using var duck = TestData.DuckDb();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT id, name, version, _change_type FROM read_parquet([{string.Join(", ", files.Select(f => $"'{f}'"))}], hive_partitioning = true) ORDER BY id, version, _change_type";
        using var reader = cmd.ExecuteReader();
        var result = new List<(long, string?, long, string)>();
        while (reader.Read())
        {
            result.Add((Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), reader.IsDBNull(1) ? null : reader.GetString(1),
                Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture), reader.GetString(3)));
        }

        return result;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Merge_writes_change_files_with_insert_update_images_and_delete(bool deletionVectors)
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir, deletionVectors);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 10))], new CommitOptions("WRITE"), CancellationToken.None);
        var source = TestData.Rows(TestData.IdNameVersion, [(3, "new-3", 2), (5, null, 2), (42, "new-42", 2)]);

        var result = await table.MergeAsync(new MergeRequest(source, [false, true, false], ["id"], null), Merge, CancellationToken.None);

        Assert.Equal(
            [(3, "v1-3", 1, "update_preimage"), (3, "new-3", 2, "update_postimage"), (5, "v1-5", 1, "delete"), (42, "new-42", 2, "insert")],
            Changes(dir, result.Version));
        var cdc = Actions(dir, result.Version, "cdc");
        Assert.All(cdc, c => Assert.False(c["dataChange"]!.GetValue<bool>()));
        Assert.All(cdc, c => Assert.StartsWith("_change_data/cdc-", c["path"]!.GetValue<string>(), StringComparison.Ordinal));
        Assert.All(cdc, c => Assert.Equal(new FileInfo(Path.Combine(dir.Path, c["path"]!.GetValue<string>())).Length, c["size"]!.GetValue<long>()));

        // The table's rows are untouched by the change files.
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(10, rows.Count);
        Assert.Equal("new-3", rows[3].Name);
    }

    [Fact]
    public async Task Append_to_a_change_feed_table_writes_no_change_files()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir);

        var result = await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 10))], new CommitOptions("WRITE"), CancellationToken.None);

        Assert.Empty(Actions(dir, result.Version, "cdc"));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "_change_data")));
        Assert.All(Actions(dir, result.Version, "add"), a => Assert.True(a["dataChange"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task Partitioned_change_files_go_to_partition_folders_with_their_values()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir, partitionBy: ["name"]);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1), (2, "b", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        var result = await table.MergeAsync(new MergeRequest(TestData.Rows(TestData.IdNameVersion, [(1, "a", 2), (3, "b", 2)]), [false, false], ["id"], null), Merge, CancellationToken.None);

        var cdc = Actions(dir, result.Version, "cdc");
        Assert.Equal(["_change_data/name=a/", "_change_data/name=b/"], cdc.Select(c => c["path"]!.GetValue<string>()[..20]).Order());
        Assert.Equal(["a", "b"], cdc.Select(c => c["partitionValues"]!["name"]!.GetValue<string>()).Order());
        Assert.Equal([(1, "a", 1, "update_preimage"), (1, "a", 2, "update_postimage"), (3, "b", 2, "insert")], Changes(dir, result.Version));
    }

    [Fact]
    public async Task New_change_feed_table_has_writer_version_4()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir);

        var d = table.Describe();
        Assert.Equal((1, 4), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Null(d.WriteRefusal);
    }

    [Fact]
    public async Task Change_feed_with_deletion_vectors_lists_both_features()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir, deletionVectors: true);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Contains("changeDataFeed", d.WriterFeatures);
        Assert.Contains("deletionVectors", d.WriterFeatures);
    }

    [Fact]
    public async Task Delete_all_and_overwrite_need_no_change_files_and_are_allowed()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 3))], new CommitOptions("WRITE"), CancellationToken.None);

        var overwrite = await table.OverwriteAsync([TestData.Rows(TestData.IdNameVersion, Range(10, 2))], new CommitOptions("WRITE"), CancellationToken.None);
        var delete = await table.DeleteAllAsync(new CommitOptions("DELETE"), CancellationToken.None);

        Assert.Empty(Actions(dir, overwrite.Version, "cdc"));
        Assert.Single(Actions(dir, overwrite.Version, "remove"));
        Assert.Empty(Actions(dir, delete.Version, "cdc"));
        Assert.Empty(await TestData.ReadAllAsync(table, table.Snapshot));
    }

    [Fact]
    public async Task Vacuum_deletes_change_files_past_the_retention_and_keeps_the_log()
    {
        using var dir = new TempDir();
        var table = await CdfTableAsync(dir);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 10))], new CommitOptions("WRITE"), CancellationToken.None);
        await table.MergeAsync(new MergeRequest(TestData.Rows(TestData.IdNameVersion, [(1, "x", 2)]), [false], ["id"], null), Merge, CancellationToken.None);
        var changeFiles = Directory.GetFiles(Path.Combine(dir.Path, "_change_data"), "*.parquet", SearchOption.AllDirectories);
        Assert.NotEmpty(changeFiles);

        var fresh = await table.VacuumAsync(null, dryRun: true, force: false, CancellationToken.None);
        Assert.DoesNotContain(fresh.Files, f => f.StartsWith("_change_data/", StringComparison.Ordinal));

        var done = await table.VacuumAsync(TimeSpan.Zero, dryRun: false, force: true, CancellationToken.None);

        Assert.Equal(changeFiles.Length, done.Files.Count(f => f.StartsWith("_change_data/cdc-", StringComparison.Ordinal)));
        Assert.All(changeFiles, f => Assert.False(File.Exists(f)));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "_delta_log"), "*.json"));
        Assert.Equal(10, (await TestData.ReadAllAsync(table, table.Snapshot)).Count);
    }

    [Fact]
    public async Task Table_with_a_change_type_column_refuses_merge_by_name()
    {
        using var dir = new TempDir();
        var schema = new Sdk.Types.StreamSchema([new Sdk.Types.Field("id", Sdk.Types.DataType.Int64, false), new Sdk.Types.Field("_change_type", Sdk.Types.DataType.String)]);
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, schema, [], new Dictionary<string, string> { ["delta.enableChangeDataFeed"] = "true" }, CancellationToken.None);
        var ids = new Apache.Arrow.Int64Array.Builder().Append(1).Build();
        var types = new Apache.Arrow.StringArray.Builder().Append("x").Build();
        var batch = new Apache.Arrow.RecordBatch(schema.ToArrowSchema(), [ids, types], 1);

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => table.MergeAsync(new MergeRequest(batch, [false], ["id"], null), Merge, CancellationToken.None));

        Assert.Contains("_change_type", ex.Message, StringComparison.Ordinal);
    }
}
