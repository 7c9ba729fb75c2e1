//! The `dealtrail` command line (SPEC §4): one module per command.
//!
//! Exit codes (stable, for scripts): see [`ExitCode`].

mod copy;
mod deals;
mod demo;
mod erase;
mod export;
#[doc(hidden)]
pub mod fuzzing;
mod import;
mod import_check;
pub mod import_csv;
mod progress;
mod report;
mod serve;
pub mod store;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit codes of `dealtrail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done.
    Ok = 0,
    /// An error not covered below (I/O, storage).
    Failure = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// The data directory is held by another dealtrail process (e.g. `serve`).
    Locked = 3,
    /// The store is damaged (found by `verify`, or by any command reading it): the message
    /// names the first damaged position when it is known.
    Corrupt = 4,
    /// Input refused: a bad import line, an unknown deal, an invalid report parameter.
    Refused = 5,
}

/// A command's failure: what to print and which exit code to use.
#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
}

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::new(ExitCode::Failure, message)
    }

    pub fn refused(message: impl Into<String>) -> CliError {
        CliError::new(ExitCode::Refused, message)
    }

    /// The same error, its message prefixed with `what: ` (e.g. which store).
    pub fn prefixed(mut self, what: &str) -> CliError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<eventlog::StoreError> for CliError {
    fn from(e: eventlog::StoreError) -> CliError {
        use eventlog::StoreError as E;
        let code = match &e {
            E::Locked(_) => ExitCode::Locked,
            E::Corrupt { .. } => ExitCode::Corrupt,
            E::Rejected(_)
            | E::Invalid(_)
            | E::IdConflict { .. }
            | E::WrongExpectedVersion { .. } => ExitCode::Refused,
            _ => ExitCode::Failure,
        };
        let mut message = e.to_string();
        if code == ExitCode::Locked {
            message.push_str(
                "\nwhile `dealtrail serve` holds a data directory, use its HTTP API instead \
                 (e.g. GET /v1/events for export, GET /v1/reports/... for reports), or stop the server first",
            );
        }
        CliError { code, message }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::failure(e.to_string())
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "dealtrail",
    version,
    about = "An event-sourced CRM: an append-only, hash-chained log of every sales action, and the reports built from it.",
    after_help = "Exit codes: 0 ok, 1 failure (e.g. a full disk), 2 usage, 3 data directory in use by another process, \
                  4 store damaged (names the first damaged position), 5 input refused (bad import line, unknown deal, bad parameter)."
)]
pub struct Cli {
    /// The event store: `postgres://user[:password]@host[:port]/db[?schema=NAME]` (shared by
    /// any number of `serve` processes) or `sled:DIR` (the embedded store in DIR). Without
    /// it: the embedded store in `--data`.
    #[arg(long, global = true, env = "DEALTRAIL_STORE", value_name = "URL")]
    pub store: Option<String>,

    /// The data directory of the embedded store (`--store sled:DIR` says the same). With a
    /// PostgreSQL store, this node's own directory (the read model's snapshot).
    #[arg(
        long,
        global = true,
        default_value = "./dealtrail-data",
        env = "DEALTRAIL_DATA"
    )]
    pub data: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (SPEC §3) on the embedded store. Prints the address and, the first
    /// time, the admin token. SIGINT/SIGTERM finish in-flight appends before stopping.
    Serve(serve::ServeArgs),
    /// Import canonical NDJSON events (one per line; `-` reads stdin), or another CRM's CSV
    /// export (`--profile`, `--mapping`). Idempotent by event id: re-running an import adds
    /// nothing twice, and completes an interrupted one. Everything is checked against the
    /// domain's rules first; a refused line is named by file and line number (and column).
    Import(import::ImportArgs),
    /// Export the log (canonical NDJSON, or CSV) to stdout.
    Export {
        /// First position to export (inclusive).
        #[arg(long, default_value_t = 1)]
        from_position: u64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
    },
    /// Write a realistic sample organisation (8 reps in 2 teams, 12 months, 2,000+ deals,
    /// leads, pool, payments) into the store. Running it again the same day adds nothing.
    Demo,
    /// Compute a report (SPEC §2) offline from the data directory. `--json` prints exactly
    /// the body of `GET /v1/reports/NAME` with the same parameters; without it, indented JSON.
    Report {
        /// funnel, reps, pipeline, channels, win-loss, l2c, activity, pool, service or follow-up.
        name: String,
        /// Compact JSON, byte for byte the HTTP body.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: Box<report::ReportFlags>,
    },
    /// List deals (SPEC §5.1), newest first, filtered like `GET /v1/deals` (flags named like
    /// its query parameters); `--json` prints exactly its body. A page at a time: the next
    /// one with `--cursor`.
    Deals {
        /// Compact JSON, byte for byte the HTTP body.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        flags: Box<deals::DealFlags>,
    },
    /// Replay one deal: every step with the deal's state after it, then the loss analysis.
    Replay {
        /// The deal id (the part of the stream name after `deal-`).
        deal_id: String,
        /// Print exactly the body of `GET /v1/deals/{id}/replay`.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the read models from the whole log (with progress) and save them with the
    /// position they reflect; `serve` and `report` then resume from there.
    Rebuild,
    /// Walk the whole log checking every record's checksum and the hash chain. Exit code 4
    /// names the first damaged position.
    Verify,
    /// Copy the whole log of the selected store into another, empty store (ids, positions,
    /// versions, times and hash chain preserved), then verify both and compare them.
    Copy(copy::CopyArgs),
    /// Erase the personal data of a customer or lead (SPEC §7): its key is destroyed and
    /// `PersonalDataErased` appended; from then on every read shows its name, company,
    /// contact and free text as `"[erased]"`. Exports taken before still hold them.
    Erase(erase::EraseArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// Runs a parsed command line.
pub async fn run(mut cli: Cli) -> Result<(), CliError> {
    match cli
        .store
        .as_deref()
        .map(store::Location::parse)
        .transpose()?
    {
        Some(store::Location::Sled(dir)) => {
            cli.data = dir;
            store::select_postgres(None);
        }
        Some(store::Location::Postgres(url)) => store::select_postgres(Some(url)),
        None => store::select_postgres(None),
    }
    match cli.command {
        Command::Serve(args) => serve::run(&cli.data, args).await,
        Command::Import(args) => import::run(&cli.data, &args).await,
        Command::Export {
            from_position,
            format,
        } => export::run(&cli.data, from_position, format).await,
        Command::Report { name, json, flags } => {
            report::run_report(&cli.data, &name, &flags, json).await
        }
        Command::Deals { json, flags } => deals::run(&cli.data, &flags, json).await,
        Command::Replay { deal_id, json } => report::run_replay(&cli.data, &deal_id, json).await,
        Command::Rebuild => report::run_rebuild(&cli.data).await,
        Command::Demo => demo::run(&cli.data).await,
        Command::Verify => verify::run(&cli.data).await,
        Command::Copy(args) => copy::run(&cli.data, &args).await,
        Command::Erase(args) => erase::run(&cli.data, &args).await,
    }
}

/// Opens the selected store (`--store`, else the embedded one in `data`, created private if
/// it does not exist) with the domain's rules in front of every append.
pub async fn open_store(data: &Path) -> Result<store::Store, CliError> {
    open_store_with_cache(data, None).await
}

/// [`open_store`]; `sled_cache`: the embedded store's page cache in bytes (`None`: sled's
/// default).
pub(crate) async fn open_store_with_cache(
    data: &Path,
    sled_cache: Option<u64>,
) -> Result<store::Store, CliError> {
    let rules = Arc::new(eventlog::rules::DomainRules::default());
    store::open_with(&store::selected(data), rules, sled_cache).await
}

/// Opens an existing store for the commands that only read (`report`, `replay`, `export`,
/// `verify`, `rebuild`); refuses, as a usage error and without creating anything, a
/// directory that holds no store (sled's `db` file), or a PostgreSQL schema without one: a
/// mistyped `--data` or `--store` must not answer "ok: 0 events".
pub async fn open_existing_store(data: &Path) -> Result<store::Store, CliError> {
    let location = store::selected(data);
    if let store::Location::Postgres(url) = &location {
        let config = eventlog::PgConfig::parse(url)?;
        if !eventlog::PgStore::exists(&config).await? {
            return Err(CliError::new(
                ExitCode::Usage,
                format!(
                    "{} holds no dealtrail store (schema {}): check --store, or create one \
                     with `dealtrail import`, `dealtrail demo` or `dealtrail copy --to`",
                    location.display(),
                    config.schema
                ),
            ));
        }
        return open_store(data).await;
    }
    if !data.join("db").is_file() {
        let what = if data.exists() {
            "holds no dealtrail store"
        } else {
            "does not exist"
        };
        return Err(CliError::new(
            ExitCode::Usage,
            format!(
                "{} {what}: give the store's directory with --data DIR (or DEALTRAIL_DATA), \
                 or create one with `dealtrail import` or `dealtrail demo`",
                data.display()
            ),
        ));
    }
    open_store(data).await
}

#[cfg(test)]
mod tests {
    use eventlog::{Rejection, StoreError, ValidateError};

    use super::{CliError, ExitCode};

    /// A store read failing while the rules decide a batch reaches the command as the store
    /// error it is (exit 1), not as a refused input (exit 5).
    #[test]
    fn a_failed_read_while_validating_is_a_failure_not_a_refusal() {
        let read = ValidateError::Store(StoreError::Backend("read failed".into()));
        assert_eq!(
            CliError::from(StoreError::from(read)).code,
            ExitCode::Failure
        );
        let refused = ValidateError::Rejected(Rejection::new("rep.active", "data.rep", "x", "no"));
        assert_eq!(
            CliError::from(StoreError::from(refused)).code,
            ExitCode::Refused
        );
    }
}
