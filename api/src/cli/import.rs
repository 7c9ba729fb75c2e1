//! `dealtrail import FILE…`: canonical NDJSON into the log, and the checking and appending
//! that the CSV import (`import_csv`) shares.
//!
//! An import reads its events twice ([`Source`]), so that a file of millions of events is
//! never held in memory: first every line is parsed and checked against the log and the
//! domain's rules (see `import_check`), keeping only a bit per event (already in the log, or
//! a repeat within the file) and what the rules need (the folded streams), so a malformed
//! or refused line anywhere refuses the whole import with nothing written. Then the file is
//! read again and the new events are appended in order, in atomic chunks through the store's
//! bulk path ([`EventStore::append_checked`]): each chunk is refused unless the log still
//! ends where the check (plus the chunks before it) left it, so the rules are not checked a
//! second time; two chunks are in flight at once. Positions follow the file's order, a
//! re-run adds nothing twice, and a run killed half-way leaves a prefix of the file that the
//! next run completes. `version` and `position` in the file are not trusted: the store
//! assigns them (they are checked to be numbers if present). `--dry-run` stops after the
//! check and prints what would be appended. Standard input is copied to an unnamed
//! temporary file first, to be read twice.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use chrono::{DateTime, Utc};
use domain::data::{EventData, EventMetadata};
use domain::envelope::rfc3339_opt;
use domain::ProposedEvent;
use eventlog::{AppendOutcome, EventStore, ExpectedVersion, MultiAppendError, StreamBatch};
use serde::Deserialize;
use uuid::Uuid;

use super::{import_csv, progress, CliError};

/// How many events go into one atomic, durable append (the store groups the chunks in
/// flight into one write when it can; two of them fit the commit journal's half).
const CHUNK_EVENTS: usize = 8192;
/// How many chunks are handed to the store before the first of them is waited for.
const IN_FLIGHT: usize = 2;
/// Every this many chunks appended, the heap's free pages go back to the system
/// ([`eventlog::give_back_freed_memory`]): sled frees much of what it allocates for the
/// writes, but in the writer's and the index thread's arenas. (glibc's, in a build with
/// `--no-default-features`; mimalloc, the default, gives freed pages back by itself within
/// 10 ms: see main.rs.)
const TRIM_EVERY_CHUNKS: usize = 16;
/// Items made on one thread for another (parsed lines, an export's events: see [`handoff`])
/// are handed over this many at a time...
const HANDED_BLOCK: usize = 1024;
/// ...at most this many blocks ahead of their reader.
const HANDED_AHEAD: usize = 4;
/// sled's page cache during an import (its default is 1 GiB): an import writes much and
/// reads little, and the default cache filled with the written log (most of the peak memory).
const IMPORT_SLED_CACHE: u64 = 64 << 20;

/// One NDJSON line: the canonical envelope; `id` is required (it is the idempotency key).
#[derive(Debug, Clone, Deserialize)]
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
    pub(super) data: EventData,
    #[serde(default)]
    pub(super) metadata: Option<EventMetadata>,
}

