using System.Buffers;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>
/// Writes rows of one table into its batch builder: typed values through <see cref="TextValues"/>, values
/// that do not fit into <c>_rescued_data</c> (column name and raw text), the metadata columns, and lines
/// that cannot be parsed into the dead-letter builder.
/// </summary>
internal sealed class RowWriter : IDisposable
{
    private readonly ArrayBufferWriter<byte> _rescued = new(256);
    private readonly Utf8JsonWriter _json;
    private readonly DataType[] _types;
    private readonly int _rescuedColumn;
    private readonly int _fileColumn;
    private readonly int _modifiedColumn;
    private readonly int _lineColumn;
    private bool _anyRescued;
    private string _file = "";
    private byte[] _fileUtf8 = [];
    private long _modifiedMicros;
    private long _ordinal;
    private ChangeOp _op;

    public RowWriter(string stream, StreamSchema schema, string deadLetterStream, int capacity)
    {
        Schema = schema;
        Builder = new ChangeBatchBuilder(stream, schema, capacity);
        DeadLetters = new ChangeBatchBuilder(deadLetterStream, FileColumns.DeadLetterSchema, 16);
        _json = new Utf8JsonWriter(_rescued, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        _types = schema.Columns.Select(c => c.Type).ToArray();
        _rescuedColumn = schema.IndexOf(FileColumns.RescuedData);
        _fileColumn = schema.IndexOf(FileColumns.File);
        _modifiedColumn = schema.IndexOf(FileColumns.FileModified);
        _lineColumn = schema.IndexOf(FileColumns.Line);
        DataColumns = _rescuedColumn;
    }

    public StreamSchema Schema { get; }

    public ChangeBatchBuilder Builder { get; }

    public ChangeBatchBuilder DeadLetters { get; }

    /// <summary>Data columns come first: 0 .. DataColumns-1.</summary>
    public int DataColumns { get; }

    public void BeginFile(FileEntry file, long ordinal, ChangeOp op)
    {
        _file = file.Path;
        _fileUtf8 = Encoding.UTF8.GetBytes(file.Path);
        _modifiedMicros = (file.Modified.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
        _ordinal = ordinal;
        _op = op;
    }

    public void BeginRow(long line)
    {
        Builder.BeginRow(_op, FileColumns.Position(_ordinal, line), _modifiedMicros);
        _anyRescued = false;
        _currentLine = line;
    }

    private long _currentLine;

    /// <summary>Sets a data column from text; rescues it when it does not fit.</summary>
    public void SetText(int column, ReadOnlySpan<byte> text, ReadOnlySpan<byte> sourceName)
    {
        if (!TextValues.TryWrite(Builder, column, _types[column], text))
        {
            Rescue(sourceName, text);
        }
    }

    public void SetNull(int column) => Builder.SetNull(column);

    /// <summary>A value with no column (or not fitting one): kept in <c>_rescued_data</c> under its source name.</summary>
    public void Rescue(ReadOnlySpan<byte> name, ReadOnlySpan<byte> raw)
    {
        if (!_anyRescued)
        {
            _rescued.Clear();
            _json.Reset(_rescued);
            _json.WriteStartObject();
            _anyRescued = true;
        }

        _json.WriteString(name, raw);
    }

    public void EndRow()
    {
        if (_anyRescued)
        {
            _json.WriteEndObject();
            _json.Flush();
            Builder.SetStringUtf8(_rescuedColumn, _rescued.WrittenSpan);
        }
        else
        {
            Builder.SetNull(_rescuedColumn);
        }

        Builder.SetStringUtf8(_fileColumn, _fileUtf8);
        Builder.SetTimestampMicros(_modifiedColumn, _modifiedMicros);
        Builder.SetInt64(_lineColumn, _currentLine);
        Builder.EndRow();
    }

    public void Dispose() => _json.Dispose();

    /// <summary>A line that could not be parsed: file, line, raw text and why.</summary>
    public void DeadLetter(long line, ReadOnlySpan<byte> raw, string error)
    {
        DeadLetters.BeginRow(_op, FileColumns.Position(_ordinal, line), _modifiedMicros);
        DeadLetters.SetString(0, _file);
        DeadLetters.SetInt64(1, line);
        DeadLetters.SetStringUtf8(2, raw);
        DeadLetters.SetString(3, error);
        DeadLetters.EndRow();
    }
}
