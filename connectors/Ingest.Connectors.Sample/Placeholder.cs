namespace Ingest.Connectors.Sample; internal static class SamplePlaceholder { }
