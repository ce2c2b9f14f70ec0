using System.Runtime.InteropServices;

namespace Ingest.Engine.Running;

/// <summary>
/// Gives freed native memory back to the system after a commit. Arrow buffers and the Parquet writer allocate with
/// malloc; glibc keeps what they free in its arenas (one per thread that allocated, up to 8 per core) and returns it
/// only when the top of an arena is free. <c>malloc_trim</c> also releases the free pages inside the arenas.
/// </summary>
internal static class NativeHeap
{
    private static bool s_unavailable = !OperatingSystem.IsLinux();

    public static void Trim()
    {
        if (s_unavailable)
        {
            return;
        }

        try
        {
            _ = malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (e.g. musl): nothing to trim this way.
            s_unavailable = true;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code; one call per commit, no hot path.
    private static extern int malloc_trim(nuint pad);
#pragma warning restore SYSLIB1054
}
