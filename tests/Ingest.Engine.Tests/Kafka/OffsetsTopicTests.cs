using System.Reflection;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Ingest.Engine.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingest.Engine.Tests.Kafka;

public sealed class OffsetsTopicTests
{
    [Fact]
    public async Task An_absent_offsets_topic_is_created_compacted_with_one_partition()
    {
        var admin = FakeAdmin.Create(existing: null);
        Assert.Equal(OffsetsTopic.Outcome.Created, await OffsetsTopic.EnsureAsync(admin.Client, "p.offsets", TimeSpan.FromSeconds(5), NullLogger.Instance, CancellationToken.None));
        var spec = Assert.Single(admin.Created);
        Assert.Equal("p.offsets", spec.Name);
        Assert.Equal(1, spec.NumPartitions);
        Assert.Equal("compact", spec.Configs["cleanup.policy"]);
    }

    [Fact]
    public async Task An_offsets_topic_created_meanwhile_by_another_process_is_tolerated_and_checked()
    {
        var admin = FakeAdmin.Create(existing: null, createError: ErrorCode.TopicAlreadyExists, policy: "compact");
        Assert.Equal(OffsetsTopic.Outcome.ExistsCompacted, await OffsetsTopic.EnsureAsync(admin.Client, "p.offsets", TimeSpan.FromSeconds(5), NullLogger.Instance, CancellationToken.None));
        Assert.Single(admin.Created);
        Assert.Equal(1, admin.Described);
    }

    [Theory]
    [InlineData("compact", true)]
    [InlineData("compact,delete", true)]
    [InlineData("delete", false)]
    public async Task An_existing_offsets_topic_is_left_as_it_is_and_its_policy_checked(string policy, bool compacted)
    {
        var outcome = compacted ? OffsetsTopic.Outcome.ExistsCompacted : OffsetsTopic.Outcome.ExistsNotCompacted;
        var admin = FakeAdmin.Create(existing: "p.offsets", policy: policy);
        Assert.Equal(outcome, await OffsetsTopic.EnsureAsync(admin.Client, "p.offsets", TimeSpan.FromSeconds(5), NullLogger.Instance, CancellationToken.None));
        Assert.Empty(admin.Created);
    }

    [Fact]
    public async Task On_the_mock_cluster_without_create_topics_the_topic_is_left_to_auto_creation_and_an_existing_one_is_accepted()
    {
        using var kafka = new MockKafka();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = kafka.BootstrapServers }).Build();
        var topic = $"{kafka.Prefix}.offsets";
        Assert.Equal(OffsetsTopic.Outcome.NotCreated, await OffsetsTopic.EnsureAsync(admin, topic, TimeSpan.FromSeconds(2), NullLogger.Instance, CancellationToken.None));
        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(5)).Topics, t => t.Topic == topic);

        kafka.CreateTopic(topic, 1);
        Assert.Equal(OffsetsTopic.Outcome.ExistsUnknown, await OffsetsTopic.EnsureAsync(admin, topic, TimeSpan.FromSeconds(2), NullLogger.Instance, CancellationToken.None));
    }
}

/// <summary>An <see cref="IAdminClient"/> answering the three calls <see cref="OffsetsTopic"/> makes; any other call is a test bug.</summary>
public class FakeAdmin : DispatchProxy
{
    private string? _existing;
    private ErrorCode? _createError;
    private string _policy = "delete";

    public IAdminClient Client { get; private set; } = null!;

    public List<TopicSpecification> Created { get; } = [];

    public int Described { get; private set; }

    internal static FakeAdmin Create(string? existing, ErrorCode? createError = null, string policy = "delete")
    {
        var client = DispatchProxy.Create<IAdminClient, FakeAdmin>();
        var fake = (FakeAdmin)(object)client;
        fake._existing = existing;
        fake._createError = createError;
        fake._policy = policy;
        fake.Client = client;
        return fake;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        switch (targetMethod?.Name)
        {
            case nameof(IAdminClient.GetMetadata) when args is [TimeSpan]:
                var topics = _existing is null ? new List<TopicMetadata>() : [new TopicMetadata(_existing, [], new Error(ErrorCode.NoError))];
                return new Metadata([], topics, 1, "fake");
            case nameof(IAdminClient.CreateTopicsAsync):
                var specs = ((IEnumerable<TopicSpecification>)args![0]!).ToList();
                Created.AddRange(specs);
                return _createError is { } code
                    ? Task.FromException(new CreateTopicsException([.. specs.Select(s => new CreateTopicReport { Topic = s.Name, Error = new Error(code) })]))
                    : Task.CompletedTask;
            case nameof(IAdminClient.DescribeConfigsAsync):
                Described++;
                var resource = ((IEnumerable<ConfigResource>)args![0]!).Single();
                return Task.FromResult(new List<DescribeConfigsResult>
                {
                    new() { ConfigResource = resource, Entries = new Dictionary<string, ConfigEntryResult> { ["cleanup.policy"] = new() { Name = "cleanup.policy", Value = _policy } } },
                });
            default:
                throw new InvalidOperationException($"the offsets topic logic should not call {targetMethod?.Name}");
        }
    }
}
