using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Files.Tests;

public sealed class FileTableReaderTests
{
    private const string Orders = """{"name": "orders", "pattern": "orders/*.csv*", "format": "csv"}""";

    [Fact]
    public async Task Csv_columns_are_inferred_as_long_decimal_double_boolean_date_and_timestamps()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", """
            id,amount,ratio,paid,day,at_utc,at_local,note
            1,10.50,1e3,true,2024-01-31,2024-01-31T10:00:00Z,2024-01-31 10:00:00,x
            2,-3.25,0.5,FALSE,2024-02-29,2024-02-01T10:00:00.123456+02:00,2024-02-01T10:00:00.5,
            """);

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders));

        var types = read.Schema.Columns.ToDictionary(c => c.Name, c => c.Type);
        Assert.Equal(DataType.Int64, types["id"]);
        Assert.Equal(DataType.Decimal(4, 2), types["amount"]);
        Assert.Equal(DataType.Double, types["ratio"]);
        Assert.Equal(DataType.Boolean, types["paid"]);
        Assert.Equal(DataType.Date, types["day"]);
        Assert.Equal(DataType.Timestamp, types["at_utc"]);
        Assert.Equal(DataType.TimestampNtz, types["at_local"]);
        Assert.Equal(DataType.String, types["note"]);
        Assert.Equal([FileColumns.RescuedData, "_file", "_file_modified", "_line"], read.Schema.Columns.Skip(8).Select(c => c.Name));

        var rows = Rows.Of(read.Rows);
        Assert.Equal(2, rows.Count);
        Assert.Equal(-3.25m, rows[1]["amount"]);
        Assert.Equal(new DateTimeOffset(2024, 2, 1, 8, 0, 0, TimeSpan.Zero).AddTicks(1234560), rows[1]["at_utc"]);
        Assert.Null(rows[1]["note"]); // the empty unquoted field is the default null marker
        Assert.Equal("orders/a.csv", rows[0]["_file"]);
        Assert.Equal(2L, rows[0]["_line"]);
        Assert.Equal(3L, rows[1]["_line"]);
        Assert.Null(rows[0][FileColumns.RescuedData]);
    }

    [Fact]
    public async Task A_value_that_fits_no_column_is_rescued_with_its_column_name_and_raw_text_and_the_row_is_kept()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,qty,day\n1,5,2024-01-01\n2,lots,2024-13-45\n3,7,2024-01-03\n");
        var table = TableRead.Table("""{"name": "orders", "pattern": "orders/*.csv", "format": "csv", "columns": [{"name": "id", "type": "long"}, {"name": "qty", "type": "integer"}, {"name": "day", "type": "date"}]}""");

        var read = await TableRead.ReadAsync(dir.Path, table);

        var rows = Rows.Of(read.Rows);
        Assert.Equal([1L, 2L, 3L], rows.Select(r => r["id"]));
        Assert.Null(rows[1]["qty"]);
        Assert.Null(rows[1]["day"]);
        var rescued = JsonDocument.Parse((string)rows[1][FileColumns.RescuedData]!).RootElement;
        Assert.Equal("lots", rescued.GetProperty("qty").GetString());
        Assert.Equal("2024-13-45", rescued.GetProperty("day").GetString());
        Assert.Null(rows[0][FileColumns.RescuedData]);
        Assert.Empty(read.DeadLetters);
    }

    [Fact]
    public async Task Columns_not_declared_are_rescued_and_declared_columns_missing_from_the_file_are_null()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,extra\n1,hello\n");
        var table = TableRead.Table("""{"name": "orders", "pattern": "orders/*.csv", "format": "csv", "columns": [{"name": "id", "type": "long"}, {"name": "missing", "type": "string"}]}""");

        var rows = Rows.Of((await TableRead.ReadAsync(dir.Path, table)).Rows);

        Assert.Null(rows[0]["missing"]);
        Assert.Equal("""{"extra":"hello"}""", rows[0][FileColumns.RescuedData]);
    }

    [Fact]
    public async Task A_line_that_cannot_be_parsed_goes_to_the_dead_letters_with_file_line_raw_text_and_error()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,name\n1,ann\n2,bob,extra\n3,\"cy\"x\n4,dee\n");

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders));

        Assert.Equal([1L, 4L], Rows.Of(read.Rows).Select(r => r["id"]));
        var dead = Rows.Of(read.DeadLetters);
        Assert.Equal(2, dead.Count);
        Assert.Equal("orders/a.csv", dead[0]["_file"]);
        Assert.Equal(3L, dead[0]["_line"]);
        Assert.Equal("2,bob,extra", dead[0]["raw"]);
        Assert.Equal("expected 2 fields, found 3", dead[0]["error"]);
        Assert.Equal(4L, dead[1]["_line"]);
        Assert.Contains("closing quote", (string)dead[1]["error"]!);
        Assert.Equal("orders__dead_letters", read.DeadLetters[0].Stream);
        Assert.Equal(FileColumns.Position(1, 3), read.DeadLetters[0].Positions[0]);
    }

    [Fact]
    public async Task Null_markers_are_configurable_and_a_quoted_marker_is_text()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,name\n1,NULL\n2,\"NULL\"\n3,\n");
        var table = TableRead.Table("""{"name": "orders", "pattern": "orders/*.csv", "format": "csv", "options": {"nullValues": ["NULL", "n/a"]}}""");

        var rows = Rows.Of((await TableRead.ReadAsync(dir.Path, table)).Rows);

        Assert.Null(rows[0]["name"]);
        Assert.Equal("NULL", rows[1]["name"]);
        Assert.Equal("", rows[2]["name"]);
    }

    [Fact]
    public async Task Gzip_and_zstd_files_are_decompressed_by_extension()
    {
        using var dir = new TempDir();
        dir.WriteBytes("orders/a.csv.gz", Compress.Gzip("id,name\n1,gz\n"), secondsAgo: 30);
        dir.WriteBytes("orders/b.csv.zst", Compress.Zstd("id,name\n2,zstd\n"), secondsAgo: 20);
        dir.Write("orders/c.csv", "id,name\n3,plain\n", secondsAgo: 10);

        var rows = Rows.Of((await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders))).Rows);

        Assert.Equal(["gz", "zstd", "plain"], rows.Select(r => r["name"]));
    }

    [Fact]
    public async Task Csv_without_header_has_positional_columns_and_tab_delimiter()
    {
        using var dir = new TempDir();
        dir.Write("t/a.tsv", "1\tx\n2\ty\n");
        var table = TableRead.Table("""{"name": "t", "pattern": "t/*.tsv", "format": "csv", "options": {"header": false, "delimiter": "\t"}}""");

        var read = await TableRead.ReadAsync(dir.Path, table);

        Assert.Equal(["_c0", "_c1"], read.Schema.Columns.Take(2).Select(c => c.Name));
        Assert.Equal([1L, 2L], Rows.Of(read.Rows).Select(r => r["_c0"]));
        Assert.Equal([1L, 2L], Rows.Of(read.Rows).Select(r => r["_line"]));
    }

    [Fact]
    public async Task A_later_file_widens_an_inferred_column_from_long_to_decimal_and_adds_new_columns()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,amount\n1,10\n", secondsAgo: 20);
        dir.Write("orders/b.csv", "id,amount,coupon\n2,10.25,SPRING\n", secondsAgo: 10);

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders));

        Assert.Equal(DataType.Int64, read.Rows[0].Data.Schema.GetFieldByName("amount").DataType is Int64Type ? DataType.Int64 : null);
        var widened = StreamSchema.FromArrow(read.Rows[1].Data.Schema);
        Assert.Equal(DataType.Decimal(21, 2), widened["amount"].Type);
        Assert.Equal(DataType.String, widened["coupon"].Type);
        Assert.Equal(read.Schema, widened);
        Assert.Equal(10.25m, Rows.Of(read.Rows[1].Data)[0]["amount"]);
        Assert.Null(Rows.Of(read.Rows[1].Data)[0][FileColumns.RescuedData]);
    }

    [Fact]
    public async Task Without_evolution_a_value_of_a_wider_type_is_rescued()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id,amount\n1,10\n", secondsAgo: 20);
        dir.Write("orders/b.csv", "id,amount\n2,10.25\n", secondsAgo: 10);

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders), evolve: false);

        var rows = Rows.Of(read.Rows);
        Assert.Equal(DataType.Int64, read.Schema["amount"].Type);
        Assert.Null(rows[1]["amount"]);
        Assert.Equal("""{"amount":"10.25"}""", rows[1][FileColumns.RescuedData]);
    }

    [Fact]
    public async Task Json_lines_are_read_with_nested_values_as_json_text_unknown_fields_rescued_and_bad_lines_dead_lettered()
    {
        using var dir = new TempDir();
        dir.Write("events/a.jsonl", """
            {"id": 1, "name": "caf\u00e9", "tags": ["a", "b"], "at": "2024-05-01T00:00:00Z", "ok": true}
            {"id": 2, "name": null, "ok": false}

