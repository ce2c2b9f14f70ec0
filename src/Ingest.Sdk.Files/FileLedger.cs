using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>
/// Which file versions of one table are ingested, kept compact: a watermark (every version modified
/// before it is done), the versions at or after it that are done, the file being read (with the last line
/// read) and the next file ordinal. It travels in the checkpoint, so it is as durable as the lake.
/// </summary>
public sealed class FileLedger
{
    private readonly Dictionary<string, FileEntry> _done = new(StringComparer.Ordinal);

    /// <summary>Every file version modified before this instant is done.</summary>
    public DateTimeOffset Watermark { get; private set; } = DateTimeOffset.MinValue;

    /// <summary>The ordinal the next new file version gets (positions are (ordinal, line)).</summary>
    public long NextOrdinal { get; private set; } = 1;

    /// <summary>The file being read, its ordinal and the last line whose row was emitted; null between files.</summary>
    public (FileEntry File, long Ordinal, long Line)? Current { get; private set; }

    /// <summary>The data columns the stream had when the checkpoint was taken (null: the declared or discovered ones).</summary>
    public IReadOnlyList<Field>? Columns { get; set; }

    /// <summary>Done versions at or after the watermark.</summary>
    public int DoneCount => _done.Count;

    /// <summary>Whether this version still needs reading.</summary>
    public bool IsPending(FileEntry file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Modified < Watermark)
        {
            return false;
        }

