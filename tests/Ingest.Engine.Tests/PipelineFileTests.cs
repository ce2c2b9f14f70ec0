using Ingest.Engine.Pipelines;
using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Tests;

public sealed class PipelineFileTests
{
    private static readonly Dictionary<string, ISourceConnector> Connectors = new() { ["fake"] = new FakeConnector() };

    private static PipelineException Refused(string yaml)
    {
        return Assert.Throws<PipelineException>(() => PipelineFile.Parse(yaml, "/tmp/p/pipeline.yaml"));
    }

    private static async Task<PipelineException> RefusedOnBindAsync(string yaml)
    {
        var def = PipelineFile.Parse(yaml, "/tmp/p/pipeline.yaml");
        return await Assert.ThrowsAsync<PipelineException>(() => PipelineBinder.BindAsync(def, Connectors, CancellationToken.None));
    }

    [Fact]
    public async Task Valid_file_binds_streams_to_tables_with_default_modes()
    {
        var def = PipelineFile.Parse("""
            lake: ./lake
            transport: embedded
            commit: {interval: 500ms, maxRows: 1000}
            connections:
              - name: shop
                connector: fake
                config: {host: "h", size: 3, ratio: 0.5, flag: true}
            """, "/tmp/p/pipeline.yaml");
        Assert.Equal("/tmp/p/lake", def.LakePath);
        Assert.Equal(TimeSpan.FromMilliseconds(500), def.Commit.Interval);
        Assert.Equal(1000, def.Commit.MaxRows);
        Assert.Equal(3, def.Connections[0].Config.GetProperty("size").GetInt64());
        Assert.Equal(0.5, def.Connections[0].Config.GetProperty("ratio").GetDouble());
        Assert.True(def.Connections[0].Config.GetProperty("flag").GetBoolean());

        var bound = await PipelineBinder.BindAsync(def, Connectors, CancellationToken.None);
        var targets = bound.Connections[0].Targets;
        Assert.Equal(["items", "events"], targets.Select(t => t.Stream.Name));
        Assert.Equal(SinkMode.Merge, targets[0].Mode);
        Assert.Equal(SinkMode.Append, targets[1].Mode);
        Assert.Equal("/tmp/p/lake/shop/items", targets[0].TablePath);
    }

    [Fact]
    public async Task Stream_can_be_written_twice_to_different_tables()
    {
        var def = PipelineFile.Parse("""
            connections:
              - name: shop
                connector: fake
                config: {host: h}
                streams:
                  - {name: items, mode: merge}
                  - {name: items, mode: append, table: shop/items_log}
            """, "/tmp/p/pipeline.yaml");
        var bound = await PipelineBinder.BindAsync(def, Connectors, CancellationToken.None);
        Assert.Equal(["/tmp/p/lake/shop/items", "/tmp/p/lake/shop/items_log"], bound.Connections[0].Targets.Select(t => t.TablePath));
    }

