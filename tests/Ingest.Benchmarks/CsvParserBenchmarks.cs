using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Benchmarks;

/// <summary>
/// Which CSV parser the file connectors use: Ingest.Sdk.Files' own UTF-8 parser against Sylvan.Data.Csv and
/// CsvHelper, each parsing a ~100 MB generated file of mixed types (long, decimal, double, boolean, date,
/// timestamp, quoted text with delimiters and quotes) and putting every value into a ChangeBatchBuilder's
/// typed setters, as the connector does. Run: <c>dotnet run -c Release --project tests/Ingest.Benchmarks -- --filter *CsvParser* --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class CsvParserBenchmarks
{
    private const int BatchRows = 65_536;

    private static readonly StreamSchema Schema = new(
    [
        new Field("id", DataType.Int64),
        new Field("amount", DataType.Decimal(12, 2)),
        new Field("ratio", DataType.Double),
        new Field("paid", DataType.Boolean),
        new Field("day", DataType.Date),
        new Field("at", DataType.Timestamp),
        new Field("name", DataType.String),
        new Field("note", DataType.String),
    ]);

    private string _path = "";

    /// <summary>Target size of the generated file in MB.</summary>
    [Params(100)]
    public int SizeMb { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"ingest-csv-bench-{SizeMb}mb.csv");
        if (File.Exists(_path) && new FileInfo(_path).Length >= SizeMb * 1_000_000L)
        {
            return;
        }

        Generate(_path, SizeMb * 1_000_000L);
    }

    /// <summary>Writes the benchmark file (deterministic).</summary>
    public static void Generate(string path, long bytes)
    {
        var rng = new Random(42);
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        w.Write("id,amount,ratio,paid,day,at,name,note\n");
        var t0 = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        string[] names = ["Ann", "Bob", "Cy \"the great\"", "Dee, Jr.", "Émile", "Zoë"];
        long id = 0;
        while (w.BaseStream.Length < bytes)
        {
            for (var k = 0; k < 10_000; k++)
            {
                id++;
                var name = names[rng.Next(names.Length)];
                var quoted = name.Contains('"', StringComparison.Ordinal) || name.Contains(',', StringComparison.Ordinal);
                w.Write(string.Create(CultureInfo.InvariantCulture,
                    $"{id},{rng.Next(0, 10_000_000) / 100m:0.00},{rng.NextDouble() * 1000:R},{(rng.Next(2) == 0 ? "true" : "false")},{t0.AddDays(rng.Next(3650)):yyyy-MM-dd},{t0.AddSeconds(rng.Next(300_000_000)):yyyy-MM-ddTHH:mm:ss.ffffffZ},"));
                w.Write(quoted ? "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : name);
                w.Write(',');
                w.Write(rng.Next(4) == 0 ? "" : "some free text " + rng.Next(1000).ToString(CultureInfo.InvariantCulture));
                w.Write('\n');
            }
        }
    }

    /// <summary>Ingest.Sdk.Files.CsvParser: UTF-8 spans straight into the typed setters (TextValues).</summary>
    [Benchmark(Baseline = true)]
    public async Task<long> Own()
    {
        await using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var csv = new CsvParser(stream, new CsvFormatOptions());
        var b = new ChangeBatchBuilder("bench", Schema, BatchRows);
        var types = Schema.Columns.Select(c => c.Type).ToArray();
        long rows = 0;
        var header = true;
        while (await csv.ReadAsync(CancellationToken.None))
        {
            if (header)
            {
                header = false;
                continue;
            }

            b.BeginRow(ChangeOp.Insert, new SourcePosition(1, (ulong)csv.LineNumber), 0);
            for (var i = 0; i < types.Length; i++)
            {
                var v = csv.Field(i);
                if (v.IsEmpty && !csv.WasQuoted(i))
                {
                    continue;
                }

                if (!TextValues.TryWrite(b, i, types[i], v))
                {
                    b.SetNull(i);
                }
            }

            b.EndRow();
            rows = Flush(b, rows);
        }

        return rows + b.Count;
    }

    /// <summary>The whole per-file path of the file connectors: parser, typed setters, rescue checks and metadata columns.</summary>
    [Benchmark]
    public async Task<long> OwnFileTableReader()
    {
        var table = new FileTableOptions("bench", "*.csv", FileFormat.Csv, new CsvFormatOptions(), Schema.Columns, [], BatchRows: BatchRows);
        var store = new SingleFileStore(_path);
        using var reader = new FileTableReader(store, table, FileColumns.Schema(Schema.Columns));
        long rows = 0;
        await foreach (var chunk in reader.ReadAsync(store.Entry, 1, 0, ChangeOp.Insert, evolve: false, CancellationToken.None))
        {
            if (chunk.Rows is { } b)
            {
                rows += b.Length;
                b.Dispose();
            }

            chunk.DeadLetters?.Dispose();
        }

        return rows;
    }

    private sealed class SingleFileStore(string path) : IFileStore
    {
        public FileEntry Entry { get; } = new(Path.GetFileName(path), new FileInfo(path).Length, File.GetLastWriteTimeUtc(path));

        public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield return Entry;
        }

        public Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken) =>
            Task.FromResult<Stream>(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan));
    }

    /// <summary>Sylvan.Data.Csv: char spans (GetFieldSpan), parsed with the BCL span parsers.</summary>
    [Benchmark]
    public async Task<long> Sylvan()
    {
        using var text = new StreamReader(_path, Encoding.UTF8, true, 1 << 16);
        await using var csv = await global::Sylvan.Data.Csv.CsvDataReader.CreateAsync(text, new global::Sylvan.Data.Csv.CsvDataReaderOptions { HasHeaders = true, BufferSize = 1 << 16 });
        var b = new ChangeBatchBuilder("bench", Schema, BatchRows);
        var utf8 = new byte[4096];
        long rows = 0;
        long line = 1;
        while (await csv.ReadAsync())
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition(1, (ulong)++line), 0);
            for (var i = 0; i < 8; i++)
            {
                var v = csv.GetFieldSpan(i);
                if (v.IsEmpty)
                {
                    continue;
                }

                WriteChars(b, i, v, utf8);
            }

            b.EndRow();
            rows = Flush(b, rows);
        }

        return rows + b.Count;
    }

    /// <summary>CsvHelper 34: its SIMD UTF-8 reader (GetSpan gives UTF-8 bytes), into the same typed setters as Own.</summary>
    [Benchmark]
    public async Task<long> CsvHelper()
    {
        await using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var csv = global::CsvHelper.CsvReader.Create(stream, new global::CsvHelper.CsvReaderOptions { HasHeader = true }, false);
        var b = new ChangeBatchBuilder("bench", Schema, BatchRows);
        var types = Schema.Columns.Select(c => c.Type).ToArray();
        long rows = 0;
        long line = 1;
        while (await csv.ReadAsync(CancellationToken.None))
        {
            b.BeginRow(ChangeOp.Insert, new SourcePosition(1, (ulong)++line), 0);
            for (var i = 0; i < types.Length; i++)
            {
                var v = csv.GetSpan(i);
                if (v.IsEmpty)
                {
                    continue;
                }

                if (!TextValues.TryWrite(b, i, types[i], v))
                {
                    b.SetNull(i);
                }
            }

            b.EndRow();
            rows = Flush(b, rows);
        }

        return rows + b.Count;
    }

    private static void WriteChars(ChangeBatchBuilder b, int column, ReadOnlySpan<char> v, byte[] utf8)
    {
        switch (column)
        {
            case 0: b.SetInt64(0, long.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture)); break;
            case 1: b.SetDecimal(1, decimal.Parse(v, NumberStyles.Number, CultureInfo.InvariantCulture)); break;
            case 2: b.SetDouble(2, double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture)); break;
            case 3: b.SetBoolean(3, bool.Parse(v)); break;
            case 4: b.SetDate(4, DateOnly.ParseExact(v, "yyyy-MM-dd", CultureInfo.InvariantCulture)); break;
            case 5: b.SetTimestamp(5, DateTimeOffset.Parse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)); break;
            default:
                var n = Encoding.UTF8.GetBytes(v, utf8);
                b.SetStringUtf8(column, utf8.AsSpan(0, n));
                break;
        }
    }

    private static long Flush(ChangeBatchBuilder b, long rows)
    {
        if (b.Count >= BatchRows)
        {
            rows += b.Count;
            b.Build().Dispose();
        }

        return rows;
    }
}
