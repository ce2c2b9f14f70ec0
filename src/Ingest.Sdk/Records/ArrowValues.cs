using System.Text.Json;
using Apache.Arrow;
using Ingest.Sdk.Types;

namespace Ingest.Sdk.Records;

/// <summary>
/// Conversions between Arrow arrays and CLR values, for slow paths (nested types, previews, tests)
/// and for writing rows as JSON. Hot paths use the typed arrays directly.
/// </summary>
/// <remarks>
/// CLR shapes: boolean <see cref="bool"/>; integers <see cref="sbyte"/>, <see cref="short"/>, <see cref="int"/>,
/// <see cref="long"/> (any integral value is accepted when building); <see cref="float"/>, <see cref="double"/>;
/// <see cref="string"/>; binary <c>byte[]</c>; date <see cref="DateOnly"/>; timestamp <see cref="DateTimeOffset"/> (UTC);
/// timestamp_ntz <see cref="DateTime"/> (Unspecified kind); decimal <see cref="decimal"/> where it fits, else
/// <see cref="System.Data.SqlTypes.SqlDecimal"/>; array <c>IReadOnlyList&lt;object?&gt;</c>; struct
/// <c>IReadOnlyDictionary&lt;string, object?&gt;</c> by field name; map <c>IReadOnlyList&lt;KeyValuePair&lt;object, object?&gt;&gt;</c>.
/// </remarks>
public static class ArrowValues
{
    /// <summary>Builds an Arrow array of <paramref name="type"/> from CLR values (null = null).</summary>
    public static IArrowArray BuildArray(DataType type, IReadOnlyList<object?> values) => throw new NotImplementedException();

    /// <summary>The CLR value at <paramref name="index"/> (null when null).</summary>
    public static object? GetValue(IArrowArray array, int index) => throw new NotImplementedException();

    /// <summary>
    /// Writes the value at <paramref name="index"/> as JSON: numbers as numbers (decimals exact),
    /// timestamp as <c>"YYYY-MM-DD HH:MM:SS[.ffffff]+00"</c>, timestamp_ntz without the offset, date
    /// <c>"YYYY-MM-DD"</c>, binary as text with <c>\xNN</c> escapes for non-printable bytes, maps as objects with string keys.
    /// </summary>
    public static void WriteJson(Utf8JsonWriter writer, IArrowArray array, int index) => throw new NotImplementedException();

    /// <summary>Writes row <paramref name="row"/> of <paramref name="batch"/> as one JSON object, columns in order.</summary>
    public static void WriteRowJson(Utf8JsonWriter writer, RecordBatch batch, int row) => throw new NotImplementedException();
}
