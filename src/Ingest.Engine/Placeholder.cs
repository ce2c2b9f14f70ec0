namespace Ingest.Engine; internal static class EnginePlaceholder { }
