using Apache.Arrow;
using Ingest.Delta.Operations;

namespace Ingest.Delta.Tests;

public sealed class KeyIndexTests
{
    private static IArrowArray[] Longs(params long?[] values)
    {
        var b = new Int64Array.Builder();
        foreach (var v in values)
        {
            if (v is { } x)
            {
                b.Append(x);
            }
            else
            {
                b.AppendNull();
            }
        }

        return [b.Build()];
    }

    private static IArrowArray[] Strings(params string[] values) => [new StringArray.Builder().AppendRange(values).Build()];

    [Fact]
    public void Ascending_integer_keys_across_parts_keep_every_row_in_emission_order()
    {
        var parts = new[] { Longs(1, 2, 5), Longs(6, 9), Longs(10) };

        var picks = KeyIndex.LatestPerKey(parts, [3, 2, 1], 0, 0);

        Assert.Equal([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)], picks);
    }

    [Fact]
    public void A_key_seen_again_in_a_later_part_keeps_only_its_newest_row()
    {
        // Ascending until the last part repeats key 2: the general path, newest row per key, in emission order.
        var parts = new[] { Longs(1, 2, 5), Longs(6, 2) };

        var picks = KeyIndex.LatestPerKey(parts, [3, 2], 0, 0);

        Assert.Equal([(0, 0), (0, 2), (1, 0), (1, 1)], picks);
    }

    [Fact]
    public void Equal_neighbouring_keys_are_not_taken_for_ascending_ones()
    {
        var picks = KeyIndex.LatestPerKey([Longs(3, 3, 4)], [3], 0, 0);

        Assert.Equal([(0, 1), (0, 2)], picks);
    }

    [Fact]
    public void Rows_before_the_first_row_are_left_out_on_both_paths()
    {
        Assert.Equal([(1, 1), (1, 2)], KeyIndex.LatestPerKey([Longs(9, 9), Longs(1, 7, 8)], [2, 3], 1, 1));
        Assert.Equal([(1, 1), (1, 2)], KeyIndex.LatestPerKey([Longs(9, 9), Longs(1, 8, 7)], [2, 3], 1, 1));
    }

    [Fact]
    public void Null_and_string_keys_take_the_general_path()
    {
        Assert.Equal([(0, 1), (0, 2)], KeyIndex.LatestPerKey([Longs(null, null, 4)], [3], 0, 0));
        Assert.Equal([(0, 1), (0, 2)], KeyIndex.LatestPerKey([Strings("a", "a", "b")], [3], 0, 0));
    }
}
