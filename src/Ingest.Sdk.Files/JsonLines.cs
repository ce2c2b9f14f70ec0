using System.Buffers;
using System.Text.Json;

namespace Ingest.Sdk.Files;

/// <summary>Reads a stream line by line as UTF-8 bytes (pooled; a line is valid until the next read). \r\n and \n end lines; a BOM is skipped.</summary>
internal sealed class LineReader : IDisposable
{
    private readonly Stream _stream;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
    private int _start;
    private int _end;
    private int _lineStart;
    private int _lineLength;
    private bool _eof;
    private bool _first = true;

    public LineReader(Stream stream)
    {
        _stream = stream;
    }

    public long LineNumber { get; private set; }

    public ReadOnlySpan<byte> Line => _buffer.AsSpan(_lineStart, _lineLength);

    public bool IsBlank => Line.Trim(" \t"u8).IsEmpty;

    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var nl = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (nl >= 0 || (_eof && _end > _start))
            {
                var len = nl >= 0 ? nl : _end - _start;
                _lineStart = _start;
                _lineLength = len > 0 && _buffer[_start + len - 1] == (byte)'\r' ? len - 1 : len;
                _start += nl >= 0 ? nl + 1 : len;
                if (_first)
                {
                    _first = false;
                    if (_lineLength >= 3 && _buffer[_lineStart] == 0xEF && _buffer[_lineStart + 1] == 0xBB && _buffer[_lineStart + 2] == 0xBF)
                    {
                        _lineStart += 3;
                        _lineLength -= 3;
                    }
                }

                LineNumber++;
                return true;
            }

            if (_eof)
            {
                return false;
            }

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
            _eof = read == 0;
            _end += read;
        }
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}

/// <summary>A top-level property of a JSON line: offsets into the line.</summary>
internal readonly record struct JsonProp(int NameStart, int NameLength, bool NameEscaped, int ValueStart, int ValueLength, bool ValueEscaped, JsonTokenType Kind);

/// <summary>Splits one JSON object line into its top-level properties.</summary>
internal static class JsonLine
{
    [ThreadStatic]
    private static byte[]? t_scratch;

    public static bool TryParse(ReadOnlySpan<byte> line, List<JsonProp> props, out string error)
    {
        props.Clear();
        error = "";
        try
        {
            var r = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
            {
                error = "the line is not a JSON object";
                return false;
            }

            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                var nameStart = (int)r.TokenStartIndex + 1;
                var nameLength = r.ValueSpan.Length;
                var nameEscaped = r.ValueIsEscaped;
                r.Read();
                var kind = r.TokenType;
                if (kind is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    var start = (int)r.TokenStartIndex;
                    r.Skip();
                    props.Add(new JsonProp(nameStart, nameLength, nameEscaped, start, (int)r.BytesConsumed - start, false, kind));
                }
                else if (kind == JsonTokenType.String)
                {
                    props.Add(new JsonProp(nameStart, nameLength, nameEscaped, (int)r.TokenStartIndex + 1, r.ValueSpan.Length, r.ValueIsEscaped, kind));
                }
                else
                {
                    props.Add(new JsonProp(nameStart, nameLength, nameEscaped, (int)r.TokenStartIndex, r.ValueSpan.Length, false, kind));
                }
            }

            if (r.TokenType != JsonTokenType.EndObject)
            {
                error = "the JSON object is not closed";
                return false;
            }

            if (r.Read())
            {
                error = "text follows the JSON object on the same line";
                return false;
            }

            return true;
        }
        catch (JsonException e)
        {
            error = "invalid JSON: " + e.Message;
            return false;
        }
    }

    public static ReadOnlySpan<byte> Name(ReadOnlySpan<byte> line, JsonProp p) =>
        p.NameEscaped ? Unescape(line.Slice(p.NameStart - 1, p.NameLength + 2), 0) : line.Slice(p.NameStart, p.NameLength);

    public static ReadOnlySpan<byte> Value(ReadOnlySpan<byte> line, JsonProp p) =>
        p.ValueEscaped ? Unescape(line.Slice(p.ValueStart - 1, p.ValueLength + 2), 1) : line.Slice(p.ValueStart, p.ValueLength);

    /// <summary>Unescapes a quoted JSON string token into a per-thread scratch buffer (slot 0 for names, 1 for values).</summary>
    private static ReadOnlySpan<byte> Unescape(ReadOnlySpan<byte> quoted, int slot)
    {
        var r = new Utf8JsonReader(quoted);
        r.Read();
        var half = Math.Max(quoted.Length, 256);
        var scratch = t_scratch;
        if (scratch is null || scratch.Length < half * 2)
        {
            t_scratch = scratch = new byte[half * 2];
        }

        var target = scratch.AsSpan(slot * (scratch.Length / 2), scratch.Length / 2);
        var n = r.CopyString(target);
        return target[..n];
    }
}