            {"id": 3, oops}
            {"id": 4, "name": "d", "ok": true}
            """, secondsAgo: 20);
        dir.Write("events/b.jsonl", """{"id": "five", "name": "e", "ok": true, "surprise": {"x": 1}}""" + "\n", secondsAgo: 10);
        var table = TableRead.Table("""{"name": "events", "pattern": "events/*.jsonl", "format": "jsonl", "columns": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}, {"name": "tags", "type": "string"}, {"name": "at", "type": "timestamp"}, {"name": "ok", "type": "boolean"}]}""");

        var read = await TableRead.ReadAsync(dir.Path, table);

        var rows = Rows.Of(read.Rows);
        Assert.Equal(4, rows.Count);
        Assert.Equal("café", rows[0]["name"]);
        Assert.Equal("""["a", "b"]""", rows[0]["tags"]);
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 0, 0, 0, TimeSpan.Zero), rows[0]["at"]);
        Assert.Null(rows[1]["name"]);
        Assert.Equal(false, rows[1]["ok"]);
        Assert.Equal(5L, rows[2]["_line"]);
        Assert.Null(rows[3]["id"]);
        var rescued = JsonDocument.Parse((string)rows[3][FileColumns.RescuedData]!).RootElement;
        Assert.Equal("five", rescued.GetProperty("id").GetString());
        Assert.Equal("""{"x": 1}""", rescued.GetProperty("surprise").GetString());
        var dead = Assert.Single(Rows.Of(read.DeadLetters));
        Assert.Equal(4L, dead["_line"]);
        Assert.Equal("""{"id": 3, oops}""", dead["raw"]);
        Assert.StartsWith("invalid JSON", (string)dead["error"]!);
    }

    [Fact]
    public async Task Json_lines_schema_is_inferred_in_order_of_first_appearance()
    {
        using var dir = new TempDir();
        dir.Write("e/a.jsonl", "{\"b\": 1, \"a\": \"2024-01-01\"}\n{\"c\": 1.5, \"b\": 2, \"d\": {\"k\": 1}}\n");
        var table = TableRead.Table("""{"name": "e", "pattern": "e/*.jsonl", "format": "jsonl"}""");

        var read = await TableRead.ReadAsync(dir.Path, table);

        Assert.Equal("b long, a date, c decimal(2,1), d string", string.Join(", ", read.Schema.Columns.Take(4).Select(c => $"{c.Name} {c.Type.DisplayName}")));
        Assert.Equal("""{"k": 1}""", Rows.Of(read.Rows)[1]["d"]);
    }

    [Fact]
    public async Task Parquet_files_are_read_with_their_schema_and_row_numbers()
    {
        using var dir = new TempDir();
        var path = dir.Combine("p", "a.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var schema = new Schema.Builder()
            .Field(new Apache.Arrow.Field("id", Int64Type.Default, false))
            .Field(new Apache.Arrow.Field("price", new Decimal128Type(10, 2), true))
            .Field(new Apache.Arrow.Field("name", StringType.Default, true))
            .Field(new Apache.Arrow.Field("at", new TimestampType(TimeUnit.Microsecond, "UTC"), true))
            .Field(new Apache.Arrow.Field("tags", new ListType(new Apache.Arrow.Field("element", StringType.Default, true)), true))
            .Build();
        var tags = new ListArray.Builder(StringType.Default);
        var tagValues = (StringArray.Builder)tags.ValueBuilder;
        tags.Append();
        tagValues.Append("x").Append("y");
        tags.AppendNull();
        var price = new Decimal128Array.Builder(new Decimal128Type(10, 2)).Append(1.5m).AppendNull().Build();
        var at = new TimestampArray.Builder(new TimestampType(TimeUnit.Microsecond, "UTC")).Append(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero)).AppendNull().Build();
        using (var batch = new RecordBatch(schema, [new Int64Array.Builder().Append(1).Append(2).Build(), price, new StringArray.Builder().Append("a").Append("b").Build(), at, tags.Build()], 2))
        using (var writer = new ParquetSharp.Arrow.FileWriter(path, schema))
        {
            writer.WriteRecordBatch(batch);
            writer.Close();
        }

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table("""{"name": "p", "pattern": "p/*.parquet", "format": "parquet"}"""));

        Assert.Equal(DataType.Decimal(10, 2), read.Schema["price"].Type);
        Assert.Equal(DataType.Timestamp, read.Schema["at"].Type);
        var rows = Rows.Of(read.Rows);
        Assert.Equal(1.5m, rows[0]["price"]);
        Assert.Null(rows[1]["price"]);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero), rows[0]["at"]);
        Assert.Equal([1L, 2L], rows.Select(r => r["_line"]));
        Assert.Equal("b", rows[1]["name"]);
        Assert.Equal(DataType.String, read.Schema["tags"].Type);
        Assert.Equal("""["x","y"]""", rows[0]["tags"]);
        Assert.Null(rows[1]["tags"]);
    }

    [Fact]
    public async Task Rows_carry_positions_of_file_ordinal_and_line_and_batches_split_at_batch_rows()
    {
        using var dir = new TempDir();
        dir.Write("orders/a.csv", "id\n" + string.Join("\n", Enumerable.Range(1, 25)) + "\n");
        var table = TableRead.Table("""{"name": "orders", "pattern": "orders/*.csv", "format": "csv", "options": {"batchRows": 10}}""");

        var read = await TableRead.ReadAsync(dir.Path, table);

        Assert.Equal([10, 10, 5], read.Rows.Select(b => b.Length));
        var positions = read.Rows.SelectMany(b => b.Positions.Take(b.Length)).ToList();
        Assert.Equal(FileColumns.Position(1, 2), positions[0]);
        Assert.Equal(FileColumns.Position(1, 26), positions[^1]);
        Assert.True(positions.Zip(positions.Skip(1)).All(p => p.First < p.Second));
        Assert.All(read.Rows, b => Assert.All(b.Ops.Take(b.Length), op => Assert.Equal(ChangeOp.Read, op)));
    }

    [Fact]
    public async Task A_file_larger_than_the_sample_prefix_is_read_whole_after_its_sample_is_replayed()
    {
        using var dir = new TempDir();
        var sb = new System.Text.StringBuilder("id,text\n");
        const int rows = 200_000;
        for (var i = 1; i <= rows; i++)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i},\"line {i}, with a comma\"\n");
        }

        dir.Write("orders/a.csv", "id,text\n0,first\n", secondsAgo: 20);
        dir.WriteBytes("orders/big.csv.gz", Compress.Gzip(sb.ToString()), secondsAgo: 10);
        Assert.True(sb.Length > 4 << 20);

        var read = await TableRead.ReadAsync(dir.Path, TableRead.Table(Orders));

        var ids = read.Rows.SelectMany(b => Rows.Of(b.Data)).Select(r => (long)r["id"]!).ToList();
        Assert.Equal(rows + 1, ids.Count);
        Assert.Equal(Enumerable.Range(0, rows + 1).Select(i => (long)i), ids);
        Assert.Empty(read.DeadLetters);
    }

    [Fact]
    public async Task The_encoding_option_reads_latin1_files()
    {
        using var dir = new TempDir();
        System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
        dir.Write("t/a.csv", "id,city\n1,Zürich\n", encoding: System.Text.Encoding.GetEncoding("windows-1252"));
        var table = TableRead.Table("""{"name": "t", "pattern": "t/*.csv", "format": "csv", "options": {"encoding": "windows-1252"}}""");

        var rows = Rows.Of((await TableRead.ReadAsync(dir.Path, table)).Rows);

        Assert.Equal("Zürich", rows[0]["city"]);
    }

    [Fact]
    public void Bad_table_settings_are_refused_naming_the_field()
    {
        var unknownEncoding = Assert.Throws<Ingest.Sdk.Connectors.ConnectorException>(() => TableRead.Table("""{"name": "t", "pattern": "*.csv", "format": "csv", "options": {"encoding": "klingon"}}"""));
        var badType = Assert.Throws<Ingest.Sdk.Connectors.ConnectorException>(() => TableRead.Table("""{"name": "t", "pattern": "*.csv", "format": "csv", "columns": [{"name": "a", "type": "int4"}]}"""));
        var badGlob = Assert.Throws<Ingest.Sdk.Connectors.ConnectorException>(() => TableRead.Table("""{"name": "t", "pattern": "{a,b", "format": "csv"}"""));
        var clash = Assert.Throws<Ingest.Sdk.Connectors.ConnectorException>(() => TableRead.Table("""{"name": "t", "pattern": "*.csv", "format": "csv", "columns": [{"name": "_file", "type": "string"}]}"""));

        Assert.Equal("/tables/0/options/encoding", unknownEncoding.Field);
        Assert.Equal("/tables/0/columns/0/type", badType.Field);
        Assert.Equal("/tables/0/pattern", badGlob.Field);
        Assert.Equal("/tables/0/columns/0/name", clash.Field);
    }
}
