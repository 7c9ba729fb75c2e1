//! `dealtrail import FILE…`: canonical NDJSON into the log, and the checking and appending
//! that the CSV import (`import_csv`) shares.
//!
//! Every line is parsed and checked against the domain's rules (see `import_check`) before
//! anything is written, so a malformed or refused line refuses the whole import. Then the
//! lines are appended in order, in atomic chunks (one stream batch per line, so each line is
//! deduplicated by its id on its own): positions follow the file's order, a re-run adds
//! nothing twice, and a run killed half-way leaves a prefix of the file that the next run
//! completes. `version` and `position` in the file are not trusted: the store assigns them
//! (they are checked to be numbers if present). `--dry-run` stops after the check and prints
//! what would be appended.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use domain::ProposedEvent;
use eventlog::{EventStore, ExpectedVersion, StreamBatch};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{import_csv, open_store, progress, CliError};

/// How many lines go into one atomic, durable append.
const CHUNK_LINES: usize = 1000;

/// One NDJSON line: the canonical envelope; `id` is required (it is the idempotency key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportLine {
    pub(super) id: Uuid,
    pub(super) stream: String,
    #[serde(rename = "type")]
    pub(super) event_type: String,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    position: Option<u64>,
    #[serde(default, with = "rfc3339_opt")]
    pub(super) occurred_at: Option<DateTime<Utc>>,
    #[serde(default, with = "rfc3339_opt")]
    pub(super) recorded_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(super) actor: Option<String>,
    pub(super) data: Value,
    #[serde(default)]
    pub(super) metadata: Option<Map<String, Value>>,
}

impl ImportLine {
    /// Same event for idempotency: same stream, type, data, metadata, `occurred_at` and actor.
    pub(super) fn same_content(&self, other: &ImportLine) -> bool {
        self.stream == other.stream
            && self.event_type == other.event_type
            && self.data == other.data
            && self.metadata == other.metadata
            && self.occurred_at == other.occurred_at
            && self.actor == other.actor
    }
}

impl ImportLine {
    /// An event made by the CSV import (no `version`/`position`; recorded now).
    pub(super) fn mapped(stream: String, event: ProposedEvent) -> ImportLine {
        ImportLine {
            id: event.id.unwrap_or_else(Uuid::now_v7),
            stream,
            event_type: event.event_type,
            version: None,
            position: None,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            actor: event.actor,
            data: event.data,
            metadata: event.metadata,
        }
    }
}

/// A parsed line with where it came from.
pub(super) struct Line {
    pub(super) source: Arc<str>,
    pub(super) number: usize,
    pub(super) event: ImportLine,
}

/// `dealtrail import`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Files to import, in order (`-` for stdin). For CSV, a directory stands for its
    /// `*.csv` files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// `ndjson`: canonical events, one per line (the default). `csv`: another CRM's export,
    /// read with `--profile` or `--mapping` (either implies `--format csv`).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// The CRM the CSV files come from (SPEC §4): salesforce, hubspot or maven.
    #[arg(long, value_enum, conflicts_with = "mapping")]
    pub profile: Option<import_csv::Profile>,
    /// A TOML file mapping any other CSV layout onto events (see the README).
    #[arg(long, value_name = "FILE.toml")]
    pub mapping: Option<PathBuf>,
    /// Check everything and print the counts per event type and the first problems; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// CSV field separator: `,`, `;`, `tab` or `|` (default: the most frequent of them in
    /// the header line).
    #[arg(long, value_parser = import_csv::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// CSV text encoding: `auto` (UTF-8 when the file is valid UTF-8, else GBK), or any
    /// WHATWG label (`utf-8`, `gbk`, `gb18030`, `windows-1252`, `shift_jis`, …).
    #[arg(long)]
    pub encoding: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Ndjson,
    Csv,
}

