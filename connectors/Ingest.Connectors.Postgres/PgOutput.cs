using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Postgres;

/// <summary>The pgoutput message kinds the reader acts on.</summary>
internal enum PgOutputKind
{
    /// <summary>A message the reader ignores (type, origin, an unknown kind).</summary>
    Other,
    Begin,
    Commit,
    Relation,
    Insert,
    Update,
    Delete,
    Truncate,
    Message,
}

/// <summary>A column of a pgoutput Relation message.</summary>
internal sealed record PgRelationColumn(string ColumnName, uint DataTypeId, int TypeModifier, bool PartOfKey);

/// <summary>A pgoutput Relation message: a table's shape, sent before the first change that uses it.</summary>
internal sealed record PgRelationMessage(uint RelationId, string Namespace, string RelationName, IReadOnlyList<PgRelationColumn> Columns);

/// <summary>
/// Parses one pgoutput message (protocol version 1, text values) from its raw bytes, in place: the reader reads each
/// WAL message whole into one reused buffer and walks tuples over spans, synchronously (no task, no string per value).
/// Only the fields of the last parsed message are valid, until the next <see cref="Parse"/>.
/// </summary>
internal sealed class PgOutputMessage
{
    /// <summary>Microseconds from 1970-01-01 to PostgreSQL's epoch 2000-01-01.</summary>
    private const long PgEpochMicros = 946_684_800_000_000L;

    private byte[] _data = new byte[64 * 1024];
    private int _length;

    public PgOutputKind Kind { get; private set; }

    /// <summary>Begin: the transaction's commit LSN. Message: the message's LSN.</summary>
    public ulong Lsn { get; private set; }

    /// <summary>Commit: the end of the commit record (where streaming resumes after it).</summary>
    public ulong EndLsn { get; private set; }

    /// <summary>Begin: the commit time, microseconds since 1970-01-01 UTC.</summary>
    public long CommitMicros { get; private set; }

    /// <summary>Insert, update, delete: the table.</summary>
    public uint RelationId { get; private set; }

    /// <summary>Update and delete: 'K' (the old key), 'O' (the whole old row, REPLICA IDENTITY FULL), or 0 (none).</summary>
    public byte OldKind { get; private set; }

    /// <summary>Relation: the parsed shape.</summary>
    public PgRelationMessage? Relation { get; private set; }

    /// <summary>Truncate: the tables.</summary>
    public uint[] Truncated { get; private set; } = [];

    /// <summary>Message: its prefix.</summary>
    public string Prefix { get; private set; } = "";

    private int _oldAt = -1;
    private int _newAt = -1;
    private int _contentAt;
    private int _contentLength;

    /// <summary>Update, delete: the old tuple (the key or the whole row), empty when none was sent.</summary>
    public ReadOnlySpan<byte> OldTuple => _oldAt < 0 ? default : _data.AsSpan(_oldAt, _length - _oldAt);

    /// <summary>Insert, update: the new tuple.</summary>
    public ReadOnlySpan<byte> NewTuple => _newAt < 0 ? default : _data.AsSpan(_newAt, _length - _newAt);

    /// <summary>Message: its content.</summary>
    public ReadOnlySpan<byte> Content => _data.AsSpan(_contentAt, _contentLength);

    /// <summary>Reads one message's bytes (the WAL data of an XLogData message) whole into the buffer, then parses it.</summary>
    public async ValueTask ReadAsync(Stream data, CancellationToken ct)
    {
        _length = 0;
        while (true)
        {
            if (_length == _data.Length)
            {
                Array.Resize(ref _data, _data.Length * 2);
            }

            var n = await data.ReadAsync(_data.AsMemory(_length), ct);
            if (n == 0)
            {
                break;
            }

            _length += n;
        }

        Parse(_data.AsSpan(0, _length));
    }

