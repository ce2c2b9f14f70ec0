using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

public sealed class WriteModeTests
{
    private static readonly StreamSchema Scd = new([
        new Field("id", DataType.Int64, Nullable: false),
        new Field("name", DataType.String),
        new Field("_position", DataType.String, Nullable: false),
        new Field(ScdColumns.ValidFrom, DataType.Timestamp, Nullable: false),
        new Field(ScdColumns.ValidTo, DataType.Timestamp),
        new Field(ScdColumns.IsCurrent, DataType.Boolean, Nullable: false),
    ]);

    private static RecordBatch Events(params (long Id, string? Name, int Pos)[] rows)
    {
        var ids = new Int64Array.Builder();
        var names = new StringArray.Builder();
        var pos = new StringArray.Builder();
        var from = new TimestampArray.Builder((Apache.Arrow.Types.TimestampType)DataType.Timestamp.ToArrowType());
        var to = new TimestampArray.Builder((Apache.Arrow.Types.TimestampType)DataType.Timestamp.ToArrowType());
        var current = new BooleanArray.Builder();
        foreach (var (id, name, p) in rows)
        {
            ids.Append(id);
            if (name is null)
            {
                names.AppendNull();
            }
            else
            {
                names.Append(name);
            }

            pos.Append(p.ToString("D8", System.Globalization.CultureInfo.InvariantCulture));
            from.Append(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 + p));
            to.AppendNull();
            current.Append(true);
        }

