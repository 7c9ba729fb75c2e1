//! The spool of a CSV import: the export's events, made once from the dataset and written to
//! an unnamed temporary file, then read back by the check and again by the append (the import
//! reads its source twice, and the dataset, most of a large export's memory, is dropped before
//! the check).
//!
//! The file is private to the process that writes it, so its events are kept in a compact
//! binary form rather than as canonical NDJSON: writing and reading JSON back (twice) was a
//! fifth of a large import's work. Each record is its length (4 bytes, little-endian) and then:
//! the index of the file its row came from (in `Spool::files`), the row's line, the event id
//! (16 bytes), stream, type, `occurred_at`, `recorded_at`, actor, data and metadata. Numbers
//! and strings are written as the event log writes them (`domain::data`: varints, a length and
//! the UTF-8 bytes, JSON values in the log's binary form), times as a presence byte then
//! seconds (i64) and nanoseconds (u32). What is read back is exactly what was written:
//! [`decode`] of [`encode`] is the identity (a property test says so).

use std::io::{BufReader, Read, Seek, Write};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::data::{put_str, put_varint, CodecError, EventData, Reader};
use uuid::Uuid;

use super::super::import::{parsed_aside, ImportLine, Line, Source};
use super::story::MappedEvent;
use super::CliError;

/// The events of an export, spooled (see the module's documentation).
pub(super) struct Spool {
    file: std::fs::File,
    /// The files the events' rows came from.
    files: Vec<Arc<str>>,
    /// How many events were written: fewer read back is damage, never a shorter import.
    events: u64,
}

/// Writes a [`Spool`], an event at a time.
pub(super) struct Writer {
    out: std::io::BufWriter<std::fs::File>,
    files: Vec<Arc<str>>,
    record: Vec<u8>,
    events: u64,
}

fn failed(e: std::io::Error) -> CliError {
    CliError::failure(format!(
        "cannot write the export's events to a temporary file: {e}"
    ))
}

impl Writer {
    pub(super) fn new() -> Result<Writer, CliError> {
        let file = tempfile::tempfile().map_err(failed)?;
        Ok(Writer {
            out: std::io::BufWriter::with_capacity(1 << 16, file),
            files: Vec::new(),
            record: Vec::with_capacity(1024),
            events: 0,
        })
    }

    /// Writes one event; one without an id gets one (the check and the append read the same).
    pub(super) fn write(&mut self, m: &MappedEvent) -> Result<(), CliError> {
        // Rows come file after file: the last file named is almost always this one.
        let index = match self
            .files
            .iter()
            .rposition(|f| Arc::ptr_eq(f, &m.origin.file))
        {
            Some(i) => i,
            None => {
                self.files.push(m.origin.file.clone());
                self.files.len() - 1
            }
        };
        self.record.clear();
        encode(&mut self.record, index, m);
        let len = u32::try_from(self.record.len()).map_err(|_| {
            failed(std::io::Error::other(format!(
                "an event of {} bytes",
                self.record.len()
            )))
        })?;
        self.out.write_all(&len.to_le_bytes()).map_err(failed)?;
        self.out.write_all(&self.record).map_err(failed)?;
        self.events += 1;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Spool, CliError> {
        let file = self.out.into_inner().map_err(|e| failed(e.into_error()))?;
        Ok(Spool {
            file,
            files: self.files,
            events: self.events,
        })
    }
}

impl Source for Spool {
    fn events_hint(&self) -> Option<u64> {
        Some(self.events)
    }