pub async fn run(data: &Path, args: &ImportArgs) -> Result<(), CliError> {
    let csv = args.profile.is_some() || args.mapping.is_some();
    match args.format {
        Some(ImportFormat::Csv) if !csv => {
            return Err(CliError::new(
                super::ExitCode::Usage,
                "--format csv needs --profile salesforce|hubspot|maven or --mapping FILE.toml",
            ))
        }
        Some(ImportFormat::Ndjson) if csv => {
            return Err(CliError::new(
                super::ExitCode::Usage,
                "--profile and --mapping read CSV: use --format csv (or leave --format out)",
            ))
        }
        _ if csv => return import_csv::run(data, args).await,
        _ => {}
    }
    let mut lines = Vec::new();
    for file in &args.files {
        read_file(file, &mut lines)?;
    }
    let store = store_for(data, args.dry_run).await?;
    let done = check_and_append(store.as_ref(), &lines, args.dry_run).await?;
    if args.dry_run {
        print_dry_run("", &done);
    } else {
        eprintln!("imported {} lines: {done}", lines.len());
    }
    Ok(())
}

/// The store to import into; a dry run on a directory that holds none checks against an
/// empty log instead of creating one.
pub(super) async fn store_for(data: &Path, dry_run: bool) -> Result<Arc<dyn EventStore>, CliError> {
    let embedded = matches!(
        super::store::selected(data),
        super::store::Location::Sled(_)
    );
    if dry_run && embedded && !data.exists() {
        return Ok(Arc::new(eventlog::memory::MemoryStore::new()));
    }
    Ok(open_store(data).await?.shared())
}

/// What an import appended (or, in a dry run, would append).
pub(super) struct Imported {
    /// New events by type (those not already in the log).
    pub(super) new_by_type: BTreeMap<String, usize>,
    pub(super) already_present: usize,
    /// Positions written, `None` in a dry run or when nothing was new.
    pub(super) positions: Option<(u64, u64)>,
}

impl Imported {
    pub(super) fn new_events(&self) -> usize {
        self.new_by_type.values().sum()
    }
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.positions {
            Some((first, last)) => write!(
                f,
                "{} new events (positions {first}..={last}), {} already in the log",
                last + 1 - first,
                self.already_present
            ),
            None => write!(
                f,
                "0 new events, {} already in the log",
                self.already_present
            ),
        }
    }
}

/// Prints what a dry run (`what` says of what) would append, one event type a line.
pub(super) fn print_dry_run(what: &str, done: &Imported) {
    println!(
        "dry run{what}: {} new events would be appended, {} already in the log; nothing written",
        done.new_events(),
        done.already_present
    );
    for (ty, n) in &done.new_by_type {
        println!("  {ty:<22} {n:>9}");
    }
}

