using System.Globalization;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Delta.Operations;
using Ingest.Delta.Parquet;
using Ingest.Delta.Storage;
using Ingest.Sdk.Types;
using ParquetSharp;
using DataType = Ingest.Sdk.Types.DataType;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Delta.Tests;

/// <summary>
/// The data file writer's fast paths: columns encoded in parallel, the dictionary only where it pays, stats scanned
/// column by column in parallel straight from the Arrow buffers.
/// </summary>
public sealed class ParallelWriteTests
{
    private static readonly StreamSchema Schema = new([
        new Field("id", DataType.Int64, false),
        new Field("qty", DataType.Int32, false),
        new Field("price", DataType.Decimal(12, 2)),
        new Field("at", DataType.Timestamp),
        new Field("name", DataType.String, false),
        new Field("status", DataType.String),
    ]);

    private static readonly string[] Statuses = ["new", "paid", "shipped"];
    private static readonly DateTimeOffset T0 = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static decimal? Price(long i) => i % 5 == 0 ? null : (i * 7 % 100_003) / 100m - 300m;

    private static DateTimeOffset? At(long i) => i % 3 == 0 ? null : T0.AddSeconds(-i * 13 % 86_413);

    private static string Name(long i) => string.Create(CultureInfo.InvariantCulture, $"c-{i % 20:D2}");

    private static string? Status(long i) => i % 7 == 0 ? null : Statuses[i % 3];

    /// <summary>Rows <paramref name="start"/> .. start+count: unique ids, prices and times; few qtys, names, statuses.</summary>
    private static RecordBatch Rows(long start, int count)
    {
        var id = new Int64Array.Builder();
        var qty = new Int32Array.Builder();
        var price = new Decimal128Array.Builder((Decimal128Type)DataType.Decimal(12, 2).ToArrowType());
        var at = new TimestampArray.Builder((TimestampType)DataType.Timestamp.ToArrowType());
        var name = new StringArray.Builder();
        var status = new StringArray.Builder();
        for (var i = start; i < start + count; i++)
        {
            id.Append(i);
            qty.Append((int)(i % 10));
            if (Price(i) is { } p)
            {
                price.Append(p);
            }
            else
            {
                price.AppendNull();
            }

            if (At(i) is { } t)
            {
                at.Append(t);
            }
            else
            {
                at.AppendNull();
            }

            name.Append(Name(i));
            if (Status(i) is { } s)
            {
                status.Append(s);
            }
            else
            {
                status.AppendNull();
            }
        }

        return new RecordBatch(Schema.ToArrowSchema(), [id.Build(), qty.Build(), price.Build(), at.Build(), name.Build(), status.Build()], count);
    }

    [Fact]
    public void Unique_columns_are_written_plain_and_repeated_ones_keep_their_dictionary()
    {
        var plain = DictionaryChoice.PlainColumns(Rows(0, 20_000));

        Assert.Equal(["id", "price", "at"], plain);
    }

    [Fact]
    public void A_first_batch_too_small_to_judge_keeps_every_dictionary()
    {
        Assert.Empty(DictionaryChoice.PlainColumns(Rows(0, DictionaryChoice.MinSampleRows - 1)));
    }

    [Fact]
    public async Task Written_file_has_dictionary_pages_only_for_repeated_columns_and_reads_back_every_row()
    {
        using var dir = new TempDir();
        var table = await DeltaTable.OpenOrCreateAsync(dir.Path, Schema, [], null, CancellationToken.None);
        const int n = 150_000;
        await table.AppendAsync([Rows(0, 70_000), Rows(70_000, n - 70_000)], new CommitOptions("WRITE"), CancellationToken.None);

        var file = Assert.Single(table.Snapshot.Files);
        using (var reader = new ParquetFileReader(Path.Combine(dir.Path, file.Path)))
        {
            Assert.Equal(2, reader.FileMetaData.NumRowGroups);
            using var rowGroup = reader.RowGroup(0);
            var dictionary = new List<string>();
            for (var c = 0; c < Schema.Count; c++)
            {
                var encodings = rowGroup.MetaData.GetColumnChunkMetaData(c).Encodings;
                if (encodings.Contains(ParquetSharp.Encoding.RleDictionary) || encodings.Contains(ParquetSharp.Encoding.PlainDictionary))
                {
                    dictionary.Add(Schema.Columns[c].Name);
                }
            }

            Assert.Equal(["qty", "name", "status"], dictionary);
        }

        // Every value comes back as written (columns encoded in parallel, some plain, some with a dictionary).
        var seen = 0;
        await foreach (var batch in table.ScanAsync(table.Snapshot, CancellationToken.None))
        {
            var ids = (Int64Array)batch.Column(0);
            var qty = (Int32Array)batch.Column(1);
            var price = (Decimal128Array)batch.Column(2);
            var at = (TimestampArray)batch.Column(3);
            var name = (StringArray)batch.Column(4);
            var status = (StringArray)batch.Column(5);
            for (var r = 0; r < batch.Length; r++)
            {
                var i = ids.GetValue(r)!.Value;
                Assert.Equal((int)(i % 10), qty.GetValue(r));
                Assert.Equal(Price(i), price.GetValue(r));
                Assert.Equal(At(i), at.GetTimestamp(r));
                Assert.Equal(Name(i), name.GetString(r));
                Assert.Equal(Status(i), status.GetString(r));
                seen++;
            }
        }

        Assert.Equal(n, seen);
    }

