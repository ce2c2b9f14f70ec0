using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Ingest.Engine.Pipelines;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Engine.Sink;

/// <summary>The columns the sink adds to every table, and the Arrow work of adding them without boxing.</summary>
internal static class LakeColumns
{
    public const string Op = "_op";
    public const string Position = "_position";
    public const string SourceTs = "_source_ts";
    public const string IngestedAt = "_ingested_at";
    public const string RescuedData = "_rescued_data";

    /// <summary>
    /// Append tables only: the columns of the row the source did not send (unchanged TOASTed values; their slots are
    /// null), as array&lt;string&gt;, null when the row is complete. Added to the table when a batch first carries such
    /// a row, whatever the schema policy (it is the sink's column, not the source's).
    /// </summary>
    public const string Unchanged = "_unchanged";

    /// <summary>The <see cref="Unchanged"/> column's field.</summary>
    public static Field UnchangedField { get; } = new(Unchanged, new ArrayType(DataType.String, ContainsNull: false),
        Description: "Columns the source did not send for this change (unchanged values, e.g. PostgreSQL TOAST): their null here means 'unchanged', not null. Null when the row is complete.");

    private static readonly TimestampType UtcMicros = (TimestampType)DataType.Timestamp.ToArrowType();

    /// <summary>The table's schema: the stream's columns, then the sink's.</summary>
    public static StreamSchema TableSchema(StreamSchema stream, SinkMode mode)
    {
        var columns = new List<Field>(stream.Columns.Count + 4);
        foreach (var c in stream.Columns)
        {
            if (c.Name is Op or Position or SourceTs or IngestedAt or Unchanged or Delta.ScdColumns.ValidFrom or Delta.ScdColumns.ValidTo or Delta.ScdColumns.IsCurrent)
            {
                throw new InvalidOperationException($"The stream has a column named '{c.Name}', which the lake reserves for the sink.");
            }

            // A source may rescue values itself (file connectors: text that fits no column); the sink merges its own rescues into it.
            if (string.Equals(c.Name, RescuedData, StringComparison.OrdinalIgnoreCase) && (c.Name != RescuedData || c.Type != DataType.String))
            {
                throw new InvalidOperationException($"The stream has a column '{c.Name}' {c.Type.DisplayName}; the lake takes a source's own rescued values only as '{RescuedData}' of type string (a JSON object by column name).");
            }

            // A change log holds deletes (only the key set) and truncates (nothing set): its data columns are nullable.
            columns.Add(mode == SinkMode.Append ? c with { Nullable = true } : c);
        }

        if (mode == SinkMode.Append)
        {
            columns.Add(new Field(Op, DataType.String, Nullable: false, Description: "Change operation: r (snapshot read), c (insert), u (update), d (delete), t (truncate)."));
        }

        columns.Add(new Field(Position, DataType.String, Nullable: false, Description: "Source position of the change (32 hex digits; string order is source order)."));
        columns.Add(new Field(SourceTs, DataType.Timestamp, Description: "When the change was committed at the source (null when unknown)."));
        columns.Add(new Field(IngestedAt, DataType.Timestamp, Nullable: false, Description: "When the sink received the change."));
        if (mode == SinkMode.History)
        {
            columns.Add(new Field(Delta.ScdColumns.ValidFrom, DataType.Timestamp, Nullable: false, Description: "When this version of the row became current (the change's source time, else its ingestion time)."));
            columns.Add(new Field(Delta.ScdColumns.ValidTo, DataType.Timestamp, Description: "When it stopped being current (null while current)."));
            columns.Add(new Field(Delta.ScdColumns.IsCurrent, DataType.Boolean, Nullable: false, Description: "Whether this is the key's current row."));
        }

        return new StreamSchema(columns);
    }

    /// <summary>
    /// The output batch for rows [<paramref name="start"/>, <paramref name="start"/>+<paramref name="length"/>) of a change
    /// batch: its data columns as they are (sliced only when needed), plus the sink's columns.
    /// </summary>
    public static RecordBatch Build(Schema tableSchema, SinkMode mode, ChangeBatch batch, int start, int length, long ingestedAtMicros)
    {
        if (start != 0 || length != batch.Length)
        {
            // Writers get unsliced arrays: gather the rows wanted into fresh ones.
            var whole = Build(tableSchema, mode, batch, 0, batch.Length, ingestedAtMicros);
            var picks = new (int, int)[length];
            for (var i = 0; i < length; i++)
            {
                picks[i] = (0, start + i);
            }

            return Gather(tableSchema, [whole], picks);
        }

        var data = batch.Data;
        var arrays = new List<IArrowArray>(tableSchema.FieldsList.Count);
        for (var c = 0; c < data.ColumnCount; c++)
        {
            var col = data.Column(c);
            arrays.Add(col);
        }

        if (mode == SinkMode.Append)
        {
            arrays.Add(OpArray(batch.Ops, start, length));
        }

        arrays.Add(PositionArray(batch.Positions, start, length));
        arrays.Add(SourceTsArray(batch.SourceTimestampsMicros, start, length));
        arrays.Add(ConstantTimestamp(ingestedAtMicros, length));
        if (mode == SinkMode.History)
        {
            arrays.Add(ValidFromArray(batch.SourceTimestampsMicros, start, length, ingestedAtMicros));
            arrays.Add(ArrowKernelsNullTimestamps(length));
            arrays.Add(new BooleanArray(Bitmap(length, _ => true), ArrowBuffer.Empty, length, 0, 0));
        }

        return new RecordBatch(tableSchema, arrays, length);
    }

