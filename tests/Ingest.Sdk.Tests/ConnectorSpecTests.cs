using System.Text.Json;
using Ingest.Sdk.Connectors;

namespace Ingest.Sdk.Tests;

public class ConnectorSpecTests
{
    [Fact]
    public void Secret_paths_include_nested_properties()
    {
        var spec = ConnectorSpec.Parse("""
            {
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "type": "object",
              "properties": {
                "host": { "type": "string" },
                "password": { "type": "string", "secret": true },
                "auth": {
                  "type": "object",
                  "properties": {
                    "apiKey": { "type": "string", "secret": true },
                    "user": { "type": "string", "secret": false }
                  }
                }
              }
            }
            """);

        Assert.Equal(["/password", "/auth/apiKey"], spec.SecretPaths());
    }

    [Fact]
    public void Spec_without_secrets_has_no_secret_paths()
    {
        var spec = ConnectorSpec.Parse("""{"type":"object","properties":{"seed":{"type":"integer"}}}""");

        Assert.Empty(spec.SecretPaths());
    }

    [Fact]
    public void Spec_that_is_not_an_object_is_rejected()
    {
        Assert.Throws<JsonException>(() => ConnectorSpec.Parse("[1,2]"));
    }
}