        return !_done.TryGetValue(file.Path, out var done) || !done.SameVersion(file);
    }

    /// <summary>Starts (or resumes) a file: its ordinal, and the line to skip through.</summary>
    public (long Ordinal, long SkipThroughLine) Begin(FileEntry file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (Current is { } c && c.File.SameVersion(file))
        {
            return (c.Ordinal, c.Line);
        }

        var ordinal = NextOrdinal++;
        Current = (file, ordinal, 0);
        return (ordinal, 0);
    }

    /// <summary>A fresh ordinal for a pass over a file that is not tracked as current (re-reading a deleted file to delete its rows).</summary>
    public long TakeOrdinal() => NextOrdinal++;

    /// <summary>Records progress within the current file.</summary>
    public void Advance(long line)
    {
        if (Current is { } c && line > c.Line)
        {
            Current = (c.File, c.Ordinal, line);
        }
    }

    /// <summary>The current file is read to its end.</summary>
    public void Complete()
    {
        if (Current is { } c)
        {
            if (c.File.Modified >= Watermark)
            {
                _done[c.File.Path] = c.File;
            }

            Current = null;
        }
    }

    /// <summary>The paths of every version known to be ingested (done at or after the watermark, and the file being read).</summary>
    public IEnumerable<string> KnownPaths =>
        Current is { } c && !_done.ContainsKey(c.File.Path) ? _done.Keys.Append(c.File.Path) : _done.Keys;

    /// <summary>Forgets a file that is gone from the store (a later file at the same path is new).</summary>
    public void Forget(string path)
    {
        _done.Remove(path);
        if (Current is { } c && c.File.Path == path)
        {
            Current = null;
        }
    }

    /// <summary>Forgets an in-progress file that changed or vanished (its new version is a new file).</summary>
    public void Abandon() => Current = null;

    /// <summary>Moves the watermark forward (never back) and forgets done versions before it.</summary>
    public void AdvanceWatermark(DateTimeOffset watermark)
    {
        if (watermark <= Watermark)
        {
            return;
        }

        if (Current is { } c && c.File.Modified < watermark)
        {
            watermark = c.File.Modified;
        }

        Watermark = watermark;
        foreach (var (path, f) in _done.ToList())
        {
            if (f.Modified < watermark)
            {
                _done.Remove(path);
            }
        }
    }

    /// <summary>The ledger as checkpoint JSON.</summary>
    public JsonObject ToJson()
    {
        var done = new JsonArray();
        foreach (var f in _done.Values.OrderBy(f => f.Modified).ThenBy(f => f.Path, StringComparer.Ordinal))
        {
            done.Add(Entry(f));
        }

        var o = new JsonObject
        {
            ["next"] = NextOrdinal,
            ["watermark"] = Watermark == DateTimeOffset.MinValue ? null : Watermark.UtcTicks,
            ["done"] = done,
        };
        if (Current is { } c)
        {
            o["current"] = new JsonObject { ["file"] = Entry(c.File), ["ordinal"] = c.Ordinal, ["line"] = c.Line };
        }

        if (Columns is not null)
        {
            o["columns"] = new StreamSchema(Columns).ToDeltaJson();
        }

        return o;
    }

    /// <summary>Writes the same JSON as <see cref="ToJson"/> (without building nodes: checkpoints of large ledgers are frequent).</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteNumber("next", NextOrdinal);
        if (Watermark == DateTimeOffset.MinValue)
        {
            writer.WriteNull("watermark");
        }
        else
        {
            writer.WriteNumber("watermark", Watermark.UtcTicks);
        }

        writer.WriteStartArray("done");
        var done = _done.Values.ToArray();
        Array.Sort(done, static (a, b) => a.Modified != b.Modified ? a.Modified.CompareTo(b.Modified) : string.CompareOrdinal(a.Path, b.Path));
        foreach (var f in done)
        {
            WriteEntry(writer, f);
        }

        writer.WriteEndArray();
        if (Current is { } c)
        {
            writer.WriteStartObject("current");
            writer.WritePropertyName("file");
            WriteEntry(writer, c.File);
            writer.WriteNumber("ordinal", c.Ordinal);
            writer.WriteNumber("line", c.Line);
            writer.WriteEndObject();
        }

        if (Columns is not null)
        {
            writer.WritePropertyName("columns");
            new StreamSchema(Columns).ToDeltaJson().WriteTo(writer);
        }

        writer.WriteEndObject();
    }

    private static void WriteEntry(Utf8JsonWriter writer, FileEntry f)
    {
        writer.WriteStartArray();
        writer.WriteStringValue(f.Path);
        writer.WriteNumberValue(f.Size);
        writer.WriteNumberValue(f.Modified.UtcTicks);
        if (f.Tag is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteStringValue(f.Tag);
        }

        writer.WriteEndArray();
    }

    /// <summary>Reads a ledger written by <see cref="ToJson"/>.</summary>
    /// <exception cref="FormatException">The JSON is not a ledger.</exception>
    public static FileLedger FromJson(JsonElement json)
    {
        var ledger = new FileLedger();
        try
        {
            ledger.NextOrdinal = json.GetProperty("next").GetInt64();
            if (json.TryGetProperty("watermark", out var w) && w.ValueKind == JsonValueKind.Number)
            {
                ledger.Watermark = new DateTimeOffset(w.GetInt64(), TimeSpan.Zero);
            }

            foreach (var e in json.GetProperty("done").EnumerateArray())
            {
                var f = ReadEntry(e);
                ledger._done[f.Path] = f;
            }

            if (json.TryGetProperty("current", out var c) && c.ValueKind == JsonValueKind.Object)
            {
                ledger.Current = (ReadEntry(c.GetProperty("file")), c.GetProperty("ordinal").GetInt64(), c.GetProperty("line").GetInt64());
            }

            if (json.TryGetProperty("columns", out var cols) && cols.ValueKind == JsonValueKind.Object)
            {
                var st = (StructType)DataType.FromDeltaJson(JsonNode.Parse(cols.GetRawText())!);
                ledger.Columns = st.Fields;
            }
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or JsonException)
        {
            throw new FormatException("The checkpoint's file ledger is malformed: " + e.Message, e);
        }

        return ledger;
    }

    private static JsonArray Entry(FileEntry f) => [f.Path, f.Size, f.Modified.UtcTicks, f.Tag];

    private static FileEntry ReadEntry(JsonElement e) =>
        new(e[0].GetString()!, e[1].GetInt64(), new DateTimeOffset(e[2].GetInt64(), TimeSpan.Zero), e[3].ValueKind == JsonValueKind.String ? e[3].GetString() : null);
}