/// Checks every line against the log and the domain's rules, then (unless `dry_run`)
/// appends the new ones in order. Nothing is written if any line is refused.
pub(super) async fn check_and_append(
    store: &dyn EventStore,
    lines: &[Line],
    dry_run: bool,
) -> Result<Imported, CliError> {
    let checked = super::import_check::check(store, lines, chrono::Utc::now()).await?;
    let mut done = Imported {
        new_by_type: checked.new_by_type,
        already_present: checked.already_present,
        positions: None,
    };
    if dry_run || checked.already_present == lines.len() {
        return Ok(done);
    }
    let before = store.last_position().await?;
    let bar = progress::bar(Some(lines.len() as u64), "importing");
    append_lines(store, lines, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let after = store.last_position().await?;
    if after > before {
        done.positions = Some((before + 1, after));
    }
    done.already_present = lines.len() - (after - before) as usize;
    Ok(done)
}

/// Appends checked lines in order, in atomic chunks; `done` is told how many lines each
/// chunk held.
pub(super) async fn append_lines(
    store: &dyn EventStore,
    lines: &[Line],
    done: impl Fn(u64),
) -> Result<(), CliError> {
    for chunk in lines.chunks(CHUNK_LINES) {
        let batches = chunk
            .iter()
            .map(|l| StreamBatch {
                stream: l.event.stream.clone(),
                expected: ExpectedVersion::Any,
                events: vec![proposed(&l.event)],
            })
            .collect();
        if let Err(err) = store.append_multi(batches).await {
            let mut e = CliError::from(err.error);
            if let Some(line) = err.index.and_then(|i| chunk.get(i)) {
                e.message = format!("{}: line {}: {}", line.source, line.number, e.message);
            }
            return Err(e);
        }
        done(chunk.len() as u64);
    }
    Ok(())
}

pub(super) fn proposed(l: &ImportLine) -> ProposedEvent {
    ProposedEvent {
        id: Some(l.id),
        event_type: l.event_type.clone(),
        occurred_at: l.occurred_at,
        actor: l.actor.clone(),
        data: l.data.clone(),
        metadata: l.metadata.clone(),
        recorded_at: l.recorded_at,
    }
}

fn read_file(file: &Path, out: &mut Vec<Line>) -> Result<(), CliError> {
    let (source, reader): (Arc<str>, Box<dyn Read>) = if file.as_os_str() == "-" {
        ("<stdin>".into(), Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::failure(format!("cannot open {}: {e}", file.display())))?;
        (file.display().to_string().into(), Box::new(f))
    };
    let csv_hint = file.extension().is_some_and(|x| x == "csv");
    read_lines(source, reader, csv_hint, out)
}

/// Reads the NDJSON lines of `reader` (named `source` in errors) into `out`; `csv_hint`: the
/// file looks like a CSV export (a refused first line then says how to import one).
pub(super) fn read_lines(
    source: Arc<str>,
    reader: impl Read,
    csv_hint: bool,
    out: &mut Vec<Line>,
) -> Result<(), CliError> {
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let number = i + 1;
        let line = line
            .map_err(|e| CliError::refused(format!("{source}: line {number}: cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = parse_line(&line).map_err(|e| {
            let hint = if number == 1 && csv_hint {
                " (a CSV export? use --profile salesforce|hubspot|maven or --mapping FILE.toml)"
            } else {
                ""
            };
            CliError::refused(format!("{source}: line {number}: {e}{hint}"))
        })?;
        out.push(Line {
            source: source.clone(),
            number,
            event,
        });
    }
    Ok(())
}

fn parse_line(line: &str) -> Result<ImportLine, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let parsed: ImportLine = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("malformed JSON: {inner}")
            }
            _ if path == "." || path == "?" => format!("not a canonical event: {inner}"),
            _ => format!("field `{path}`: {inner}"),
        }
    })?;
    de.end()
        .map_err(|e| format!("trailing characters after the event: {e}"))?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_bad_field() {
        let ok = r#"{"id":"0192f4c2-6b1e-7c3a-9d2e-1f00c0ffee00","stream":"deal-D-1","type":"DealWon","occurred_at":"2026-06-03T09:30:00Z","data":{"amount":1}}"#;
        assert!(parse_line(ok).is_ok());
        let e = parse_line(&ok.replace("0192f4c2", "zzzz")).unwrap_err();
        assert!(e.contains("field `id`"), "{e}");
        let e = parse_line(&ok.replace("2026-06-03T09:30:00Z", "yesterday")).unwrap_err();
        assert!(e.contains("occurred_at"), "{e}");
        let e = parse_line(&ok.replace("\"data\"", "\"dta\"")).unwrap_err();
        assert!(e.contains("dta"), "{e}");
        let e = parse_line("{not json").unwrap_err();
        assert!(e.contains("malformed JSON"), "{e}");
        let e = parse_line("\"hello\"").unwrap_err();
        assert!(e.contains("not a canonical event"), "{e}");
        let e = parse_line(&format!("{ok} x")).unwrap_err();
        assert!(e.contains("trailing"), "{e}");
    }
}
