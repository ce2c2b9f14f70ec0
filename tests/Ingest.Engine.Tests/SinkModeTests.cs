using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Delta;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Ingest.Sdk.Types;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests;

/// <summary>
/// A connector with one stream <c>people</c> (id key, name, optionally more columns) whose reads are scripted: each read
/// emits its batches (a checkpoint after each), then CaughtUp. It ignores the resume state: every read is a replay of the
/// script, so the sink's own skipping is what keeps rows from appearing twice.
/// </summary>
internal sealed class ScriptedConnector(StreamSchema schema, SyncMode syncMode, params ScriptedConnector.Row[][][] reads) : ISourceConnector
{
    public sealed record Row(ChangeOp Op, long Id, string? Name, ulong Position, object? Extra = null);

    public int Reads { get; private set; }

    /// <summary>Fail read N (1-based) after this many batches.</summary>
    public (int Read, int AfterBatches)? FailAt { get; init; }

    public ConnectorSpec Spec { get; } = ConnectorSpec.Parse("""{"type":"object","properties":{}}""");

    public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => Task.FromResult(CheckResult.Ok());

    public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) =>
        Task.FromResult(new SourceCatalog([new StreamDescriptor("people", schema, ["id"], [], [syncMode])]));

    public ISourceReader OpenReader(ReadContext context) => new Reader(this, reads[Math.Min(Reads++, reads.Length - 1)], Reads);

    private sealed class Reader(ScriptedConnector owner, Row[][] batches, int read) : ISourceReader
    {
        public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            for (var i = 0; i < batches.Length; i++)
            {
                if (owner.FailAt is { } f && f.Read == read && f.AfterBatches == i)
                {
                    throw new InvalidOperationException("source went away");
                }

                var b = new ChangeBatchBuilder("people", owner.Schema);
                foreach (var r in batches[i])
                {
                    b.BeginRow(r.Op, new SourcePosition(r.Position, 0), 1_700_000_000_000_000 + (long)r.Position * 1_000_000);
                    if (r.Op == ChangeOp.Truncate)
                    {
                        b.EndRow();
                        continue;
                    }

                    b.SetInt64(0, r.Id);
                    if (r.Name is null)
                    {
                        b.SetNull(1);
                    }
                    else
                    {
                        b.SetString(1, r.Name);
                    }

                    if (owner.Schema.Count > 2)
                    {
                        switch (r.Extra)
                        {
                            case int i32: b.SetInt32(2, i32); break;
                            case long i64: b.SetInt64(2, i64); break;
                            default: b.SetNull(2); break;
                        }

                    }

                    b.EndRow();
                }

                yield return b.Build();
                yield return Checkpoint.From(new { batch = i + 1 });
                await Task.Yield();
            }

            yield return CaughtUp.Instance;
        }

        public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    public StreamSchema Schema => schema;
}

public sealed class SinkModeTests
{
    private static readonly StreamSchema People = new([new Field("id", DataType.Int64, false), new Field("name", DataType.String)]);

    private static readonly RunOptions Fast = new() { Once = true, RetryBaseDelay = TimeSpan.FromMilliseconds(10), MaxAttempts = 1 };

    private static ScriptedConnector.Row R(ChangeOp op, long id, string? name, ulong pos, object? extra = null) => new(op, id, name, pos, extra);

