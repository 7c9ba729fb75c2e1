//! `dealtrail import --format csv --profile NAME | --mapping FILE.toml FILE…`: other CRMs'
//! exports into the log (SPEC §4).
//!
//! The path of an import:
//! 1. `table`: each file is decoded (BOM, UTF-8 or GBK, or `--encoding`) and read with the
//!    `csv` crate (quotes, embedded newlines, the separator sniffed or `--delimiter`).
//! 2. A profile reads the tables into a `story::Dataset` — the org (pipeline, reps,
//!    customers) and each deal's story: `salesforce`, `hubspot`, `maven`, or `mapping` (a
//!    TOML description of any other layout). A row that cannot be mapped is a [`Problem`]
//!    naming file, line, column and why; problems are collected over all rows (the first ten
//!    are shown) and any problem refuses the import: nothing is written.
//! 3. `story` turns the dataset into events with deterministic ids (UUIDv5 of the source
//!    key), so re-importing an export changes nothing and an updated export appends only
//!    what is new.
//! 4. Events the log already holds are left out, even when the export now says something
//!    else about them (an edited amount, a renamed account): the log keeps what it first
//!    recorded and the summary counts them. So are registrations of customers and reps the
//!    log already knows by other events.
//! 5. The rest is written to a `spool` (a temporary file), the dataset dropped, and the spool
//!    goes through the same check and append as canonical NDJSON (`import`, `import_check`):
//!    every event checked against the log and the domain's rules first, a refused one named
//!    by its file and line, then appended in order.

mod cells;
mod hubspot;
mod mapping;
mod maven;
mod salesforce;
mod spool;
mod story;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eventlog::EventStore;

pub use mapping::Mapping;
pub use story::{MappedEvent, Origin, NAMESPACE};
pub use table::ReadOptions;

#[cfg(test)]
pub(super) use spool::tests::json as any_json;

use super::import::{check_and_append, handoff, print_dry_run, store_for, ImportArgs};
use super::import_check::Bits;
use super::{import_check, progress, CliError, ExitCode};
use spool::Spool;
use table::{Table, TableError};

/// The CRMs whose exports dealtrail reads without a mapping file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// `Opportunity.csv` and `OpportunityHistory.csv`.
    Salesforce,
    /// The deals export, with its `Date entered "…"` columns as the stage history.
    Hubspot,
    /// The Maven CRM Sales Opportunities set (`sales_pipeline.csv`, `accounts.csv`,
    /// `products.csv`, `sales_teams.csv`).
    Maven,
}

/// How the files of an import are to be read.
#[derive(Debug, Clone)]
pub enum Source {
    Profile(Profile),
    Mapping(Box<Mapping>),
}

/// A row that cannot be mapped: where, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: Arc<str>,
    pub line: u64,
    /// 1-based column number and its header.
    pub column: Option<(usize, String)>,
    pub why: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some((n, name)) => write!(
                f,
                "{}: line {}, column {n} ({name}): {}",
                self.file, self.line, self.why
            ),
            None => write!(f, "{}: line {}: {}", self.file, self.line, self.why),
        }
    }
}

/// The problems of an import: how many, and the first few.
#[derive(Debug, Default)]
pub struct Problems {
    pub first: Vec<Problem>,
    pub count: usize,
}

impl Problems {
    /// How many problems are kept for the message.
    pub const SHOWN: usize = 10;

    pub fn push(&mut self, p: Problem) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds `other`'s problems after these.
    pub fn append(&mut self, other: Problems) {
        let kept = other.first.len();
        for p in other.first {
            self.push(p);
        }
        self.count += other.count - kept;
    }

    /// Adds the problems of `other`, of the same file as these, in line order: the first
    /// shown are the first of both by line (each is in line order).
    pub fn merge_by_line(&mut self, other: Problems) {
        let count = self.count + other.count;
        let mut first = std::mem::take(&mut self.first);
        first.extend(other.first);
        first.sort_by_key(|p| p.line);
        first.truncate(Self::SHOWN);
        *self = Problems { first, count };
    }
}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.first.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if self.count > self.first.len() {
            write!(f, "\n… and {} more", self.count - self.first.len())?;
        }
        Ok(())
    }
}

/// An export read into events.
#[derive(Debug, Default)]
pub struct Mapped {
    /// What the export says; its events are [`Mapped::events`].
    pub dataset: story::Dataset,
    pub files: usize,
    pub rows: usize,
    pub skipped: BTreeMap<String, usize>,
    /// Rows that cannot be mapped; when there is any, nothing may be written.
    pub problems: Problems,
    /// Things the user should know (a file read as GBK).
    pub notes: Vec<String>,
}

