using System.Net;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;
using Ingest.Sdk.Records;

namespace Ingest.Connectors.S3.Tests;

[Collection(MotoCollection.Name)]
public sealed class S3ConnectorTests(MotoServer moto)
{
    private const string Orders = """[{"name": "orders", "pattern": "orders/**/*.csv*", "format": "csv", "options": {"batchRows": 2}}]""";

    private JsonElement Config(string bucket, string extra = "", string tables = Orders, (string, string)? user = null, bool secured = false) =>
        JsonDocument.Parse(moto.Config(bucket, tables, extra, user, secured)).RootElement.Clone();

    // On the secured server the tables sit at the bucket's root (see MotoServer on nested prefixes).
    private const string RootCsv = """[{"name": "orders", "pattern": "*.csv", "format": "csv"}]""";

    private static List<long> Ids(IEnumerable<Dictionary<string, object?>> rows) => rows.Select(r => (long)r["id"]!).ToList();

    [Fact]
    public async Task Check_lists_a_page_and_reports_the_objects_each_table_matches()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "exports/orders/2024/a.csv", "id\n1\n");
        await moto.PutAsync(bucket, "exports/orders/2024/b.csv.gz", Compress.Gzip("id\n2\n"));
        await moto.PutAsync(bucket, "exports/other/c.csv", "id\n3\n");
        await moto.PutAsync(bucket, "outside/orders/d.csv", "id\n4\n");

        var result = await new S3Connector().CheckAsync(Config(bucket, """, "prefix": "/exports/" """), CancellationToken.None);

        Assert.True(result.Succeeded, result.Message);
        Assert.Contains($"s3://{bucket}/exports/ is readable", result.Message);
        Assert.Contains("lists 3 object(s)", result.Message);
        Assert.Contains("orders: 2 object(s)", result.Message);
    }

    [Fact]
    public async Task Check_names_the_bucket_setting_when_the_bucket_does_not_exist()
    {
        var result = await new S3Connector().CheckAsync(Config("no-such-bucket-here"), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal("/bucket", result.Field);
        Assert.Contains("'no-such-bucket-here' does not exist", result.Message);
    }

    [Fact]
    public async Task Check_with_wrong_credentials_fails_naming_the_credentials()
    {
        var bucket = await moto.CreateBucketAsync(secured: true);
        await moto.PutAsync(bucket, "a.csv", "id\n1\n");

        var unknownKey = await new S3Connector().CheckAsync(Config(bucket, tables: RootCsv, user: ("AKIAUNKNOWNKEY000000", "wrong"), secured: true), CancellationToken.None);
        var wrongSecret = await new S3Connector().CheckAsync(Config(bucket, tables: RootCsv, user: (moto.Admin.Id, "not-the-secret"), secured: true), CancellationToken.None);
        var right = await new S3Connector().CheckAsync(Config(bucket, tables: RootCsv, secured: true), CancellationToken.None);

        Assert.False(unknownKey.Succeeded);
        Assert.Equal("/accessKeyId", unknownKey.Field);
        Assert.Contains("refused the credentials", unknownKey.Message);
        Assert.False(wrongSecret.Succeeded);
        Assert.Equal("/accessKeyId", wrongSecret.Field);
        Assert.True(right.Succeeded, right.Message);
        Assert.Contains("orders: 1 object(s)", right.Message);
    }

    [Fact]
    public async Task Without_keys_in_the_config_the_standard_aws_chain_supplies_the_credentials()
    {
        var bucket = await moto.CreateBucketAsync(secured: true);
        await moto.PutAsync(bucket, "a.csv", "id\n1\n");
        var config = JsonDocument.Parse($$"""{"bucket": "{{bucket}}", "endpoint": "{{moto.SecuredEndpoint}}", "tables": {{RootCsv}}}""").RootElement;
        var saved = (Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID"), Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY"));
        CheckResult result;
        try
        {
            // The secured moto checks the signature: only the admin's real secret from the environment passes.
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", moto.Admin.Id);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", moto.Admin.Secret);
            result = await new S3Connector().CheckAsync(config, CancellationToken.None);
        }
        finally
        {
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", saved.Item1);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", saved.Item2);
        }

        Assert.True(result.Succeeded, result.Message);
        Assert.Contains("orders: 1 object(s)", result.Message);
    }

    [Fact]
    public async Task Check_with_list_only_credentials_names_the_missing_GetObject_permission_and_the_bucket()
    {
        var bucket = await moto.CreateBucketAsync(secured: true);
        await moto.PutAsync(bucket, "a.csv", "id\n1\n");

        var result = await new S3Connector().CheckAsync(Config(bucket, tables: RootCsv, user: moto.ListOnly, secured: true), CancellationToken.None);

        Assert.False(result.Succeeded);
        Assert.Equal("/bucket", result.Field);
        Assert.Contains("s3:GetObject", result.Message);
        Assert.Contains(bucket, result.Message);
    }

    [Fact]
    public async Task Check_and_discover_refuse_bad_settings_by_field()
    {
        var connector = new S3Connector();

        var noSecret = await connector.CheckAsync(JsonDocument.Parse("""{"bucket": "b", "accessKeyId": "AKIA", "tables": [{"name": "t", "pattern": "*.csv", "format": "csv"}]}""").RootElement, CancellationToken.None);
        var url = await connector.CheckAsync(JsonDocument.Parse("""{"bucket": "s3://b/x", "tables": [{"name": "t", "pattern": "*.csv", "format": "csv"}]}""").RootElement, CancellationToken.None);
        var unknown = await Assert.ThrowsAsync<ConnectorException>(() => connector.DiscoverAsync(JsonDocument.Parse("""{"bucket": "b", "path": "/x", "tables": []}""").RootElement, CancellationToken.None));

        Assert.Equal("/secretAccessKey", noSecret.Field);
        Assert.Equal("/bucket", url.Field);
        Assert.Equal("/path", unknown.Field);
        Assert.Equal(["bucket", "tables"], connector.Spec.ConfigSchema["required"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Fact]
    public async Task Discover_infers_each_tables_columns_from_its_objects()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "data/orders/a.csv", "id,amount,placed,paid\n1,2.50,2024-01-01,true\n2,3.75,2024-01-02,false\n");
        await moto.PutAsync(bucket, "data/events/e.jsonl.gz", Compress.Gzip("""{"id": 1, "at": "2024-01-01T10:00:00Z", "kind": "click"}""" + "\n"));
        const string tables = """
            [{"name": "orders", "pattern": "orders/*.csv", "format": "csv"},
             {"name": "events", "pattern": "events/*.jsonl.gz", "format": "jsonl"}]
            """;

        var catalog = await new S3Connector().DiscoverAsync(Config(bucket, """, "prefix": "data" """, tables), CancellationToken.None);

        Assert.Equal("id long, amount decimal(3,2), placed date, paid boolean, _rescued_data string, _file string not null, _file_modified timestamp not null, _line long not null", Describe.Schema(catalog.Find("orders")!.Schema));
        Assert.StartsWith("id long, at timestamp, kind string, _rescued_data string", Describe.Schema(catalog.Find("events")!.Schema));
        Assert.NotNull(catalog.Find("orders__dead_letters"));
    }

    [Fact]
    public async Task Each_object_is_read_once_across_resumes_and_an_unacknowledged_object_is_read_again()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "orders/a.csv", "id\n1\n2\n");
        await moto.PutAsync(bucket, "orders/b.csv", "id\n3\n");
        var config = Config(bucket);

        Checkpoint durable;
        await using (var first = new ReadSession(new S3Connector(), config, null, "orders"))
        {
            Assert.True(await first.CaughtUpAsync());
            Assert.Equal([1L, 2L, 3L], Ids(first.RowsOf("orders")));
            durable = first.LastCheckpoint!;
            await first.AcknowledgeAsync(durable);
        }

        await using (var second = new ReadSession(new S3Connector(), config, durable.State, "orders"))
        {
            Assert.True(await second.CaughtUpAsync());
            Assert.Empty(second.RowsOf("orders"));
            durable = second.LastCheckpoint!;
        }

        // A new object is read, but its checkpoint never becomes durable (the process dies): the next read reads it again.
        await moto.PutAsync(bucket, "orders/sub/c.csv.gz", Compress.Gzip("id\n4\n5\n"));
        await using (var third = new ReadSession(new S3Connector(), config, durable.State, "orders"))
        {
            Assert.True(await third.CaughtUpAsync());
            Assert.Equal([4L, 5L], Ids(third.RowsOf("orders")));
        }

        await using (var fourth = new ReadSession(new S3Connector(), config, durable.State, "orders"))
        {
            Assert.True(await fourth.CaughtUpAsync());
            Assert.Equal([4L, 5L], Ids(fourth.RowsOf("orders")));
            durable = fourth.LastCheckpoint!;
        }

        await using (var fifth = new ReadSession(new S3Connector(), config, durable.State, "orders"))
        {
            Assert.True(await fifth.CaughtUpAsync());
            Assert.Empty(fifth.RowsOf("orders"));
        }
    }

    [Fact]
    public async Task A_read_interrupted_inside_an_object_resumes_after_the_last_durable_line()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "orders/big.csv", "id\n" + string.Join("\n", Enumerable.Range(1, 9)) + "\n");
        var config = Config(bucket);

        Checkpoint? mid;
        await using (var first = new ReadSession(new S3Connector(), config, null, "orders"))
        {
            var checkpoints = 0;
            await first.ReadUntilAsync(m => m is Checkpoint && ++checkpoints == 2);
            mid = first.LastCheckpoint;
            Assert.Equal([1L, 2L, 3L, 4L], Ids(first.RowsOf("orders")));
        }

        await using var resumed = new ReadSession(new S3Connector(), config, mid!.State, "orders");
        Assert.True(await resumed.CaughtUpAsync());
        Assert.Equal([5L, 6L, 7L, 8L, 9L], Ids(resumed.RowsOf("orders")));
    }

    [Fact]
    public async Task An_object_overwritten_under_the_same_key_is_read_again_by_its_new_etag()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "orders/a.csv", "id\n1\n");
        var config = Config(bucket);

        Checkpoint durable;
        await using (var first = new ReadSession(new S3Connector(), config, null, "orders"))
        {
            Assert.True(await first.CaughtUpAsync());
            Assert.Equal([1L], Ids(first.RowsOf("orders")));
            durable = first.LastCheckpoint!;
        }

        // Same key, same size, new content: only the ETag tells the versions apart.
        await moto.PutAsync(bucket, "orders/a.csv", "id\n7\n");
        await using var second = new ReadSession(new S3Connector(), config, durable.State, "orders");
        Assert.True(await second.CaughtUpAsync());
        var rows = second.RowsOf("orders");
        Assert.Equal([7L], Ids(rows));
        Assert.Equal("orders/a.csv", rows[0]["_file"]);
    }

    [Fact]
    public async Task New_and_gzip_objects_are_picked_up_while_polling()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "orders/a.csv", "id,name\n1,ann\n");
        await using var session = new ReadSession(new S3Connector(), Config(bucket), null, "orders");
        Assert.True(await session.CaughtUpAsync());
        Assert.Equal([1L], Ids(session.RowsOf("orders")));

        await moto.PutAsync(bucket, "orders/2024/b.csv.gz", Compress.Gzip("id,name\n2,bob\n3,cy\n"));
        await moto.PutAsync(bucket, "orders/ignored.txt", "not a table file");
        Assert.True(await session.ReadUntilAsync(_ => session.RowsOf("orders").Count >= 3));

        var rows = session.RowsOf("orders");
        Assert.Equal([1L, 2L, 3L], Ids(rows));
        Assert.Equal("cy", rows[2]["name"]);
        Assert.Equal("orders/2024/b.csv.gz", rows[2]["_file"]);
        Assert.Equal(ChangeOp.Insert, session.Batches.Last(b => b.Stream == "orders").Ops[0]);
    }

    [Fact]
    public async Task Parquet_objects_are_read_from_the_non_seekable_get_stream_with_their_schema()
    {
        var bucket = await moto.CreateBucketAsync();
        using var dir = new TempDir();
        var path = dir.Combine("a.parquet");
        var schema = new Apache.Arrow.Schema.Builder()
            .Field(new Apache.Arrow.Field("id", Apache.Arrow.Types.Int64Type.Default, false))
            .Field(new Apache.Arrow.Field("name", Apache.Arrow.Types.StringType.Default, true))
            .Build();
        using (var batch = new Apache.Arrow.RecordBatch(schema, [new Apache.Arrow.Int64Array.Builder().Append(1).Append(2).Build(), new Apache.Arrow.StringArray.Builder().Append("a").AppendNull().Build()], 2))
        using (var writer = new ParquetSharp.Arrow.FileWriter(path, schema))
        {
            writer.WriteRecordBatch(batch);
            writer.Close();
        }

        await moto.PutAsync(bucket, "pq/a.parquet", await File.ReadAllBytesAsync(path));
        await using var session = new ReadSession(new S3Connector(), Config(bucket, tables: """[{"name": "pq", "pattern": "pq/*.parquet", "format": "parquet"}]"""), null, "pq");

        Assert.True(await session.CaughtUpAsync());
        var rows = session.RowsOf("pq");
        Assert.Equal([1L, 2L], Ids(rows));
        Assert.Equal("a", rows[0]["name"]);
        Assert.Null(rows[1]["name"]);
        Assert.Equal([1L, 2L], rows.Select(r => r[FileColumns.Line]));
    }

    [Fact]
    public async Task Listing_follows_continuation_tokens_across_pages_and_skips_folder_markers_and_hidden_names()
    {
        var bucket = await moto.CreateBucketAsync();
        for (var i = 0; i < 23; i++)
        {
            await moto.PutAsync(bucket, $"in/orders/{i:00}.csv", $"id\n{i:00}\n");
        }

        await moto.PutAsync(bucket, "in/orders/", "");
        await moto.PutAsync(bucket, "in/orders/_SUCCESS", "");
        await moto.PutAsync(bucket, "in/orders/.part.csv", "id\n99\n");
        var options = S3Options.Parse(Config(bucket, """, "prefix": "in" """));
        using var client = MotoServer.CreateClient(moto.Endpoint, moto.Admin.Id, moto.Admin.Secret);
        var store = new S3Store(client, options, pageSize: 5);

        var files = new List<FileEntry>();
        await foreach (var f in store.ListAsync("orders/", CancellationToken.None))
        {
            files.Add(f);
        }

        Assert.Equal(Enumerable.Range(0, 23).Select(i => $"orders/{i:00}.csv"), files.Select(f => f.Path));
        Assert.All(files, f => Assert.Matches("^[0-9a-f]{32}$", f.Tag!));
        Assert.All(files, f => Assert.Equal(6, f.Size));
    }

    /// <summary>Counts what the inner store's listing has yielded, to see a checkpoint arrive before it ends.</summary>
    private sealed class CountingStore(IFileStore inner) : IFileStore
    {
        public int Listed { get; private set; }

        public bool Ended { get; private set; }

        public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            Ended = false;
            await foreach (var f in inner.ListAsync(prefix, cancellationToken))
            {
                Listed++;
                yield return f;
            }

            Ended = true;
        }

        public Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken) => inner.OpenAsync(file, cancellationToken);
    }

    [Fact]
    public async Task A_paged_listing_checkpoints_before_its_last_page_and_a_restart_from_there_neither_loses_nor_repeats_an_object()
    {
        var bucket = await moto.CreateBucketAsync();
        for (var i = 0; i < 23; i++)
        {
            await moto.PutAsync(bucket, $"in/orders/{i:00}.csv", $"id\n{i}\n");
        }

        var options = S3Options.Parse(Config(bucket, """, "prefix": "in" """, """[{"name": "orders", "pattern": "orders/*.csv", "format": "csv", "columns": [{"name": "id", "type": "long"}]}]"""));
        using var client = MotoServer.CreateClient(moto.Endpoint, moto.Admin.Id, moto.Admin.Secret);
        var read = options.Read with { ListPageSize = 5 };
        ReadContext Context(JsonElement? state) => new("t", default, [new StreamSelection("orders", SyncMode.Cdc)], state, NullConnectorLog.Instance);

        var store = new CountingStore(new S3Store(client, options, pageSize: 5));
        var durable = new List<long>();
        var pending = new List<long>();
        Checkpoint? mid = null;
        await using (var reader = new FileSourceReader(store, options.Tables, Context(null), read))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    pending.AddRange(Enumerable.Range(0, b.Length).Select(r => ((Apache.Arrow.Int64Array)b.Data.Column(0)).GetValue(r)!.Value));
                }
                else if (m is Checkpoint c)
                {
                    durable.AddRange(pending);
                    pending.Clear();
                    mid = c;
                    if (store.Listed >= 10)
                    {
                        Assert.False(store.Ended);
                        break;
                    }
                }
            }
        }

        Assert.InRange(durable.Count, 5, 15);
        var restarted = new CountingStore(new S3Store(client, options, pageSize: 5));
        var rest = new List<long>();
        await using (var reader = new FileSourceReader(restarted, options.Tables, Context(mid!.State), read))
        {
            await foreach (var m in reader.ReadAsync(CancellationToken.None))
            {
                if (m is ChangeBatch b)
                {
                    rest.AddRange(Enumerable.Range(0, b.Length).Select(r => ((Apache.Arrow.Int64Array)b.Data.Column(0)).GetValue(r)!.Value));
                }
                else if (m is CaughtUp)
                {
                    break;
                }
            }
        }

        Assert.Equal(Enumerable.Range(0, 23).Select(i => (long)i), durable.Concat(rest).Order());
    }

    [Fact]
    public async Task Opening_an_object_overwritten_since_it_was_listed_reports_it_gone()
    {
        var bucket = await moto.CreateBucketAsync();
        await moto.PutAsync(bucket, "orders/a.csv", "id\n1\n");
        using var client = MotoServer.CreateClient(moto.Endpoint, moto.Admin.Id, moto.Admin.Secret);
        var store = new S3Store(client, S3Options.Parse(Config(bucket)));
        FileEntry? listed = null;
        await foreach (var f in store.ListAsync("", CancellationToken.None))
        {
            listed = f;
        }

        await moto.PutAsync(bucket, "orders/a.csv", "id\n2\n3\n");

        await Assert.ThrowsAsync<FileNotFoundException>(() => store.OpenAsync(listed!, CancellationToken.None));
    }

    [Theory]
    [InlineData("SlowDown", HttpStatusCode.ServiceUnavailable, ErrorKind.Transient, null)]
    [InlineData("InternalError", HttpStatusCode.InternalServerError, ErrorKind.Transient, null)]
    [InlineData("AccessDenied", HttpStatusCode.Forbidden, ErrorKind.Configuration, "/bucket")]
    [InlineData("NoSuchBucket", HttpStatusCode.NotFound, ErrorKind.Configuration, "/bucket")]
    [InlineData("PermanentRedirect", HttpStatusCode.MovedPermanently, ErrorKind.Configuration, "/region")]
    [InlineData("InvalidAccessKeyId", HttpStatusCode.Forbidden, ErrorKind.Configuration, "/accessKeyId")]
    public void S3_errors_map_to_kinds_and_fields(string code, HttpStatusCode status, ErrorKind kind, string? field)
    {
        var e = Errors.Map(new AmazonS3Exception("m", ErrorType.Sender, code, "req", status), "bkt", "s3:ListBucket")!;

        Assert.Equal(kind, e.Kind);
        Assert.Equal(field, e.Field);
        if (field != "/accessKeyId")
        {
            Assert.Contains("bkt", e.Message);
        }

        if (code == "AccessDenied")
        {
            Assert.Contains("s3:ListBucket", e.Message);
        }
    }

    [Fact]
    public void Network_failures_are_transient_and_cancellation_is_not_mapped()
    {
        Assert.Equal(ErrorKind.Transient, Errors.Map(new HttpRequestException("connection refused"), "b", "s3:GetObject")!.Kind);
        Assert.Equal(ErrorKind.Transient, Errors.Map(new AmazonClientException("x", new IOException("reset")), "b", "s3:GetObject")!.Kind);
        Assert.Null(Errors.Map(new OperationCanceledException(), "b", "s3:GetObject"));
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_a_transient_error_when_reading()
    {
        var config = JsonDocument.Parse("""{"bucket": "b", "endpoint": "http://127.0.0.1:9", "accessKeyId": "AKIAX", "secretAccessKey": "s", "tables": [{"name": "t", "pattern": "*.csv", "format": "csv", "columns": [{"name": "id", "type": "long"}]}]}""").RootElement;
        await using var session = new ReadSession(new S3Connector(), config, null, "t");

        var e = await Assert.ThrowsAsync<ConnectorException>(() => session.CaughtUpAsync());

        Assert.Equal(ErrorKind.Transient, e.Kind);
    }
}