impl ImportLine {
    /// Same event for idempotency: same stream, type, data, metadata, `occurred_at` and actor
    /// (the check compares digests of these: see `import_check::digest`).
    #[cfg(test)]
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
    /// The line a canonical NDJSON file would hold for `event` in `stream` (an import's own
    /// events, made rather than read).
    pub(super) fn new(id: Uuid, stream: String, event: ProposedEvent) -> ImportLine {
        ImportLine {
            id,
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

    /// Its stream and the event to append.
    pub(super) fn into_proposed(self) -> (String, ProposedEvent) {
        let event = ProposedEvent {
            id: Some(self.id),
            event_type: self.event_type,
            occurred_at: self.occurred_at,
            actor: self.actor,
            data: self.data,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
        };
        (self.stream, event)
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
    let files = NdjsonFiles::open(&args.files)?;
    let store = store_for(data, args.dry_run).await?;
    let done = check_and_append(store.as_ref(), &files, args.dry_run).await?;
    if args.dry_run {
        print_dry_run("", &done);
    } else {
        eprintln!("imported {} lines: {done}", done.events);
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
    Ok(super::open_store_with_cache(data, Some(IMPORT_SLED_CACHE))
        .await?
        .shared())
}

/// An import's events, in order; read twice (check, then append), so each call starts
/// from the first.
pub(super) trait Source {
    fn lines(&self) -> Result<Box<dyn Iterator<Item = Result<Line, CliError>> + '_>, CliError>;

    /// How many events [`Source::lines`] gives, when known beforehand (for a progress bar).
    fn events_hint(&self) -> Option<u64> {
        None
    }
}

/// Lines already in memory (the fuzz targets, tests).
impl Source for Vec<Line> {
    fn lines(&self) -> Result<Box<dyn Iterator<Item = Result<Line, CliError>> + '_>, CliError> {
        Ok(Box::new(self.iter().map(|l| {
            Ok(Line {
                source: l.source.clone(),
                number: l.number,
                event: l.event.clone(),
            })
        })))
    }
}

/// The NDJSON files of an import (standard input copied to a temporary file).
pub(super) struct NdjsonFiles {
    files: Vec<NdjsonFile>,
}

struct NdjsonFile {
    name: Arc<str>,
    file: File,
    /// The file looks like a CSV export (a refused first line then says how to import one).
    csv_hint: bool,
}

impl NdjsonFiles {
    pub(super) fn open(paths: &[PathBuf]) -> Result<NdjsonFiles, CliError> {
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let (name, file): (Arc<str>, File) = if path.as_os_str() == "-" {
                let mut spool = tempfile::tempfile().map_err(|e| {
                    CliError::failure(format!("cannot make a temporary file for stdin: {e}"))
                })?;
                std::io::copy(&mut std::io::stdin().lock(), &mut spool)
                    .map_err(|e| CliError::failure(format!("cannot read stdin: {e}")))?;
                ("<stdin>".into(), spool)
            } else {
                let f = File::open(path).map_err(|e| {
                    CliError::failure(format!("cannot open {}: {e}", path.display()))
                })?;
                (path.display().to_string().into(), f)
            };
            files.push(NdjsonFile {
                name,
                file,
                csv_hint: path.extension().is_some_and(|x| x == "csv"),
            });
        }
        Ok(NdjsonFiles { files })
    }
}

impl Source for NdjsonFiles {
    fn lines(&self) -> Result<Box<dyn Iterator<Item = Result<Line, CliError>> + '_>, CliError> {
        let mut readers = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let mut file = f
                .file
                .try_clone()
                .map_err(|e| CliError::failure(format!("cannot read {} again: {e}", f.name)))?;
            file.rewind()
                .map_err(|e| CliError::failure(format!("cannot read {} again: {e}", f.name)))?;
            readers.push((f.name.clone(), f.csv_hint, file));
        }
        Ok(Box::new(readers.into_iter().flat_map(
            |(name, csv_hint, file)| parsed_aside(ndjson_lines(name, file, csv_hint)),
        )))
    }
}

/// `lines` (parsed lines, e.g. [`ndjson_lines`]) run on a thread of their own and handed over
/// a block at a time (see [`handoff`]), so that parsing runs beside the check's rules and the
/// store's writer. The thread stops after the first error, or when the iterator is dropped.
pub(super) fn parsed_aside(
    lines: impl Iterator<Item = Result<Line, CliError>> + Send + 'static,
) -> impl Iterator<Item = Result<Line, CliError>> {
    let (sender, parsed) = handoff();
    let spawned = std::thread::Builder::new()
        .name("import-parse".into())
        .spawn(move || sender.send_all(lines, Result::is_err));
    let failed = spawned.err().map(|e| {
        Err(CliError::failure(format!(
            "cannot start a thread to read the input: {e}"
        )))
    });
    failed.into_iter().chain(parsed)
}

/// A hand-off of items from the thread that makes them to the one that takes them, a block of
/// [`HANDED_BLOCK`] at a time. Emptied blocks go back to be filled again: a block is a few
/// hundred KiB, and freeing one made glibc consolidate the making thread's arena each time (5%
/// of an import's CPU, on the thread that checks and appends).
pub(super) fn handoff<T>() -> (Handing<T>, Handed<T>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(HANDED_AHEAD);
    let (give_back, given_back) = std::sync::mpsc::sync_channel(HANDED_AHEAD + 2);
    let handing = Handing { tx, given_back };
    let handed = Handed {
        rx,
        give_back,
        block: VecDeque::new(),
    };
    (handing, handed)
}

