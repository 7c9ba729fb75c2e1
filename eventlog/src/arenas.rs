//! The C allocator's arenas in a process that runs a store: the project's only calls into
//! glibc's allocator (they need `unsafe`, allowed here and nowhere else).
//!
//! glibc gives a thread an allocator arena of its own only while the process has fewer than
//! 8 arenas per core; a thread that starts after that shares one, chosen in turn. A store
//! runs a dozen threads of its own (writer, index, journal flushers, sled's I/O threads), so
//! on a 2-core machine the cap (16) is reached before the threads that read and decode the
//! log start, and two threads that allocate for every event they decode can find themselves
//! waiting on one arena's lock. Measured (`cargo bench -p eventlog`, README "Reads and
//! glibc's arenas"): reading the whole log right after the appends was 7–15% slower once the
//! index thread was added (the 17th thread), and as fast as before with the cap raised.

/// Raises glibc's cap on arenas to at least 64 (8 per core where that is more), unless the
/// environment sets `MALLOC_ARENA_MAX` (which then stays in force). For a program's start,
/// before it starts threads: the `dealtrail` binary calls it, and so does the store's
/// benchmark, to measure the store as the binary runs it. Returns the cap set, `None` where
/// the allocator is not glibc's or the setting was refused.
#[allow(unsafe_code)]
pub fn spread_allocator_arenas() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cap = (8 * cores).max(64);
        let value = libc::c_int::try_from(cap).ok()?;
        // SAFETY: `mallopt` changes a setting of glibc's allocator under the allocator's own
        // lock; `M_ARENA_MAX` only bounds arenas created after the call.
        let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, value) };
        (set == 1).then_some(cap)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Returns the heap's free pages to the system (glibc's `malloc_trim`; nothing elsewhere).
/// glibc keeps what a thread freed in that thread's arena, which other threads do not
/// allocate from: a phase that frees much on one thread (an import's check) before others
/// allocate much (the store's writer and index threads) would otherwise hold both at once.
#[allow(unsafe_code)]
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases memory the allocator holds free; it takes the
    // arenas' locks itself and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
