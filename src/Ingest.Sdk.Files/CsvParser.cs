using System.Buffers;
using System.Text;

namespace Ingest.Sdk.Files;

/// <summary>
/// A streaming CSV parser over UTF-8 bytes (RFC 4180 plus a configurable delimiter, quote and escape).
/// Fields are handed out as spans into a pooled buffer (valid until the next <see cref="ReadAsync"/>),
/// so a record costs no allocation. Other encodings are transcoded to UTF-8 on the way in; a byte order
/// mark is skipped. Quoted fields may hold delimiters and line breaks; <see cref="LineNumber"/> is the
/// physical line a record starts on. A record that breaks the quoting rules is returned with
/// <see cref="Error"/> set and its raw text kept, so the caller can dead-letter it and go on.
/// </summary>
public sealed class CsvParser : IDisposable
{
    private const int MinBuffer = 64 * 1024;
    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly byte _delimiter;
    private readonly byte _quote;
    private readonly byte _escape;
    private readonly SearchValues<byte> _stops;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;
    private long _nextLine = 1;
    private int[] _fieldStart = new int[64];
    private int[] _fieldLength = new int[64];
    private bool[] _fieldEscaped = new bool[64];
    private byte[] _scratch = new byte[1024];
    private int _recordStart;
    private int _recordEnd;
    private bool _first = true;

