namespace Ingest.Sdk.Records;

/// <summary>What happened to a row. The values are Debezium's <c>op</c> letters.</summary>
public enum ChangeOp : byte
{
    /// <summary>A row read by a snapshot or backfill (<c>r</c>): an upsert.</summary>
    Read = (byte)'r',
    /// <summary>A row inserted at the source (<c>c</c>).</summary>
    Insert = (byte)'c',
    /// <summary>A row updated at the source (<c>u</c>); the batch holds the after-image.</summary>
    Update = (byte)'u',
    /// <summary>A row deleted at the source (<c>d</c>); the batch holds at least the key columns.</summary>
    Delete = (byte)'d',
    /// <summary>Every row of the stream removed (<c>t</c>); the row's columns are all null.</summary>
    Truncate = (byte)'t',
}

/// <summary>Helpers for <see cref="ChangeOp"/>.</summary>
public static class ChangeOps
{
    /// <summary>The one-letter code stored in the lake's <c>_op</c> column.</summary>
    public static string Code(this ChangeOp op) => op switch
    {
        ChangeOp.Read => "r",
        ChangeOp.Insert => "c",
        ChangeOp.Update => "u",
        ChangeOp.Delete => "d",
        ChangeOp.Truncate => "t",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown change operation."),
    };

    /// <summary>Parses a one-letter code.</summary>
    public static ChangeOp Parse(string code) => code switch
    {
        "r" => ChangeOp.Read,
        "c" => ChangeOp.Insert,
        "u" => ChangeOp.Update,
        "d" => ChangeOp.Delete,
        "t" => ChangeOp.Truncate,
        _ => throw new FormatException($"Unknown change operation '{code}' (expected r, c, u, d or t)."),
    };
}
