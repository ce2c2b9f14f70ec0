namespace Ingest.Delta;

/// <summary>
/// A concurrent commit to the same table conflicts with this one (it removed a file this operation read or rewrote,
/// changed the metadata, or wrote the same txn appId). Nothing of this operation was committed; re-read and retry.
/// </summary>
public sealed class DeltaConcurrencyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DeltaConcurrencyException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public DeltaConcurrencyException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public DeltaConcurrencyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
