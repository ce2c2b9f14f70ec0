using System.Globalization;
using Apache.Arrow;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

namespace Ingest.Benchmarks;

/// <summary>The 8-column order rows (ints, decimals, timestamps, strings) the Delta write and merge benchmarks share.</summary>
internal static class OrderRows
{
    public static readonly StreamSchema Schema = new([
        new Field("id", DataType.Int64, false),
        new Field("qty", DataType.Int32, false),
        new Field("price", DataType.Decimal(12, 2), false),
        new Field("amount", DataType.Decimal(18, 4)),
        new Field("created_at", DataType.Timestamp, false),
        new Field("updated_at", DataType.Timestamp),
        new Field("name", DataType.String, false),
        new Field("status", DataType.String),
    ]);

    private static readonly string[] Statuses = ["new", "paid", "shipped", "cancelled"];
    private static readonly DateTimeOffset T0 = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Rows <paramref name="start"/> .. start+count in batches of <paramref name="batchRows"/>.</summary>
    public static List<RecordBatch> Batches(long start, long count, int version, int batchRows)
    {
        var batches = new List<RecordBatch>();
        for (var s = start; s < start + count; s += batchRows)
        {
            var n = (int)Math.Min(batchRows, start + count - s);
            batches.Add(Build(Enumerable.Range(0, n).Select(i => s + i).ToArray(), version));
        }

        return batches;
    }

    /// <summary>One batch of the given ids; <paramref name="version"/> changes qty and updated_at.</summary>
    public static RecordBatch Build(long[] ids, int version)
    {
        var id = new Int64Array.Builder();
        var qty = new Int32Array.Builder();
        var price = new Decimal128Array.Builder((Apache.Arrow.Types.Decimal128Type)Schema.Columns[2].Type.ToArrowType());
        var amount = new Decimal128Array.Builder((Apache.Arrow.Types.Decimal128Type)Schema.Columns[3].Type.ToArrowType());
        var tsType = (Apache.Arrow.Types.TimestampType)DataType.Timestamp.ToArrowType();
        var created = new TimestampArray.Builder(tsType);
        var updated = new TimestampArray.Builder(tsType);
        var name = new StringArray.Builder();
        var status = new StringArray.Builder();
        foreach (var i in ids)
        {
            id.Append(i);
            qty.Append((int)(i % 1000) + version);
            price.Append((i % 100000) / 100m);
            if (i % 10 == 0)
            {
                amount.AppendNull();
            }
            else
            {
                amount.Append(i * 0.0001m);
            }

            created.Append(T0.AddSeconds(i));
            if (i % 3 == 0)
            {
                updated.AppendNull();
            }
            else
            {
                updated.Append(T0.AddSeconds(i + 60 + version));
            }

            name.Append(string.Create(CultureInfo.InvariantCulture, $"customer-{i % 50000}"));
            if (i % 7 == 0)
            {
                status.AppendNull();
            }
            else
            {
                status.Append(Statuses[i % 4]);
            }
        }

        return new RecordBatch(Schema.ToArrowSchema(), [id.Build(), qty.Build(), price.Build(), amount.Build(), created.Build(), updated.Build(), name.Build(), status.Build()], ids.Length);
    }
}
