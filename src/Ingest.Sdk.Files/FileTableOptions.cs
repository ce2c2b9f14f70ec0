using System.Globalization;
using System.Text;
using System.Text.Json;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Files;

/// <summary>The file formats a table can read.</summary>
public enum FileFormat
{
    /// <summary>Delimited text (<see cref="CsvFormatOptions"/>).</summary>
    Csv,
    /// <summary>One JSON object per line.</summary>
    JsonLines,
    /// <summary>Apache Parquet.</summary>
    Parquet,
}

/// <summary>How CSV text is split into fields.</summary>
/// <param name="Delimiter">Between fields (default <c>,</c>).</param>
/// <param name="Quote">Around fields holding delimiters, quotes or line breaks (default <c>"</c>).</param>
/// <param name="Escape">Makes the next character literal inside quotes; the default, the quote itself, means RFC 4180's doubled quote.</param>
/// <param name="Header">Whether the first line names the columns (else they are <c>_c0</c>, <c>_c1</c>, ...).</param>
/// <param name="Encoding">The text encoding (UTF-8 by default; others are transcoded).</param>
/// <param name="NullValues">Texts that mean null (default: the empty unquoted field).</param>
public sealed record CsvFormatOptions(byte Delimiter = (byte)',', byte Quote = (byte)'"', byte Escape = (byte)'"', bool Header = true, Encoding? Encoding = null, IReadOnlyList<string>? NullValues = null)
{
    private readonly IReadOnlyList<string>? _nullValues = NullValues;

    /// <summary>Texts that mean null (null: the empty unquoted field).</summary>
    public IReadOnlyList<string>? NullValues
    {
        get => _nullValues;
        init
        {
            _nullValues = value;
            NullMarkers = (value ?? [""]).Select(System.Text.Encoding.UTF8.GetBytes).ToArray();
        }
    }

    /// <summary>The null markers as UTF-8 (set with <see cref="NullValues"/>, so <c>with</c> keeps them in step).</summary>
    internal byte[][] NullMarkers { get; private init; } = (NullValues ?? [""]).Select(System.Text.Encoding.UTF8.GetBytes).ToArray();
}