    private static async Task<RunResult> RunAsync(TempDir dir, ISourceConnector connector, string stream)
    {
        var yaml = $"lake: ./lake\ncommit: {{interval: 10ms}}\nconnections:\n  - name: c\n    connector: s\n    config: {{}}\n    streams:\n      - {stream}\n";
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));
        var bound = await PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["s"] = connector }, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        return await PipelineRunner.RunAsync(bound, Fast, null, NullLoggerFactory.Instance, new RunStatus(), timeout.Token);
    }

    [Fact]
    public async Task History_mode_keeps_every_version_with_one_current_row_per_key_and_replays_add_nothing()
    {
        using var dir = new TempDir();
        ScriptedConnector.Row[][] script =
        [
            [R(ChangeOp.Insert, 1, "a", 1), R(ChangeOp.Insert, 2, "b", 2)],
            [R(ChangeOp.Update, 1, "a2", 3), R(ChangeOp.Delete, 2, null, 4)],
            [R(ChangeOp.Update, 1, "a3", 5)],
        ];
        var connector = new ScriptedConnector(People, SyncMode.Cdc, script, script);

        var first = await RunAsync(dir, connector, "{name: people, mode: history}");
        var second = await RunAsync(dir, connector, "{name: people, mode: history}");

        Assert.True(first.Succeeded && second.Succeeded, string.Join("; ", first.Connections.Concat(second.Connections).Select(c => c.Error)));
        var rows = (await Lake.ReadAsync(dir.Combine("lake", "c", "people")))
            .Select(r => ((long)r["id"]!, (string?)r["name"], (bool)r[ScdColumns.IsCurrent]!, r[ScdColumns.ValidTo] is null))
            .OrderBy(r => r.Item1).ThenBy(r => r.Item2, StringComparer.Ordinal).ToList();
        Assert.Equal([(1L, "a", false, false), (1L, "a2", false, false), (1L, "a3", true, true), (2L, "b", false, false)], rows);
        var all = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        var b = all.Single(r => (long)r["id"]! == 2);
        Assert.Equal(new DateTimeOffset(2023, 11, 14, 22, 13, 24, TimeSpan.Zero), b[ScdColumns.ValidTo]);
    }

    [Fact]
    public async Task History_mode_truncate_closes_every_current_row()
    {
        using var dir = new TempDir();
        var connector = new ScriptedConnector(People, SyncMode.Cdc,
            [[R(ChangeOp.Insert, 1, "a", 1), R(ChangeOp.Insert, 2, "b", 2)], [R(ChangeOp.Truncate, 0, null, 3), R(ChangeOp.Insert, 2, "b2", 4)]]);

        var result = await RunAsync(dir, connector, "{name: people, mode: history}");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = (await Lake.ReadAsync(dir.Combine("lake", "c", "people")))
            .Select(r => ((long)r["id"]!, (string?)r["name"], (bool)r[ScdColumns.IsCurrent]!))
            .OrderBy(r => r.Item1).ThenBy(r => r.Item2, StringComparer.Ordinal).ToList();
        Assert.Equal([(1L, "a", false), (2L, "b", false), (2L, "b2", true)], rows);
    }

    [Fact]
    public async Task Overwrite_mode_replaces_the_table_with_each_full_read()
    {
        using var dir = new TempDir();
        var connector = new ScriptedConnector(People, SyncMode.FullRefresh,
            [[R(ChangeOp.Read, 1, "a", 1), R(ChangeOp.Read, 2, "b", 2)], [R(ChangeOp.Read, 3, "c", 3)]],
            [[R(ChangeOp.Read, 2, "b2", 1)], [R(ChangeOp.Read, 4, "d", 2)]]);

        var first = await RunAsync(dir, connector, "{name: people, mode: overwrite}");
        var afterFirst = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        var second = await RunAsync(dir, connector, "{name: people, mode: overwrite}");

        Assert.True(first.Succeeded && second.Succeeded);
        Assert.Equal([1L, 2L, 3L], afterFirst.Select(r => (long)r["id"]!).Order());
        var rows = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        Assert.Equal([(2L, "b2"), (4L, "d")], rows.Select(r => ((long)r["id"]!, (string?)r["name"])).OrderBy(r => r.Item1));
        var table = (await DeltaTable.TryOpenAsync(dir.Combine("lake", "c", "people"), CancellationToken.None))!;
        var last = (await table.HistoryAsync(1, CancellationToken.None))[0];
        Assert.Equal("WRITE", last.Operation);
        Assert.Equal("Overwrite", last.OperationParameters!["mode"]!.GetValue<string>());
        Assert.NotNull(last.CommitInfo["ingest"]);
    }

    [Fact]
    public async Task Overwrite_mode_keeps_the_previous_table_when_a_read_fails_midway()
    {
        using var dir = new TempDir();
        var connector = new ScriptedConnector(People, SyncMode.FullRefresh,
            [[R(ChangeOp.Read, 1, "a", 1)], [R(ChangeOp.Read, 2, "b", 2)]],
            [[R(ChangeOp.Read, 7, "x", 1)], [R(ChangeOp.Read, 8, "y", 2)]])
        { FailAt = (2, 1) };

        await RunAsync(dir, connector, "{name: people, mode: overwrite}");
        var failed = await RunAsync(dir, connector, "{name: people, mode: overwrite}");

        Assert.False(failed.Succeeded);
        var rows = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        Assert.Equal([1L, 2L], rows.Select(r => (long)r["id"]!).Order());
    }

    private static readonly StreamSchema PeopleWithAge = new([.. People.Columns, new Field("age", DataType.Int32)]);

    private static async Task<RunResult> TwoSchemasAsync(TempDir dir, string policy)
    {
        var v1 = new ScriptedConnector(People, SyncMode.Cdc, [[R(ChangeOp.Insert, 1, "a", 1)]]);
        var v2 = new ScriptedConnector(PeopleWithAge, SyncMode.Cdc, [[R(ChangeOp.Insert, 1, "a", 1)], [R(ChangeOp.Insert, 2, "b", 2, 42)]]);
        var first = await RunAsync(dir, v1, $"{{name: people, mode: append, schemaPolicy: {policy}}}");
        Assert.True(first.Succeeded);
        return await RunAsync(dir, v2, $"{{name: people, mode: append, schemaPolicy: {policy}}}");
    }

    [Fact]
    public async Task Schema_policy_evolve_adds_the_new_column_and_old_rows_read_null()
    {
        using var dir = new TempDir();

        var result = await TwoSchemasAsync(dir, "evolve");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        Assert.Equal([(1L, (object?)null), (2L, 42)], rows.Select(r => ((long)r["id"]!, r["age"])).OrderBy(r => r.Item1));
        var table = (await DeltaTable.TryOpenAsync(dir.Combine("lake", "c", "people"), CancellationToken.None))!;
        Assert.Equal("age", table.Snapshot.Schema.Columns[^1].Name);
    }

    [Fact]
    public async Task Schema_policy_fail_stops_the_stream_naming_the_column()
    {
        using var dir = new TempDir();

        var result = await TwoSchemasAsync(dir, "fail");

        Assert.False(result.Succeeded);
        Assert.Contains("'age'", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.Contains("integer", result.Connections[0].Error, StringComparison.Ordinal);
        Assert.Single(await Lake.ReadAsync(dir.Combine("lake", "c", "people")));
    }

    [Fact]
    public async Task Schema_policy_fail_names_both_types_of_a_changed_column()
    {
        using var dir = new TempDir();
        var narrow = new StreamSchema([People.Columns[0], People.Columns[1], new Field("age", DataType.Int32)]);
        var wide = new StreamSchema([People.Columns[0], People.Columns[1], new Field("age", DataType.Int64)]);
        await RunAsync(dir, new ScriptedConnector(narrow, SyncMode.Cdc, [[R(ChangeOp.Insert, 1, "a", 1, 5)]]), "{name: people, mode: append, schemaPolicy: fail}");

        var result = await RunAsync(dir, new ScriptedConnector(wide, SyncMode.Cdc, [[R(ChangeOp.Insert, 2, "b", 2, 5L)]]), "{name: people, mode: append, schemaPolicy: fail}");

        Assert.False(result.Succeeded);
        Assert.Contains("'age' is integer in the table but long", result.Connections[0].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Schema_policy_rescue_keeps_unknown_fields_as_json_in_rescued_data()
    {
        using var dir = new TempDir();

        var result = await TwoSchemasAsync(dir, "rescue");

        Assert.True(result.Succeeded, result.Connections[0].Error);
        var rows = await Lake.ReadAsync(dir.Combine("lake", "c", "people"));
        Assert.DoesNotContain("age", rows[0].Keys);
        Assert.Equal([(1L, (object?)null), (2L, """{"age":42}""")], rows.Select(r => ((long)r["id"]!, r["_rescued_data"])).OrderBy(r => r.Item1));
    }

    [Theory]
    [InlineData("{name: people, mode: overwrite, schemaPolicy: rescue}", SinkMode.Overwrite, SchemaPolicy.Rescue)]
    [InlineData("{name: people, mode: history}", SinkMode.History, SchemaPolicy.Evolve)]
    [InlineData("{name: people, schemaPolicy: fail}", SinkMode.Merge, SchemaPolicy.Fail)]
    public async Task Pipeline_file_reads_mode_and_schema_policy(string stream, SinkMode mode, SchemaPolicy policy)
    {
        using var dir = new TempDir();
        var def = PipelineFile.Parse($"lake: ./lake\nconnections:\n  - name: c\n    connector: s\n    config: {{}}\n    streams:\n      - {stream}\n", dir.Combine("p.yaml"));
        var bound = await PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["s"] = new ScriptedConnector(People, SyncMode.FullRefresh, [[]]) }, CancellationToken.None);

        var target = Assert.Single(bound.Connections[0].Targets);
        Assert.Equal(mode, target.Mode);
        Assert.Equal(policy, target.SchemaPolicy);
    }

    [Fact]
    public void Pipeline_file_rejects_unknown_schema_policy_with_a_hint()
    {
        using var dir = new TempDir();

        var ex = Assert.Throws<PipelineException>(() => PipelineFile.Parse("lake: ./lake\nconnections:\n  - name: c\n    connector: s\n    streams:\n      - {name: people, schemaPolicy: evolv}\n", dir.Combine("p.yaml")));

        Assert.Contains("did you mean 'evolve'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Overwrite_of_a_cdc_stream_is_refused_by_the_binder()
    {
        using var dir = new TempDir();
        var def = PipelineFile.Parse("lake: ./lake\nconnections:\n  - name: c\n    connector: s\n    config: {}\n    streams:\n      - {name: people, mode: overwrite}\n", dir.Combine("p.yaml"));

        var ex = await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["s"] = new ScriptedConnector(People, SyncMode.Cdc, [[]]) }, CancellationToken.None));

        Assert.Contains("change data capture", ex.Message, StringComparison.Ordinal);
    }
}
