using System.Buffers.Binary;
using System.Text;
using Ingest.Sdk.Connectors;

namespace Ingest.Connectors.Postgres.Tests;

/// <summary>The pgoutput parser on messages built byte by byte as PostgreSQL 15 sends them (protocol 1, text values).</summary>
public sealed class PgOutputMessageTests
{
    private sealed class Bytes
    {
        private readonly List<byte> _b = [];

        public Bytes Char(char c)
        {
            _b.Add((byte)c);
            return this;
        }

        public Bytes Int16(short v)
        {
            var s = new byte[2];
            BinaryPrimitives.WriteInt16BigEndian(s, v);
            _b.AddRange(s);
            return this;
        }

        public Bytes Int32(int v)
        {
            var s = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(s, v);
            _b.AddRange(s);
            return this;
        }

        public Bytes Int64(long v)
        {
            var s = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(s, v);
            _b.AddRange(s);
            return this;
        }

        public Bytes CString(string v)
        {
            _b.AddRange(Encoding.UTF8.GetBytes(v));
            _b.Add(0);
            return this;
        }

        public Bytes Text(string v)
        {
            var utf8 = Encoding.UTF8.GetBytes(v);
            Char('t').Int32(utf8.Length);
            _b.AddRange(utf8);
            return this;
        }

        public byte[] ToArray() => [.. _b];
    }

    private static List<(char Kind, string? Text)> Walk(ReadOnlySpan<byte> tuple)
    {
        var result = new List<(char, string?)>();
        var pos = 2;
        for (var i = 0; i < PgOutputMessage.Columns(tuple); i++)
        {
            var kind = PgOutputMessage.Next(tuple, ref pos, out var value);
            result.Add(((char)kind, kind == (byte)'t' ? Encoding.UTF8.GetString(value) : null));
        }

        return result;
    }

    [Fact]
    public void Begin_commit_and_relation_carry_their_positions_time_and_columns()
    {
        var m = new PgOutputMessage();
        m.Parse(new Bytes().Char('B').Int64(0x1_0000_0200).Int64(86_400_000_000).Int32(777).ToArray());
        Assert.Equal(PgOutputKind.Begin, m.Kind);
        Assert.Equal(0x1_0000_0200UL, m.Lsn);
        Assert.Equal(new DateTimeOffset(2000, 1, 2, 0, 0, 0, TimeSpan.Zero), DateTimeOffset.UnixEpoch.AddTicks(m.CommitMicros * 10));

        m.Parse(new Bytes().Char('C').Char('\0').Int64(0x1_0000_0200).Int64(0x1_0000_0230).Int64(5).ToArray());
        Assert.Equal(PgOutputKind.Commit, m.Kind);
        Assert.Equal(0x1_0000_0230UL, m.EndLsn);

        m.Parse(new Bytes().Char('R').Int32(16384).CString("public").CString("größe").Char('d').Int16(2)
            .Char('\x01').CString("id").Int32(20).Int32(-1).Char('\0').CString("n").Int32(1700).Int32((12 << 16 | 2) + 4).ToArray());
        Assert.Equal(PgOutputKind.Relation, m.Kind);
        Assert.Equal(new PgRelationColumn("id", 20, -1, true), m.Relation!.Columns[0]);
        Assert.Equal(new PgRelationColumn("n", 1700, (12 << 16 | 2) + 4, false), m.Relation.Columns[1]);
        Assert.Equal(("public", "größe", 16384u), (m.Relation.Namespace, m.Relation.RelationName, m.Relation.RelationId));
    }

    [Fact]
    public void Update_with_old_key_gives_both_tuples_and_null_unchanged_and_text_columns()
    {
        var m = new PgOutputMessage();
        m.Parse(new Bytes().Char('U').Int32(42).Char('K').Int16(3).Text("1").Char('n').Char('n')
            .Char('N').Int16(3).Text("2").Char('u').Text("é a").ToArray());
        Assert.Equal(PgOutputKind.Update, m.Kind);
        Assert.Equal((byte)'K', m.OldKind);
        Assert.Equal(42u, m.RelationId);
        Assert.Equal([('t', "1"), ('n', null), ('n', null)], Walk(m.OldTuple));
        Assert.Equal([('t', "2"), ('u', null), ('t', "é a")], Walk(m.NewTuple));

        m.Parse(new Bytes().Char('U').Int32(42).Char('N').Int16(1).Text("3").ToArray());
        Assert.Equal(0, m.OldKind);
        Assert.True(m.OldTuple.IsEmpty);
        Assert.Equal([('t', "3")], Walk(m.NewTuple));
    }

    [Fact]
    public void Truncate_and_logical_message_are_parsed_and_unknown_kinds_ignored()
    {
        var m = new PgOutputMessage();
        m.Parse(new Bytes().Char('T').Int32(2).Char('\0').Int32(10).Int32(11).ToArray());
        Assert.Equal(PgOutputKind.Truncate, m.Kind);
        Assert.Equal([10u, 11u], m.Truncated);

        m.Parse(new Bytes().Char('M').Char('\x01').Int64(99).CString("ingest-backfill").Int32(3).Char('a').Char('b').Char('c').ToArray());
        Assert.Equal(PgOutputKind.Message, m.Kind);
        Assert.Equal(("ingest-backfill", 99UL, "abc"), (m.Prefix, m.Lsn, Encoding.ASCII.GetString(m.Content)));

        m.Parse(new Bytes().Char('Y').Int32(1).CString("public").CString("mood").ToArray());
        Assert.Equal(PgOutputKind.Other, m.Kind);
    }

    [Fact]
    public void Insert_without_its_new_tuple_tag_is_a_fatal_error_naming_the_message()
    {
        var m = new PgOutputMessage();
        var e = Assert.Throws<ConnectorException>(() => m.Parse(new Bytes().Char('I').Int32(1).Char('X').Int16(0).ToArray()));
        Assert.Equal(ErrorKind.Fatal, e.Kind);
        Assert.Contains("malformed 'I' message", e.Message, StringComparison.Ordinal);
    }
}
