using System.Text.Json.Nodes;

namespace Ingest.Sdk.Types;

/// <summary>
/// The columns of a stream, in order. A <see cref="Records.ChangeBatch"/> of the stream carries exactly these columns.
/// </summary>
public sealed class StreamSchema : IEquatable<StreamSchema>
{
    private readonly Dictionary<string, int> _ordinals;
    private Apache.Arrow.Schema? _arrow;

    /// <summary>Creates a schema; column names must be unique ignoring case (Delta's rule).</summary>
    public StreamSchema(IReadOnlyList<Field> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        _ordinals = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < columns.Count; i++)
        {
            if (!_ordinals.TryAdd(columns[i].Name, i))
            {
                throw new ArgumentException($"Column name '{columns[i].Name}' appears twice (names are compared ignoring case).", nameof(columns));
            }
        }

        Columns = columns;
    }

    /// <summary>The columns in order.</summary>
    public IReadOnlyList<Field> Columns { get; }

    /// <summary>Number of columns.</summary>
    public int Count => Columns.Count;

    /// <summary>The ordinal of a column by name (ignoring case), or -1.</summary>
    public int IndexOf(string name) => _ordinals.TryGetValue(name, out var i) ? i : -1;

    /// <summary>The column called <paramref name="name"/> (ignoring case).</summary>
    /// <exception cref="KeyNotFoundException">No such column.</exception>
    public Field this[string name] => IndexOf(name) is var i and >= 0 ? Columns[i] : throw new KeyNotFoundException($"No column '{name}'.");

    /// <summary>The Arrow schema of batches of this stream.</summary>
    public Apache.Arrow.Schema ToArrowSchema()
    {
        if (_arrow is null)
        {
            var b = new Apache.Arrow.Schema.Builder();
            foreach (var c in Columns)
            {
                b.Field(c.ToArrowField());
            }

            _arrow = b.Build();
        }

        return _arrow;
    }

    /// <summary>The schema as a Spark StructType (the Delta <c>schemaString</c> shape).</summary>
    public StructType ToStructType() => new(Columns);

    /// <summary>The Spark StructType JSON of this schema.</summary>
    public JsonObject ToDeltaJson() => (JsonObject)ToStructType().ToDeltaJson();

    /// <summary>Reads a schema from an Arrow schema.</summary>
    public static StreamSchema FromArrow(Apache.Arrow.Schema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return new StreamSchema(schema.FieldsList.Select(f => new Field(f.Name, DataType.FromArrowType(f.DataType), f.IsNullable)).ToList());
    }

    /// <inheritdoc />
    public bool Equals(StreamSchema? other) => other is not null && Columns.SequenceEqual(other.Columns);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as StreamSchema);

    /// <inheritdoc />
    public override int GetHashCode() => ToStructType().GetHashCode();

    /// <inheritdoc />
    public override string ToString() => string.Join(", ", Columns.Select(c => $"{c.Name} {c.Type}{(c.Nullable ? "" : " not null")}"));
}
