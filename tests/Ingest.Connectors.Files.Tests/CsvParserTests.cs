using System.Text;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Files.Tests;

public sealed class CsvParserTests
{
    private static async Task<List<(long Line, string[] Fields, string? Error, string Raw)>> ParseAsync(byte[] bytes, CsvFormatOptions? options = null, bool trickle = false)
    {
        using var stream = trickle ? (Stream)new TrickleStream(bytes) : new MemoryStream(bytes);
        using var csv = new CsvParser(stream, options ?? new CsvFormatOptions());
        var records = new List<(long, string[], string?, string)>();
        while (await csv.ReadAsync(CancellationToken.None))
        {
            var fields = new string[csv.FieldCount];
            for (var i = 0; i < fields.Length; i++)
            {
                fields[i] = Encoding.UTF8.GetString(csv.Field(i));
            }

            records.Add((csv.LineNumber, fields, csv.Error, Encoding.UTF8.GetString(csv.RawRecord)));
        }

        return records;
    }

    private static Task<List<(long Line, string[] Fields, string? Error, string Raw)>> ParseAsync(string text, CsvFormatOptions? options = null, bool trickle = false) =>
        ParseAsync(Encoding.UTF8.GetBytes(text), options, trickle);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Quoted_fields_keep_delimiters_doubled_quotes_and_line_breaks_and_lines_are_counted_physically(bool trickle)
    {
        var records = await ParseAsync("id,text\r\n1,\"a,b\"\r\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,end", trickle: trickle);

        Assert.Equal(5, records.Count);
        Assert.Equal(["1", "a,b"], records[1].Fields);
        Assert.Equal(["2", "say \"hi\""], records[2].Fields);
        Assert.Equal(["3", "two\nlines"], records[3].Fields);
        Assert.Equal(4, records[3].Line);
        Assert.Equal(["4", "end"], records[4].Fields);
        Assert.Equal(6, records[4].Line); // the record with the embedded line break took lines 4 and 5
        Assert.All(records, r => Assert.Null(r.Error));
    }

    [Fact]
    public async Task Backslash_escape_and_custom_delimiter_and_quote_are_honoured()
    {
        var options = new CsvFormatOptions(Delimiter: (byte)';', Quote: (byte)'\'', Escape: (byte)'\\');
        var records = await ParseAsync("a;'it\\'s; here';c\n", options);

        Assert.Equal(["a", "it's; here", "c"], Assert.Single(records).Fields);
    }

    [Fact]
    public async Task Utf8_bom_is_skipped_and_blank_lines_are_ignored()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes("name\n\nÅsa\n\n")).ToArray();

        var records = await ParseAsync(bytes, trickle: true);

        Assert.Equal(["name"], records[0].Fields);
        Assert.Equal(["Åsa"], records[1].Fields);
        Assert.Equal(3, records[1].Line);
        Assert.Equal(2, records.Count);
    }

    [Theory]
    [InlineData("utf-16")]
    [InlineData("iso-8859-1")]
    [InlineData("windows-1252")]
    public async Task Other_encodings_are_transcoded_to_utf8(string encodingName)
    {
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        var encoding = Encoding.GetEncoding(encodingName);
        var bytes = encoding.GetPreamble().Concat(encoding.GetBytes("city,note\nZürich,\"café, olé\"\n")).ToArray();

        var records = await ParseAsync(bytes, new CsvFormatOptions(Encoding: encoding));

        Assert.Equal(["city", "note"], records[0].Fields);
        Assert.Equal(["Zürich", "café, olé"], records[1].Fields);
    }

    [Fact]
    public async Task An_unclosed_quote_makes_one_malformed_record_holding_the_rest_of_the_file()
    {
        var records = await ParseAsync("a,b\n1,2\n3,\"open\n4,5\n");

        Assert.Equal(3, records.Count);
        Assert.Equal(3, records[2].Line);
        Assert.Contains("not closed", records[2].Error);
        Assert.Equal("3,\"open\n4,5\n", records[2].Raw);
    }

    [Fact]
    public async Task Text_after_a_closing_quote_is_reported_with_the_raw_record()
    {
        var records = await ParseAsync("a,b\n\"x\"y,2\n3,4\n");

        Assert.Contains("after the closing quote", records[1].Error);
        Assert.Equal("\"x\"y,2", records[1].Raw);
        Assert.Null(records[2].Error);
        Assert.Equal(["3", "4"], records[2].Fields);
    }

    [Fact]
    public async Task A_record_larger_than_the_buffer_is_read_whole()
    {
        var big = new string('x', 300_000);
        var records = await ParseAsync($"a,b\n1,\"{big}\"\n2,{big}\n");

        Assert.Equal(big, records[1].Fields[1]);
        Assert.Equal(big, records[2].Fields[1]);
    }

    [Fact]
    public async Task Quoted_empty_field_is_told_apart_from_an_unquoted_one()
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes("\"\",,x\n"));
        using var csv = new CsvParser(stream, new CsvFormatOptions());
        Assert.True(await csv.ReadAsync(CancellationToken.None));

        Assert.True(csv.WasQuoted(0));
        Assert.False(csv.WasQuoted(1));
        Assert.False(csv.WasQuoted(2));
    }
}
