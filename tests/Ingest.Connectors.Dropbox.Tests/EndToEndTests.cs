using System.Text.Json;

namespace Ingest.Connectors.Dropbox.Tests;

/// <summary>The real <c>ingest</c> executable reads the fake Dropbox into Delta tables (needs src/Ingest.Host built).</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Ingest_run_once_reads_the_dropbox_folder_into_a_merge_table_and_a_second_run_continues_the_cursor_adding_new_and_removing_deleted_files_rows()
    {
        using var dropbox = new FakeDropbox(pageSize: 3);
        var dir = Path.Combine(Path.GetTempPath(), "ingest-dropbox-e2e-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            for (var i = 1; i <= 4; i++)
            {
                dropbox.Put($"/Exports/orders/part-{i}.csv", $"id,amount\n{i},{i}.25\n{i + 10},{i}.75\n", DateTime.UtcNow.AddMinutes(-5).AddSeconds(i));
            }

            var pipeline = Path.Combine(dir, "pipeline.yaml");
            await File.WriteAllTextAsync(pipeline, $$"""
                lake: ./lake
                connections:
                  - name: box
                    connector: dropbox
                    config:
                      path: /Exports
                      refreshToken: {{FakeDropbox.RefreshToken}}
                      appKey: {{FakeDropbox.AppKey}}
                      appSecret: {{FakeDropbox.AppSecret}}
                      apiBase: {{JsonSerializer.Serialize(dropbox.BaseUrl)}}
                      contentBase: {{JsonSerializer.Serialize(dropbox.BaseUrl)}}
                      tables: [{name: orders, pattern: "orders/*.csv", format: csv, primaryKey: [id]}]
                    streams:
                      - {name: orders, mode: merge}
                """);

            var first = await RunAsync(dir, pipeline);
            Assert.True(first.Code == 0, $"exit {first.Code}\n{first.Out}\n{first.Err}");
            Assert.Equal([1L, 2L, 3L, 4L, 11L, 12L, 13L, 14L], (await IdsAsync(Path.Combine(dir, "lake", "box", "orders"))).Order());

            dropbox.Put("/Exports/orders/part-5.csv", "id,amount\n5,5.25\n", DateTime.UtcNow.AddSeconds(-2));
            dropbox.Delete("/Exports/orders/part-2.csv");
            var listings = dropbox.Calls["files/list_folder"];
            var second = await RunAsync(dir, pipeline);
            Assert.True(second.Code == 0, $"exit {second.Code}\n{second.Out}\n{second.Err}");

            // part-2.csv was deleted: its rows (ids 2 and 12) are gone from the merge table.
            Assert.Equal([1L, 3L, 4L, 5L, 11L, 13L, 14L], (await IdsAsync(Path.Combine(dir, "lake", "box", "orders"))).Order());
            // Discovery lists afresh on every run; the first run's read listed afresh too, the second's continued the cursor.
            Assert.Equal(listings - 1, dropbox.Calls["files/list_folder"] - listings);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<List<long>> IdsAsync(string tablePath) =>
        (await Repo.ReadTableAsync(tablePath)).Select(r => (long)r["id"]!).ToList();

    private static Task<(int Code, string Out, string Err)> RunAsync(string dir, string pipeline) =>
        Repo.RunIngestAsync(Path.Combine(dir, "state"), dir, "run", pipeline, "--once", "--plugins", Repo.Plugins);
}
