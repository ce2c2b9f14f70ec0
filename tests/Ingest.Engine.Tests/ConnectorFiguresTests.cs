using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingest.Engine.Pipelines;
using Ingest.Engine.Running;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Records;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests;

/// <summary>Figures a connector reports about the whole connection (<see cref="SourceFigures"/>) reach its status.</summary>
public sealed class ConnectorFiguresTests
{
    /// <summary>The fake connector, its reads interleaved with figures: after each checkpoint "queued" = rows so far × 1000 bytes; "workers" once, first.</summary>
    private sealed class FiguresConnector(FakeConnector inner) : ISourceConnector
    {
        public ConnectorSpec Spec => inner.Spec;

        public Task<CheckResult> CheckAsync(JsonElement config, CancellationToken cancellationToken) => inner.CheckAsync(config, cancellationToken);

        public Task<SourceCatalog> DiscoverAsync(JsonElement config, CancellationToken cancellationToken) => inner.DiscoverAsync(config, cancellationToken);

        public ISourceReader OpenReader(ReadContext context) => new Reader(inner.OpenReader(context));

        private sealed class Reader(ISourceReader reader) : ISourceReader
        {
            public async IAsyncEnumerable<SourceMessage> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
            {
                yield return new SourceFigures(new ConnectorFigure("workers", "workers", 3, FigureUnits.Count));
                await foreach (var m in reader.ReadAsync(cancellationToken).WithCancellation(cancellationToken))
                {
                    yield return m;
                    if (m is Checkpoint c)
                    {
                        yield return new SourceFigures(new ConnectorFigure("queued_bytes", "queued", c.State.GetProperty("next").GetInt32() * 1000.0, FigureUnits.Bytes));
                    }
                }
            }

            public ValueTask AcknowledgeAsync(Checkpoint checkpoint, CancellationToken cancellationToken) => reader.AcknowledgeAsync(checkpoint, cancellationToken);

            public ValueTask DisposeAsync() => reader.DisposeAsync();
        }
    }

    [Fact]
    public async Task Runner_keeps_the_latest_value_of_each_figure_the_connector_reports_in_the_connection_status()
    {
        using var dir = new TempDir();
        var yaml = "lake: ./lake\ncommit: {interval: 10ms}\nconnections:\n  - {name: a, connector: figures, config: {host: h}}\n";
        var def = PipelineFile.Parse(yaml, dir.Combine("pipeline.yaml"));
        var bound = await PipelineBinder.BindAsync(def, new Dictionary<string, ISourceConnector> { ["figures"] = new FiguresConnector(new FakeConnector { Rows = 30 }) }, CancellationToken.None);
        var status = new RunStatus();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var before = DateTimeOffset.UtcNow;

        var result = await PipelineRunner.RunAsync(bound, new RunOptions { Once = true }, null, NullLoggerFactory.Instance, status, timeout.Token);

        Assert.True(result.Succeeded, string.Join("; ", result.Connections.Select(c => c.Error)));
        var connection = status.Connections["a"];

        // The last "queued" replaced the earlier ones; "workers", sent once, is still there, and first.
        Assert.Equal(
            [new ConnectorFigure("workers", "workers", 3, FigureUnits.Count), new ConnectorFigure("queued_bytes", "queued", 30_000, FigureUnits.Bytes)],
            connection.Figures.Values);
        Assert.InRange(connection.FiguresAt!.Value, before, DateTimeOffset.UtcNow);
        Assert.Equal(30, connection.Streams["items"].RowsCommitted);

        // The terminal view shows them on the connection's line.
        var line = Assert.Single(Ingest.Host.Cli.ProgressView.Render(status, []), l => l.StartsWith("a ", StringComparison.Ordinal));
        Assert.EndsWith("workers 3  queued 0.03 MB", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_connection_that_reports_no_figures_has_none()
    {
        var status = new RunStatus().Connection("quiet");

        Assert.Empty(status.Figures);
        Assert.Null(status.FiguresAt);
    }

    [Fact]
    public void Figures_without_a_name_or_with_a_name_twice_are_refused_naming_the_figure()
    {
        var twice = Assert.Throws<ArgumentException>(() => new SourceFigures(new ConnectorFigure("lag", "lag", 1, FigureUnits.Bytes), new ConnectorFigure("lag", "lag", 2, FigureUnits.Bytes)));
        Assert.Contains("'lag' is given twice", twice.Message, StringComparison.Ordinal);
        var nan = Assert.Throws<ArgumentException>(() => new SourceFigures(new ConnectorFigure("rate", "rate", double.NaN, "rows/s")));
        Assert.Contains("'rate'", nan.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new SourceFigures(new ConnectorFigure("", "x", 1, FigureUnits.Count)));
        Assert.Throws<ArgumentException>(() => new SourceFigures());
    }
}