    // The sink's own columns (and gathered rows) are written into a pooled scratch builder, then copied into native Arrow
    // memory (Build): no managed arrays per batch to collect (the position column alone is 32 bytes a row, a
    // large-object-heap array per batch), and the Parquet writer takes the native buffers as they are (the C data
    // interface moves them). A few builders are shared by all threads (one per thread kept a large array on every
    // thread-pool thread the sink ever ran on); one larger than MaxScratchBytes is not kept.
    private static readonly ConcurrentBag<ArrowBuffer.Builder<byte>> s_scratch = [];

    private const int MaxScratchBytes = 16 << 20;
    private const int MaxPooledScratch = 4;

    private static ArrowBuffer.Builder<byte> Scratch(int bytes, out Span<byte> span)
    {
        if (!s_scratch.TryTake(out var scratch))
        {
            scratch = new ArrowBuffer.Builder<byte>(bytes);
        }

        // Every caller writes (or clears) all the bytes it asks for: no zeroing here.
        scratch.Resize(bytes);
        span = scratch.Span[..bytes];
        return scratch;
    }

    /// <summary>The scratch's bytes in a native buffer of their own; the scratch goes back to the pool.</summary>
    private static ArrowBuffer Done(ArrowBuffer.Builder<byte> scratch)
    {
        var buffer = scratch.Build();
        if (scratch.Capacity <= MaxScratchBytes && s_scratch.Count < MaxPooledScratch)
        {
            s_scratch.Add(scratch);
        }

        return buffer;
    }

    private static ArrowBuffer Offsets(int length, int width)
    {
        var scratch = Scratch((length + 1) * sizeof(int), out var span);
        var offsets = MemoryMarshal.Cast<byte, int>(span);
        for (var i = 0; i <= length; i++)
        {
            offsets[i] = i * width;
        }

        return Done(scratch);
    }

    private static ArrowBuffer Bitmap(int length, Func<int, bool> bit)
    {
        var scratch = Scratch((length + 7) / 8, out var span);
        span.Clear();
        for (var i = 0; i < length; i++)
        {
            if (bit(i))
            {
                span[i >> 3] |= (byte)(1 << (i & 7));
            }
        }

        return Done(scratch);
    }

    private static StringArray OpArray(ChangeOp[] ops, int start, int length)
    {
        var offsets = Offsets(length, 1);
        var scratch = Scratch(length, out var span);
        for (var i = 0; i < length; i++)
        {
            var op = ops[start + i];
            if (op is not (ChangeOp.Read or ChangeOp.Insert or ChangeOp.Update or ChangeOp.Delete or ChangeOp.Truncate))
            {
                throw new InvalidOperationException($"Unknown change operation {(byte)op} in a batch.");
            }

            span[i] = (byte)op;
        }

        return new StringArray(length, offsets, Done(scratch), ArrowBuffer.Empty, 0, 0);
    }

    private static StringArray PositionArray(SourcePosition[] positions, int start, int length)
    {
        var offsets = Offsets(length, 32);
        var scratch = Scratch(length * 32, out var span);
        Span<char> chars = stackalloc char[32];
        for (var i = 0; i < length; i++)
        {
            positions[start + i].Format(chars);
            Encoding.ASCII.GetBytes(chars, span.Slice(i * 32, 32));
        }

        return new StringArray(length, offsets, Done(scratch), ArrowBuffer.Empty, 0, 0);
    }

    private static TimestampArray SourceTsArray(long[] micros, int start, int length)
    {
        var nulls = micros.AsSpan(start, length).Count(0L);
        var validity = nulls == 0 ? ArrowBuffer.Empty : Bitmap(length, i => micros[start + i] != 0);
        var scratch = Scratch(length * sizeof(long), out var span);
        micros.AsSpan(start, length).CopyTo(MemoryMarshal.Cast<byte, long>(span));
        return new TimestampArray(UtcMicros, Done(scratch), validity, length, nulls, 0);
    }