impl Mapped {
    /// The events of the export, in order, made as they are taken (see `story`).
    pub fn events(&self) -> story::Story<'_> {
        self.dataset.story()
    }
}

/// Reads the files (a directory stands for its `*.csv` files) with a profile or a mapping.
/// Fails only when a file cannot be read at all; problems with rows are in `problems`.
pub fn map_files(
    source: &Source,
    files: &[PathBuf],
    opts: &ReadOptions,
) -> Result<Mapped, CliError> {
    let mut opts = opts.clone();
    if let Source::Mapping(m) = source {
        m.apply_to(&mut opts);
    }
    let mut mapped = Mapped::default();
    let mut tables = Vec::new();
    for path in expand(files)? {
        match Table::open(&path, &opts) {
            Ok(t) => {
                mapped.notes.extend(t.note.clone());
                tables.push(t);
            }
            Err(TableError::Io(e)) => return Err(e),
            Err(TableError::Refused(p)) => mapped.problems.push(p),
        }
    }
    mapped.files = tables.len() + mapped.problems.count;
    if !mapped.problems.is_empty() {
        return Ok(mapped);
    }
    let dataset = match source {
        Source::Profile(Profile::Salesforce) => {
            salesforce::read(tables, &opts, &mut mapped.problems)
        }
        Source::Profile(Profile::Hubspot) => hubspot::read(tables, &opts, &mut mapped.problems),
        Source::Profile(Profile::Maven) => maven::read(tables, &opts, &mut mapped.problems),
        Source::Mapping(m) => m.read(tables, &opts, &mut mapped.problems),
    };
    mapped.rows = dataset.rows;
    mapped.skipped = dataset.skipped.clone();
    mapped.dataset = dataset;
    Ok(mapped)
}

/// The files named, a directory replaced by its `*.csv` files in name order.
fn expand(files: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for f in files {
        if f.is_dir() {
            let entries = std::fs::read_dir(f)
                .map_err(|e| CliError::failure(format!("cannot list {}: {e}", f.display())))?;
            let mut csvs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
                .collect();
            csvs.sort();
            if csvs.is_empty() {
                return Err(CliError::refused(format!(
                    "{}: no .csv file in this directory",
                    f.display()
                )));
            }
            out.extend(csvs);
        } else {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// `--delimiter`: `,` `;` `|`, `tab` (or `\t`), or any other single ASCII character.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "{s:?} is not a separator: give one character, or `tab`"
        )),
    }
}

/// The CSV import command.
pub(super) async fn run(data: &Path, args: &ImportArgs) -> Result<(), CliError> {
    let source = match (&args.profile, &args.mapping) {
        (Some(p), _) => Source::Profile(*p),
        (None, Some(m)) => Source::Mapping(Box::new(Mapping::load(m)?)),
        (None, None) => {
            return Err(CliError::new(
                ExitCode::Usage,
                "give --profile or --mapping",
            ))
        }
    };
    let total: u64 = expand(&args.files)?
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let opts = ReadOptions {
        delimiter: args.delimiter,
        encoding: args.encoding.clone(),
        progress: progress::bar(Some(total), "reading"),
        ..ReadOptions::default()
    };
    let mapped = map_files(&source, &args.files, &opts)?;
    opts.progress.finish_and_clear();
    for note in &mapped.notes {
        eprintln!("note: {note}");
    }
    let what = summary(&mapped);
    if !mapped.problems.is_empty() {
        if args.dry_run {
            println!("dry run of {what}");
            print_mapped_counts(mapped.events());
        }
        let n = mapped.problems.count;
        return Err(CliError::refused(format!(
            "{n} problem{} in the export; nothing was written:\n{}",
            if n == 1 { "" } else { "s" },
            mapped.problems
        )));
    }
    let store = store_for(data, args.dry_run).await?;
    let fresh = fresh_events(store.as_ref(), &mapped).await?;
    let spool = fresh.spool()?;
    let (present, differ) = (fresh.present, fresh.differ);
    // The export's events are in the spool now: its dataset is not needed any more.
    drop(fresh);
    drop(mapped);
    // And what it held goes back to the system before the check builds its state (glibc
    // keeps freed memory otherwise: the check's peak came on top of the dataset's).
    eventlog::give_back_freed_memory();
    let mut done = check_and_append(store.as_ref(), &spool, args.dry_run).await?;
    done.already_present += present;
    if args.dry_run {
        print_dry_run(&format!(" of {what}"), &done);
    } else {
        eprintln!("imported {what}: {done}");
    }
    if differ > 0 {
        eprintln!(
            "note: {} event{} already in the log differ{} from this export; the log keeps what \
             it first recorded (an import never rewrites history)",
            differ,
            if differ == 1 { "" } else { "s" },
            if differ == 1 { "s" } else { "" }
        );
    }
    Ok(())
}