/// <summary>
/// One table of a file-store connection: which files (a glob over paths relative to the root), their format,
/// and their schema (declared, or inferred from a sample).
/// </summary>
/// <param name="Name">The stream's name.</param>
/// <param name="Pattern">A glob: <c>*</c> within a folder, <c>**</c> across folders, <c>?</c> one character, <c>{a,b}</c> alternatives.</param>
/// <param name="Format">How files are read.</param>
/// <param name="Csv">CSV options (when <see cref="Format"/> is CSV).</param>
/// <param name="Columns">Declared columns, or null to infer them.</param>
/// <param name="PrimaryKey">Key columns (for merge tables), or empty.</param>
/// <param name="SampleFiles">Files read to infer the schema.</param>
/// <param name="SampleRows">Rows read per sampled file.</param>
/// <param name="BatchRows">Rows per batch (a checkpoint follows every batch).</param>
/// <param name="Index">The table's place in the <c>tables</c> list (for error messages).</param>
public sealed record FileTableOptions(
    string Name,
    string Pattern,
    FileFormat Format,
    CsvFormatOptions Csv,
    IReadOnlyList<Types.Field>? Columns,
    IReadOnlyList<string> PrimaryKey,
    int SampleFiles = 10,
    int SampleRows = 1000,
    int BatchRows = 10_000,
    int Index = 0)
{
    /// <summary>The suffix of the dead-letter stream's name.</summary>
    public const string DeadLetterSuffix = "__dead_letters";

    /// <summary>The stream of lines that could not be parsed at all.</summary>
    public string DeadLetterStream => Name + DeadLetterSuffix;

    /// <summary>The JSON Schema of one entry of <c>tables</c>, shared by every file-store connector's spec.</summary>
    public const string SpecJson = """
        {
          "type": "object",
          "additionalProperties": false,
          "required": ["name", "pattern", "format"],
          "properties": {
            "name": { "type": "string", "title": "Stream name", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$" },
            "pattern": { "type": "string", "title": "Files", "description": "A glob over paths under the root: * within a folder, ** across folders, ? one character, {a,b} alternatives. E.g. orders/**/*.csv.gz", "minLength": 1 },
            "format": { "type": "string", "enum": ["csv", "jsonl", "parquet"], "title": "Format", "description": "gzip (.gz) and zstd (.zst) files are decompressed by their extension." },
            "options": {
              "type": "object",
              "additionalProperties": false,
              "properties": {
                "delimiter": { "type": "string", "minLength": 1, "maxLength": 2, "default": "," },
                "quote": { "type": "string", "minLength": 1, "maxLength": 1, "default": "\"" },
                "escape": { "type": "string", "minLength": 1, "maxLength": 1, "description": "Default: the quote (a doubled quote is a quote)." },
                "header": { "type": "boolean", "default": true },
                "encoding": { "type": "string", "default": "utf-8", "description": "A .NET encoding name: utf-8, utf-16, iso-8859-1, windows-1252, ..." },
                "nullValues": { "type": "array", "items": { "type": "string" }, "description": "Texts that mean null. Default: the empty unquoted field." },
                "sampleFiles": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 10 },
                "sampleRows": { "type": "integer", "minimum": 1, "maximum": 1000000, "default": 1000 },
                "batchRows": { "type": "integer", "minimum": 1, "maximum": 1000000, "default": 10000 }
              }
            },
            "columns": {
              "type": "array",
              "description": "Declared columns; when absent they are inferred from a sample of the files.",
              "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "type"],
                "properties": {
                  "name": { "type": "string", "minLength": 1 },
                  "type": { "type": "string", "description": "A Delta type: boolean, integer, long, double, decimal(p,s), string, date, timestamp, timestamp_ntz, ..." }
                }
              }
            },
            "primaryKey": { "type": "array", "items": { "type": "string" }, "description": "Key columns, for merge tables." }
          }
        }
        """;

    /// <summary>Parses the <c>tables</c> setting.</summary>
    /// <exception cref="ConnectorException">Of kind configuration, naming the field.</exception>
    public static IReadOnlyList<FileTableOptions> ParseTables(JsonElement tables)
    {
        if (tables.ValueKind != JsonValueKind.Array || tables.GetArrayLength() == 0)
        {
            throw Config("'tables' must list at least one table ({name, pattern, format}).", "/tables");
        }

        var result = new List<FileTableOptions>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var t in tables.EnumerateArray())
        {
            var table = Parse(t, i);
            if (!names.Add(table.Name) || !names.Add(table.DeadLetterStream))
            {
                throw Config($"Two tables are called '{table.Name}'.", $"/tables/{i}/name");
            }

            result.Add(table);
            i++;
        }

        return result;
    }

    private static FileTableOptions Parse(JsonElement t, int index)
    {
        var at = $"/tables/{index}";
        if (t.ValueKind != JsonValueKind.Object)
        {
            throw Config("Each table must be an object {name, pattern, format}.", at);
        }

        var name = String(t, "name", at) ?? throw Config("A table needs a 'name'.", at + "/name");
        var pattern = String(t, "pattern", at) ?? throw Config($"Table '{name}' needs a 'pattern'.", at + "/pattern");
        var format = String(t, "format", at) switch
        {
            "csv" => FileFormat.Csv,
            "jsonl" or "json" => FileFormat.JsonLines,
            "parquet" => FileFormat.Parquet,
            var other => throw Config($"Table '{name}': format must be csv, jsonl or parquet, not '{other}'.", at + "/format"),
        };
        try
        {
            Glob.Compile(pattern);
        }
        catch (FormatException e)
        {
            throw Config($"Table '{name}': {e.Message}", at + "/pattern");
        }

        var csv = new CsvFormatOptions();
        int sampleFiles = 10, sampleRows = 1000, batchRows = 10_000;
        if (t.TryGetProperty("options", out var o) && o.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in o.EnumerateObject())
            {
                var f = $"{at}/options/{p.Name}";
                switch (p.Name)
                {
                    case "delimiter": csv = csv with { Delimiter = Byte(p.Value, f, allowTab: true) }; break;
                    case "quote": csv = csv with { Quote = Byte(p.Value, f, false) }; break;
                    case "escape": csv = csv with { Escape = Byte(p.Value, f, false) }; break;
                    case "header": csv = csv with { Header = p.Value.ValueKind == JsonValueKind.True || (p.Value.ValueKind == JsonValueKind.False ? false : throw Config("'header' must be true or false.", f)) }; break;
                    case "encoding":
                        try
                        {
                            Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
                            csv = csv with { Encoding = Encoding.GetEncoding(p.Value.GetString() ?? "utf-8") };
                        }
                        catch (ArgumentException)
                        {
                            throw Config($"Unknown encoding '{p.Value.GetString()}' (try utf-8, utf-16, iso-8859-1).", f);
                        }

                        break;
                    case "nullValues":
                        if (p.Value.ValueKind != JsonValueKind.Array)
                        {
                            throw Config("'nullValues' must be a list of strings.", f);
                        }

                        csv = csv with { NullValues = p.Value.EnumerateArray().Select(v => v.GetString() ?? "").ToList() };
                        break;
                    case "sampleFiles": sampleFiles = Int(p.Value, f, 1, 1000); break;
                    case "sampleRows": sampleRows = Int(p.Value, f, 1, 1_000_000); break;
                    case "batchRows": batchRows = Int(p.Value, f, 1, 1_000_000); break;
                    default: throw Config($"Unknown option '{p.Name}'.", f);
                }
            }

            if (!o.TryGetProperty("escape", out _))
            {
                csv = csv with { Escape = csv.Quote };
            }
        }

        if (csv.Delimiter == csv.Quote)
        {
            throw Config($"Table '{name}': the delimiter and the quote must differ.", at + "/options/quote");
        }

        List<Types.Field>? columns = null;
        if (t.TryGetProperty("columns", out var cols) && cols.ValueKind == JsonValueKind.Array)
        {
            columns = [];
            var k = 0;
            foreach (var c in cols.EnumerateArray())
            {
                var cn = String(c, "name", $"{at}/columns/{k}") ?? throw Config("A column needs a 'name'.", $"{at}/columns/{k}/name");
                var ct = String(c, "type", $"{at}/columns/{k}") ?? throw Config($"Column '{cn}' needs a 'type'.", $"{at}/columns/{k}/type");
                DataType type;
                try
                {
                    type = DataType.FromDeltaName(ct);
                }
                catch (FormatException e)
                {
                    throw Config($"Column '{cn}': {e.Message}", $"{at}/columns/{k}/type");
                }

                if (FileColumns.IsMetadata(cn))
                {
                    throw Config($"Column '{cn}' clashes with a metadata column ({string.Join(", ", FileColumns.MetadataNames)}).", $"{at}/columns/{k}/name");
                }

                columns.Add(new Types.Field(cn, type));
                k++;
            }
        }

        var key = new List<string>();
        if (t.TryGetProperty("primaryKey", out var pk) && pk.ValueKind == JsonValueKind.Array)
        {
            foreach (var kk in pk.EnumerateArray())
            {
                var kn = kk.GetString() ?? "";
                if (columns is not null && !columns.Any(c => string.Equals(c.Name, kn, StringComparison.OrdinalIgnoreCase)) && kn != FileColumns.File)
                {
                    throw Config($"Table '{name}': key column '{kn}' is not among the declared columns.", at + "/primaryKey");
                }

                key.Add(kn);
            }
        }

        return new FileTableOptions(name, pattern, format, csv, columns, key, sampleFiles, sampleRows, batchRows, index);
    }

    private static string? String(JsonElement obj, string name, string at)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Config($"'{name}' must be a string.", at + "/" + name);
    }

    private static byte Byte(JsonElement v, string field, bool allowTab)
    {
        var s = v.GetString() ?? "";
        if (allowTab && s is "\\t" or "\t")
        {
            return (byte)'\t';
        }

        if (s.Length != 1 || s[0] > 127 || s[0] is '\n' or '\r')
        {
            throw Config($"Expected one ASCII character, got '{s}'.", field);
        }

        return (byte)s[0];
    }

    private static int Int(JsonElement v, string field, int min, int max) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i >= min && i <= max
            ? i
            : throw Config(string.Create(CultureInfo.InvariantCulture, $"Expected a whole number between {min} and {max}, got {v.GetRawText()}."), field);

    private static ConnectorException Config(string message, string field) => new(ErrorKind.Configuration, message, field);
}
