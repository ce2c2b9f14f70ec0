using Ingest.Host.Web;
using Microsoft.Extensions.Configuration;

namespace Ingest.Host.Tests;

public sealed class RabbitMqSettingsTests
{
    [Theory]
    [InlineData("rabbitmq://ingest:s%40cret@mq.example:5673/prod", "mq.example", 5673, "prod", "ingest", "s@cret")]
    [InlineData("amqp://mq.example", "mq.example", 5672, "/", "guest", "guest")]
    [InlineData("rabbitmq://u:p@127.0.0.1:1234/", "127.0.0.1", 1234, "/", "u", "p")]
    public void Bus_uri_gives_host_port_vhost_and_credentials(string uri, string host, int port, string vhost, string user, string password)
    {
        var s = RabbitMqSettings.Parse(uri, "--bus");
        Assert.Equal(new RabbitMqSettings(host, (ushort)port, vhost, user, password), s);
        Assert.Equal($"rabbitmq://{user}@{host}:{port}/{Uri.EscapeDataString(vhost)}", s.Display);
    }

    [Fact]
    public void Bad_bus_uri_names_the_option_and_hides_the_password()
    {
        var e = Assert.Throws<FormatException>(() => RabbitMqSettings.Parse("http://u:topsecret@host/", "--bus"));
        Assert.StartsWith("--bus: expected rabbitmq://", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("topsecret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configuration_section_sets_the_broker_and_a_bad_port_names_its_key()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bus:RabbitMq:Host"] = "mq", ["Bus:RabbitMq:Port"] = "5999", ["Bus:RabbitMq:VirtualHost"] = "v", ["Bus:RabbitMq:Username"] = "a", ["Bus:RabbitMq:Password"] = "b",
        }).Build();
        Assert.Equal(new RabbitMqSettings("mq", 5999, "v", "a", "b"), RabbitMqSettings.FromConfiguration(config));
        Assert.Null(RabbitMqSettings.FromConfiguration(new ConfigurationBuilder().Build()));

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Bus:RabbitMq:Host"] = "mq", ["Bus:RabbitMq:Port"] = "x" }).Build();
        Assert.StartsWith("Bus:RabbitMq:Port:", Assert.Throws<FormatException>(() => RabbitMqSettings.FromConfiguration(bad)).Message, StringComparison.Ordinal);
    }
}