    [Fact]
    public void Yaml_syntax_error_names_file_line_and_column()
    {
        var e = Refused("connections:\n  - name: shop\n    connector: [fake\n");
        var error = Assert.Single(e.Errors);
        Assert.Equal("pipeline.yaml", error.File);
        Assert.True(error.Line >= 3, error.ToString());
        Assert.StartsWith("pipeline.yaml:", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("invalid YAML", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_is_refused_with_did_you_mean()
    {
        var e = Refused("connections:\n  - name: shop\n    conector: fake\n");
        Assert.Contains(e.Errors, x => x.ToString() == "pipeline.yaml:3:5: connections[0].conector: unknown key 'conector'; did you mean 'connector'?");
    }

    [Fact]
    public void Bad_names_modes_and_durations_are_refused_at_their_lines()
    {
        var e = Refused("""
            commit: {interval: soon}
            connections:
              - name: Shop!
                connector: fake
              - name: b
                connector: fake
                streams:
                  - {name: items, mode: merje}
            """);
        Assert.Contains(e.Errors, x => x.ToString().StartsWith("pipeline.yaml:1:20: commit.interval: expected a positive duration", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.ToString().StartsWith("pipeline.yaml:3:11: connections[0].name: expected lower-case letters", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.ToString() == "pipeline.yaml:8:29: connections[1].streams[0].mode: expected append, merge, overwrite or history, got merje; did you mean 'merge'?");
    }

    [Fact]
    public void S3_lake_is_refused_and_a_kafka_transport_without_brokers_names_the_field()
    {
        var e = Refused("lake: gs://bucket/lake\ntransport: {kind: kafka, brokers: x}\nconnections:\n  - {name: a, connector: fake}\n");
        Assert.Contains(e.Errors, x => x.Path == "lake" && x.Message.Contains("'gs://' lakes are not supported", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Path == "transport.brokers" && x.Message.Contains("unknown key", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Path == "transport.bootstrapServers" && x.Message.StartsWith("missing", StringComparison.Ordinal));
    }

    [Fact]
    public void Duplicate_connection_names_are_refused()
    {
        var e = Refused("connections:\n  - {name: a, connector: fake}\n  - {name: a, connector: fake}\n");
        Assert.Contains(e.Errors, x => x.Path == "connections[1].name" && x.Line == 3);
    }

    [Fact]
    public async Task Wrong_config_type_is_mapped_to_its_yaml_line()
    {
        var e = await RefusedOnBindAsync("""
            connections:
              - name: shop
                connector: fake
                config:
                  host: h
                  size: "abc"
            """);
        Assert.Contains(e.Errors, x => x.ToString() == "pipeline.yaml:6:13: connections[0].config.size: expected integer, got \"abc\"");
    }

    [Fact]
    public async Task Config_errors_name_missing_unknown_nested_and_out_of_range_settings()
    {
        var e = await RefusedOnBindAsync("""
            connections:
              - name: shop
                connector: fake
                config:
                  size: 0
                  mode: c
                  hots: x
                  nested: {port: yes}
            """);
        var all = string.Join("\n", e.Errors);
        Assert.Contains("pipeline.yaml:5:13: connections[0].config.size: expected a value >= 1, got 0", all, StringComparison.Ordinal);
        Assert.Contains("pipeline.yaml:6:13: connections[0].config.mode: expected one of \"a\", \"b\", got \"c\"", all, StringComparison.Ordinal);
        Assert.Contains("pipeline.yaml:7:13: connections[0].config.hots: unknown setting 'hots'; did you mean 'host'?", all, StringComparison.Ordinal);
        Assert.Contains("pipeline.yaml:8:22: connections[0].config.nested.port: expected integer, got \"yes\"", all, StringComparison.Ordinal);
        Assert.Contains("pipeline.yaml:5:7: connections[0].config: missing required setting 'host'", all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_connector_lists_the_loaded_ones()
    {
        var e = await RefusedOnBindAsync("connections:\n  - name: shop\n    connector: fak\n");
        Assert.Equal("pipeline.yaml:3:16: connections[0].connector: unknown connector 'fak' (did you mean 'fake'?); loaded connectors: fake", Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public async Task Unknown_stream_lists_the_discovered_ones()
    {
        var e = await RefusedOnBindAsync("connections:\n  - name: shop\n    connector: fake\n    config: {host: h}\n    streams: [{name: itemz}]\n");
        Assert.Equal("pipeline.yaml:5:22: connections[0].streams[0].name: unknown stream 'itemz' (did you mean 'items'?); connector 'fake' offers: items, events", Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public async Task Merge_on_a_stream_without_key_is_refused()
    {
        var e = await RefusedOnBindAsync("connections:\n  - name: shop\n    connector: fake\n    config: {host: h}\n    streams:\n      - {name: events, mode: merge}\n");
        var error = Assert.Single(e.Errors);
        Assert.Equal("connections[0].streams[0].mode", error.Path);
        Assert.Equal(6, error.Line);
        Assert.Contains("no primary key", error.Message, StringComparison.Ordinal);
    }
}