    fn lines(&self) -> Result<Box<dyn Iterator<Item = Result<Line, CliError>> + '_>, CliError> {
        let again = |e: std::io::Error| {
            CliError::failure(format!("cannot read the export's events again: {e}"))
        };
        let damaged = |why: &str| {
            CliError::failure(format!("the temporary file of the export's events: {why}"))
        };
        let mut file = self.file.try_clone().map_err(again)?;
        file.rewind().map_err(again)?;
        // What is left to read: a record's length beyond it is damage, not an allocation.
        let mut left = file.metadata().map_err(again)?.len();
        let files = self.files.clone();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut record: Vec<u8> = Vec::with_capacity(1024);
        let (written, mut read) = (self.events, 0u64);
        let lines = std::iter::from_fn(move || {
            if read == written {
                return None;
            }
            read += 1;
            let mut len = [0u8; 4];
            if let Err(e) = reader.read_exact(&mut len) {
                return Some(Err(match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => damaged(SHORT),
                    _ => again(e),
                }));
            }
            let len = u64::from(u32::from_le_bytes(len));
            match left.checked_sub(4 + len) {
                Some(rest) => left = rest,
                None => return Some(Err(damaged(SHORT))),
            }
            record.resize(len as usize, 0);
            if let Err(e) = reader.read_exact(&mut record) {
                return Some(Err(again(e)));
            }
            Some(decode(&record, &files).map_err(|why| damaged(&why)))
        });
        Ok(Box::new(parsed_aside(lines)))
    }
}

/// Appends the record of `m` (its row's file being `files[file]`) to `out`.
fn encode(out: &mut Vec<u8>, file: usize, m: &MappedEvent) {
    let e = &m.event;
    put_varint(out, file as u64);
    put_varint(out, m.origin.line);
    out.extend_from_slice(e.id.unwrap_or_else(Uuid::now_v7).as_bytes());
    put_str(out, &m.stream);
    put_str(out, &e.event_type);
    put_time(out, e.occurred_at);
    put_time(out, e.recorded_at);
    match e.actor.as_deref() {
        None => out.push(0),
        Some(actor) => {
            out.push(1);
            put_str(out, actor);
        }
    }
    e.data.encode_into(out);
    match &e.metadata {
        None => out.push(0),
        Some(map) => {
            out.push(1);
            map.encode_into(out);
        }
    }
}

fn put_time(out: &mut Vec<u8>, t: Option<DateTime<Utc>>) {
    match t {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.timestamp().to_le_bytes());
            out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
        }
    }
}

/// A record read back: the event and the row it came from (`files[i]`, its line).
fn decode(record: &[u8], files: &[Arc<str>]) -> Result<Line, String> {
    let mut r = Reader::new(record);
    let wrong = |e: CodecError| e.0;
    let file = usize::try_from(r.varint().map_err(wrong)?).map_err(|_| "an unknown file")?;
    let source = files.get(file).ok_or("an unknown file")?.clone();
    let number = usize::try_from(r.varint().map_err(wrong)?).map_err(|_| "a line too far")?;
    let id = Uuid::from_slice(r.bytes(16).map_err(wrong)?).map_err(|e| e.to_string())?;
    let stream = r.str().map_err(wrong)?.to_owned();
    let event_type = r.str().map_err(wrong)?.to_owned();
    let occurred_at = time(&mut r)?;
    let recorded_at = time(&mut r)?;
    let actor = match flag(&mut r)? {
        true => Some(r.str().map_err(wrong)?.to_owned()),
        false => None,
    };
    // Kept in its binary form, checked: the check reads it without building a tree, and the
    // store writes these bytes as they are.
    let data: EventData = r.lazy().map_err(wrong)?;
    let metadata = match flag(&mut r)? {
        true => Some(r.lazy().map_err(wrong)?),
        false => None,
    };
    if !r.rest.is_empty() {
        return Err("bytes after an event".into());
    }
    let event = domain::ProposedEvent {
        id: Some(id),
        event_type,
        occurred_at,
        actor,
        data,
        metadata,
        recorded_at,
    };
    Ok(Line {
        source,
        number,
        event: ImportLine::new(id, stream, event),
    })
}

fn flag(r: &mut Reader<'_>) -> Result<bool, String> {
    match r.byte().map_err(|e| e.0)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err("a damaged event".into()),
    }
}

