//! The `dealtrail` binary: parses the command line and maps failures to exit codes.

use clap::Parser;

// The system allocator by default; mimalloc with `cargo build --release --features mimalloc`.
// Measured (README, "A global allocator"): mimalloc takes 17% less server CPU per HTTP append
// and 30-34% less CPU for an import, but its peak memory is higher: 15% on the projections
// benchmark (2.1 GiB against 1.8 at 1 M deals), 42% on a 245k-event import, and the same as
// glibc's there with MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 in the environment.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Before any thread starts (see the function: reads were 7-15% slower without it).
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
