using System.Text.Json;
using System.Text.RegularExpressions;
using Ingest.Engine.Control;
using Ingest.Engine.Pipelines;
using Ingest.Sdk.Connectors;

namespace Ingest.Engine.Config;

/// <summary>One problem with a configuration.</summary>
/// <param name="Field">The field path, e.g. <c>config.seed</c> or <c>config.auth.apiKey</c>.</param>
/// <param name="Message">What was expected.</param>
public sealed record ConfigProblem(string Field, string Message);

/// <summary>Validates a configuration against a connector's JSON Schema, with the same messages as pipeline files.</summary>
public static partial class ConfigValidator
{
    /// <summary>The problems of <paramref name="config"/>; empty when it is valid.</summary>
    public static IReadOnlyList<ConfigProblem> Validate(string connectorName, ConnectorSpec spec, JsonElement config)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var definition = new ConnectionDefinition("validate", connectorName, config, null, 0, default, default, new Dictionary<string, TextLocation>());
        var problems = new List<ConfigProblem>();
        foreach (var e in PipelineBinder.ValidateConfig("connection", definition, spec))
        {
            var field = ConnectionSupervisor.StripPrefix(e.Path);
            // A missing required setting is the missing field's problem (a form shows it there), not its parent's.
            if (e.Message.StartsWith("missing required setting", StringComparison.Ordinal))
            {
                foreach (Match m in QuotedName().Matches(e.Message))
                {
                    problems.Add(new ConfigProblem($"{field}.{m.Groups[1].Value}", $"required: missing setting '{m.Groups[1].Value}'"));
                }

                continue;
            }

            // Inside array items the binder passes the schema library's own wording through; say it the same way as elsewhere.
            if (LibraryRequired().Match(e.Message) is { Success: true } req)
            {
                foreach (Match m in QuotedJson().Matches(req.Groups[1].Value))
                {
                    problems.Add(new ConfigProblem($"{field}.{m.Groups[1].Value}", $"required: missing setting '{m.Groups[1].Value}'"));
                }

                continue;
            }

            if (LibraryType().Match(e.Message) is { Success: true } type)
            {
                problems.Add(new ConfigProblem(field, $"expected {type.Groups[2].Value}, got {type.Groups[1].Value}"));
                continue;
            }

            problems.Add(new ConfigProblem(field, e.Message));
        }

        // A oneOf value whose fixed ("const") properties pick an alternative is that alternative's to judge: the other
        // alternatives' complaints that the const does not match them are noise (a form never shows those fields).
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        ChosenConsts(spec.ConfigSchema, config, "config", chosen);
        problems.RemoveAll(p => chosen.Contains(p.Field) && p.Message.StartsWith("expected ", StringComparison.Ordinal));
        return problems;
    }

    private static void ChosenConsts(System.Text.Json.Nodes.JsonObject schema, JsonElement value, string field, HashSet<string> chosen)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        if (schema["oneOf"] is System.Text.Json.Nodes.JsonArray alternatives)
        {
            foreach (var alternative in alternatives.OfType<System.Text.Json.Nodes.JsonObject>())
            {
                var consts = (alternative["properties"] as System.Text.Json.Nodes.JsonObject ?? [])
                    .Where(p => p.Value is System.Text.Json.Nodes.JsonObject o && o.ContainsKey("const")).ToList();
                if (consts.Count > 0 && consts.All(c => value.TryGetProperty(c.Key, out var v)
                        && System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(v.GetRawText()), c.Value!["const"])))
                {
                    foreach (var c in consts)
                    {
                        chosen.Add($"{field}.{c.Key}");
                    }

                    ChosenConsts(alternative, value, field, chosen);
                }
            }
        }

        foreach (var (name, prop) in schema["properties"] as System.Text.Json.Nodes.JsonObject ?? [])
        {
            if (prop is System.Text.Json.Nodes.JsonObject child && value.TryGetProperty(name, out var v))
            {
                ChosenConsts(child, v, $"{field}.{name}", chosen);
            }
        }
    }

    [GeneratedRegex("^Required properties \\[(.*)\\] are not present$")]
    private static partial Regex LibraryRequired();

    [GeneratedRegex("\"([^\"]+)\"")]
    private static partial Regex QuotedJson();

    [GeneratedRegex("^Value is \"(\\w+)\" but should be \"(\\w+)\"$")]
    private static partial Regex LibraryType();

    [GeneratedRegex("'([^']+)'")]
    private static partial Regex QuotedName();
}
