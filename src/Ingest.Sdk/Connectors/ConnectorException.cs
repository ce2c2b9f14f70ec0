namespace Ingest.Sdk.Connectors;

/// <summary>What kind of failure a connector hit, which decides what the engine does about it.</summary>
public enum ErrorKind
{
    /// <summary>The user must act (a wrong setting, a missing permission): stop and show it, naming the field.</summary>
    Configuration,
    /// <summary>May go away by itself (network, throttling, a restarting server): retried with backoff.</summary>
    Transient,
    /// <summary>Cannot continue: stop the connection and show it.</summary>
    Fatal,
}

/// <summary>A failure with a kind; throw it from a connector so the engine treats it right.</summary>
public sealed class ConnectorException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConnectorException(ErrorKind kind, string message, string? field = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        Field = field;
    }

    /// <summary>Creates a fatal failure.</summary>
    public ConnectorException()
        : this(ErrorKind.Fatal, "The connector failed.")
    {
    }

    /// <summary>Creates a fatal failure.</summary>
    public ConnectorException(string message)
        : this(ErrorKind.Fatal, message)
    {
    }

    /// <summary>Creates a fatal failure.</summary>
    public ConnectorException(string message, Exception innerException)
        : this(ErrorKind.Fatal, message, null, innerException)
    {
    }

    /// <summary>What kind of failure this is.</summary>
    public ErrorKind Kind { get; }

    /// <summary>The configuration field at fault (a JSON pointer such as <c>/host</c>), where one is.</summary>
    public string? Field { get; }
}
