using System.Globalization;
using System.Text.Json.Nodes;
using Apache.Arrow.Types;
using Ingest.Sdk.Types;
using SdkStruct = Ingest.Sdk.Types.StructType;

namespace Ingest.Delta.Read;

/// <summary><c>delta.columnMapping.mode</c> (PROTOCOL.md "Column Mapping").</summary>
internal enum ColumnMappingMode
{
    None,
    Name,
    Id,
}

/// <summary>
/// A field of the table schema as a reader needs it: the logical name and type it is returned under, and the physical
/// name and field id by which the data files hold it. Array elements and map keys/values are unnamed children.
/// </summary>
internal sealed class ReadField
{
    public required string Name { get; init; }

    public required string PhysicalName { get; init; }

    public int? FieldId { get; init; }

    public bool Nullable { get; init; } = true;

    public required DataType Type { get; init; }

    public required IArrowType ArrowType { get; init; }

    /// <summary>Struct: its fields; array: [element]; map: [key, value]; otherwise empty.</summary>
    public required IReadOnlyList<ReadField> Children { get; init; }

    public const string FieldIdKey = "PARQUET:field_id";

    /// <summary>Reads the schemaString (with its field metadata, which the SDK's type model drops).</summary>
    public static IReadOnlyList<ReadField> Parse(string schemaString, ColumnMappingMode mode, string table)
    {
        var root = JsonNode.Parse(schemaString) as JsonObject
            ?? throw new InvalidDataException($"Delta table '{table}': schemaString is not a JSON object.");
        var fields = root["fields"] as JsonArray ?? throw new InvalidDataException($"Delta table '{table}': schemaString has no fields.");
        return fields.Select(f => FromField((JsonObject)f!, mode, table)).ToList();
    }

    private static ReadField FromField(JsonObject f, ColumnMappingMode mode, string table)
    {
        var name = f["name"]?.GetValue<string>() ?? throw new InvalidDataException($"Delta table '{table}': a schema field has no name.");
        var meta = f["metadata"] as JsonObject;
        var physical = meta?["delta.columnMapping.physicalName"]?.GetValue<string>();
        int? id = meta?["delta.columnMapping.id"] is JsonValue idValue ? idValue.GetValue<int>() : null;
        if (mode != ColumnMappingMode.None && physical is null)
        {
            throw new InvalidDataException($"Delta table '{table}' uses column mapping mode '{mode.ToString().ToLowerInvariant()}' but field '{name}' has no delta.columnMapping.physicalName.");
        }

        if (mode == ColumnMappingMode.Id && id is null)
        {
            throw new InvalidDataException($"Delta table '{table}' uses column mapping mode 'id' but field '{name}' has no delta.columnMapping.id.");
        }

        var node = FromType(f["type"] ?? throw new InvalidDataException($"Delta table '{table}': field '{name}' has no type."), mode, table, name);
        return new ReadField
        {
            Name = name,
            PhysicalName = mode == ColumnMappingMode.None ? name : physical!,
            FieldId = mode == ColumnMappingMode.None ? null : id,
            Nullable = f["nullable"]?.GetValue<bool>() ?? true,
            Type = node.Type,
            ArrowType = node.ArrowType,
            Children = node.Children,
        };
    }

    private static ReadField FromType(JsonNode type, ColumnMappingMode mode, string table, string name)
    {
        if (type is JsonValue)
        {
            var t = DataType.FromDeltaJson(type);
            return Leaf(name, t);
        }

        var obj = (JsonObject)type;
        switch (obj["type"]?.GetValue<string>())
        {
            case "struct":
            {
                var children = (obj["fields"] as JsonArray ?? []).Select(c => FromField((JsonObject)c!, mode, table)).ToList();
                var t = new SdkStruct(children.Select(c => new Field(c.Name, c.Type, c.Nullable)).ToList());
                return new ReadField { Name = name, PhysicalName = name, Type = t, ArrowType = t.ToArrowType(), Children = children };
            }

            case "array":
            {
                var element = FromType(obj["elementType"]!, mode, table, name + ".element");
                var t = new Sdk.Types.ArrayType(element.Type, obj["containsNull"]?.GetValue<bool>() ?? true);
                return new ReadField { Name = name, PhysicalName = name, Type = t, ArrowType = t.ToArrowType(), Children = [element] };
            }

            case "map":
            {
                var key = FromType(obj["keyType"]!, mode, table, name + ".key");
                var value = FromType(obj["valueType"]!, mode, table, name + ".value");
                var t = new Sdk.Types.MapType(key.Type, value.Type, obj["valueContainsNull"]?.GetValue<bool>() ?? true);
                return new ReadField { Name = name, PhysicalName = name, Type = t, ArrowType = t.ToArrowType(), Children = [key, value] };
            }

            default:
                return Leaf(name, DataType.FromDeltaJson(type));
        }
    }

    private static ReadField Leaf(string name, DataType t) =>
        new() { Name = name, PhysicalName = name, Type = t, ArrowType = t.ToArrowType(), Children = [] };

    /// <summary>The index of the file field holding <paramref name="target"/>: by field id in id mode, else by physical name.</summary>
    public static int Find(IReadOnlyList<Apache.Arrow.Field> fileFields, ReadField target, ColumnMappingMode mode)
    {
        if (mode == ColumnMappingMode.Id && target.FieldId is { } id)
        {
            for (var j = 0; j < fileFields.Count; j++)
            {
                var meta = fileFields[j].Metadata;
                if (meta is not null && meta.TryGetValue(FieldIdKey, out var text)
                    && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var fid) && fid == id)
                {
                    return j;
                }
            }
        }

        // Physical names are exact under column mapping; plain tables match names case-insensitively as Spark does.
        for (var j = 0; j < fileFields.Count; j++)
        {
            if (string.Equals(fileFields[j].Name, target.PhysicalName, StringComparison.Ordinal))
            {
                return j;
            }
        }

        if (mode == ColumnMappingMode.None)
        {
            for (var j = 0; j < fileFields.Count; j++)
            {
                if (string.Equals(fileFields[j].Name, target.PhysicalName, StringComparison.OrdinalIgnoreCase))
                {
                    return j;
                }
            }
        }

        return -1;
    }
}