    private static TimestampArray ValidFromArray(long[] micros, int start, int length, long ingestedAtMicros)
    {
        var scratch = Scratch(length * sizeof(long), out var span);
        var target = MemoryMarshal.Cast<byte, long>(span);
        for (var i = 0; i < length; i++)
        {
            var v = micros[start + i];
            target[i] = v != 0 ? v : ingestedAtMicros;
        }

        return new TimestampArray(UtcMicros, Done(scratch), ArrowBuffer.Empty, length, 0, 0);
    }

    private static TimestampArray ArrowKernelsNullTimestamps(int length)
    {
        var validity = Bitmap(length, _ => false);
        var scratch = Scratch(length * sizeof(long), out var span);
        span.Clear();
        return new TimestampArray(UtcMicros, Done(scratch), validity, length, length, 0);
    }

    private static TimestampArray ConstantTimestamp(long micros, int length)
    {
        var scratch = Scratch(length * sizeof(long), out var span);
        MemoryMarshal.Cast<byte, long>(span).Fill(micros);
        return new TimestampArray(UtcMicros, Done(scratch), ArrowBuffer.Empty, length, 0, 0);
    }

    /// <summary>The bytes of a batch's Arrow buffers (children included): what holding it in memory costs.</summary>
    public static long BufferBytes(RecordBatch batch)
    {
        long total = 0;
        for (var c = 0; c < batch.ColumnCount; c++)
        {
            total += BufferBytes(batch.Column(c).Data);
        }

        return total;
    }

    private static long BufferBytes(ArrayData data)
    {
        long total = 0;
        foreach (var b in data.Buffers)
        {
            total += b.Length;
        }

        foreach (var child in data.Children ?? [])
        {
            total += BufferBytes(child);
        }

        return total + (data.Dictionary is { } d ? BufferBytes(d) : 0);
    }

    /// <summary>
    /// One batch of the rows picked from <paramref name="sources"/> (given as (source, row) in the order wanted).
    /// Values are copied as bytes per type (the result is a fresh, unsliced batch); only nested types go through CLR values.
    /// </summary>
    public static RecordBatch Gather(Schema schema, IReadOnlyList<RecordBatch> sources, IReadOnlyList<(int Source, int Row)> picks)
    {
        var columns = new IArrowArray[schema.FieldsList.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            var parts = new IArrowArray[sources.Count];
            for (var s = 0; s < parts.Length; s++)
            {
                parts[s] = sources[s].Column(c);
            }

            columns[c] = Take(schema.FieldsList[c].DataType, parts, picks);
        }

        return new RecordBatch(schema, columns, picks.Count);
    }

    /// <summary>
    /// The <see cref="Unchanged"/> column for rows [<paramref name="start"/>, <paramref name="start"/>+<paramref name="length"/>)
    /// of a batch: per row the names of the columns it did not send, or null.
    /// </summary>
    public static IArrowArray UnchangedArray(ChangeBatch batch, int start, int length)
    {
        var names = batch.Data.Schema.FieldsList;
        var values = new List<object?>(length);
        for (var i = 0; i < length; i++)
        {
            values.Add(batch.Unchanged is { } u && u.TryGetValue(start + i, out var columns)
                ? System.Array.ConvertAll(columns, c => (object?)names[c].Name)
                : null);
        }

        return ArrowValues.BuildArray(UnchangedField.Type, values);
    }

    /// <summary>One column of the rows picked from <paramref name="parts"/> (arrays of <paramref name="type"/>), as <see cref="Gather"/> does.</summary>
    public static IArrowArray TakeColumn(IArrowType type, IArrowArray[] parts, IReadOnlyList<(int Source, int Row)> picks) => Take(type, parts, picks);

