using Apache.Arrow;
using Ingest.Delta.Log;
using Ingest.Delta.Operations;

namespace Ingest.Delta;

/// <summary>Appends whose rows are written to data files before the commit that adds them.</summary>
public sealed partial class DeltaTable
{
    /// <summary>
    /// Starts an append whose rows are written to data files as they come (memory stays bounded) and that adds them to the
    /// table only at <see cref="DeltaAppend.CommitAsync"/>, in one commit, as <see cref="AppendAsync"/> does. Until then no
    /// commit references the files: disposing the append without committing deletes them, and a crash leaves them
    /// unreferenced (VACUUM removes them).
    /// </summary>
    public DeltaAppend BeginAppend()
    {
        WriterFeatures.Check(_state, Path, "append", removesData: false);
        return new DeltaAppend(this);
    }

    internal TableWriter NewStagedWriter(DeltaSnapshot snapshot) => NewWriter(snapshot);

    /// <summary>
    /// Commits the files of a staged append. As <see cref="AppendAsync"/>: the read state is this instance's latest, so a
    /// commit made meanwhile by another writer is checked for conflicts (its txn of the same appId, a protocol or metadata
    /// change) before this one retries at the next version. Files written before this instance's own schema change read
    /// as the table's older files do (added columns null, narrower types widened); anything else cannot be committed.
    /// </summary>
    internal async Task<CommitResult> CommitStagedAppendAsync(IReadOnlyList<(DeltaSnapshot Written, TableWriter Writer)> parts, CommitOptions options, Action committed, CancellationToken ct)
    {
        var readState = _state;
        var snapshot = _snapshot;
        WriterFeatures.Check(readState, Path, "append", removesData: false);
        foreach (var (written, _) in parts)
        {
            if (!FitsLaterSchema(written, snapshot))
            {
                throw new DeltaConcurrencyException(
                    $"The schema of '{Path}' changed (version {snapshot.Version}) in a way the rows staged for an append under version {written.Version} do not fit; retry the append.");
            }
        }

        var adds = new List<AddFile>();
        long rows = 0;
        foreach (var (_, writer) in parts)
        {
            adds.AddRange(await writer.FinishAsync(ct).ConfigureAwait(false));
            rows += writer.RowsWritten;
        }

        var pending = new PendingCommit
        {
            Options = options,
            Adds = adds,
            IsBlindAppend = true,
            RowsWritten = rows,
            DefaultParameters = { ["mode"] = "Append", ["partitionBy"] = PartitionByJson(snapshot) },
            Metrics =
            {
                ["numFiles"] = Committer.Metric(adds.Count),
                ["numOutputRows"] = Committer.Metric(rows),
                ["numOutputBytes"] = Committer.Metric(adds.Sum(a => a.Size)),
            },
        };
        var (version, state) = await Committer.CommitAsync(_store, readState, pending, ct).ConfigureAwait(false);
        // From here the log references the files: whatever happens next, they must stay.
        committed();
        if (state.Version > _state.Version)
        {
            SetState(state);
        }

        await MaybeCheckpointAsync(state, ct).ConfigureAwait(false);
        return new CommitResult(version, adds.Count, 0, rows);
    }

    /// <summary>
    /// Whether data files written under <paramref name="written"/> can be added to the table as it is now: same partition
    /// columns, and every column they hold is still a column of the table with the same or a wider type (columns the table
    /// added since read as null).
    /// </summary>
    private static bool FitsLaterSchema(DeltaSnapshot written, DeltaSnapshot now)
    {
        if (!written.PartitionColumns.SequenceEqual(now.PartitionColumns, StringComparer.Ordinal))
        {
            return false;
        }

        if (written.Schema.Equals(now.Schema))
        {
            return true;
        }

        var diff = DeltaSchema.Compare(now.Schema, written.Schema);
        return !diff.NeedsChange;
    }
}

