using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Npgsql;

namespace Ingest.Connectors.Postgres;

/// <summary>
/// Decodes the raw bytes of <c>COPY ... TO STDOUT (FORMAT BINARY)</c> straight into a <see cref="ChangeBatchBuilder"/>:
/// one asynchronous read per buffer (not per value), and no allocation per value (text goes in as UTF-8 bytes, numeric
/// from its base-10000 digits to the unscaled decimal, timestamps as microseconds). The row layout is the table's
/// columns (binary, or <c>::text</c> where <see cref="PgColumn.ReadsAsText"/>), then one <c>::text</c> column for each
/// key column whose text form cannot be derived from its binary value (see <see cref="KeyFromValue"/>).
/// </summary>
internal sealed class PgCopyDecoder : IDisposable
{
    /// <summary>The binary COPY signature: "PGCOPY\n\377\r\n\0".</summary>
    private static readonly byte[] Signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xff, (byte)'\r', (byte)'\n', 0];

    /// <summary>Microseconds from 1970-01-01 to PostgreSQL's epoch 2000-01-01.</summary>
    private const long PgEpochMicros = 946_684_800_000_000L;

    /// <summary>Days from 1970-01-01 to 2000-01-01.</summary>
    private const int PgEpochDays = 10_957;

    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    private readonly PgTable _table;
    private readonly int[] _keyField;
    private readonly int _fields;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
    private byte[] _lastRow = new byte[256];

    /// <summary>Where the last decoded row of the batch being built sits in <see cref="_buffer"/> (-1: copied to <see cref="_lastRow"/>, or none).</summary>
    private int _lastRowAt;
    private int _lastRowLength;
    private int _start;
    private int _end;

    /// <summary>Whether the copy stream reported its end (0) while reading ahead.</summary>
    private bool _ended;

    public PgCopyDecoder(PgTable table)
    {
        _table = table;
        _keyField = new int[table.KeyOrdinals.Length];
        var extra = table.Columns.Count;
        for (var k = 0; k < _keyField.Length; k++)
        {
            var ordinal = table.KeyOrdinals[k];
            _keyField[k] = KeyFromValue(table.Columns[ordinal]) ? ordinal : extra++;
        }

        _fields = extra;
    }

    /// <summary>Whether a key column's text form (for the keyset cursor) is derived from the value as read, with no extra <c>::text</c> column.</summary>
    public static bool KeyFromValue(PgColumn column) =>
        column.Kind is ColumnKind.Int16 or ColumnKind.Int32 or ColumnKind.Int64 or ColumnKind.Text || column.ReadsAsText;

    /// <summary>
    /// Runs one COPY (<paramref name="sql"/>) and hands out its rows as batches of <paramref name="batchRows"/> rows (the
    /// last one shorter), each with the text form of its last row's key (null for a table without a key). Positions
    /// continue from <paramref name="rows"/>. The COPY stays open while the caller handles a batch.
    /// </summary>
    public async IAsyncEnumerable<(ChangeBatch Batch, string[]? LastKey)> CopyAsync(
        NpgsqlConnection conn, string sql, ChangeBatchBuilder builder, ulong rows, int batchRows, [EnumeratorCancellation] CancellationToken ct)
    {
        _start = _end = 0;
        _lastRowAt = -1;
        _ended = false;
        var count = 0UL;
        await using var copy = await conn.BeginRawBinaryCopyAsync(sql, ct);

        await FillAsync(copy, 19, ct);
        ReadHeader();
        while (true)
        {
            int length;
            while ((length = RowLength()) < 0)
            {
                await FillAsync(copy, _end - _start + 1, ct);
            }

            if (BinaryPrimitives.ReadInt16BigEndian(_buffer.AsSpan(_start, length)) == -1)
            {
                _start += length;
                break;
            }

            count++;
            builder.BeginRow(ChangeOp.Read, new SourcePosition(0, rows + count), 0);
            DecodeRow(_buffer.AsSpan(_start, length), builder);
            builder.EndRow();
            if (builder.Count >= batchRows)
            {
                var key = _keyField.Length > 0 ? LastKey(_buffer.AsSpan(_start, length)) : null;
                _lastRowAt = -1;
                _start += length;
                yield return (builder.Build(), key);
                continue;
            }

            (_lastRowAt, _lastRowLength) = (_start, length);
            _start += length;
        }

        var lastKey = builder.Count > 0 && _keyField.Length > 0
            ? LastKey(_lastRowAt >= 0 ? _buffer.AsSpan(_lastRowAt, _lastRowLength) : _lastRow.AsSpan(0, _lastRowLength))
            : null;

        // Drain to the end of the copy (the stream reports 0 once CopyDone arrived).
        while (!_ended && await copy.ReadAsync(_buffer.AsMemory(), ct) > 0)
        {
        }

        if (builder.Count > 0)
        {
            yield return (builder.Build(), lastKey);
        }
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    /// <summary>Reads until at least <paramref name="needed"/> bytes from <see cref="_start"/> are buffered (the buffer grows for a large row).</summary>
    private async Task FillAsync(Stream copy, int needed, CancellationToken ct)
    {
        if (_lastRowAt >= 0)
        {
            // The batch's last row is about to be moved or overwritten: its key is still wanted.
            if (_lastRow.Length < _lastRowLength)
            {
                _lastRow = new byte[Math.Max(_lastRowLength, _lastRow.Length * 2)];
            }

            _buffer.AsSpan(_lastRowAt, _lastRowLength).CopyTo(_lastRow);
            _lastRowAt = -1;
        }

        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        if (needed > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
            _buffer.AsSpan(0, _end).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        while (_end < needed)
        {
            var n = _ended ? 0 : await copy.ReadAsync(_buffer.AsMemory(_end), ct);
            if (n == 0)
            {
                throw new ConnectorException(ErrorKind.Transient, $"{_table.StreamName}: the snapshot's COPY ended mid-row");
            }

            _end += n;
        }

        // Npgsql's copy stream hands out one CopyData message (one row) per read: keep reading while the buffer has room,
        // so that rows are then decoded a buffer at a time (one call here per ~2,000 rows rather than per row). The
        // server streams the rows, so these reads do not wait long; the end of the copy (0) stops them.
        while (_buffer.Length - _end >= MinReadAhead && !_ended)
        {
            var n = await copy.ReadAsync(_buffer.AsMemory(_end), ct);
            _ended = n == 0;
            _end += n;
        }
    }

    /// <summary>Free space below which <see cref="FillAsync"/> stops reading ahead (more than most rows).</summary>
    private const int MinReadAhead = 16 * 1024;

    private void ReadHeader()
    {
        var h = _buffer.AsSpan(_start, _end - _start);
        if (!h[..11].SequenceEqual(Signature.AsSpan(0, 11)))
        {
            throw new ConnectorException(ErrorKind.Fatal, $"{_table.StreamName}: the snapshot's COPY did not start with the binary COPY signature");
        }

        var extension = BinaryPrimitives.ReadInt32BigEndian(h[15..]);
        _start += 19;
        if (extension > 0)
        {
            // Never sent by PostgreSQL 15; skipped as the format says.
            _start += extension;
            if (_start > _end)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"{_table.StreamName}: the snapshot's COPY header extension is longer than its first message");
            }
        }
    }

    /// <summary>The length of the row (or trailer) at <see cref="_start"/> when it is wholly buffered, else -1.</summary>
    private int RowLength()
    {
        var span = _buffer.AsSpan(_start, _end - _start);
        if (span.Length < 2)
        {
            return -1;
        }

        var fields = BinaryPrimitives.ReadInt16BigEndian(span);
        if (fields == -1)
        {
            return 2;
        }

        if (fields != _fields)
        {
            throw new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"{_table.StreamName}: a snapshot row has {fields} fields, expected {_fields}"));
        }

        var pos = 2;
        for (var f = 0; f < fields; f++)
        {
            if (span.Length - pos < 4)
            {
                return -1;
            }

            var len = BinaryPrimitives.ReadInt32BigEndian(span[pos..]);
            pos += 4;
            if (len > 0)
            {
                if (span.Length - pos < len)
                {
                    // Ask for the whole row at once rather than a field at a time.
                    return -1;
                }

                pos += len;
            }
        }

        return pos;
    }

    private void DecodeRow(ReadOnlySpan<byte> row, ChangeBatchBuilder b)
    {
        var pos = 2;
        var columns = _table.Columns;
        for (var c = 0; c < columns.Count; c++)
        {
            var len = BinaryPrimitives.ReadInt32BigEndian(row[pos..]);
            pos += 4;
            if (len < 0)
            {
                b.SetNull(c);
                continue;
            }

            Set(b, c, columns[c], row.Slice(pos, len));
            pos += len;
        }
    }

    private void Set(ChangeBatchBuilder b, int i, PgColumn col, ReadOnlySpan<byte> v)
    {
        if (col.ReadsAsText)
        {
            if (col.Kind == ColumnKind.TextCast)
            {
                b.SetStringUtf8(i, v);
            }
            else
            {
                PgText.Set(b, i, col, Encoding.UTF8.GetString(v));
            }

            return;
        }

        switch (col.Kind)
        {
            case ColumnKind.Boolean: b.SetBoolean(i, Sized(v, 1, col)[0] != 0); break;
            case ColumnKind.Int16: b.SetInt16(i, BinaryPrimitives.ReadInt16BigEndian(Sized(v, 2, col))); break;
            case ColumnKind.Int32: b.SetInt32(i, BinaryPrimitives.ReadInt32BigEndian(Sized(v, 4, col))); break;
            case ColumnKind.Int64: b.SetInt64(i, BinaryPrimitives.ReadInt64BigEndian(Sized(v, 8, col))); break;
            case ColumnKind.Float: b.SetFloat(i, BinaryPrimitives.ReadSingleBigEndian(Sized(v, 4, col))); break;
            case ColumnKind.Double: b.SetDouble(i, BinaryPrimitives.ReadDoubleBigEndian(Sized(v, 8, col))); break;
            case ColumnKind.Decimal: b.SetDecimalUnscaled(i, Unscaled(v, col)); break;
            case ColumnKind.Text: b.SetStringUtf8(i, v); break;
            case ColumnKind.Binary: b.SetBinary(i, v); break;
            case ColumnKind.Date:
                b.SetDate(i, BinaryPrimitives.ReadInt32BigEndian(Sized(v, 4, col)) switch
                {
                    int.MaxValue => DateOnly.MaxValue.DayNumber - EpochDay,
                    int.MinValue => DateOnly.MinValue.DayNumber - EpochDay,
                    var days => days + PgEpochDays,
                });
                break;
            case ColumnKind.Timestamp or ColumnKind.TimestampTz:
                b.SetTimestampMicros(i, BinaryPrimitives.ReadInt64BigEndian(Sized(v, 8, col)) switch
                {
                    long.MaxValue => PgText.InfinityMicros,
                    long.MinValue => PgText.MinusInfinityMicros,
                    var micros => micros + PgEpochMicros,
                });
                break;
            default: throw new InvalidOperationException($"Unknown column kind {col.Kind}.");
        }
    }

    private ReadOnlySpan<byte> Sized(ReadOnlySpan<byte> v, int size, PgColumn col) =>
        v.Length == size ? v : throw new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"{_table.StreamName}: column {col.Name} ({col.PgType}) came as {v.Length} bytes in the snapshot's binary COPY, expected {size}"));

    /// <summary>
    /// A binary numeric (ndigits, weight, sign, dscale, then base-10000 digits) as the unscaled value at the column's
    /// scale, rounded half away from zero as PostgreSQL rounds.
    /// </summary>
    internal static Int128 Unscaled(ReadOnlySpan<byte> v, PgColumn col)
    {
        if (v.Length < 8)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"column {col.Name} ({col.PgType}) came as a numeric of {v.Length.ToString(CultureInfo.InvariantCulture)} bytes");
        }

        var ndigits = BinaryPrimitives.ReadInt16BigEndian(v);
        var weight = BinaryPrimitives.ReadInt16BigEndian(v[2..]);
        var sign = BinaryPrimitives.ReadUInt16BigEndian(v[4..]);
        if (sign is not (0x0000 or 0x4000))
        {
            throw new ConnectorException(ErrorKind.Fatal, $"column {col.Name} ({col.PgType}) holds a value {col.Type} cannot represent (NaN or infinity)");
        }

        if (v.Length != 8 + (2 * ndigits))
        {
            throw new ConnectorException(ErrorKind.Fatal, $"column {col.Name} ({col.PgType}) came as a numeric of {v.Length.ToString(CultureInfo.InvariantCulture)} bytes for {ndigits.ToString(CultureInfo.InvariantCulture)} digits");
        }

        Int128 value = 0;
        var roundDigit = 0;
        try
        {
            for (var d = 0; d < ndigits; d++)
            {
                int digit = BinaryPrimitives.ReadInt16BigEndian(v[(8 + (2 * d))..]);
                var exponent = (4 * (weight - d)) + col.Scale;
                if (exponent >= 0)
                {
                    if (digit != 0)
                    {
                        value = exponent > 38 ? throw new OverflowException() : checked(value + (digit * DecimalMath.Pow10(exponent)));
                    }
                }
                else if (exponent > -4)
                {
                    value = checked(value + (digit / Pow10Int(-exponent)));
                    roundDigit = digit / Pow10Int(-1 - exponent) % 10;
                    break;
                }
                else
                {
                    roundDigit = exponent == -4 ? digit / 1000 : 0;
                    break;
                }
            }

            if (roundDigit >= 5)
            {
                value = checked(value + 1);
            }
        }
        catch (OverflowException)
        {
            throw new ConnectorException(ErrorKind.Fatal, $"column {col.Name} ({col.PgType}) holds a value that does not fit {col.Type}; set numericMapping to string");
        }

        return sign == 0x4000 ? -value : value;
    }

    private static int Pow10Int(int n) => n switch
    {
        0 => 1,
        1 => 10,
        2 => 100,
        _ => 1000,
    };

    /// <summary>The last row's key in text form (literals of the next chunk's keyset condition).</summary>
    private string[] LastKey(ReadOnlySpan<byte> row)
    {
        var starts = new int[_fields];
        var lengths = new int[_fields];
        var pos = 2;
        for (var f = 0; f < _fields; f++)
        {
            lengths[f] = BinaryPrimitives.ReadInt32BigEndian(row[pos..]);
            starts[f] = pos += 4;
            pos += Math.Max(0, lengths[f]);
        }

        var key = new string[_keyField.Length];
        for (var k = 0; k < key.Length; k++)
        {
            var f = _keyField[k];
            if (lengths[f] < 0)
            {
                throw new ConnectorException(ErrorKind.Fatal, $"{_table.StreamName}: key column {_table.PrimaryKey[k]} is null in the snapshot");
            }

            var v = row.Slice(starts[f], lengths[f]);
            key[k] = f < _table.Columns.Count && _table.Columns[f].Kind is var kind && !_table.Columns[f].ReadsAsText
                ? kind switch
                {
                    ColumnKind.Int16 => BinaryPrimitives.ReadInt16BigEndian(v).ToString(CultureInfo.InvariantCulture),
                    ColumnKind.Int32 => BinaryPrimitives.ReadInt32BigEndian(v).ToString(CultureInfo.InvariantCulture),
                    ColumnKind.Int64 => BinaryPrimitives.ReadInt64BigEndian(v).ToString(CultureInfo.InvariantCulture),
                    _ => Encoding.UTF8.GetString(v),
                }
                : Encoding.UTF8.GetString(v);
        }

        return key;
    }
}