fn summary(m: &Mapped) -> String {
    let mut s = format!(
        "{} rows from {} file{}",
        m.rows,
        m.files,
        if m.files == 1 { "" } else { "s" }
    );
    for (why, n) in &m.skipped {
        s.push_str(&format!(" ({n} skipped: {why})"));
    }
    s
}

/// Counts per event type of what an export maps to, before the log is consulted.
fn print_mapped_counts(events: impl Iterator<Item = MappedEvent>) {
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    for e in events {
        *by_type.entry(e.event.event_type).or_default() += 1;
        n += 1;
    }
    println!("  the rows that can be mapped give {n} events:");
    for (ty, n) in by_type {
        println!("  {ty:<22} {n:>9}");
    }
}

/// The events of an export still to check and append, and what was left out.
struct Fresh<'a> {
    mapped: &'a Mapped,
    /// One bit per event of the export: set when it is left out; `None`: none is.
    left_out: Option<Bits>,
    /// Already in the log by id.
    present: usize,
    /// Of those, how many the log holds with other content.
    differ: usize,
}

impl Fresh<'_> {
    /// Writes the events not left out to a spool (see [`Spool`]). Three threads share the
    /// work: the deals' events are made on one ("import-deals"), merged by time into the
    /// story on another ("import-story", which hands them over a block at a time), and
    /// written on this one.
    fn spool(&self) -> Result<Spool, CliError> {
        let mut writer = spool::Writer::new()?;
        let bar = progress::bar(None, "mapping");
        let spooled = std::thread::scope(|scope| -> Result<(), CliError> {
            let thread = |e: std::io::Error| {
                CliError::failure(format!("cannot start a thread to map the export: {e}"))
            };
            let story = self.mapped.events();
            let (order, walk) = story.opening_order();
            let (ahead, walked) = std::sync::mpsc::sync_channel(WALKED_AHEAD);
            std::thread::Builder::new()
                .name("import-deals".into())
                .spawn_scoped(scope, move || {
                    for i in order {
                        if ahead.send(walk(i)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(thread)?;
            let story = story.walked_ahead(walked);
            let left_out = self.left_out.as_ref();
            let story = story
                .enumerate()
                .filter(move |(i, _)| !left_out.is_some_and(|bits| bits.get(*i)))
                .map(|(_, m)| m);
            let (sender, events) = handoff();
            std::thread::Builder::new()
                .name("import-story".into())
                .spawn_scoped(scope, move || sender.send_all(story, |_| false))
                .map_err(thread)?;
            // Leaving early (an error) drops `events`, which stops the threads.
            for (n, m) in (1u64..).zip(events) {
                writer.write(&m)?;
                if n.is_multiple_of(1024) {
                    bar.set_position(n);
                }
            }
            Ok(())
        });
        bar.finish_and_clear();
        spooled?;
        writer.finish()
    }
}

/// How many deals' events are made ahead of the story that merges them.
const WALKED_AHEAD: usize = 256;

/// Leaves out events the log already holds (by id, whatever their content) and registrations
/// of customers and reps it already knows; the rest are what `import` checks. The log is
/// asked about ids a block at a time, and not at all when it is empty.
async fn fresh_events<'a>(
    store: &dyn EventStore,
    mapped: &'a Mapped,
) -> Result<Fresh<'a>, CliError> {
    let mut fresh = Fresh {
        mapped,
        left_out: None,
        present: 0,
        differ: 0,
    };
    if store.last_position().await? == 0 {
        return Ok(fresh);
    }
    let reps = import_check::org_state(store).await?.reps;
    let mut bits = Bits::default();
    let mut events = mapped.events().peekable();
    let mut i = 0usize;
    while events.peek().is_some() {
        let block: Vec<MappedEvent> = events.by_ref().take(4096).collect();
        let ids: Vec<_> = block
            .iter()
            .map(|m| m.event.id.unwrap_or_default())
            .collect();
        let existing = store.events_by_ids(&ids).await?;
        for (m, existing) in block.into_iter().zip(existing) {
            let left_out = match existing {
                Some(existing) => {
                    if existing.data != m.event.data
                        || Some(existing.occurred_at) != m.event.occurred_at
                    {
                        fresh.differ += 1;
                    }
                    true
                }
                None => match m.event.event_type.as_str() {
                    "CustomerRegistered" => store.stream_version(&m.stream).await?.is_some(),
                    "RepJoined" => m.event.data["rep"]
                        .as_str()
                        .is_some_and(|r| reps.contains_key(r)),
                    _ => false,
                },
            };
            if left_out {
                fresh.present += 1;
            }
            bits.set(i, left_out);
            i += 1;
        }
    }
    fresh.left_out = Some(bits);
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::story::{Origin, Outcome, Stage, Step};
    use super::*;
    use crate::cli::import::{Line, Source as _};
    use chrono::{TimeZone, Utc};
    use domain::money::Money;

    /// A dataset of two deals from two files (`story`'s test deal and a copy of it with a
    /// history step and a loss), with a time in nanoseconds, quotes, a newline and CJK text.
    fn mapped() -> Mapped {
        let history: Arc<str> = "History.csv".into();
        let mut dataset = story::tests::deal(Vec::new(), None);
        let first = &mut dataset.deals[0];
        first.opened_at += chrono::Duration::nanoseconds(123_456_789);
        first.customer_id = "acme \"quoted\" 客户".into();
        first.title = "T\nwith a newline".into();
        first.amount = Money::from_cents(12_345);
        let mut second = first.clone();
        second.id = "D2".into();
        second.origin.line = 3;
        let at = |day: u32| Utc.with_ymd_and_hms(2024, 3, day, 9, 30, 0).unwrap();
        second.steps.push(Step {
            key: "s1".into(),
            at: at(4),
            origin: Origin {
                file: history.clone(),
                line: 7,
            },
            stage: Some(Stage::Open("b".into())),
            amount: None,
            reason: None,
        });
        second.outcome = Some(Outcome {
            won: false,
            at: at(9),
            amount: Money::ZERO,
            reason: Some("price".into()),
            origin: Origin {
                file: history,
                line: 9,
            },
        });
        dataset.deals.push(second);
        Mapped {
            dataset,
            ..Mapped::default()
        }
    }

    /// Problems of one file found in two passes are shown as one list in line order: the
    /// first ten of both, and the count of all.
    #[test]
    fn problems_merged_by_line_show_the_first_of_both() {
        let at = |line: u64| Problem {
            file: "h.csv".into(),
            line,
            column: None,
            why: "bad".into(),
        };
        let (mut odd, mut even) = (Problems::default(), Problems::default());
        for line in 1..=30 {
            if line % 2 == 1 {
                odd.push(at(line))
            } else {
                even.push(at(line))
            }
        }
        odd.merge_by_line(even);
        assert_eq!(odd.count, 30);
        let lines: Vec<u64> = odd.first.iter().map(|p| p.line).collect();
        assert_eq!(lines, (1..=10).collect::<Vec<u64>>());
        let mut before = Problems::default();
        before.push(at(100));
        before.append(odd);
        assert_eq!(before.count, 31);
        let lines: Vec<u64> = before.first.iter().map(|p| p.line).collect();
        assert_eq!(lines, [100, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    /// What the spool gives back is, event for event, what the dataset makes (envelope,
    /// data, metadata, the file and line of the row), minus the events left out; and it
    /// gives the same every time it is read.
    #[test]
    fn the_spool_gives_back_the_exports_events_with_their_rows() {
        let mapped = mapped();
        let all: Vec<MappedEvent> = mapped.events().collect();
        // Two openings, D2's stage change and its loss.
        assert_eq!(all.len(), 4, "{all:?}");
        // Leave out the second event.
        let fresh = Fresh {
            mapped: &mapped,
            left_out: Some(Bits::from_words(vec![0b10])),
            present: 1,
            differ: 0,
        };
        let spool = fresh.spool().unwrap();
        for _ in 0..2 {
            let lines: Vec<Line> = spool.lines().unwrap().map(Result::unwrap).collect();
            assert_eq!(lines.len(), all.len() - 1);
            let kept = all.iter().enumerate().filter(|(i, _)| *i != 1);
            for (line, (_, m)) in lines.iter().zip(kept) {
                assert_eq!(&*line.source, &*m.origin.file);
                assert_eq!(line.number as u64, m.origin.line);
                let e = &line.event;
                assert_eq!(Some(e.id), m.event.id);
                assert_eq!(e.stream, m.stream);
                assert_eq!(e.event_type, m.event.event_type);
                assert_eq!(e.occurred_at, m.event.occurred_at);
                assert_eq!(e.recorded_at, m.event.recorded_at);
                assert_eq!(e.actor, m.event.actor);
                assert_eq!(e.data, m.event.data);
                assert_eq!(e.metadata, m.event.metadata);
            }
        }
        let files: Vec<&str> = all.iter().map(|m| &*m.origin.file).collect();
        assert!(files.contains(&"t.csv") && files.contains(&"History.csv"));
    }
}
