using System.Text.Json.Nodes;
using Ingest.Host.Web;
using Ingest.Sdk.Connectors;

namespace Ingest.Host.Tests;

public sealed class SecretFieldsTests
{
    private static readonly ConnectorSpec Spec = ConnectorSpec.Parse("""
        {
          "type": "object",
          "properties": {
            "password": { "type": "string", "secret": true },
            "replicas": { "type": "array", "items": { "type": "object", "properties": {
              "host": { "type": "string" }, "password": { "type": "string", "secret": true },
              "keys": { "type": "array", "items": { "type": "string", "secret": true } } } } },
            "auth": { "oneOf": [
              { "type": "object", "properties": { "kind": { "const": "key" }, "apiKey": { "type": "string", "secret": true } } },
              { "type": "object", "properties": { "kind": { "const": "oauth" }, "refreshToken": { "type": "string", "secret": true } } } ] }
          }
        }
        """);

    private static JsonObject Config(string json) => (JsonObject)JsonNode.Parse(json)!;

    [Fact]
    public void Secret_paths_follow_array_items_and_oneOf_alternatives()
    {
        Assert.Equal(["/password", "/replicas/*/password", "/replicas/*/keys/*", "/auth/apiKey", "/auth/refreshToken"], Spec.SecretPaths());
    }

    [Fact]
    public void Masked_hides_every_secret_in_arrays_and_the_chosen_alternative()
    {
        var config = Config("""{"password":"p","replicas":[{"host":"a","password":"pa","keys":["k1","k2"]},{"host":"b"}],"auth":{"kind":"key","apiKey":"ak"}}""");
        var masked = SecretFields.Masked(config, Spec.SecretPaths());
        Assert.Equal("""{"password":"********","replicas":[{"host":"a","password":"********","keys":["********","********"]},{"host":"b"}],"auth":{"kind":"key","apiKey":"********"}}""", masked.ToJsonString());
    }

    [Fact]
    public void Restore_takes_the_saved_secret_of_the_same_item_after_an_earlier_item_was_removed()
    {
        var saved = Config("""{"password":"p","replicas":[{"host":"a","password":"pa"},{"host":"b","password":"pb"},{"host":"c","password":"pc"}],"auth":{"kind":"oauth","refreshToken":"rt"}}""");
        var incoming = Config("""{"password":"********","replicas":[{"host":"b","password":"********"},{"host":"c","password":"new"}],"auth":{"kind":"oauth","refreshToken":"********"}}""");
        var restored = SecretFields.Restore(incoming, saved, Spec.SecretPaths());
        Assert.Equal("""{"password":"p","replicas":[{"host":"b","password":"pb"},{"host":"c","password":"new"}],"auth":{"kind":"oauth","refreshToken":"rt"}}""", restored.ToJsonString());
    }

    [Fact]
    public void Restore_keeps_secrets_by_position_when_an_item_was_edited_in_place_and_drops_a_mask_it_cannot_place()
    {
        var saved = Config("""{"replicas":[{"host":"a","password":"pa"},{"host":"b","password":"pb"}]}""");
        var edited = Config("""{"replicas":[{"host":"a2","password":"********"},{"host":"b","password":"********"}]}""");
        Assert.Equal("""{"replicas":[{"host":"a2","password":"pa"},{"host":"b","password":"pb"}]}""", SecretFields.Restore(edited, saved, Spec.SecretPaths()).ToJsonString());

        // One item left, edited too: no saved item is it, so its secret must be entered again.
        var unknown = Config("""{"replicas":[{"host":"z","password":"********"}]}""");
        Assert.Equal("""{"replicas":[{"host":"z"}]}""", SecretFields.Restore(unknown, saved, Spec.SecretPaths()).ToJsonString());
    }

    [Fact]
    public void Protected_encrypts_secrets_inside_arrays()
    {
        var protector = new Reverse();
        var config = Config("""{"replicas":[{"host":"a","password":"pa","keys":["k1"]}]}""");
        var stored = SecretFields.Protected(config, Spec.SecretPaths(), protector);
        Assert.Equal("""{"replicas":[{"host":"a","password":"enc:v1:ap","keys":["enc:v1:1k"]}]}""", stored.ToJsonString());
        Assert.Equal(config.ToJsonString(), Ingest.Engine.Config.ConnectionSecrets.Unprotected(stored, protector).ToJsonString());
    }

    [Fact]
    public void Audit_copies_never_hold_a_secret_inside_an_array_and_show_that_it_changed()
    {
        var before = Config("""{"replicas":[{"host":"a","password":"old-secret"}]}""");
        var after = Config("""{"replicas":[{"host":"a","password":"new-secret"}]}""");
        var (b, a) = SecretFields.ForAudit(before, after, Spec.SecretPaths());
        Assert.Equal("""{"replicas":[{"host":"a","password":"********"}]}""", b!.ToJsonString());
        Assert.Equal("""{"replicas":[{"host":"a","password":"******** (changed)"}]}""", a!.ToJsonString());
    }

    private sealed class Reverse : Ingest.Engine.Config.ISecretProtector
    {
        public string Protect(string plaintext) => new(plaintext.Reverse().ToArray());

        public string Unprotect(string protectedText) => new(protectedText.Reverse().ToArray());
    }
}
