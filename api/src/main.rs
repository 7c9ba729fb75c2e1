//! The `dealtrail` binary: parses the command line and maps failures to exit codes.

use clap::Parser;

/// mimalloc instead of the system allocator: the read model is millions of small
/// allocations, and glibc's malloc spent most of a deal replay consolidating free lists
/// (measured with perf on the projections benchmark).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
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
