//! The `dealtrail` binary: parses the command line and maps failures to exit codes.

use clap::Parser;

// mimalloc, unless built with `--no-default-features` (then the system allocator). Measured
// (README, "A global allocator"): a 1 M-event NDJSON import 10.8-12.8 s against 16.0-16.3 s
// with glibc, at the same peak memory once mimalloc returns freed memory within 10 ms
// (`tune_mimalloc`); 18% less server CPU per HTTP append.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options `purge_delay` (returns freed pages to the system after this many ms;
/// 1000 by default) and `arena_eager_commit` (commits a whole arena when it is reserved; 2,
/// "where the system overcommits", by default), by their numbers in the `mi_option_e` of the
/// pinned libmimalloc-sys 0.1.49's mimalloc v3 (`c_src/mimalloc/v3/include/mimalloc.h`).
#[cfg(feature = "mimalloc")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system after 10 ms (not 1 s) and arenas are committed as
/// they are used: with mimalloc's defaults a 1 M-event import peaked at 520-560 MiB, with
/// these at 377-400 MiB (glibc's 390; a delay of 0 had the same peak and took 0.7 s more of
/// system time in purges, 100 ms 2-5% more memory). Set before the allocator reserves its
/// first arena (see [`TUNE_MIMALLOC`]): set in `main`, the eager commit came too late for the
/// first arena (430-450 MiB).
/// `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ARENA_EAGER_COMMIT` in the environment win.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
extern "C" fn tune_mimalloc() {
    for (option, variable, value) in [
        (MI_OPTION_PURGE_DELAY, c"MIMALLOC_PURGE_DELAY", 10),
        (
            MI_OPTION_ARENA_EAGER_COMMIT,
            c"MIMALLOC_ARENA_EAGER_COMMIT",
            0,
        ),
    ] {
        // SAFETY: `getenv` reads the environment (no thread runs yet; it allocates nothing,
        // unlike `std::env`, whose first allocation would reserve the arena). `mi_option_set`
        // only stores the option's value (and marks it set: the environment's value, when
        // there is one, is left to mimalloc, which reads it at its start).
        unsafe {
            if libc::getenv(variable.as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(option, value);
            }
        }
    }
}

/// [`tune_mimalloc`] as a constructor of the executable (ELF's `.init_array`), run before
/// Rust's runtime starts and allocates; elsewhere `main` calls it.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static TUNE_MIMALLOC: extern "C" fn() = tune_mimalloc;

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "mimalloc", not(target_os = "linux")))]
    tune_mimalloc();
    // Before any thread starts (see the function: reads were 7-15% slower without it); glibc's
    // allocator still serves what is not Rust's.
    eventlog::spread_allocator_arenas();
    let cli = api::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(api::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            std::process::ExitCode::from(e.code as u8)
        }
    }
}
