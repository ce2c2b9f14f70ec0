using Microsoft.AspNetCore.Components.Web;

namespace Ingest.Host.Components;

/// <summary>Render modes of the pages.</summary>
internal static class Modes
{
    /// <summary>Interactive over the circuit, without a prerendered copy whose buttons would not work yet.</summary>
    public static InteractiveServerRenderMode Live { get; } = new(prerender: false);
}
