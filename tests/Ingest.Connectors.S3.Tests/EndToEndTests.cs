using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.S3.Tests;

/// <summary>The real <c>ingest</c> executable reads a bucket on moto into Delta tables (needs src/Ingest.Host built).</summary>
[Collection(MotoCollection.Name)]
public sealed class EndToEndTests(MotoServer moto)
{
    [Fact]
    public async Task Ingest_run_once_makes_the_merge_and_append_tables_equal_the_objects_and_a_second_run_reads_only_new_objects()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "exports/orders/2024/a.csv", "id,customer,amount\n1,ann,10.50\n2,bob,7.25\n");
        await moto.PutAsync(bucket, "exports/orders/2024/b.csv.gz", Compress.Gzip("id,customer,amount\n2,bob,8.00\n3,cy,not-a-number\n4,\"broken\n"));
        await moto.PutAsync(bucket, "exports/orders/notes.txt", "not a table file");
        await moto.PutAsync(bucket, "elsewhere/orders/x.csv", "id,customer,amount\n99,zed,1.00\n");
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            connections:
              - name: bkt
                connector: s3
                config:
                  bucket: {{bucket}}
                  prefix: exports
                  endpoint: {{moto.Endpoint}}
                  accessKeyId: {{moto.Admin.Id}}
                  secretAccessKey: "{{moto.Admin.Secret}}"
                  tables:
                    - name: orders
                      pattern: "orders/**/*.csv*"
                      format: csv
                      primaryKey: [id]
                      # Declared: inference samples the oldest objects, and a.csv becomes the newest in the second run.
                      columns: [{name: id, type: long}, {name: customer, type: string}, {name: amount, type: "decimal(4,2)"}]
                streams:
                  - {name: orders, mode: merge}
                  - {name: orders, mode: append, table: bkt_log/orders}
                  - {name: orders__dead_letters, mode: append}
            """);
        var data = dir.Combine("state");

        var first = await Repo.RunIngestAsync(data, dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");

        // Objects are read in LastModified order (then key): b.csv.gz's row for id 2 is the latest.
        var merged = (await Repo.ReadTableAsync(dir.Combine("lake", "bkt", "orders"))).OrderBy(r => (long)r["id"]!).ToList();
        Assert.Equal([1L, 2L, 3L], merged.Select(r => (long)r["id"]!));
        Assert.Equal(["ann", "bob", "cy"], merged.Select(r => (string)r["customer"]!));
        Assert.Equal(10.50m, (decimal)merged[0]["amount"]!);
        Assert.Equal(8.00m, (decimal)merged[1]["amount"]!);
        Assert.Equal("orders/2024/b.csv.gz", merged[1][FileColumns.File]);
        Assert.Null(merged[2]["amount"]);
        Assert.Equal("""{"amount":"not-a-number"}""", merged[2][FileColumns.RescuedData]);

        var log = await Repo.ReadTableAsync(dir.Combine("lake", "bkt_log", "orders"));
        Assert.Equal(
            ["orders/2024/a.csv:1", "orders/2024/a.csv:2", "orders/2024/b.csv.gz:2", "orders/2024/b.csv.gz:3"],
            log.Select(r => $"{r[FileColumns.File]}:{r["id"]}").Order(StringComparer.Ordinal));
        var dead = Assert.Single(await Repo.ReadTableAsync(dir.Combine("lake", "bkt", "orders__dead_letters")));
        Assert.Equal("orders/2024/b.csv.gz", dead[FileColumns.File]);
        Assert.Equal(4L, dead[FileColumns.Line]);

        // One new object, and a.csv rewritten under the same key: only those are read.
        await moto.PutAsync(bucket, "exports/orders/2025/c.csv", "id,customer,amount\n5,eve,3.00\n");
        await moto.PutAsync(bucket, "exports/orders/2024/a.csv", "id,customer,amount\n1,ann,11.00\n");
        var second = await Repo.RunIngestAsync(data, dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");

        var log2 = await Repo.ReadTableAsync(dir.Combine("lake", "bkt_log", "orders"));
        Assert.Equal(6, log2.Count);
        var merged2 = (await Repo.ReadTableAsync(dir.Combine("lake", "bkt", "orders"))).OrderBy(r => (long)r["id"]!).ToList();
        Assert.Equal([1L, 2L, 3L, 5L], merged2.Select(r => (long)r["id"]!));
        Assert.Equal(11.00m, (decimal)merged2[0]["amount"]!);
    }

    [Fact]
    public async Task Fifty_objects_with_gzip_a_malformed_line_an_int_turning_decimal_and_a_bad_value_land_once_and_a_second_run_reads_only_ten_new_objects()
    {
        var bucket = await moto.CreateBucketAsync();
        var expected = new HashSet<long>();
        async Task PutFileAsync(int f)
        {
            var sb = new StringBuilder("id,qty,price,note\n");
            for (var r = 0; r < 20; r++)
            {
                var id = (f * 100L) + r;
                var qty = f == 30 && r == 3 ? "2.5" : (r + 1).ToString(CultureInfo.InvariantCulture);
                var price = f == 40 && r == 7 ? "n/a" : $"{r}.25";
                sb.Append(CultureInfo.InvariantCulture, $"{id},{qty},{price},object {f} row {r}\n");
                expected.Add(id);
                if (f == 20 && r == 10)
                {
                    sb.Append("2010,\"unclosed,1.00,x\n"); // line 13 of part-20: the quote swallows the rest of the object
                    break;
                }
            }

            // Keys sort in upload order, so reading order (LastModified, then key) is known.
            var key = $"landing/orders/part-{f:00}.csv";
            if (f % 5 == 0)
            {
                await moto.PutAsync(bucket, key + ".gz", Compress.Gzip(sb.ToString()));
            }
            else
            {
                await moto.PutAsync(bucket, key, sb.ToString());
            }
        }

        for (var f = 1; f <= 50; f++)
        {
            await PutFileAsync(f);
        }

        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            connections:
              - name: s
                connector: s3
                config:
                  bucket: {{bucket}}
                  prefix: landing
                  endpoint: {{moto.Endpoint}}
                  accessKeyId: {{moto.Admin.Id}}
                  secretAccessKey: "{{moto.Admin.Secret}}"
                  # The engine does not yet take a batch whose schema widened mid-read (evolve), so the decimal is rescued.
                  schemaEvolution: rescue
                  tables: [{name: orders, pattern: "orders/*.csv*", format: csv}]
                streams:
                  - {name: orders, mode: append}
                  - {name: orders__dead_letters, mode: append}
            """);
        var first = await Repo.RunIngestAsync(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");

        var rows = await Repo.ReadTableAsync(dir.Combine("lake", "s", "orders"));
        var ids = rows.Select(r => (long)r["id"]!).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(expected.Order(), ids.Order());
        var turned = rows.Single(r => (long)r["id"]! == 3003);
        Assert.Null(turned["qty"]);
        Assert.Equal("""{"qty":"2.5"}""", turned[FileColumns.RescuedData]);
        var rescued = rows.Single(r => (long)r["id"]! == 4007);
        Assert.Null(rescued["price"]);
        Assert.Equal("""{"price":"n/a"}""", rescued[FileColumns.RescuedData]);
        var dead = Assert.Single(await Repo.ReadTableAsync(dir.Combine("lake", "s", "orders__dead_letters")));
        Assert.Equal("orders/part-20.csv.gz", dead[FileColumns.File]);
        Assert.Equal(13L, dead[FileColumns.Line]);

        for (var f = 51; f <= 60; f++)
        {
            await PutFileAsync(f);
        }

        var second = await Repo.RunIngestAsync(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");
        var after = await Repo.ReadTableAsync(dir.Combine("lake", "s", "orders"));
        Assert.Equal(rows.Count + 200, after.Count);
        Assert.Equal(expected.Order(), after.Select(r => (long)r["id"]!).Order());
    }

    [Fact]
    public async Task Killing_the_process_in_the_middle_of_a_large_object_and_restarting_loses_no_row_and_duplicates_none()
    {
        const int total = 400_000;
        var sb = new StringBuilder(total * 24);
        sb.Append("id,amount,note\n");
        for (var i = 1; i <= total; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{i},{i % 1000}.5,row {i}\n");
        }

        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "big/data.csv", sb.ToString());
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            commit: {interval: 50ms, maxRows: 20000}
            connections:
              - name: s
                connector: s3
                config:
                  bucket: {{bucket}}
                  endpoint: {{moto.Endpoint}}
                  accessKeyId: {{moto.Admin.Id}}
                  secretAccessKey: "{{moto.Admin.Secret}}"
                  tables:
                    - {name: big, pattern: "big/*.csv", format: csv, primaryKey: [id], options: {batchRows: 5000} }
                streams:
                  - {name: big, mode: append, table: s/big_log}
                  - {name: big, mode: merge}
            """);

        using (var p = Repo.Start(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins))
        {
            var drainOut = p.StandardOutput.ReadToEndAsync();
            var drainErr = p.StandardError.ReadToEndAsync();
            var log = dir.Combine("lake", "s", "big_log", "_delta_log");
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(1)
                && (!Directory.Exists(log) || Directory.GetFiles(log, "*.json").Length < 4))
            {
                await Task.Delay(10);
            }

            Assert.False(p.HasExited, "the run finished before it could be killed; make the object larger");
            p.Kill(entireProcessTree: true); // SIGKILL
            await p.WaitForExitAsync();
            await Task.WhenAll(drainOut, drainErr);
        }

        var partial = await Repo.ReadTableAsync(dir.Combine("lake", "s", "big_log"));
        Assert.InRange(partial.Count, 1, total - 1);

        // The restart GETs the object again and skips the lines already durable.
        var rerun = await Repo.RunIngestAsync(dir.Combine("state"), dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(rerun.Code == 0, $"exit {rerun.Code}\n{rerun.Out}\n{rerun.Err}");

        foreach (var table in new[] { "big_log", "big" })
        {
            var rows = await Repo.ReadTableAsync(dir.Combine("lake", "s", table));
            var ids = rows.Select(r => (long)r["id"]!).ToList();
            Assert.Equal(total, ids.Count);
            Assert.Equal(total, ids.Distinct().Count());
        }
    }
    [Fact]
    public async Task With_detectDeletions_an_object_deleted_between_runs_leaves_the_merge_table_with_only_the_remaining_objects_rows()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "in/orders/a.csv", "id,amount\n1,1.00\n2,2.00\n");
        await moto.PutAsync(bucket, "in/orders/b.csv", "id,amount\n3,3.00\n");
        using var dir = new TempDir();
        var pipeline = dir.Write("pipeline.yaml", $$"""
            lake: ./lake
            connections:
              - name: bkt
                connector: s3
                config:
                  bucket: {{bucket}}
                  prefix: in
                  endpoint: {{moto.Endpoint}}
                  accessKeyId: {{moto.Admin.Id}}
                  secretAccessKey: "{{moto.Admin.Secret}}"
                  detectDeletions: true
                  tables: [{name: orders, pattern: "orders/*.csv", format: csv, primaryKey: [id]}]
                streams:
                  - {name: orders, mode: merge}
            """);
        var data = dir.Combine("state");

        var first = await Repo.RunIngestAsync(data, dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");
        Assert.Equal([1L, 2L, 3L], (await Repo.ReadTableAsync(dir.Combine("lake", "bkt", "orders"))).Select(r => (long)r["id"]!).Order());

        await moto.DeleteAsync(bucket, "in/orders/a.csv");
        await moto.PutAsync(bucket, "in/orders/c.csv", "id,amount\n4,4.00\n");
        var second = await Repo.RunIngestAsync(data, dir.Path, "run", pipeline, "--once", "--plugins", Repo.Plugins);
        Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");

        var rows = await Repo.ReadTableAsync(dir.Combine("lake", "bkt", "orders"));
        Assert.Equal(["orders/b.csv:3", "orders/c.csv:4"], rows.Select(r => $"{r[FileColumns.File]}:{r["id"]}").Order(StringComparer.Ordinal));
    }
}
