namespace Ingest.Engine.Pipelines;

/// <summary>One problem in a pipeline file, located by file, line and column, and by field path.</summary>
/// <param name="File">The pipeline file's name as given.</param>
/// <param name="Line">1-based line (0 when unknown).</param>
/// <param name="Column">1-based column (0 when unknown).</param>
/// <param name="Path">The field path, e.g. <c>connections[0].config.seed</c> (empty for the whole file).</param>
/// <param name="Message">What was expected.</param>
public sealed record PipelineError(string File, int Line, int Column, string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var where = Line > 0 ? $"{File}:{Line}:{Column}" : File;
        return Path.Length > 0 ? $"{where}: {Path}: {Message}" : $"{where}: {Message}";
    }
}

/// <summary>A pipeline file that cannot be used; <see cref="Errors"/> lists every problem found.</summary>
public sealed class PipelineException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PipelineException(IReadOnlyList<PipelineError> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    /// <summary>Creates the exception.</summary>
    public PipelineException()
        : this([])
    {
    }

    /// <summary>Creates the exception.</summary>
    public PipelineException(string message)
        : this([new PipelineError("", 0, 0, "", message)])
    {
    }

    /// <summary>Creates the exception.</summary>
    public PipelineException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [new PipelineError("", 0, 0, "", message)];
    }

    /// <summary>The problems, in file order.</summary>
    public IReadOnlyList<PipelineError> Errors { get; }
}