/// <summary>
/// An append being written (see <see cref="DeltaTable.BeginAppend"/>): rows go to data files as they are written, and one
/// commit adds every file. Rows written after the table's own schema changed (through the same <see cref="DeltaTable"/>)
/// must have the new schema and go to new files.
/// </summary>
public sealed class DeltaAppend : IAsyncDisposable
{
    private readonly DeltaTable _table;
    private readonly List<(DeltaSnapshot Written, TableWriter Writer)> _parts = [];
    private bool _done;

    internal DeltaAppend(DeltaTable table)
    {
        _table = table;
    }

    /// <summary>Rows written so far.</summary>
    public long RowsWritten
    {
        get
        {
            long n = 0;
            foreach (var (_, w) in _parts)
            {
                n += w.RowsWritten;
            }

            return n;
        }
    }

    /// <summary>
    /// Writes rows with the table's current schema. The batch stays owned by the caller but its buffers are handed to the
    /// Parquet writer (Arrow's C data interface moves them): do not read it afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">The batch does not have the table's schema, or holds null in a NOT NULL column.</exception>
    public void Write(RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_done, this);
        if (batch.Length == 0)
        {
            return;
        }

        var now = _table.Snapshot;
        if (_parts.Count == 0 || !SameShape(_parts[^1].Written, now))
        {
            DeltaTable.CheckBatchSchema(batch.Schema, now, "append batch");
            _parts.Add((now, _table.NewStagedWriter(now)));
        }
        else
        {
            DeltaTable.CheckBatchSchema(batch.Schema, _parts[^1].Written, "append batch");
        }

        _parts[^1].Writer.Write(batch);
    }

    /// <summary>
    /// Takes over the rows written to <paramref name="other"/> (an append to the same table): this append's commit adds
    /// them, and disposing this append deletes them. <paramref name="other"/> is finished and can be used no more. Rows
    /// written next go on in <paramref name="other"/>'s open files.
    /// </summary>
    public void Absorb(DeltaAppend other)
    {
        ArgumentNullException.ThrowIfNull(other);
        ObjectDisposedException.ThrowIf(_done, this);
        ObjectDisposedException.ThrowIf(other._done, other);
        if (!ReferenceEquals(other._table, _table))
        {
            throw new ArgumentException($"Only an append to the same table instance can be absorbed ('{other._table.Path}' into '{_table.Path}').", nameof(other));
        }

        if (ReferenceEquals(other, this))
        {
            return;
        }

        _parts.AddRange(other._parts);
        other._parts.Clear();
        other._done = true;
    }

    /// <summary>Adds every file written to the table, in one commit carrying <paramref name="options"/>.</summary>
    /// <exception cref="DeltaConcurrencyException">
    /// A concurrent commit conflicts (the same txn appId, a protocol or metadata change), or the table's schema changed so
    /// that the files written no longer fit. The files are deleted.
    /// </exception>
    public async Task<CommitResult> CommitAsync(CommitOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(_done, this);
        _done = true;
        var referenced = false;
        try
        {
            return await _table.CommitStagedAppendAsync(_parts, options, () => referenced = true, cancellationToken).ConfigureAwait(false);
        }
        catch when (!referenced)
        {
            await AbortAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            foreach (var (_, w) in _parts)
            {
                w.Dispose();
            }
        }
    }

    /// <summary>Deletes the files written unless the append was committed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_done)
        {
            return;
        }

        _done = true;
        await AbortAsync().ConfigureAwait(false);
    }

    private async Task AbortAsync()
    {
        foreach (var (_, w) in _parts)
        {
            await w.AbortAsync(CancellationToken.None).ConfigureAwait(false);
        }

        _parts.Clear();
    }

    private static bool SameShape(DeltaSnapshot a, DeltaSnapshot b) =>
        ReferenceEquals(a, b) || (a.Schema.Equals(b.Schema) && a.PartitionColumns.SequenceEqual(b.PartitionColumns, StringComparer.Ordinal));
}
