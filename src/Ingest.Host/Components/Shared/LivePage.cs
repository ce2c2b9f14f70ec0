using Microsoft.AspNetCore.Components;

namespace Ingest.Host.Components.Shared;

/// <summary>A page that reloads its data about once a second while it is open.</summary>
public abstract class LivePage : ComponentBase, IDisposable
{
    private readonly CancellationTokenSource _closed = new();

    /// <summary>Fires when the page closes.</summary>
    protected CancellationToken Closed => _closed.Token;

    /// <summary>Loads the page's data.</summary>
    protected abstract Task LoadAsync(CancellationToken cancellationToken);

    /// <inheritdoc />
    protected override async Task OnInitializedAsync() => await LoadAsync(Closed);

    /// <inheritdoc />
    protected override void OnAfterRender(bool firstRender)
    {
        if (firstRender && RendererInfo.IsInteractive)
        {
            _ = RefreshLoopAsync();
        }
    }

    private async Task RefreshLoopAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(Closed))
            {
                await InvokeAsync(async () =>
                {
                    await LoadAsync(Closed);
                    StateHasChanged();
                });
            }
        }
        catch (OperationCanceledException)
        {
            // The page closed.
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _closed.Cancel();
        _closed.Dispose();
        GC.SuppressFinalize(this);
    }
}
