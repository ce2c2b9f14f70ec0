using System.Globalization;
using Apache.Arrow;
using Ingest.Delta;
using Ingest.Sdk.Types;
using Field = Ingest.Sdk.Types.Field;

// Usage: Ingest.Delta.Stress <table> <worker> <seconds> <report-file>
// Appends rows with ids of its own range and merges increments into them, retrying lost races, for a while; then
// writes "id value" per row it owns to the report, which the test compares with the table.
if (args.Length != 4 || !int.TryParse(args[1], CultureInfo.InvariantCulture, out var worker) || !double.TryParse(args[2], CultureInfo.InvariantCulture, out var seconds))
{
    await Console.Error.WriteLineAsync("usage: Ingest.Delta.Stress <table> <worker> <seconds> <report-file>");
    return 2;
}

var schema = new StreamSchema([
    new Field("id", DataType.Int64, Nullable: false),
    new Field("worker", DataType.Int64, Nullable: false),
    new Field("value", DataType.Int64, Nullable: false),
]);
var table = await DeltaTable.OpenOrCreateAsync(args[0], schema, [], new Dictionary<string, string> { ["delta.checkpointInterval"] = "7" }, CancellationToken.None);
var values = new Dictionary<long, long>();
var random = new Random(worker);
long next = 0, appends = 0, merges = 0, retries = 0;
var until = DateTime.UtcNow.AddSeconds(seconds);

RecordBatch Batch(IReadOnlyList<(long Id, long Value)> rows) => new(schema.ToArrowSchema(), [
    new Int64Array.Builder().AppendRange(rows.Select(r => r.Id)).Build(),
    new Int64Array.Builder().AppendRange(rows.Select(_ => (long)worker)).Build(),
    new Int64Array.Builder().AppendRange(rows.Select(r => r.Value)).Build(),
], rows.Count);

while (DateTime.UtcNow < until)
{
    var merge = values.Count > 0 && random.Next(2) == 0;
    List<(long Id, long Value)> rows;
    if (merge)
    {
        var owned = values.Keys.ToList();
        rows = Enumerable.Range(0, 5).Select(_ => owned[random.Next(owned.Count)]).Distinct().Select(id => (id, values[id] + 1)).ToList();
    }
    else
    {
        rows = Enumerable.Range(0, 10).Select(_ => (((long)worker << 40) | next++, 0L)).ToList();
    }

    while (true)
    {
        try
        {
            if (merge)
            {
                await table.MergeAsync(new MergeRequest(Batch(rows), new bool[rows.Count], ["id"], null), new CommitOptions("MERGE"), CancellationToken.None);
                merges++;
            }
            else
            {
                await table.AppendAsync([Batch(rows)], new CommitOptions("WRITE"), CancellationToken.None);
                appends++;
            }

            break;
        }
        catch (DeltaConcurrencyException)
        {
            // A concurrent commit changed what this one read: re-read and redo it.
            retries++;
            await table.RefreshAsync(CancellationToken.None);
        }
    }

    foreach (var (id, value) in rows)
    {
        values[id] = value;
    }
}

await File.WriteAllLinesAsync(args[3], values.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value}")));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"worker {worker}: {appends} appends, {merges} merges, {retries} retries, {values.Count} rows"));
return 0;
