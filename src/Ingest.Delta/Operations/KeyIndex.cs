using System.Runtime.InteropServices;
using Apache.Arrow;
using Ingest.Delta.Parquet;

namespace Ingest.Delta.Operations;

/// <summary>
/// A hash index over the key columns of the merge source: typed hashing and equality straight on the Arrow arrays,
/// no key objects per row.
/// </summary>
internal sealed class KeyIndex
{
    private readonly IArrowArray[] _keys;
    private readonly Dictionary<ulong, int> _heads;
    private readonly int[] _next;

    public KeyIndex(IArrowArray[] keys, int rows, IReadOnlyList<string> keyNames, bool allowDuplicates = false)
    {
        _keys = keys;
        _heads = new Dictionary<ulong, int>(rows);
        _next = new int[rows];
        Group = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            Group[r] = r;
            var h = Hash(keys, r);
            ref var head = ref CollectionsMarshal.GetValueRefOrAddDefault(_heads, h, out var exists);
            if (exists)
            {
                var duplicate = false;
                for (var c = head; c >= 0; c = _next[c])
                {
                    if (KeysEqual(keys, c, keys, r))
                    {
                        if (!allowDuplicates)
                        {
                            throw new ArgumentException($"The merge source holds key ({string.Join(", ", keyNames)}) twice, at rows {c} and {r}; it must hold at most one row per key.");
                        }

                        // Only a key's first row is indexed; later ones join its group.
                        Group[r] = c;
                        duplicate = true;
                        break;
                    }
                }

                if (duplicate)
                {
                    _next[r] = -1;
                    continue;
                }

                _next[r] = head;
            }
            else
            {
                _next[r] = -1;
            }

            head = r;
        }
    }

    /// <summary>Per source row, the first row with the same key (with duplicates allowed, the key's group).</summary>
    public int[] Group { get; }

    /// <summary>The source row holding the key of <paramref name="row"/> in <paramref name="targetKeys"/>, or -1.</summary>
    public int Find(IArrowArray[] targetKeys, int row)
    {
        if (!_heads.TryGetValue(Hash(targetKeys, row), out var c))
        {
            return -1;
        }

        for (; c >= 0; c = _next[c])
        {
            if (KeysEqual(_keys, c, targetKeys, row))
            {
                return c;
            }
        }

        return -1;
    }

    /// <summary>
    /// Of rows spread over several parts (each part's key columns, all parts of the same types), the newest row per key:
    /// rows are read in order from row <paramref name="firstRow"/> of part <paramref name="firstPart"/> on, a later row of
    /// a key replaces an earlier one, and the winners come back in that same order. Keys are hashed and compared typed,
    /// straight on the Arrow arrays: no key object per row.
    /// </summary>
    /// <param name="parts">Per part, its key columns.</param>
    /// <param name="lengths">Per part, its row count.</param>
    /// <param name="firstPart">The part to start at.</param>
    /// <param name="firstRow">The row of <paramref name="firstPart"/> to start at (later parts start at 0).</param>
    public static List<(int Part, int Row)> LatestPerKey(IReadOnlyList<IArrowArray[]> parts, IReadOnlyList<int> lengths, int firstPart, int firstRow)
    {
        ArgumentNullException.ThrowIfNull(parts);
        ArgumentNullException.ThrowIfNull(lengths);
        if (parts.Count != lengths.Count)
        {
            throw new ArgumentException($"{parts.Count} parts of key columns but {lengths.Count} lengths.", nameof(lengths));
        }

        var total = 0;
        for (var p = firstPart; p < parts.Count; p++)
        {
            total += lengths[p] - (p == firstPart ? firstRow : 0);
        }

        if (StrictlyAscending(parts, lengths, firstPart, firstRow))
        {
            // Every key differs from all before it (a snapshot's rows in key order): every row is its key's newest.
            var all = new List<(int Part, int Row)>(total);
            for (var p = firstPart; p < parts.Count; p++)
            {
                for (var r = p == firstPart ? firstRow : 0; r < lengths[p]; r++)
                {
                    all.Add((p, r));
                }
            }

            return all;
        }

        // One entry per distinct key: its newest (part, row) and the next entry with the same hash.
        var heads = new Dictionary<ulong, int>(Math.Max(total, 0));
        var winners = new List<(int Part, int Row)>(Math.Max(total, 0));
        var next = new List<int>(Math.Max(total, 0));
        for (var p = firstPart; p < parts.Count; p++)
        {
            var keys = parts[p];
            for (var r = p == firstPart ? firstRow : 0; r < lengths[p]; r++)
            {
                ref var head = ref CollectionsMarshal.GetValueRefOrAddDefault(heads, Hash(keys, r), out var exists);
                var found = -1;
                if (exists)
                {
                    for (var e = head; e >= 0; e = next[e])
                    {
                        var (wp, wr) = winners[e];
                        if (KeysEqual(parts[wp], wr, keys, r))
                        {
                            found = e;
                            break;
                        }
                    }
                }

                if (found >= 0)
                {
                    winners[found] = (p, r);
                    continue;
                }

                next.Add(exists ? head : -1);
                winners.Add((p, r));
                head = winners.Count - 1;
            }
        }

        // Entries were made in first-seen order; the newest rows are wanted in emission order.
        winners.Sort();
        return winners;
    }

    /// <summary>Whether the rows have one integer key column without nulls whose values strictly increase in emission order.</summary>
    private static bool StrictlyAscending(IReadOnlyList<IArrowArray[]> parts, IReadOnlyList<int> lengths, int firstPart, int firstRow)
    {
        var previous = long.MinValue;
        var first = true;
        for (var p = firstPart; p < parts.Count; p++)
        {
            if (parts[p].Length != 1 || parts[p][0].NullCount > 0)
            {
                return false;
            }

            var from = p == firstPart ? firstRow : 0;
            switch (parts[p][0])
            {
                case Int64Array a when Ascending(a.Values, from, lengths[p], ref previous, ref first):
                case Int32Array b when Ascending(b.Values, from, lengths[p], ref previous, ref first):
                case Int16Array c when Ascending(c.Values, from, lengths[p], ref previous, ref first):
                    continue;
                default:
                    return false;
            }
        }

        return true;

        static bool Ascending<T>(ReadOnlySpan<T> values, int from, int to, ref long previous, ref bool first)
            where T : struct, System.Numerics.IBinaryInteger<T>
        {
            for (var r = from; r < to; r++)
            {
                var v = long.CreateTruncating(values[r]);
                if (!first && v <= previous)
                {
                    return false;
                }

                previous = v;
                first = false;
            }

            return true;
        }
    }

    private static ulong Hash(IArrowArray[] keys, int row)
    {
        ulong h = 14695981039346656037UL;
        foreach (var a in keys)
        {
            h = (h ^ HashValue(a, row)) * 1099511628211UL;
        }

        return h;
    }

    private static ulong Mix(ulong v)
    {
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdUL;
        v ^= v >> 33;
        v *= 0xc4ceb9fe1a85ec53UL;
        v ^= v >> 33;
        return v;
    }

    private static ulong HashValue(IArrowArray a, int i)
    {
        if (a.IsNull(i))
        {
            return 0x9E3779B97F4A7C15UL;
        }

        return a switch
        {
            Int64Array x => Mix((ulong)x.Values[i]),
            Int32Array x => Mix((ulong)x.Values[i]),
            Int16Array x => Mix((ulong)x.Values[i]),
            Int8Array x => Mix((ulong)x.Values[i]),
            Date32Array x => Mix((ulong)x.Values[i]),
            TimestampArray x => Mix((ulong)x.Values[i]),
            DoubleArray x => Mix((ulong)BitConverter.DoubleToInt64Bits(x.Values[i])),
            FloatArray x => Mix((ulong)BitConverter.DoubleToInt64Bits(x.Values[i])),
            BooleanArray x => x.GetValue(i)!.Value ? 1UL : 2UL,
            BinaryArray x => HashBytes(x.GetBytes(i)),
            Decimal128Array x => HashBytes(x.ValueBuffer.Span.Slice((x.Offset + i) * 16, 16)),
            _ => throw new NotSupportedException($"Merge keys of Arrow type {a.Data.DataType.Name} are not supported."),
        };
    }

    private static ulong HashBytes(ReadOnlySpan<byte> bytes)
    {
        var h = default(HashCode);
        h.AddBytes(bytes);
        return Mix((ulong)(uint)h.ToHashCode() | ((ulong)bytes.Length << 32));
    }

    public static bool KeysEqual(IArrowArray[] a, int i, IArrowArray[] b, int j)
    {
        for (var k = 0; k < a.Length; k++)
        {
            if (!ValueEqual(a[k], i, b[k], j))
            {
                return false;
            }
        }

        return true;
    }

    private static bool ValueEqual(IArrowArray a, int i, IArrowArray b, int j)
    {
        var an = a.IsNull(i);
        var bn = b.IsNull(j);
        if (an || bn)
        {
            return an && bn;
        }

        return (a, b) switch
        {
            (Int64Array x, Int64Array y) => x.Values[i] == y.Values[j],
            (Int32Array x, Int32Array y) => x.Values[i] == y.Values[j],
            (Int16Array x, Int16Array y) => x.Values[i] == y.Values[j],
            (Int8Array x, Int8Array y) => x.Values[i] == y.Values[j],
            (Date32Array x, Date32Array y) => x.Values[i] == y.Values[j],
            (TimestampArray x, TimestampArray y) => x.Values[i] == y.Values[j],
            (DoubleArray x, DoubleArray y) => x.Values[i].Equals(y.Values[j]),
            (FloatArray x, FloatArray y) => x.Values[i].Equals(y.Values[j]),
            (BooleanArray x, BooleanArray y) => x.GetValue(i) == y.GetValue(j),
            (BinaryArray x, BinaryArray y) => x.GetBytes(i).SequenceEqual(y.GetBytes(j)),
            (Decimal128Array x, Decimal128Array y) => ArrowKernels.DecimalAt(x, i) == ArrowKernels.DecimalAt(y, j),
            _ => false,
        };
    }

    /// <summary>Orders two values of the same type (null lowest): ordinal for strings, numeric otherwise.</summary>
    public static int Compare(IArrowArray a, int i, IArrowArray b, int j)
    {
        var an = a.IsNull(i);
        var bn = b.IsNull(j);
        if (an || bn)
        {
            return an == bn ? 0 : an ? -1 : 1;
        }

        return (a, b) switch
        {
            (Int64Array x, Int64Array y) => x.Values[i].CompareTo(y.Values[j]),
            (Int32Array x, Int32Array y) => x.Values[i].CompareTo(y.Values[j]),
            (Int16Array x, Int16Array y) => x.Values[i].CompareTo(y.Values[j]),
            (Int8Array x, Int8Array y) => x.Values[i].CompareTo(y.Values[j]),
            (Date32Array x, Date32Array y) => x.Values[i].CompareTo(y.Values[j]),
            (TimestampArray x, TimestampArray y) => x.Values[i].CompareTo(y.Values[j]),
            (DoubleArray x, DoubleArray y) => x.Values[i].CompareTo(y.Values[j]),
            (FloatArray x, FloatArray y) => x.Values[i].CompareTo(y.Values[j]),
            (BooleanArray x, BooleanArray y) => x.GetValue(i)!.Value.CompareTo(y.GetValue(j)!.Value),
            (BinaryArray x, BinaryArray y) => x.GetBytes(i).SequenceCompareTo(y.GetBytes(j)),
            (Decimal128Array x, Decimal128Array y) => ArrowKernels.DecimalAt(x, i).CompareTo(ArrowKernels.DecimalAt(y, j)),
            _ => throw new NotSupportedException($"Cannot order values of Arrow type {a.Data.DataType.Name}."),
        };
    }
}
