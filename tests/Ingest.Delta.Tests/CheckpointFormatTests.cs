using System.Text.Json.Nodes;
using Apache.Arrow;
using Ingest.Delta.Parquet;
using ArrowField = Apache.Arrow.Field;
using ArrowStruct = Apache.Arrow.Types.StructType;
using ArrowTypes = Apache.Arrow.Types;

namespace Ingest.Delta.Tests;

/// <summary>Multi-part and v2 (sidecar) checkpoints, built from a classic checkpoint of this library with ParquetSharp's Arrow writer.</summary>
public sealed class CheckpointFormatTests
{
    private const string Log = "_delta_log";

    /// <summary>A table with commits 0..4 and a classic checkpoint at 3; returns the checkpoint's rows and the ids of the table.</summary>
    private static async Task<(RecordBatch Checkpoint, string[] ProtocolAndMetadata, List<long> Ids)> PrepareAsync(TempDir dir)
    {
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, TestData.IdNameVersion, [], new Dictionary<string, string> { ["delta.checkpointInterval"] = "3" }, CancellationToken.None);
        var ids = new List<long>();
        for (var v = 1; v <= 4; v++)
        {
            var rows = Enumerable.Range(v * 10, 3).Select(i => ((long)i, (string?)$"n{i}", 1L)).ToList();
            ids.AddRange(rows.Select(r => r.Item1));
            await table.AppendAsync([TestData.Rows(TestData.IdNameVersion, rows)], new CommitOptions("WRITE"), CancellationToken.None);
        }

        var log = Path.Combine(dir.Path, Log);
        var classic = Path.Combine(log, "00000000000000000003.checkpoint.parquet");
        Assert.True(File.Exists(classic));
        var batches = new List<RecordBatch>();
        using (var reader = new ParquetSharp.Arrow.FileReader(classic))
        using (var stream = reader.GetRecordBatchReader())
        {
            while (await stream.ReadNextRecordBatchAsync() is { } b)
            {
                batches.Add(b);
            }
        }

        var checkpoint = ArrowKernels.Concat(batches[0].Schema, batches);
        var v0 = File.ReadAllLines(Path.Combine(log, HandWrittenTable.CommitName(0))).Where(l => l.StartsWith("{\"protocol\"", StringComparison.Ordinal) || l.StartsWith("{\"metaData\"", StringComparison.Ordinal)).ToArray();

        // Only the checkpoint and commit 4 remain, and no _last_checkpoint: the listing must find the checkpoint.
        File.Delete(classic);
        File.Delete(Path.Combine(log, "_last_checkpoint"));
        for (var v = 0; v <= 3; v++)
        {
            File.Delete(Path.Combine(log, HandWrittenTable.CommitName(v)));
        }

