using System.Text;
using System.Text.Json;
using Ingest.Connectors.Files;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;

namespace Ingest.Connectors.Files.Tests;

internal static class Compress
{
    public static byte[] Gzip(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(ms, System.IO.Compression.CompressionLevel.Fastest))
        {
            gz.Write(Encoding.UTF8.GetBytes(text));
        }

        return ms.ToArray();
    }

    public static byte[] Zstd(string text)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(Encoding.UTF8.GetBytes(text)).ToArray();
    }
}

/// <summary>A stream that hands out one byte per read, so every buffer boundary is exercised.</summary>
internal sealed class TrickleStream(byte[] data) : Stream
{
    private int _pos;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => data.Length;
    public override long Position { get => _pos; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_pos >= data.Length || count == 0)
        {
            return 0;
        }

        buffer[offset] = data[_pos++];
        return 1;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Schemas as text (StreamSchema.ToString prints record internals for primitive types).</summary>
internal static class Describe
{
    public static string Schema(StreamSchema s) => string.Join(", ", s.Columns.Select(c => $"{c.Name} {c.Type.DisplayName}{(c.Nullable ? "" : " not null")}"));
}

/// <summary>Reads whole files of one table through <see cref="FileTableReader"/>.</summary>
internal static class TableRead
{
    public static FileTableOptions Table(string json)
    {
        using var doc = JsonDocument.Parse("[" + json + "]");
        return FileTableOptions.ParseTables(doc.RootElement)[0];
    }

    public sealed record Result(List<ChangeBatch> Rows, List<ChangeBatch> DeadLetters, StreamSchema Schema);

    public static async Task<Result> ReadAsync(string root, FileTableOptions table, bool evolve = true)
    {
        var store = new LocalFolderStore(root);
        var files = await FileSourceReader.ListAsync(store, table, CancellationToken.None);
        var schema = await FileTableReader.InferSchemaAsync(store, table, files.Take(1).ToList(), CancellationToken.None);
        using var reader = new FileTableReader(store, table, schema);
        var rows = new List<ChangeBatch>();
        var dead = new List<ChangeBatch>();
        long ordinal = 1;
        foreach (var f in files)
        {
            await foreach (var chunk in reader.ReadAsync(f, ordinal++, 0, ChangeOp.Read, evolve, CancellationToken.None))
            {
                if (chunk.Rows is not null)
                {
                    rows.Add(chunk.Rows);
                }

                if (chunk.DeadLetters is not null)
                {
                    dead.Add(chunk.DeadLetters);
                }
            }
        }

        return new Result(rows, dead, reader.Schema);
    }
}
