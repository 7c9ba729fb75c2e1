//! Structured logs (tracing) on stderr: `serve --log-filter` (env `RUST_LOG`, default `info`)
//! chooses what, `--log-format text|json` (env `DEALTRAIL_LOG`) how.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber once (later calls do nothing); a filter that does not
/// parse is an error naming it, not a silent fallback.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    // `RUST_LOG=` (set but empty) means the default, as it always has.
    let filter = if filter.trim().is_empty() {
        "info"
    } else {
        filter
    };
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("--log-filter (RUST_LOG) {filter:?} is not a log filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(())
}