        return new RecordBatch(Scd.ToArrowSchema(), [ids.Build(), names.Build(), pos.Build(), from.Build(), to.Build(), current.Build()], rows.Length);
    }

    private static async Task<List<(long Id, string? Name, int Pos, long? To, bool Current)>> HistoryRowsAsync(DeltaTable table)
    {
        var result = new List<(long, string?, int, long?, bool)>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    var to = (TimestampArray)b.Column(4);
                    result.Add((((Int64Array)b.Column(0)).GetValue(i)!.Value, ((StringArray)b.Column(1)).GetString(i),
                        int.Parse(((StringArray)b.Column(2)).GetString(i), System.Globalization.CultureInfo.InvariantCulture),
                        to.IsNull(i) ? null : to.Values[i] / 1_000_000 - 1_700_000_000, ((BooleanArray)b.Column(5)).GetValue(i)!.Value));
                }
            }
        }

        return result.OrderBy(r => r.Item1).ThenBy(r => r.Item3).ToList();
    }

    [Fact]
    public async Task Overwrite_replaces_every_row_in_one_commit_spark_reads_as_write_overwrite()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1), (2, "b", 1)])], new CommitOptions("WRITE"), CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(3, "c", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        var result = await table.OverwriteAsync([TestData.Rows(TestData.IdNameVersion, [(7, "x", 2), (8, "y", 2)])], new CommitOptions("WRITE"), CancellationToken.None);

        Assert.Equal(2, result.FilesRemoved);
        var rows = await TestData.ReadAllAsync(table, table.Snapshot);
        Assert.Equal([7L, 8L], rows.Keys.Order());
        Assert.Equal(3, (await TestData.ReadAllAsync(table, await table.GetSnapshotAsync(2, CancellationToken.None))).Count);
        var entry = (await table.HistoryAsync(1, CancellationToken.None))[0];
        Assert.Equal("WRITE", entry.Operation);
        Assert.Equal("Overwrite", entry.OperationParameters!["mode"]!.GetValue<string>());
        var commit = await File.ReadAllLinesAsync(Path.Combine(dir.Path, "_delta_log", "00000000000000000003.json"));
        Assert.Equal(2, commit.Count(l => l.StartsWith("{\"remove\"", StringComparison.Ordinal)));
        Assert.Single(commit, l => l.StartsWith("{\"add\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Overwrite_not_committed_leaves_table_and_folder_unchanged()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1)])], new CommitOptions("WRITE"), CancellationToken.None);
        var before = Directory.GetFiles(dir.Path, "*.parquet").Length;

        await using (var staged = table.BeginOverwrite())
        {
            staged.Write(TestData.Rows(TestData.IdNameVersion, [(9, "z", 1)]));
        }

        Assert.Equal(before, Directory.GetFiles(dir.Path, "*.parquet").Length);
        Assert.Equal([1L], (await TestData.ReadAllAsync(table, table.Snapshot)).Keys);
    }

    [Fact]
    public async Task Overwrite_conflicts_with_a_concurrent_append_instead_of_keeping_its_rows()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], null, CancellationToken.None);
        await using var staged = table.BeginOverwrite();
        staged.Write(TestData.Rows(TestData.IdNameVersion, [(9, "z", 1)]));
        var other = (await DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None))!;
        await other.AppendAsync([TestData.Rows(TestData.IdNameVersion, [(1, "a", 1)])], new CommitOptions("WRITE"), CancellationToken.None);

        // The overwrite re-reads the table at commit: the append is replaced, not lost silently or kept.
        await staged.CommitAsync(new CommitOptions("WRITE"), CancellationToken.None);

        Assert.Equal([9L], (await TestData.ReadAllAsync(table, table.Snapshot)).Keys);
    }

    [Fact]
    public async Task History_change_closes_current_row_and_adds_new_one()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, [], null, CancellationToken.None);
        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a", 1), (2, "b", 2)), [false, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a2", 3), (2, null, 4)), [false, true], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        var rows = await HistoryRowsAsync(table);
        Assert.Equal([(1L, "a", 1, 3L, false), (1L, "a2", 3, null, true), (2L, "b", 2, 4L, false)], rows);
    }

    [Fact]
    public async Task History_keeps_every_change_of_a_key_within_one_batch()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, [], null, CancellationToken.None);

        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a", 1), (1, "b", 2), (1, null, 3), (1, "c", 4)), [false, false, true, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        var rows = await HistoryRowsAsync(table);
        Assert.Equal([(1L, "a", 1, 2L, false), (1L, "b", 2, 3L, false), (1L, "c", 4, null, true)], rows);
        Assert.Single(rows, r => r.Current);
    }

    [Fact]
    public async Task History_replayed_events_add_no_second_row()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, [], null, CancellationToken.None);
        var first = new HistoryRequest(Events((1, "a", 1), (2, "b", 2)), [false, false], ["id"], "_position");
        var second = new HistoryRequest(Events((1, "a2", 3), (2, null, 4)), [false, true], ["id"], "_position");
        await table.MergeHistoryAsync(first, new CommitOptions("MERGE"), CancellationToken.None);
        await table.MergeHistoryAsync(second, new CommitOptions("MERGE"), CancellationToken.None);
        var expected = await HistoryRowsAsync(table);

        // A restart replays both batches, then one with an old and a new event.
        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a", 1), (2, "b", 2)), [false, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);
        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a2", 3), (2, null, 4)), [false, true], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);
        Assert.Equal(expected, await HistoryRowsAsync(table));
        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a2", 3), (2, "b2", 5)), [false, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        var rows = await HistoryRowsAsync(table);
        Assert.Equal(expected.Append((2L, "b2", 5, null, true)).OrderBy(r => r.Item1).ThenBy(r => r.Item3), rows);
    }

    [Fact]
    public async Task History_rewrites_only_files_holding_a_current_row_that_closes()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, [], null, CancellationToken.None);
        await table.MergeHistoryAsync(new HistoryRequest(Events((1, "a", 1), (2, "b", 2)), [false, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);
        await table.MergeHistoryAsync(new HistoryRequest(Events((100, "x", 3), (101, "y", 4)), [false, false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        var result = await table.MergeHistoryAsync(new HistoryRequest(Events((100, "x2", 5)), [false], ["id"], "_position"), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal(1, result.FilesRemoved);
        Assert.Equal(5, (await HistoryRowsAsync(table)).Count);
    }
}

public sealed class HistoryTruncateTests
{
    private static readonly Ingest.Sdk.Types.StreamSchema Scd = new([
        new Ingest.Sdk.Types.Field("id", Ingest.Sdk.Types.DataType.Int64),
        new Ingest.Sdk.Types.Field("name", Ingest.Sdk.Types.DataType.String),
        new Ingest.Sdk.Types.Field("_position", Ingest.Sdk.Types.DataType.String, Nullable: false),
        new Ingest.Sdk.Types.Field(ScdColumns.ValidFrom, Ingest.Sdk.Types.DataType.Timestamp, Nullable: false),
        new Ingest.Sdk.Types.Field(ScdColumns.ValidTo, Ingest.Sdk.Types.DataType.Timestamp),
        new Ingest.Sdk.Types.Field(ScdColumns.IsCurrent, Ingest.Sdk.Types.DataType.Boolean, Nullable: false),
    ]);

    /// <summary>Events: id null = a truncate.</summary>
    private static HistoryRequest Request(params (long? Id, string? Name, int Pos, bool Delete)[] rows)
    {
        var ts = (Apache.Arrow.Types.TimestampType)Ingest.Sdk.Types.DataType.Timestamp.ToArrowType();
        var ids = new Int64Array.Builder();
        var names = new StringArray.Builder();
        var pos = new StringArray.Builder();
        var from = new TimestampArray.Builder(ts);
        var to = new TimestampArray.Builder(ts);
        var current = new BooleanArray.Builder();
        foreach (var (id, name, p, _) in rows)
        {
            if (id is { } v)
            {
                ids.Append(v);
            }
            else
            {
                ids.AppendNull();
            }

            names.Append(name ?? "");
            pos.Append(p.ToString("D8", System.Globalization.CultureInfo.InvariantCulture));
            from.Append(DateTimeOffset.FromUnixTimeSeconds(p));
            to.AppendNull();
            current.Append(true);
        }

        var batch = new RecordBatch(Scd.ToArrowSchema(), [ids.Build(), names.Build(), pos.Build(), from.Build(), to.Build(), current.Build()], rows.Length);
        return new HistoryRequest(batch, rows.Select(r => r.Delete).ToArray(), ["id"], "_position") { IsTruncate = rows.Select(r => r.Id is null).ToArray() };
    }

    private static async Task<List<(long Id, string? Name, long? To, bool Current)>> RowsAsync(DeltaTable table)
    {
        var result = new List<(long, string?, long?, bool)>();
        await foreach (var b in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            using (b)
            {
                for (var i = 0; i < b.Length; i++)
                {
                    var to = (TimestampArray)b.Column(4);
                    result.Add((((Int64Array)b.Column(0)).GetValue(i)!.Value, ((StringArray)b.Column(1)).GetString(i), to.IsNull(i) ? null : to.Values[i] / 1_000_000, ((BooleanArray)b.Column(5)).GetValue(i)!.Value));
                }
            }
        }

        return result.OrderBy(r => r.Item1).ThenBy(r => r.Item2, StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task Truncate_closes_every_current_row_and_a_replay_closes_nothing_written_after_it()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Scd, [], null, CancellationToken.None);
        await table.MergeHistoryAsync(Request((1, "a", 1, false), (2, "b", 2, false)), new CommitOptions("MERGE"), CancellationToken.None);
        var batch = Request((3, "c", 3, false), (null, null, 4, false), (1, "a2", 5, false));

        await table.MergeHistoryAsync(batch, new CommitOptions("MERGE"), CancellationToken.None);
        var once = await RowsAsync(table);
        await table.MergeHistoryAsync(Request((3, "c", 3, false), (null, null, 4, false), (1, "a2", 5, false)), new CommitOptions("MERGE"), CancellationToken.None);

        Assert.Equal([(1L, "a", 4L, false), (1L, "a2", null, true), (2L, "b", 4L, false), (3L, "c", 4L, false)], once);
        Assert.Equal(once, await RowsAsync(table));
    }
}
