using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Ingest.Sdk.Connectors;
using Ingest.Sdk.Files;

namespace Ingest.Connectors.Dropbox;

/// <summary>
/// A Dropbox folder as a change-listing file store: <c>files/list_folder</c> (recursive, with deleted entries)
/// once, then <c>files/list_folder/continue</c> from the cursor, so only changes are fetched. A <c>reset</c>
/// error means the cursor is no longer valid: the folder is listed again from scratch (the file ledger makes
/// sure nothing is read twice). A file version is its <c>rev</c>; downloads ask for that exact revision.
/// </summary>
internal sealed class DropboxStore(DropboxApi api, string root, IConnectorLog log) : IChangeListingStore
{
    private const int PageSize = 2000;
    private readonly Dictionary<string, FileEntry> _view = new(StringComparer.Ordinal);
    private readonly List<(string Relative, FileEntry? Last)> _deleted = [];
    private string? _cursor;

    /// <summary>Full listings done (the first, and one per reset).</summary>
    public int FullListings { get; private set; }

    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        JsonElement page;
        if (_cursor is not null)
        {
            try
            {
                page = await api.RpcAsync("files/list_folder/continue", new { cursor = _cursor }, cancellationToken).ConfigureAwait(false);
            }
            catch (DropboxApiException e) when (e.Tag == "reset")
            {
                log.Write(ConnectorLogLevel.Warning, "Dropbox reset the listing cursor; listing the folder again (files already read are skipped; files deleted meanwhile keep their rows).");
                _view.Clear();
                _cursor = null;
                FullListings++;
                page = await FirstPageAsync(includeDeleted: true, cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            FullListings++;
            page = await FirstPageAsync(includeDeleted: true, cancellationToken).ConfigureAwait(false);
        }

        foreach (var e in page.GetProperty("entries").EnumerateArray())
        {
            Apply(e);
        }

        _cursor = page.GetProperty("cursor").GetString();
        return page.GetProperty("has_more").GetBoolean();
    }

    public async IAsyncEnumerable<FileEntry> ListAllAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var page = await FirstPageAsync(includeDeleted: false, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            foreach (var e in page.GetProperty("entries").EnumerateArray())
            {
                if (e.GetProperty(".tag").GetString() == "file" && Entry(e) is { } f && f.Path.StartsWith(prefix, StringComparison.Ordinal))
                {
                    yield return f;
                }
            }

            if (!page.GetProperty("has_more").GetBoolean())
            {
                yield break;
            }

            page = await api.RpcAsync("files/list_folder/continue", new { cursor = page.GetProperty("cursor").GetString() }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<JsonElement> FirstPageAsync(bool includeDeleted, CancellationToken cancellationToken)
    {
        try
        {
            return await api.RpcAsync("files/list_folder", new Dictionary<string, object>
            {
                ["path"] = root,
                ["recursive"] = true,
                ["include_deleted"] = includeDeleted,
                ["limit"] = PageSize,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (DropboxApiException e) when (e.Tag == "path")
        {
            throw new ConnectorException(ErrorKind.Configuration, $"Dropbox has no folder '{root}' ({e.Message}).", "/path", e);
        }
    }

    /// <summary>A file entry's version, relative to the root; null when it is outside the root.</summary>
    private FileEntry? Entry(JsonElement e)
    {
        var lower = e.GetProperty("path_lower").GetString() ?? "";
        var rootLower = root.ToLowerInvariant();
        if (!lower.StartsWith(rootLower + "/", StringComparison.Ordinal))
        {
            return null;
        }

        var key = lower[(rootLower.Length + 1)..];
        var display = e.TryGetProperty("path_display", out var d) ? d.GetString() ?? lower : lower;
        var relative = display.Length > root.Length ? display[(root.Length + 1)..] : key;
        var modified = DateTimeOffset.Parse(e.GetProperty("server_modified").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        return new FileEntry(relative, e.GetProperty("size").GetInt64(), modified, e.GetProperty("rev").GetString());
    }

    private void Apply(JsonElement e)
    {
        var tag = e.GetProperty(".tag").GetString();
        var lower = e.GetProperty("path_lower").GetString() ?? "";
        var rootLower = root.ToLowerInvariant();
        if (!lower.StartsWith(rootLower + "/", StringComparison.Ordinal))
        {
            return;
        }

        var key = lower[(rootLower.Length + 1)..];
        switch (tag)
        {
            case "file":
                _view[key] = Entry(e)!;
                break;
            case "deleted":
                // A deleted folder removes everything under it. A deleted file unknown to the view (the listing was
                // continued after a restart) is looked up later by its revisions.
                var shown = e.TryGetProperty("path_display", out var pd) ? pd.GetString() ?? lower : lower;
                if (_view.Remove(key, out var last))
                {
                    _deleted.Add((last.Path, last));
                }
                else
                {
                    _deleted.Add((shown.Length > root.Length ? shown[(root.Length + 1)..] : key, null));
                }

                foreach (var k in _view.Keys.Where(k => k.StartsWith(key + "/", StringComparison.Ordinal)).ToList())
                {
                    _deleted.Add((_view[k].Path, _view[k]));
                    _view.Remove(k);
                }

                break;
        }
    }

    public async Task<IReadOnlyList<FileEntry>> TakeDeletionsAsync(CancellationToken cancellationToken)
    {
        var result = new List<FileEntry>();
        foreach (var (relative, last) in _deleted)
        {
            if (last is not null)
            {
                result.Add(last);
                continue;
            }

            try
            {
                var revisions = await api.RpcAsync("files/list_revisions", new Dictionary<string, object> { ["path"] = root + "/" + relative, ["mode"] = "path", ["limit"] = 1 }, cancellationToken).ConfigureAwait(false);
                var entries = revisions.GetProperty("entries");
                if (entries.GetArrayLength() == 0)
                {
                    continue;
                }

                var e = entries[0];
                if (e.TryGetProperty(".tag", out var tag) && tag.GetString() != "file")
                {
                    continue; // a folder: its files cannot be enumerated any more
                }

                var modified = DateTimeOffset.Parse(e.GetProperty("server_modified").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
                result.Add(new FileEntry(relative, e.GetProperty("size").GetInt64(), modified, e.GetProperty("rev").GetString()));
            }
            catch (DropboxApiException ex)
            {
                log.Write(ConnectorLogLevel.Debug, $"No revisions of deleted {relative}: {ex.Message}");
            }
        }

        _deleted.Clear();
        return result;
    }

    public JsonNode? SaveState() => _cursor is null ? null : new JsonObject { ["cursor"] = _cursor };

    public void RestoreState(JsonElement state)
    {
        _view.Clear();
        _deleted.Clear();
        _cursor = state.ValueKind == JsonValueKind.Object && state.TryGetProperty("cursor", out var c) ? c.GetString() : null;
    }

    public async IAsyncEnumerable<FileEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var f in _view.Values)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (f.Path.StartsWith(prefix, StringComparison.Ordinal))
            {
                yield return f;
            }
        }
    }

    public async Task<Stream> OpenAsync(FileEntry file, CancellationToken cancellationToken)
    {
        try
        {
            return await api.DownloadAsync(file.Tag is null ? root + "/" + file.Path : "rev:" + file.Tag, cancellationToken).ConfigureAwait(false);
        }
        catch (DropboxApiException e) when (e.Tag == "path")
        {
            throw new FileNotFoundException($"{file.Path} (rev {file.Tag}) is gone from Dropbox.", file.Path, e);
        }
    }
}