/// The making end of a [`handoff`].
pub(super) struct Handing<T> {
    tx: std::sync::mpsc::SyncSender<Vec<T>>,
    given_back: std::sync::mpsc::Receiver<Vec<T>>,
}

impl<T> Handing<T> {
    /// Hands over `items`; stops after the first of them that `last` says ends them (an
    /// error), at their end, or once the taking end is gone.
    pub(super) fn send_all(self, mut items: impl Iterator<Item = T>, last: impl Fn(&T) -> bool) {
        loop {
            let mut block = self
                .given_back
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(HANDED_BLOCK));
            let mut ended = false;
            for item in items.by_ref() {
                ended = last(&item);
                block.push(item);
                if ended || block.len() == HANDED_BLOCK {
                    break;
                }
            }
            let end = ended || block.len() < HANDED_BLOCK;
            if (!block.is_empty() && self.tx.send(block).is_err()) || end {
                return;
            }
        }
    }
}

/// The taking end of a [`handoff`]: the items, in order, until the making end is gone.
pub(super) struct Handed<T> {
    rx: std::sync::mpsc::Receiver<Vec<T>>,
    give_back: std::sync::mpsc::SyncSender<Vec<T>>,
    block: VecDeque<T>,
}

impl<T> Iterator for Handed<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.block.pop_front() {
                return Some(item);
            }
            let next = self.rx.recv().ok()?;
            // The block just emptied goes back (unless the thread has stopped or has enough).
            let emptied = std::mem::replace(&mut self.block, next.into());
            let _ = self.give_back.try_send(Vec::from(emptied));
        }
    }
}

/// The NDJSON lines of `reader` (named `source` in errors), parsed; `csv_hint`: the file
/// looks like a CSV export (a refused first line then says how to import one).
fn ndjson_lines(
    source: Arc<str>,
    reader: impl Read,
    csv_hint: bool,
) -> impl Iterator<Item = Result<Line, CliError>> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    // One buffer for every line (`BufRead::lines` allocated a `String` per line).
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut number = 0usize;
    std::iter::from_fn(move || loop {
        buf.clear();
        number += 1;
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                return Some(Err(CliError::refused(format!(
                    "{source}: line {number}: cannot read: {e}"
                ))))
            }
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l.strip_suffix('\n').unwrap_or(l),
            Err(e) => {
                return Some(Err(CliError::refused(format!(
                    "{source}: line {number}: cannot read: stream did not contain valid UTF-8 ({e})"
                ))))
            }
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let event = parse_line(line).map_err(|e| {
            let hint = if number == 1 && csv_hint {
                " (a CSV export? use --profile salesforce|hubspot|maven or --mapping FILE.toml)"
            } else {
                ""
            };
            CliError::refused(format!("{source}: line {number}: {e}{hint}"))
        });
        return Some(event.map(|event| Line {
            source: source.clone(),
            number,
            event,
        }));
    })
}

/// Reads the NDJSON lines of `reader` (named `source` in errors) into `out`.
pub(super) fn read_lines(
    source: Arc<str>,
    reader: impl Read,
    csv_hint: bool,
    out: &mut Vec<Line>,
) -> Result<(), CliError> {
    for line in ndjson_lines(source, reader, csv_hint) {
        out.push(line?);
    }
    Ok(())
}

