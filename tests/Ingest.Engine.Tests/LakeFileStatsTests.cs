using System.Globalization;
using System.Text.Json.Nodes;
using DuckDB.NET.Data;
using Ingest.Delta;
using Ingest.Sdk.Types;

namespace Ingest.Engine.Tests;

/// <summary>
/// The files a pipeline writes, read by an independent Parquet reader (DuckDB): the stats in the Delta log equal
/// each file's real row count, null counts, minima and maxima (Spark's rules: strings cut to 32 characters with the
/// tie-breaker on maxima, timestamps at millisecond precision).
/// </summary>
public sealed class LakeFileStatsTests
{
    [Fact]
    public async Task Stats_of_every_file_the_pipeline_wrote_equal_what_DuckDB_reads_from_the_file()
    {
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", SampleLake.Pipeline("{seed: 3, customers: 200, products: 40, orders: 400, changes: 1500, changesPerSecond: 0, batchSize: 300}"));
        var run = await Cli.RunAsync("run", pipeline, "--once", "--plugins", Repo.Plugins, "--data", dir.Combine("state"));
        Assert.True(run.ExitCode == 0, run.Error);

        using var db = new DuckDBConnection("Data Source=:memory:");
        db.Open();
        var checkedValues = 0;
        foreach (var tablePath in SampleLake.Streams.SelectMany(s => new[] { dir.Combine("lake", "shop", s), dir.Combine("lake", "shop_log", s) }))
        {
            var table = await DeltaTable.TryOpenAsync(tablePath, CancellationToken.None) ?? throw new InvalidOperationException($"no table at {tablePath}");
            var snapshot = table.Snapshot;
            Assert.NotEmpty(snapshot.Files);
            foreach (var file in snapshot.Files)
            {
                var path = Path.Combine(tablePath, Uri.UnescapeDataString(file.Path));
                Assert.Equal(new FileInfo(path).Length, file.Size);
                var stats = JsonNode.Parse(file.Stats ?? throw new InvalidOperationException($"{file.Path} has no stats"))!;
                var from = $"read_parquet('{path.Replace("'", "''", StringComparison.Ordinal)}')";
                Assert.Equal(Long(db, $"select count(*) from {from}"), stats["numRecords"]!.GetValue<long>());

                foreach (var column in snapshot.Schema.Columns)
                {
                    var where = $"{tablePath}/{file.Path} column {column.Name}";
                    var q = $"\"{column.Name}\"";
                    Assert.True(Long(db, $"select count(*) - count({q}) from {from}") == stats["nullCount"]![column.Name]!.GetValue<long>(), $"nullCount of {where}");
                    var min = stats["minValues"]?[column.Name];
                    var max = stats["maxValues"]?[column.Name];
                    var nonNull = Long(db, $"select count({q}) from {from}");
                    switch (column.Type)
                    {
                        case PrimitiveType { Kind: PrimitiveKind.Int32 or PrimitiveKind.Int64 }:
                            Assert.True(nonNull == 0 || Long(db, $"select min({q}) from {from}") == min!.GetValue<long>(), $"min of {where}");
                            Assert.True(nonNull == 0 || Long(db, $"select max({q}) from {from}") == max!.GetValue<long>(), $"max of {where}");
                            break;
                        case DecimalType:
                            Assert.True(nonNull == 0 || decimal.Parse(Text(db, $"select min({q})::varchar from {from}"), CultureInfo.InvariantCulture) == min!.GetValue<decimal>(), $"min of {where}");
                            Assert.True(nonNull == 0 || decimal.Parse(Text(db, $"select max({q})::varchar from {from}"), CultureInfo.InvariantCulture) == max!.GetValue<decimal>(), $"max of {where}");
                            break;
                        case PrimitiveType { Kind: PrimitiveKind.String }:
                            if (nonNull > 0)
                            {
                                // DuckDB compares strings bytewise (UTF-8), as Spark's stats do.
                                var realMin = Text(db, $"select min({q}) from {from}");
                                var realMax = Text(db, $"select max({q}) from {from}");
                                Assert.True(Prefix(realMin) == min!.GetValue<string>(), $"min of {where}");
                                Assert.True(TruncatedMax(realMax) == max!.GetValue<string>(), $"max of {where}");
                            }

                            break;
                        case PrimitiveType { Kind: PrimitiveKind.Timestamp }:
                            Assert.True(nonNull == 0 || Text(db, $"select strftime(min({q}) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') from {from}") == min!.GetValue<string>(), $"min of {where}");
                            Assert.True(nonNull == 0 || Text(db, $"select strftime(max({q}) at time zone 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') from {from}") == max!.GetValue<string>(), $"max of {where}");
                            break;
                        case PrimitiveType { Kind: PrimitiveKind.Date }:
                            Assert.True(nonNull == 0 || Text(db, $"select strftime(min({q}), '%Y-%m-%d') from {from}") == min!.GetValue<string>(), $"min of {where}");
                            Assert.True(nonNull == 0 || Text(db, $"select strftime(max({q}), '%Y-%m-%d') from {from}") == max!.GetValue<string>(), $"max of {where}");
                            break;
                        case PrimitiveType { Kind: PrimitiveKind.Boolean }:
                            Assert.Null(min);
                            Assert.Null(max);
                            break;
                    }

                    checkedValues++;
                }
            }
        }

        Assert.True(checkedValues > 100, $"only {checkedValues} column statistics were checked");
    }

    private static string Prefix(string s) => s.Length <= 32 ? s : s[..32];

    private static string TruncatedMax(string s)
    {
        if (s.Length <= 32)
        {
            return s;
        }

        return s[32] < '\u007F' ? s[..32] + "\u007F" : s[..32] + char.ConvertFromUtf32(0x10FFFF);
    }

    private static long Long(DuckDBConnection db, string sql) => Convert.ToInt64(Scalar(db, sql), CultureInfo.InvariantCulture);

    private static string Text(DuckDBConnection db, string sql) => Convert.ToString(Scalar(db, sql), CultureInfo.InvariantCulture)!;

    private static object? Scalar(DuckDBConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