    [Fact]
    public void Stats_of_sliced_batches_scanned_in_parallel_match_a_row_by_row_computation()
    {
        const int n = 60_000;
        var all = Rows(0, n);
        var stats = new StatsCollector(Schema.Columns, 32);
        // Slices start at an offset into the buffers, with and without nulls in them, above and below the parallel size.
        stats.Add(all.Slice(0, 1));
        stats.Add(all.Slice(1, 4));
        stats.Add(all.Slice(5, 20_000));
        stats.Add(all.Slice(20_005, n - 20_005));

        var json = JsonNode.Parse(stats.ToJson())!;
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToList();
        var prices = ids.Select(Price).Where(p => p is not null).Select(p => p!.Value).ToList();
        var ats = ids.Select(At).Where(t => t is not null).Select(t => t!.Value).ToList();
        var statuses = ids.Select(Status).Where(s => s is not null).Select(s => s!).ToList();
        Assert.Equal(n, json["numRecords"]!.GetValue<long>());
        Assert.Equal(0, json["minValues"]!["id"]!.GetValue<long>());
        Assert.Equal(n - 1, json["maxValues"]!["id"]!.GetValue<long>());
        Assert.Equal(0, json["minValues"]!["qty"]!.GetValue<long>());
        Assert.Equal(9, json["maxValues"]!["qty"]!.GetValue<long>());
        Assert.Equal(prices.Min(), json["minValues"]!["price"]!.GetValue<decimal>());
        Assert.Equal(prices.Max(), json["maxValues"]!["price"]!.GetValue<decimal>());
        Assert.Equal(StatsCollector.FormatTimestamp(ats.Min().ToUnixTimeMilliseconds() * 1000, utc: true), json["minValues"]!["at"]!.GetValue<string>());
        Assert.Equal(StatsCollector.FormatTimestamp(ats.Max().ToUnixTimeMilliseconds() * 1000, utc: true), json["maxValues"]!["at"]!.GetValue<string>());
        Assert.Equal("c-00", json["minValues"]!["name"]!.GetValue<string>());
        Assert.Equal("c-19", json["maxValues"]!["name"]!.GetValue<string>());
        Assert.Equal(statuses.Min(StringComparer.Ordinal), json["minValues"]!["status"]!.GetValue<string>());
        Assert.Equal(statuses.Max(StringComparer.Ordinal), json["maxValues"]!["status"]!.GetValue<string>());
        Assert.Equal(0, json["nullCount"]!["id"]!.GetValue<long>());
        Assert.Equal(n - prices.Count, json["nullCount"]!["price"]!.GetValue<long>());
        Assert.Equal(n - ats.Count, json["nullCount"]!["at"]!.GetValue<long>());
        Assert.Equal(n - statuses.Count, json["nullCount"]!["status"]!.GetValue<long>());
    }

    [Fact]
    public async Task Opening_a_file_past_max_open_files_closes_the_one_written_least_recently()
    {
        using var dir = new TempDir();
        var schema = new StreamSchema([new Field("id", DataType.Int64, false), new Field("part", DataType.String, false)]);
        using var writer = new TableWriter(new LocalLogStore(dir.Path), schema, ["part"], new Dictionary<string, string>(), maxRowsPerFile: 1_000_000) { MaxOpenFiles = 2 };
        var next = 0L;
        RecordBatch Batch(string part, int rows)
        {
            var ids = new Int64Array.Builder();
            var parts = new StringArray.Builder();
            for (var i = 0; i < rows; i++)
            {
                ids.Append(next++);
                parts.Append(part);
            }

            return new RecordBatch(schema.ToArrowSchema(), [ids.Build(), parts.Build()], rows);
        }

        // a, b open; c closes a; a again closes b; the end closes c and the second a.
        writer.Write(Batch("a", 10));
        writer.Write(Batch("b", 20));
        writer.Write(Batch("c", 30));
        writer.Write(Batch("a", 40));
        var adds = await writer.FinishAsync(CancellationToken.None);

        var files = adds.Select(a => (Part: a.PartitionValues["part"], Rows: JsonNode.Parse(a.Stats!)!["numRecords"]!.GetValue<long>())).OrderBy(f => f.Part).ThenBy(f => f.Rows).ToList();
        Assert.Equal([("a", 10L), ("a", 40L), ("b", 20L), ("c", 30L)], files);
        Assert.All(adds, a => Assert.True(File.Exists(Path.Combine(dir.Path, Uri.UnescapeDataString(a.Path))), a.Path));
        Assert.Equal(100, writer.RowsWritten);
    }

    [Fact]
    public void Max_open_files_below_one_is_refused()
    {
        using var dir = new TempDir();
        using var writer = new TableWriter(new LocalLogStore(dir.Path), Schema, [], new Dictionary<string, string>(), maxRowsPerFile: 10);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => writer.MaxOpenFiles = 0);

        Assert.Equal("value", error.ParamName);
    }
}