        return (checkpoint, v0, ids.Order().ToList());
    }

    private static void Write(string path, RecordBatch batch)
    {
        using var writer = new ParquetSharp.Arrow.FileWriter(path, batch.Schema);
        writer.WriteRecordBatch(batch);
        writer.Close();
    }

    private static async Task<List<long>> IdsAsync(string path)
    {
        var table = (await DeltaTable.TryOpenAsync(path, CancellationToken.None))!;
        Assert.Equal(4, table.Snapshot.Version);
        return (await TestData.ReadAllAsync(table, table.Snapshot)).Keys.Order().ToList();
    }

    private static RecordBatch Slice(RecordBatch b, int offset, int length) =>
        ArrowKernels.Take(b, Enumerable.Range(offset, length).ToArray());

    [Fact]
    public async Task Multi_part_checkpoint_without_last_checkpoint_file_is_read()
    {
        using var dir = new TempDir();
        var (checkpoint, _, ids) = await PrepareAsync(dir);
        var half = checkpoint.Length / 2;
        Write(Path.Combine(dir.Path, Log, "00000000000000000003.checkpoint.0000000001.0000000002.parquet"), Slice(checkpoint, 0, half));
        Write(Path.Combine(dir.Path, Log, "00000000000000000003.checkpoint.0000000002.0000000002.parquet"), Slice(checkpoint, half, checkpoint.Length - half));

        Assert.Equal(ids, await IdsAsync(dir.Path));
    }

    [Fact]
    public async Task Incomplete_multi_part_checkpoint_is_not_used()
    {
        using var dir = new TempDir();
        var (checkpoint, _, _) = await PrepareAsync(dir);
        Write(Path.Combine(dir.Path, Log, "00000000000000000003.checkpoint.0000000001.0000000002.parquet"), Slice(checkpoint, 0, 2));

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None));
        Assert.Contains("commit 0 is missing", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Two sidecar files holding the checkpoint's add rows (columns add and remove only).</summary>
    private static List<(string Name, long Size)> WriteSidecars(string table, RecordBatch checkpoint)
    {
        var add = (StructArray)checkpoint.Column(checkpoint.Schema.GetFieldIndex("add"));
        var addRows = Enumerable.Range(0, checkpoint.Length).Where(add.IsValid).ToArray();
        var schema = new Schema.Builder().Field(checkpoint.Schema.GetFieldByName("add")).Field(checkpoint.Schema.GetFieldByName("remove")).Build();
        var onlyActions = new RecordBatch(schema, [checkpoint.Column("add"), checkpoint.Column("remove")], checkpoint.Length);
        var folder = Path.Combine(table, Log, "_sidecars");
        Directory.CreateDirectory(folder);
        var result = new List<(string, long)>();
        var half = addRows.Length / 2;
        foreach (var part in new[] { addRows[..half], addRows[half..] })
        {
            var name = $"{Guid.NewGuid()}.parquet";
            Write(Path.Combine(folder, name), ArrowKernels.Take(onlyActions, part));
            result.Add((name, new FileInfo(Path.Combine(folder, name)).Length));
        }

        return result;
    }

    [Fact]
    public async Task V2_json_checkpoint_with_sidecars_is_read()
    {
        using var dir = new TempDir();
        var (checkpoint, protocolAndMetadata, ids) = await PrepareAsync(dir);
        var sidecars = WriteSidecars(dir.Path, checkpoint);
        var lines = new List<string> { new JsonObject { ["checkpointMetadata"] = new JsonObject { ["version"] = 3 } }.ToJsonString() };
        lines.AddRange(protocolAndMetadata);
        lines.AddRange(sidecars.Select(s => new JsonObject { ["sidecar"] = new JsonObject { ["path"] = s.Name, ["sizeInBytes"] = s.Size, ["modificationTime"] = 1_700_000_000_000 } }.ToJsonString()));
        await File.WriteAllLinesAsync(Path.Combine(dir.Path, Log, $"00000000000000000003.checkpoint.{Guid.NewGuid()}.json"), lines);

        Assert.Equal(ids, await IdsAsync(dir.Path));
    }

    [Fact]
    public async Task V2_parquet_checkpoint_with_sidecars_is_read()
    {
        using var dir = new TempDir();
        var (checkpoint, _, ids) = await PrepareAsync(dir);
        var sidecars = WriteSidecars(dir.Path, checkpoint);

        // Rows: protocol, metaData, checkpointMetadata, one per sidecar.
        var n = 3 + sidecars.Count;
        var protocolRow = Row(checkpoint, "protocol");
        var metaRow = Row(checkpoint, "metaData");
        var protocol = OnlyAt((StructArray)checkpoint.Column("protocol"), protocolRow, n, 0);
        var meta = OnlyAt((StructArray)checkpoint.Column("metaData"), metaRow, n, 1);
        var cpmType = new ArrowStruct([new ArrowField("version", ArrowTypes.Int64Type.Default, true)]);
        var cpm = new StructArray(cpmType, n, [new Int64Array.Builder().AppendRange(Enumerable.Repeat(3L, n)).Build()], Validity(n, r => r == 2), n - 1);
        var sidecarType = new ArrowStruct([
            new ArrowField("path", ArrowTypes.StringType.Default, true),
            new ArrowField("sizeInBytes", ArrowTypes.Int64Type.Default, true),
            new ArrowField("modificationTime", ArrowTypes.Int64Type.Default, true),
        ]);
        var paths = new StringArray.Builder();
        var sizes = new Int64Array.Builder();
        for (var r = 0; r < n; r++)
        {
            paths.Append(r >= 3 ? sidecars[r - 3].Name : "");
            sizes.Append(r >= 3 ? sidecars[r - 3].Size : 0);
        }

        var sidecar = new StructArray(sidecarType, n, [paths.Build(), sizes.Build(), new Int64Array.Builder().AppendRange(Enumerable.Repeat(1L, n)).Build()], Validity(n, r => r >= 3), 3);
        var schema = new Schema.Builder()
            .Field(checkpoint.Schema.GetFieldByName("protocol"))
            .Field(checkpoint.Schema.GetFieldByName("metaData"))
            .Field(new ArrowField("checkpointMetadata", cpmType, true))
            .Field(new ArrowField("sidecar", sidecarType, true))
            .Build();
        Write(Path.Combine(dir.Path, Log, $"00000000000000000003.checkpoint.{Guid.NewGuid()}.parquet"), new RecordBatch(schema, [protocol, meta, cpm, sidecar], n));

        Assert.Equal(ids, await IdsAsync(dir.Path));
    }

    [Fact]
    public async Task V2_checkpoint_with_a_missing_sidecar_is_refused_naming_it()
    {
        using var dir = new TempDir();
        var (_, protocolAndMetadata, _) = await PrepareAsync(dir);
        var lines = new List<string>(protocolAndMetadata)
        {
            new JsonObject { ["sidecar"] = new JsonObject { ["path"] = "gone.parquet", ["sizeInBytes"] = 1, ["modificationTime"] = 1 } }.ToJsonString(),
        };
        await File.WriteAllLinesAsync(Path.Combine(dir.Path, Log, $"00000000000000000003.checkpoint.{Guid.NewGuid()}.json"), lines);

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => DeltaTable.TryOpenAsync(dir.Path, CancellationToken.None));
        Assert.Contains("gone.parquet", ex.InnerException?.Message ?? ex.Message, StringComparison.Ordinal);
    }

    private static int Row(RecordBatch b, string column)
    {
        var col = b.Column(column);
        return Enumerable.Range(0, b.Length).Single(col.IsValid);
    }

    private static StructArray OnlyAt(StructArray column, int sourceRow, int n, int at)
    {
        var taken = (StructArray)ArrowKernels.Take(column, Enumerable.Repeat(sourceRow, n).ToArray());
        return new StructArray(column.Data.DataType, n, Enumerable.Range(0, taken.Fields.Count).Select(i => ArrowKernels.StructChild(taken, i)), Validity(n, r => r == at), n - 1);
    }

    private static ArrowBuffer Validity(int n, Func<int, bool> valid)
    {
        var b = new ArrowBuffer.BitmapBuilder(n);
        for (var i = 0; i < n; i++)
        {
            b.Append(valid(i));
        }

        return b.Build();
    }
}