    /// <summary>Creates a parser reading <paramref name="stream"/> (left open).</summary>
    public CsvParser(Stream stream, CsvFormatOptions options, int bufferSize = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(options);
        _ownsStream = options.Encoding is { } enc && enc.CodePage != Encoding.UTF8.CodePage;
        _stream = _ownsStream
            ? Encoding.CreateTranscodingStream(stream, options.Encoding!, Encoding.UTF8, leaveOpen: true)
            : stream;
        _delimiter = options.Delimiter;
        _quote = options.Quote;
        _escape = options.Escape;
        _stops = SearchValues.Create([_delimiter, (byte)'\n', (byte)'\r']);
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(MinBuffer, bufferSize));
    }

    /// <summary>Fields of the current record.</summary>
    public int FieldCount { get; private set; }

    /// <summary>The physical line (1-based) the current record starts on.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Why the current record is malformed, or null.</summary>
    public string? Error { get; private set; }

    /// <summary>The current record's raw bytes, line break excluded.</summary>
    public ReadOnlySpan<byte> RawRecord => _buffer.AsSpan(_recordStart, _recordEnd - _recordStart);

    /// <summary>Field <paramref name="i"/> of the current record, quotes and escapes removed.</summary>
    public ReadOnlySpan<byte> Field(int i)
    {
        var span = _buffer.AsSpan(_fieldStart[i], _fieldLength[i]);
        return _fieldEscaped[i] ? Unescape(span) : span;
    }

    /// <summary>Whether field <paramref name="i"/> was quoted (a quoted empty field is an empty string, not a null).</summary>
    public bool WasQuoted(int i) => _fieldStart[i] > _recordStart && _buffer[_fieldStart[i] - 1] == _quote;

    private ReadOnlySpan<byte> Unescape(ReadOnlySpan<byte> span)
    {
        if (_scratch.Length < span.Length)
        {
            _scratch = new byte[Math.Max(span.Length, _scratch.Length * 2)];
        }

        var n = 0;
        for (var k = 0; k < span.Length; k++)
        {
            var c = span[k];
            if (c == _escape && k + 1 < span.Length)
            {
                c = span[++k];
            }

            _scratch[n++] = c;
        }

        return _scratch.AsSpan(0, n);
    }

    /// <summary>Reads the next record; false at the end. Blank lines are skipped.</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var status = TryParse();
            if (status == ParseStatus.Record)
            {
                if (FieldCount == 1 && _fieldLength[0] == 0 && Error is null && _recordEnd == _recordStart)
                {
                    continue; // a blank line
                }

                return true;
            }

            if (status == ParseStatus.End)
            {
                return false;
            }

            // Need more data: keep the unfinished record, read on.
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
                Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }

            var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                _eof = true;
            }

            _end += read;
            if (_first && _end - _start >= 3)
            {
                _first = false;
                if (_buffer[_start] == 0xEF && _buffer[_start + 1] == 0xBB && _buffer[_start + 2] == 0xBF)
                {
                    _start += 3;
                }
            }
            else if (_first && _eof)
            {
                _first = false;
            }
        }
    }

    private enum ParseStatus
    {
        Record,
        NeedMore,
        End,
    }

    private ParseStatus TryParse()
    {
        if (_first && !_eof)
        {
            return ParseStatus.NeedMore;
        }

        var buf = _buffer;
        var pos = _start;
        var end = _end;
        if (pos >= end)
        {
            return _eof ? ParseStatus.End : ParseStatus.NeedMore;
        }

        // Fast path: a whole line without quotes or carriage returns splits on the delimiter alone.
        var remaining = buf.AsSpan(pos, end - pos);
        var nl = remaining.IndexOf((byte)'\n');
        if (nl >= 0)
        {
            var line = remaining[..nl];
            var special = line.IndexOfAny(_quote, (byte)'\r');
            if (special < 0 || (special == nl - 1 && line[special] == (byte)'\r'))
            {
                var length = special < 0 ? nl : nl - 1;
                var n = 0;
                var start = 0;
                while (true)
                {
                    if (n == _fieldStart.Length)
                    {
                        Array.Resize(ref _fieldStart, n * 2);
                        Array.Resize(ref _fieldLength, n * 2);
                        Array.Resize(ref _fieldEscaped, n * 2);
                    }

                    var d = line[start..length].IndexOf(_delimiter);
                    _fieldStart[n] = pos + start;
                    _fieldEscaped[n] = false;
                    if (d < 0)
                    {
                        _fieldLength[n] = length - start;
                        n++;
                        break;
                    }

                    _fieldLength[n] = d;
                    n++;
                    start += d + 1;
                }

                Finish(n, pos + length, pos + nl + 1, 1, null);
                return ParseStatus.Record;
            }
        }

        var fields = 0;
        var lines = 0L;
        string? error = null;
        while (true)
        {
            if (fields == _fieldStart.Length)
            {
                Array.Resize(ref _fieldStart, fields * 2);
                Array.Resize(ref _fieldLength, fields * 2);
                Array.Resize(ref _fieldEscaped, fields * 2);
            }

            if (pos < end && buf[pos] == _quote)
            {
                // Quoted field: up to the closing quote; an escape takes the next byte literally.
                var contentStart = pos + 1;
                var i = contentStart;
                var escaped = false;
                var closed = false;
                while (i < end)
                {
                    var c = buf[i];
                    if (c == _escape && _escape != _quote)
                    {
                        if (i + 1 >= end)
                        {
                            break;
                        }

                        escaped = true;
                        i += 2;
                        continue;
                    }

                    if (c == _quote)
                    {
                        if (_escape == _quote)
                        {
                            if (i + 1 >= end)
                            {
                                if (!_eof)
                                {
                                    break; // cannot tell "" from a closing quote yet
                                }
                            }
                            else if (buf[i + 1] == _quote)
                            {
                                escaped = true;
                                i += 2;
                                continue;
                            }
                        }

                        closed = true;
                        break;
                    }

                    if (c == (byte)'\n')
                    {
                        lines++;
                    }

                    i++;
                }

                if (!closed)
                {
                    if (!_eof)
                    {
                        return ParseStatus.NeedMore;
                    }

                    // The file ends inside a quoted field: the rest is one malformed record.
                    _fieldStart[fields] = contentStart;
                    _fieldLength[fields] = end - contentStart;
                    _fieldEscaped[fields] = false;
                    fields++;
                    Finish(fields, end, end, lines, "a quoted field is not closed before the end of the file");
                    return ParseStatus.Record;
                }

                _fieldStart[fields] = contentStart;
                _fieldLength[fields] = i - contentStart;
                _fieldEscaped[fields] = escaped;
                fields++;
                pos = i + 1;
                if (pos >= end && !_eof)
                {
                    return ParseStatus.NeedMore;
                }

                if (pos < end && buf[pos] != _delimiter && buf[pos] != (byte)'\n' && buf[pos] != (byte)'\r')
                {
                    // Text after the closing quote: keep going to the end of the field, report it.
                    error ??= $"unexpected text after the closing quote of field {fields}";
                    var rest = buf.AsSpan(pos, end - pos).IndexOfAny(_stops);
                    if (rest < 0)
                    {
                        if (!_eof)
                        {
                            return ParseStatus.NeedMore;
                        }

                        pos = end;
                    }
                    else
                    {
                        pos += rest;
                    }
                }
            }
            else
            {
                var stop = buf.AsSpan(pos, end - pos).IndexOfAny(_stops);
                if (stop < 0)
                {
                    if (!_eof)
                    {
                        return ParseStatus.NeedMore;
                    }

                    stop = end - pos;
                }

                _fieldStart[fields] = pos;
                _fieldLength[fields] = stop;
                _fieldEscaped[fields] = false;
                fields++;
                pos += stop;
            }

            if (pos >= end)
            {
                // End of file without a final line break.
                Finish(fields, end, end, lines, error);
                return ParseStatus.Record;
            }

            var b = buf[pos];
            if (b == _delimiter)
            {
                pos++;
                if (pos >= end && !_eof)
                {
                    return ParseStatus.NeedMore;
                }

                continue;
            }

            // A line break: \n, \r\n or a lone \r.
            var recordEnd = pos;
            if (b == (byte)'\r')
            {
                if (pos + 1 >= end && !_eof)
                {
                    return ParseStatus.NeedMore;
                }

                pos += pos + 1 < end && buf[pos + 1] == (byte)'\n' ? 2 : 1;
            }
            else
            {
                pos++;
            }

            Finish(fields, recordEnd, pos, lines + 1, error);
            return ParseStatus.Record;
        }
    }

    private void Finish(int fields, int recordEnd, int next, long lines, string? error)
    {
        FieldCount = fields;
        _recordStart = _start;
        _recordEnd = recordEnd;
        LineNumber = _nextLine;
        _nextLine += Math.Max(1, lines);
        Error = error;
        _start = next;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!ReferenceEquals(_buffer, Array.Empty<byte>()))
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }

        if (_ownsStream)
        {
            _stream.Dispose();
        }
    }
}