    /// <summary>Parses <paramref name="m"/> (which must be this instance's buffer, or a test's copy of a message).</summary>
    internal void Parse(ReadOnlySpan<byte> m)
    {
        if (!m.Overlaps(_data))
        {
            if (_data.Length < m.Length)
            {
                _data = new byte[m.Length];
            }

            m.CopyTo(_data);
            _length = m.Length;
            m = _data.AsSpan(0, _length);
        }

        Kind = PgOutputKind.Other;
        _oldAt = _newAt = -1;
        OldKind = 0;
        if (m.IsEmpty)
        {
            return;
        }

        var pos = 1;
        switch ((char)m[0])
        {
            case 'B':
                Lsn = ReadUInt64(m, ref pos);
                CommitMicros = ReadInt64(m, ref pos) + PgEpochMicros;
                Kind = PgOutputKind.Begin;
                break;
            case 'C':
                pos++; // flags
                Lsn = ReadUInt64(m, ref pos);
                EndLsn = ReadUInt64(m, ref pos);
                Kind = PgOutputKind.Commit;
                break;
            case 'R':
                RelationId = ReadUInt32(m, ref pos);
                var ns = ReadString(m, ref pos);
                var name = ReadString(m, ref pos);
                pos++; // replica identity setting
                var count = ReadInt16(m, ref pos);
                var columns = new PgRelationColumn[count];
                for (var c = 0; c < count; c++)
                {
                    var flags = m[pos++];
                    var column = ReadString(m, ref pos);
                    var type = ReadUInt32(m, ref pos);
                    var typmod = (int)ReadUInt32(m, ref pos);
                    columns[c] = new PgRelationColumn(column, type, typmod, (flags & 1) != 0);
                }

                Relation = new PgRelationMessage(RelationId, ns, name, columns);
                Kind = PgOutputKind.Relation;
                break;
            case 'I':
                RelationId = ReadUInt32(m, ref pos);
                Expect(m, ref pos, 'N');
                _newAt = pos;
                Kind = PgOutputKind.Insert;
                break;
            case 'U':
                RelationId = ReadUInt32(m, ref pos);
                if (m[pos] is (byte)'K' or (byte)'O')
                {
                    OldKind = m[pos++];
                    _oldAt = pos;
                    pos = SkipTuple(m, pos);
                }

                Expect(m, ref pos, 'N');
                _newAt = pos;
                Kind = PgOutputKind.Update;
                break;
            case 'D':
                RelationId = ReadUInt32(m, ref pos);
                OldKind = m[pos] is (byte)'K' or (byte)'O' ? m[pos++] : throw Malformed(m[0], pos);
                _oldAt = pos;
                Kind = PgOutputKind.Delete;
                break;
            case 'T':
                var relations = (int)ReadUInt32(m, ref pos);
                pos++; // options (CASCADE, RESTART IDENTITY)
                Truncated = new uint[relations];
                for (var r = 0; r < relations; r++)
                {
                    Truncated[r] = ReadUInt32(m, ref pos);
                }

                Kind = PgOutputKind.Truncate;
                break;
            case 'M':
                pos++; // flags (transactional)
                Lsn = ReadUInt64(m, ref pos);
                Prefix = ReadString(m, ref pos);
                _contentLength = (int)ReadUInt32(m, ref pos);
                _contentAt = pos;
                if (_contentAt + _contentLength > m.Length)
                {
                    throw Malformed(m[0], pos);
                }

                Kind = PgOutputKind.Message;
                break;
        }
    }

    /// <summary>The number of columns of a tuple; walk them with <see cref="Next"/> from position 2.</summary>
    public static int Columns(ReadOnlySpan<byte> tuple) => BinaryPrimitives.ReadInt16BigEndian(tuple);

    /// <summary>The column at <paramref name="pos"/> (start at 2, after the column count): its kind and text bytes; advances <paramref name="pos"/>.</summary>
    public static byte Next(ReadOnlySpan<byte> tuple, ref int pos, out ReadOnlySpan<byte> value)
    {
        var kind = tuple[pos++];
        switch (kind)
        {
            case (byte)'n' or (byte)'u':
                value = default;
                return kind;
            case (byte)'t' or (byte)'b':
                var length = BinaryPrimitives.ReadInt32BigEndian(tuple[pos..]);
                pos += 4;
                value = tuple.Slice(pos, length);
                pos += length;
                return kind;
            default:
                throw new ConnectorException(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"pgoutput sent a tuple column of unknown kind '{(char)kind}'"));
        }
    }

    private static int SkipTuple(ReadOnlySpan<byte> m, int pos)
    {
        var columns = BinaryPrimitives.ReadInt16BigEndian(m[pos..]);
        pos += 2;
        for (var c = 0; c < columns; c++)
        {
            Next(m, ref pos, out _);
        }

        return pos;
    }

    private static void Expect(ReadOnlySpan<byte> m, ref int pos, char tag)
    {
        if (pos >= m.Length || m[pos] != (byte)tag)
        {
            throw Malformed(m[0], pos);
        }

        pos++;
    }

    private static ConnectorException Malformed(byte kind, int pos) =>
        new(ErrorKind.Fatal, string.Create(CultureInfo.InvariantCulture, $"pgoutput sent a malformed '{(char)kind}' message (at byte {pos})"));

    private static ulong ReadUInt64(ReadOnlySpan<byte> m, ref int pos)
    {
        var v = BinaryPrimitives.ReadUInt64BigEndian(m[pos..]);
        pos += 8;
        return v;
    }

    private static long ReadInt64(ReadOnlySpan<byte> m, ref int pos)
    {
        var v = BinaryPrimitives.ReadInt64BigEndian(m[pos..]);
        pos += 8;
        return v;
    }

    private static uint ReadUInt32(ReadOnlySpan<byte> m, ref int pos)
    {
        var v = BinaryPrimitives.ReadUInt32BigEndian(m[pos..]);
        pos += 4;
        return v;
    }

    private static short ReadInt16(ReadOnlySpan<byte> m, ref int pos)
    {
        var v = BinaryPrimitives.ReadInt16BigEndian(m[pos..]);
        pos += 2;
        return v;
    }

    private static string ReadString(ReadOnlySpan<byte> m, ref int pos)
    {
        var end = m[pos..].IndexOf((byte)0);
        if (end < 0)
        {
            throw Malformed(m[0], pos);
        }

        var s = Encoding.UTF8.GetString(m.Slice(pos, end));
        pos += end + 1;
        return s;
    }
}
