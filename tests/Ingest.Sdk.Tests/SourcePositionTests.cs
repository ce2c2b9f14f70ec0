using Ingest.Sdk.Records;

namespace Ingest.Sdk.Tests;

public class SourcePositionTests
{
    [Fact]
    public void Positions_order_by_high_then_low()
    {
        var a = new SourcePosition(1, ulong.MaxValue);
        var b = new SourcePosition(2, 0);
        var c = new SourcePosition(2, 1);

        Assert.True(a < b);
        Assert.True(b < c);
        Assert.True(c > a);
        Assert.True(b <= new SourcePosition(2, 0));
        Assert.True(b >= new SourcePosition(2, 0));
        Assert.True(SourcePosition.Zero < a);
        Assert.Equal(0, b.CompareTo(new SourcePosition(2, 0)));
    }

    [Fact]
    public void Text_form_is_32_hex_digits_whose_string_order_is_position_order()
    {
        var positions = new[]
        {
            new SourcePosition(0, 0), new SourcePosition(0, 15), new SourcePosition(0, 16), new SourcePosition(1, 0),
            new SourcePosition(255, 3), new SourcePosition(ulong.MaxValue, ulong.MaxValue),
        };
        var texts = positions.Select(p => p.ToString()).ToList();

        Assert.All(texts, t => Assert.Equal(32, t.Length));
        Assert.Equal("00000000000000010000000000000000", texts[3]);
        Assert.Equal(texts.Order(StringComparer.Ordinal).ToList(), texts);
        Assert.Equal(positions, texts.Select(t => SourcePosition.Parse(t)).ToArray());
    }

    [Fact]
    public void Format_writes_the_same_text_as_ToString()
    {
        var p = new SourcePosition(0xabc, 0xdef);
        Span<char> buffer = stackalloc char[32];
        p.Format(buffer);

        Assert.Equal(p.ToString(), buffer.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("0000000000000001000000000000000")]
    [InlineData("000000000000000100000000000000zz")]
    public void Parse_rejects_text_that_is_not_32_hex_digits(string text)
    {
        var ex = Assert.Throws<FormatException>(() => SourcePosition.Parse(text));
        Assert.Contains("32 hexadecimal digits", ex.Message, StringComparison.Ordinal);
    }
}
