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
//! are LEB128 varints, strings a length and their UTF-8 bytes, times a presence byte then
//! seconds (i64) and nanoseconds (u32), values a tag byte then their content (see
//! [`Tag`]). What is read back is exactly what was written: [`decode`] of [`encode`] is the
//! identity (a property test says so).

use std::io::{BufReader, Read, Seek, Write};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};
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
    file: std::fs::File,
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
        let out = std::io::BufWriter::with_capacity(1 << 16, file.try_clone().map_err(failed)?);
        Ok(Writer {
            file,
            out,
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

    pub(super) fn finish(mut self) -> Result<Spool, CliError> {
        self.out.flush().map_err(failed)?;
        drop(self.out);
        Ok(Spool {
            file: self.file,
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
            Some(decode(&record, &files).map_err(damaged))
        });
        Ok(Box::new(parsed_aside(lines)))
    }
}

/// The tag byte of a value.
#[repr(u8)]
enum Tag {
    Null = 0,
    False = 1,
    True = 2,
    /// A `u64`, as a varint.
    Unsigned = 3,
    /// A negative `i64`, as 8 bytes.
    Negative = 4,
    /// An `f64`, as 8 bytes.
    Float = 5,
    String = 6,
    /// A count, then each value.
    Array = 7,
    /// A count, then each key (a string) and value, in the map's order.
    Object = 8,
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
    put_opt_str(out, e.actor.as_deref());
    put_value(out, &e.data);
    match &e.metadata {
        None => out.push(0),
        Some(map) => {
            out.push(1);
            put_object(out, map);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
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

fn put_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    put_varint(out, map.len() as u64);
    for (k, v) in map {
        put_str(out, k);
        put_value(out, v);
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(Tag::Null as u8),
        Value::Bool(false) => out.push(Tag::False as u8),
        Value::Bool(true) => out.push(Tag::True as u8),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(Tag::Unsigned as u8);
                put_varint(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(Tag::Negative as u8);
                out.extend_from_slice(&i.to_le_bytes());
            } else {
                out.push(Tag::Float as u8);
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(Tag::String as u8);
            put_str(out, s);
        }
        Value::Array(a) => {
            out.push(Tag::Array as u8);
            put_varint(out, a.len() as u64);
            for v in a {
                put_value(out, v);
            }
        }
        Value::Object(map) => {
            out.push(Tag::Object as u8);
            put_object(out, map);
        }
    }
}

/// How deep values may nest in a record read back (a damaged file cannot recurse without end).
const DEPTH: usize = 128;

/// A record read back: the event and the row it came from (`files[i]`, its line).
fn decode(record: &[u8], files: &[Arc<str>]) -> Result<Line, &'static str> {
    let mut r = Record { rest: record };
    let file = usize::try_from(r.varint()?).map_err(|_| "an unknown file")?;
    let source = files.get(file).ok_or("an unknown file")?.clone();
    let number = usize::try_from(r.varint()?).map_err(|_| "a line beyond counting")?;
    let id = Uuid::from_bytes(r.bytes::<16>()?);
    let stream = r.string()?;
    let event_type = r.string()?;
    let occurred_at = r.time()?;
    let recorded_at = r.time()?;
    let actor = if r.flag()? { Some(r.string()?) } else { None };
    let data = r.value(DEPTH)?;
    let metadata = if r.flag()? {
        Some(r.object(DEPTH)?)
    } else {
        None
    };
    if !r.rest.is_empty() {
        return Err("bytes after an event");
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

/// The unread part of a record.
struct Record<'a> {
    rest: &'a [u8],
}

const SHORT: &str = "an event cut short";

impl Record<'_> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&b, rest) = self.rest.split_first().ok_or(SHORT)?;
        self.rest = rest;
        Ok(b)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(SHORT)?;
        self.rest = rest;
        Ok(*head)
    }

    fn flag(&mut self) -> Result<bool, &'static str> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("a damaged event"),
        }
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a damaged number")
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let len = usize::try_from(self.varint()?).map_err(|_| SHORT)?;
        if len > self.rest.len() {
            return Err(SHORT);
        }
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        String::from_utf8(text.to_vec()).map_err(|_| "text that is not UTF-8")
    }

    fn time(&mut self) -> Result<Option<DateTime<Utc>>, &'static str> {
        if !self.flag()? {
            return Ok(None);
        }
        let secs = i64::from_le_bytes(self.bytes()?);
        let nanos = u32::from_le_bytes(self.bytes()?);
        DateTime::from_timestamp(secs, nanos)
            .map(Some)
            .ok_or("a damaged time")
    }

    fn count(&mut self) -> Result<usize, &'static str> {
        // Every element takes a byte at least: a count beyond the rest is damage, and no
        // allocation is made for it.
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.rest.len())
            .ok_or(SHORT)
    }

    fn object(&mut self, depth: usize) -> Result<Map<String, Value>, &'static str> {
        let n = self.count()?;
        let mut map = Map::with_capacity(n);
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value(depth)?;
            map.insert(k, v);
        }
        Ok(map)
    }

    fn value(&mut self, depth: usize) -> Result<Value, &'static str> {
        let depth = depth.checked_sub(1).ok_or("values nested too deep")?;
        Ok(match self.byte()? {
            t if t == Tag::Null as u8 => Value::Null,
            t if t == Tag::False as u8 => Value::Bool(false),
            t if t == Tag::True as u8 => Value::Bool(true),
            t if t == Tag::Unsigned as u8 => Value::Number(self.varint()?.into()),
            t if t == Tag::Negative as u8 => {
                Value::Number(i64::from_le_bytes(self.bytes()?).into())
            }
            t if t == Tag::Float as u8 => {
                let f = f64::from_le_bytes(self.bytes()?);
                Value::Number(Number::from_f64(f).ok_or("a number that is not finite")?)
            }
            t if t == Tag::String as u8 => Value::String(self.string()?),
            t if t == Tag::Array as u8 => {
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth)?);
                }
                Value::Array(a)
            }
            t if t == Tag::Object as u8 => Value::Object(self.object(depth)?),
            _ => return Err("a value of no known kind"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::story::Origin;
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
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
                    data,
                    metadata: metadata.map(|kv| kv.into_iter().collect()),
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
