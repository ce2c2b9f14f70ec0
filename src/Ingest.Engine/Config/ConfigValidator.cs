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

            problems.Add(new ConfigProblem(field, e.Message));
        }

        return problems;
    }

    [GeneratedRegex("'([^']+)'")]
    private static partial Regex QuotedName();
}