fn time(r: &mut Reader<'_>) -> Result<Option<DateTime<Utc>>, String> {
    if !flag(r)? {
        return Ok(None);
    }
    let mut fixed = |n: usize| r.bytes(n).map_err(|e| e.0);
    let secs = i64::from_le_bytes(fixed(8)?.try_into().map_err(|_| SHORT)?);
    let nanos = u32::from_le_bytes(fixed(4)?.try_into().map_err(|_| SHORT)?);
    DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(|| "a damaged time".into())
}

const SHORT: &str = "an event cut short";

#[cfg(test)]
pub(super) mod tests {
    use super::super::story::Origin;
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Number, Value};

    /// Any JSON value: numbers of each kind, any text, nested arrays and objects.
    pub(crate) fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            (i64::MIN..0).prop_map(|n| Value::Number(n.into())),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".*", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        prop::option::of(
            (-62_000_000_000i64..250_000_000_000, 0u32..1_000_000_000)
                .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap()),
        )
    }

    prop_compose! {
        fn event()(
            id in any::<u128>(),
            stream in ".*",
            event_type in ".*",
            occurred_at in time(),
            recorded_at in time(),
            actor in prop::option::of(".*"),
            data in json(),
            metadata in prop::option::of(prop::collection::vec((".*", json()), 0..4)),
            line in any::<u64>(),
            second_file in any::<bool>(),
        ) -> MappedEvent {
            MappedEvent {
                stream,
                event: domain::ProposedEvent {
                    id: Some(Uuid::from_u128(id)),
                    event_type,
                    occurred_at,
                    actor,
                    data: data.into(),
                    metadata: metadata.map(|kv| kv.into_iter().collect::<serde_json::Map<_, _>>().into()),
                    recorded_at,
                },
                origin: Origin {
                    file: if second_file { "b.csv".into() } else { "a.csv".into() },
                    line,
                },
            }
        }
    }

    proptest! {
        /// What is spooled reads back as it was: every field, every value (numbers of each
        /// kind, nested arrays and objects in their order, any text), and the row.
        #[test]
        fn events_read_back_as_they_were_spooled(events in prop::collection::vec(event(), 0..8)) {
            let mut writer = Writer::new().unwrap();
            for m in &events {
                writer.write(m).unwrap();
            }
            let spool = writer.finish().unwrap();
            // Read twice: the check, then the append.
            for _ in 0..2 {
                let lines: Vec<Line> = spool.lines().unwrap().map(Result::unwrap).collect();
                prop_assert_eq!(lines.len(), events.len());
                for (line, m) in lines.iter().zip(&events) {
                    prop_assert_eq!(&line.source, &m.origin.file);
                    prop_assert_eq!(line.number as u64, m.origin.line);
                    let (stream, e) = line.event.clone().into_proposed();
                    prop_assert_eq!(&stream, &m.stream);
                    prop_assert_eq!(&e, &m.event);
                }
            }
        }

        /// A spool cut anywhere (its file damaged), between two events too, reads up to the
        /// cut and then says so.
        #[test]
        fn a_cut_spool_is_an_error(events in prop::collection::vec(event(), 1..4), cut in any::<prop::sample::Index>()) {
            let mut writer = Writer::new().unwrap();
            for m in &events {
                writer.write(m).unwrap();
            }
            let spool = writer.finish().unwrap();
            let size = spool.file.metadata().unwrap().len();
            spool.file.set_len(cut.index(size as usize) as u64).unwrap();
            let lines: Vec<Result<Line, CliError>> = spool.lines().unwrap().collect();
            prop_assert!(lines.len() <= events.len());
            prop_assert!(lines.last().is_some_and(Result::is_err));
        }

        /// A damaged record is an error, never a panic nor an endless read.
        #[test]
        fn a_damaged_record_is_an_error(m in event(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let files: Vec<Arc<str>> = vec!["a.csv".into(), "b.csv".into()];
            let mut record = Vec::new();
            encode(&mut record, usize::from(&*m.origin.file == "b.csv"), &m);
            prop_assert!(decode(&record, &files).is_ok());
            let at = cut.index(record.len());
            prop_assert!(decode(&record[..at], &files).is_err());
            record[at] = byte;
            let _ = decode(&record, &files);
        }
    }
}
