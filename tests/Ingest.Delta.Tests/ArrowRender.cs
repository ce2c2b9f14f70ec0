using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Ingest.Delta.Tests;

/// <summary>Renders Arrow values as text, recursively, to compare what was written with what was read.</summary>
internal static class ArrowRender
{
    public static string Row(RecordBatch batch, int row)
    {
        var sb = new StringBuilder();
        for (var c = 0; c < batch.ColumnCount; c++)
        {
            sb.Append(batch.Schema.FieldsList[c].Name).Append('=').Append(Value(batch.Column(c), row)).Append("; ");
        }

        return sb.ToString();
    }

    public static string Value(IArrowArray a, int i)
    {
        if (a.IsNull(i))
        {
            return "null";
        }

        switch (a)
        {
            case BooleanArray x: return x.GetValue(i)!.Value ? "true" : "false";
            case Int8Array x: return x.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture);
            case Int16Array x: return x.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture);
            case Int32Array x: return x.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture);
            case Int64Array x: return x.GetValue(i)!.Value.ToString(CultureInfo.InvariantCulture);
            case FloatArray x: return x.GetValue(i)!.Value.ToString("R", CultureInfo.InvariantCulture);
            case DoubleArray x: return x.GetValue(i)!.Value.ToString("R", CultureInfo.InvariantCulture);
            case StringArray x: return "'" + x.GetString(i) + "'";
            case Date32Array x: return "d" + x.Values[i].ToString(CultureInfo.InvariantCulture);
            case TimestampArray x: return "ts" + x.Values[i].ToString(CultureInfo.InvariantCulture) + ((TimestampType)x.Data.DataType).Timezone;
            case BinaryArray x: return "0x" + Convert.ToHexString(x.GetBytes(i));
            case Decimal128Array x:
                return Ingest.Sdk.Records.DecimalMath.ToText(System.Buffers.Binary.BinaryPrimitives.ReadInt128LittleEndian(x.ValueBuffer.Span.Slice((x.Offset + i) * 16, 16)), ((Decimal128Type)x.Data.DataType).Scale);
            case MapArray x:
            {
                var parts = new List<string>();
                for (var j = x.ValueOffsets[i]; j < x.ValueOffsets[i + 1]; j++)
                {
                    parts.Add(Value(x.Keys, j) + ":" + Value(x.Values, j));
                }

                return "{" + string.Join(",", parts) + "}";
            }

            case ListArray x:
            {
                var parts = new List<string>();
                for (var j = x.ValueOffsets[i]; j < x.ValueOffsets[i + 1]; j++)
                {
                    parts.Add(Value(x.Values, j));
                }

                return "[" + string.Join(",", parts) + "]";
            }

            case StructArray x:
            {
                var type = (StructType)x.Data.DataType;
                var parts = new List<string>();
                for (var f = 0; f < type.Fields.Count; f++)
                {
                    parts.Add(type.Fields[f].Name + ":" + Value(x.Fields[f], x.Offset + i));
                }

                return "(" + string.Join(",", parts) + ")";
            }

            default:
                throw new NotSupportedException(a.Data.DataType.Name);
        }
    }
}
