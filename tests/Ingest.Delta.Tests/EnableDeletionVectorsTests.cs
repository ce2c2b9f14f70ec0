using System.Text.Json.Nodes;

namespace Ingest.Delta.Tests;

/// <summary>Turning deletion vectors on for an existing table through <see cref="DeltaTable.SetPropertiesAsync"/>.</summary>
public sealed class EnableDeletionVectorsTests
{
    private static readonly Dictionary<string, string?> EnableDv = new() { ["delta.enableDeletionVectors"] = "true" };

    private static IEnumerable<(long, string?, long)> Range(long from, long count) =>
        Enumerable.Range(0, (int)count).Select(i => (from + i, (string?)$"v1-{from + i}", 1L));

    private static async Task<DeltaTable> TableAsync(TempDir dir, Dictionary<string, string>? config)
    {
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], config, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, Range(0, 100))], new CommitOptions("WRITE"), CancellationToken.None);
        return table;
    }

    private static JsonObject CommittedProtocol(TempDir dir, long version) =>
        File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", $"{version:D20}.json"))
            .Select(l => JsonNode.Parse(l)!.AsObject())
            .Single(o => o.ContainsKey("protocol"))["protocol"]!.AsObject();

    [Fact]
    public async Task Enabling_deletion_vectors_upgrades_a_legacy_table_to_3_7_listing_its_implied_features()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        Assert.Equal((1, 2), (table.Describe().MinReaderVersion, table.Describe().MinWriterVersion));

        var result = await table.SetPropertiesAsync(EnableDv, CancellationToken.None);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Equal(["deletionVectors"], d.ReaderFeatures);
        // Writer version 2 implied appendOnly and invariants: they stay supported, listed explicitly.
        Assert.Equal(["appendOnly", "deletionVectors", "invariants"], d.WriterFeatures.Order(StringComparer.Ordinal));
        Assert.Equal("true", d.Configuration["delta.enableDeletionVectors"]);
        Assert.Null(d.WriteRefusal);
        var protocol = CommittedProtocol(dir, result!.Version);
        Assert.Equal(3, protocol["minReaderVersion"]!.GetValue<int>());
        Assert.Equal(7, protocol["minWriterVersion"]!.GetValue<int>());
    }

    [Fact]
    public async Task After_enabling_deletion_vectors_a_merge_marks_rows_deleted_instead_of_rewriting()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        var original = table.Snapshot.Files.Single().Path;
        await table.SetPropertiesAsync(EnableDv, CancellationToken.None);

        var source = TestData.Rows(TestData.IdNameVersion, [(3, "new-3", 2), (4, null, 2)]);
        var result = await table.MergeAsync(new MergeRequest(source, [false, true], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(0, result.FilesRemoved);
        var kept = table.Snapshot.Files.Single(f => f.Path == original);
        Assert.Equal(2, kept.DeletionVector!.Cardinality);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal(99, rows.Count);
        Assert.Equal("new-3", rows[3].Name);
        Assert.False(rows.ContainsKey(4));
    }

    [Fact]
    public async Task Change_feed_table_keeps_change_data_feed_and_stays_writable()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, new() { ["delta.enableChangeDataFeed"] = "true" });
        Assert.Equal(4, table.Describe().MinWriterVersion);

        await table.SetPropertiesAsync(EnableDv, CancellationToken.None);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        // Writer 4 implied these; none is in use, so the library still writes the table.
        Assert.Equal(["appendOnly", "changeDataFeed", "checkConstraints", "deletionVectors", "generatedColumns", "invariants"], d.WriterFeatures.Order(StringComparer.Ordinal));
        Assert.Null(d.WriteRefusal);
        var source = TestData.Rows(TestData.IdNameVersion, [(7, "new-7", 2)]);
        var result = await table.MergeAsync(new MergeRequest(source, [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        Assert.Equal(0, result.FilesRemoved);
        Assert.Single(table.Snapshot.Files, f => f.DeletionVector is not null);
        Assert.Equal("new-7", (await TestData.ReadAllAsync(table, table.Snapshot))[7].Name);
    }

    [Fact]
    public async Task Table_with_type_widening_keeps_it_beside_deletion_vectors()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, new() { ["delta.enableTypeWidening"] = "true" });

        await table.SetPropertiesAsync(EnableDv, CancellationToken.None);

        var d = table.Describe();
        Assert.Equal(["deletionVectors", "typeWidening"], d.ReaderFeatures.Order(StringComparer.Ordinal));
        Assert.Equal(["deletionVectors", "typeWidening"], d.WriterFeatures.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Type_widening_and_deletion_vectors_enabled_together_are_both_listed()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);

        await table.SetPropertiesAsync(new Dictionary<string, string?> { ["delta.enableDeletionVectors"] = "true", ["delta.enableTypeWidening"] = "true" }, CancellationToken.None);

        var d = table.Describe();
        Assert.Equal((3, 7), (d.MinReaderVersion, d.MinWriterVersion));
        Assert.Equal(["deletionVectors", "typeWidening"], d.ReaderFeatures.Order(StringComparer.Ordinal));
        Assert.Equal(["appendOnly", "deletionVectors", "invariants", "typeWidening"], d.WriterFeatures.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Disabling_deletion_vectors_changes_only_the_property()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);
        await table.SetPropertiesAsync(EnableDv, CancellationToken.None);

        var result = await table.SetPropertiesAsync(new Dictionary<string, string?> { ["delta.enableDeletionVectors"] = "false" }, CancellationToken.None);
        var again = await table.SetPropertiesAsync(new Dictionary<string, string?> { ["delta.enableDeletionVectors"] = "false" }, CancellationToken.None);

        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(dir.Path, "_delta_log", $"{result!.Version:D20}.json")), l => l.Contains("\"protocol\"", StringComparison.Ordinal));
        Assert.Null(again);
        // The feature stays supported (clients must not remove it); merges copy-on-write again.
        Assert.Contains("deletionVectors", table.Describe().WriterFeatures);
        var source = TestData.Rows(TestData.IdNameVersion, [(3, "new-3", 2)]);
        var merge = await table.MergeAsync(new MergeRequest(source, [false], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
        Assert.Equal(1, merge.FilesRemoved);
        Assert.All(table.Snapshot.Files, f => Assert.Null(f.DeletionVector));
    }

    [Fact]
    public async Task Invalid_value_is_refused_naming_the_property()
    {
        using var dir = new TempDir();
        var table = await TableAsync(dir, null);

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.SetPropertiesAsync(new Dictionary<string, string?> { ["delta.enableDeletionVectors"] = "yes" }, CancellationToken.None));

        Assert.Contains("delta.enableDeletionVectors", ex.Message, StringComparison.Ordinal);
        Assert.Equal((1, 2), (table.Describe().MinReaderVersion, table.Describe().MinWriterVersion));
    }

    [Fact]
    public async Task Legacy_writer_6_table_is_not_upgraded_to_list_identity_columns_this_library_does_not_write()
    {
        using var t = new HandWrittenTable();
        t.Commit(0, HandWrittenTable.Protocol(1, 6), HandWrittenTable.Metadata(HandWrittenTable.Schema(HandWrittenTable.Field("id", "long")), []));
        var table = (await DeltaTable.TryOpenAsync(t.Path, CancellationToken.None))!;

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => table.SetPropertiesAsync(EnableDv, CancellationToken.None));

        Assert.Contains("identityColumns", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(t.LogPath(HandWrittenTable.CommitName(1))));
    }
}