    // Picks come mostly in runs (a snapshot's rows all of them, in order; a merge's newest rows per key nearly so): each run
    // is copied as one block of bytes into the reused scratch buffer, then into native memory (Build), one buffer at a time.
    private static IArrowArray Take(IArrowType type, IArrowArray[] parts, IReadOnlyList<(int Source, int Row)> picks)
    {
        var n = picks.Count;
        var runs = Runs(picks);
        var nulls = 0;
        foreach (var (s, start, length) in runs)
        {
            if (parts[s].NullCount > 0)
            {
                for (var r = start; r < start + length; r++)
                {
                    nulls += parts[s].IsNull(r) ? 1 : 0;
                }
            }
        }

        var validityBuffer = nulls == 0 ? ArrowBuffer.Empty : Validity(parts, runs, n);
        switch (type)
        {
            case BooleanType:
            {
                var values = Scratch((n + 7) / 8, out var bits);
                bits.Clear();
                var at = 0;
                foreach (var (s, start, length) in runs)
                {
                    var part = (BooleanArray)parts[s];
                    for (var r = start; r < start + length; r++, at++)
                    {
                        if (part.GetValue(r) == true)
                        {
                            BitUtility.SetBit(bits, at);
                        }
                    }
                }

                return ArrowArrayFactory.BuildArray(new ArrayData(type, n, nulls, 0, [validityBuffer, Done(values)]));
            }

            case StringType or BinaryType:
            {
                var total = 0L;
                foreach (var (s, start, length) in runs)
                {
                    var o = ((BinaryArray)parts[s]).ValueOffsets;
                    total += o[start + length] - o[start];
                }

                if (total > int.MaxValue)
                {
                    throw new InvalidOperationException($"A column of {n} rows holds {total} bytes of values, more than one Arrow string array can (2 GiB): commit smaller batches.");
                }

                var offsetsScratch = Scratch((n + 1) * sizeof(int), out var offsetBytes);
                var offsets = MemoryMarshal.Cast<byte, int>(offsetBytes);
                var at = 0;
                var written = 0;
                offsets[0] = 0;
                foreach (var (s, start, length) in runs)
                {
                    var o = ((BinaryArray)parts[s]).ValueOffsets;
                    var shift = written - o[start];
                    for (var i = 1; i <= length; i++)
                    {
                        offsets[at + i] = o[start + i] + shift;
                    }

                    at += length;
                    written += o[start + length] - o[start];
                }

                var offsetsBuffer = Done(offsetsScratch);
                var values = Scratch(written, out var bytes);
                written = 0;
                foreach (var (s, start, length) in runs)
                {
                    var part = (BinaryArray)parts[s];
                    var from = part.ValueOffsets[start];
                    var size = part.ValueOffsets[start + length] - from;
                    part.ValueBuffer.Span.Slice(from, size).CopyTo(bytes[written..]);
                    written += size;
                }

                var valuesBuffer = Done(values);
                return ArrowArrayFactory.BuildArray(new ArrayData(type, n, nulls, 0, [validityBuffer, offsetsBuffer, valuesBuffer]));
            }

            case FixedWidthType fixedWidth when type is not (ListType or Apache.Arrow.Types.StructType or Apache.Arrow.Types.MapType):
            {
                var width = fixedWidth.BitWidth / 8;
                var values = Scratch(n * width, out var bytes);
                var written = 0;
                foreach (var (s, start, length) in runs)
                {
                    var d = parts[s].Data;
                    d.Buffers[1].Span.Slice((d.Offset + start) * width, length * width).CopyTo(bytes[written..]);
                    written += length * width;
                }

                return ArrowArrayFactory.BuildArray(new ArrayData(type, n, nulls, 0, [validityBuffer, Done(values)]));
            }

            default:
            {
                var values = new List<object?>(n);
                foreach (var (s, r) in picks)
                {
                    values.Add(ArrowValues.GetValue(parts[s], r));
                }

                return ArrowValues.BuildArray(DataType.FromArrowType(type), values);
            }
        }
    }

    /// <summary>The picks as runs of consecutive rows of one source.</summary>
    private static List<(int Source, int Start, int Length)> Runs(IReadOnlyList<(int Source, int Row)> picks)
    {
        var runs = new List<(int Source, int Start, int Length)>();
        var i = 0;
        while (i < picks.Count)
        {
            var (s, r) = picks[i];
            var length = 1;
            while (i + length < picks.Count && picks[i + length] == (s, r + length))
            {
                length++;
            }

            runs.Add((s, r, length));
            i += length;
        }

        return runs;
    }

    private static ArrowBuffer Validity(IArrowArray[] parts, List<(int Source, int Start, int Length)> runs, int n)
    {
        var scratch = Scratch((n + 7) / 8, out var bits);
        bits.Clear();
        var at = 0;
        foreach (var (s, start, length) in runs)
        {
            var part = parts[s];
            if (part.NullCount == 0)
            {
                SetBits(bits, at, length);
            }
            else
            {
                for (var r = start; r < start + length; r++)
                {
                    if (!part.IsNull(r))
                    {
                        BitUtility.SetBit(bits, at + r - start);
                    }
                }
            }

            at += length;
        }

        return Done(scratch);
    }

    private static void SetBits(Span<byte> bits, int start, int length)
    {
        var i = start;
        var end = start + length;
        for (; i < end && (i & 7) != 0; i++)
        {
            BitUtility.SetBit(bits, i);
        }

        var wholeBytes = (end - i) / 8;
        bits.Slice(i / 8, wholeBytes).Fill(0xFF);
        for (i += wholeBytes * 8; i < end; i++)
        {
            BitUtility.SetBit(bits, i);
        }
    }
}
