//! `dealtrail import FILE…`: canonical NDJSON into the log.
//!
//! Every line is parsed and checked against the domain's rules (see `import_check`) before
//! anything is written, so a malformed or refused line refuses the whole import. Then the lines are appended in order, in atomic chunks (one stream batch per line,
//! so each line is deduplicated by its id on its own): positions follow the file's order, a
//! re-run adds nothing twice, and a run killed half-way leaves a prefix of the file that the
//! next run completes. `version` and `position` in the file are not trusted: the store assigns
//! them (they are checked to be numbers if present).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use domain::envelope::rfc3339_opt;
use domain::ProposedEvent;
use eventlog::{EventStore, ExpectedVersion, StreamBatch};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{open_store, progress, CliError};

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
    /// Same event for idempotency: same stream, type, data and metadata (and times when given).
    pub(super) fn same_content(&self, other: &ImportLine) -> bool {
        self.stream == other.stream
            && self.event_type == other.event_type
            && self.data == other.data
            && self.metadata == other.metadata
            && self.occurred_at == other.occurred_at
    }
}

/// A parsed line with where it came from.
pub(super) struct Line {
    pub(super) source: String,
    pub(super) number: usize,
    pub(super) event: ImportLine,
}

pub async fn run(data: &Path, files: &[PathBuf]) -> Result<(), CliError> {
    let mut lines = Vec::new();
    for file in files {
        read_file(file, &mut lines)?;
    }
    let store = open_store(data)?;
    let checked = super::import_check::check(store.as_ref(), &lines, chrono::Utc::now()).await?;
    if checked.already_present == lines.len() {
        eprintln!(
            "imported {} lines: 0 new events, all already in the log",
            lines.len()
        );
        return Ok(());
    }
    let before = store.last_position().await?;
    let bar = progress::bar(Some(lines.len() as u64), "importing");
    append_lines(store.as_ref(), &lines, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let after = store.last_position().await?;
    eprintln!(
        "imported {} lines: {} new events (positions {}..={}), {} already in the log",
        lines.len(),
        after - before,
        before + 1,
        after,
        lines.len() as u64 - (after - before)
    );
    Ok(())
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
    let (source, reader): (String, Box<dyn Read>) = if file.as_os_str() == "-" {
        ("<stdin>".to_string(), Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::failure(format!("cannot open {}: {e}", file.display())))?;
        (file.display().to_string(), Box::new(f))
    };
    read_lines(&source, reader, out)
}

/// Reads the NDJSON lines of `reader` (named `source` in errors) into `out`.
pub(super) fn read_lines(
    source: &str,
    reader: impl Read,
    out: &mut Vec<Line>,
) -> Result<(), CliError> {
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let number = i + 1;
        let line = line
            .map_err(|e| CliError::refused(format!("{source}: line {number}: cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = parse_line(&line)
            .map_err(|e| CliError::refused(format!("{source}: line {number}: {e}")))?;
        out.push(Line {
            source: source.to_string(),
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