/// What an import appended (or, in a dry run, would append).
pub(super) struct Imported {
    /// Events read (lines, or mapped events).
    pub(super) events: usize,
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

/// Checks every event against the log and the domain's rules, then (unless `dry_run`)
/// appends the new ones in order. Nothing is written if any event is refused.
pub(super) async fn check_and_append(
    store: &dyn EventStore,
    source: &dyn Source,
    dry_run: bool,
) -> Result<Imported, CliError> {
    let checked = super::import_check::check(store, source, chrono::Utc::now()).await?;
    let mut done = Imported {
        events: checked.events,
        new_by_type: checked.new_by_type.clone(),
        already_present: checked.already_present,
        positions: None,
    };
    if dry_run || checked.already_present == checked.events {
        return Ok(done);
    }
    // The check's folded streams (hundreds of MiB for a million events) are freed, but in
    // the arenas of the threads that made them.
    eventlog::give_back_freed_memory();
    let before = checked.at;
    let new = (checked.events - checked.already_present) as u64;
    let bar = progress::bar(Some(new), "importing");
    let after = append_checked(store, source, &checked, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    if after > before {
        done.positions = Some((before + 1, after));
    }
    done.already_present = checked.events - (after - before) as usize;
    Ok(done)
}

type Append<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<AppendOutcome>, MultiAppendError>> + Send + 'a>>;

/// A chunk handed to the store: its answer (or the future of it) and where each of its
/// batches came from.
struct InFlight<'a> {
    answer: Result<Vec<AppendOutcome>, MultiAppendError>,
    pending: Option<Append<'a>>,
    lines: Vec<(Arc<str>, usize)>,
    events: u64,
}

/// Reads `source` again and appends the events the check found new (`checked`), in order,
/// in atomic chunks through [`EventStore::append_checked`]; `done` is told how many events
/// each chunk held. Returns the log's last position after them.
pub(super) async fn append_checked(
    store: &dyn EventStore,
    source: &dyn Source,
    checked: &super::import_check::Checked,
    done: impl Fn(u64),
) -> Result<u64, CliError> {
    let mut at = checked.at;
    let mut in_flight: VecDeque<InFlight<'_>> = VecDeque::new();
    let mut batches: Vec<StreamBatch> = Vec::new();
    let mut lines: Vec<(Arc<str>, usize)> = Vec::new();
    let mut events = 0usize;
    let mut i = 0usize;
    let mut finished = 0usize;
    let mut iter = source.lines()?;
    loop {
        let next = iter.next().transpose()?;
        let full = events >= CHUNK_EVENTS || (next.is_none() && events > 0);
        if full {
            let mut chunk = InFlight {
                answer: Ok(Vec::new()),
                pending: Some(store.append_checked(std::mem::take(&mut batches), at)),
                lines: std::mem::take(&mut lines),
                events: events as u64,
            };
            at += events as u64;
            events = 0;
            // Polled once, so that the store has the chunk while the next one is read.
            poll_once(&mut chunk).await;
            in_flight.push_back(chunk);
            while in_flight.len() >= IN_FLIGHT || (next.is_none() && !in_flight.is_empty()) {
                if let Some(chunk) = in_flight.pop_front() {
                    finish(chunk, &done).await?;
                    finished += 1;
                    if finished.is_multiple_of(TRIM_EVERY_CHUNKS) {
                        eventlog::give_back_freed_memory();
                    }
                }
            }
        }
        let Some(line) = next else { break };
        let (new, opens) = (checked.is_new(i), checked.opens_stream(i));
        i += 1;
        if !new {
            continue;
        }
        let (stream, event) = line.event.into_proposed();
        match batches.last_mut() {
            // Consecutive events of one stream go in one batch.
            Some(b) if b.stream == stream && b.events.len() < eventlog::MAX_BATCH_EVENTS => {
                b.events.push(event);
            }
            _ => {
                lines.push((line.source, line.number));
                batches.push(StreamBatch {
                    stream,
                    // The check saw the stream absent: the store need not search for it.
                    expected: if opens {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Any
                    },
                    events: vec![event],
                });
            }
        }
        events += 1;
    }
    Ok(at)
}

async fn poll_once(chunk: &mut InFlight<'_>) {
    let Some(pending) = chunk.pending.as_mut() else {
        return;
    };
    let polled = std::future::poll_fn(|cx| Poll::Ready(pending.as_mut().poll(cx))).await;
    if let Poll::Ready(answer) = polled {
        chunk.answer = answer;
        chunk.pending = None;
    }
}

/// Waits for a chunk's answer; an error names the line of the batch it concerns.
async fn finish(chunk: InFlight<'_>, done: &impl Fn(u64)) -> Result<(), CliError> {
    let answer = match chunk.pending {
        Some(pending) => pending.await,
        None => chunk.answer,
    };
    if let Err(err) = answer {
        let mut e = CliError::from(err.error);
        if let Some((source, number)) = err.index.and_then(|i| chunk.lines.get(i)) {
            e.message = format!("{source}: line {number}: {}", e.message);
        }
        return Err(e);
    }
    done(chunk.events);
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

pub(super) fn parse_line(line: &str) -> Result<ImportLine, String> {
    // The fast path; a refused line is parsed again to name the field.
    if let Ok(parsed) = serde_json::from_str::<ImportLine>(line) {
        return Ok(parsed);
    }
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
