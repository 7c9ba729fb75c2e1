//! The catch-up path: unfiltered pages of the log read with
//! `COPY (SELECT position, record, crc …) TO STDOUT (FORMAT binary)`. The rows are cut out
//! of the stream as it arrives (no copy, no driver `Row` per event) and decoded in batches
//! of [`BATCH`] on the runtime's other threads, so the server produces the rest of the page
//! while the first rows are checked and decoded: decoding (the most of a read's CPU, see
//! the bench) runs on every core at once.
//!
//! Every event goes through the same checks as a row read by a query
//! ([`super::read::decode_parts`]: crc, record, position).

use bytes::Bytes;
use futures::StreamExt;
use tokio_postgres::Client;

use super::db_error;
use super::read::decode_parts;
use crate::{RecordedEvent, StoreError};

/// What the binary COPY format starts with (then flags and a header extension).
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Room reserved up front for a page (a page asked with a huge limit grows as it goes).
const RESERVE: usize = 16_384;

/// Rows decoded by one task. The last rows of a page (fewer) are decoded by the reader
/// itself, so a small page spawns nothing.
const BATCH: usize = 2048;

/// Up to `n` events of the log from position `from` on, in order.
pub(crate) async fn page(
    c: &Client,
    from: u64,
    n: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = i64::try_from(from.max(1)).unwrap_or(i64::MAX);
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    // COPY takes no parameters: both are integers we format ourselves.
    let sql = format!(
        "COPY (SELECT position, record, crc FROM events WHERE position >= {from} \
         ORDER BY position LIMIT {n}) TO STDOUT (FORMAT binary)"
    );
    let stream = c.copy_out(sql.as_str()).await.map_err(db_error)?;
    futures::pin_mut!(stream);
    let mut parser = CopyParser::default();
    let mut rows = Vec::new();
    let mut batches = Vec::new();
    while let Some(chunk) = stream.next().await {
        parser.push(chunk.map_err(db_error)?, &mut rows)?;
        if rows.len() >= BATCH {
            let batch = std::mem::take(&mut rows);
            batches.push(tokio::spawn(async move { decode_rows(&batch) }));
        }
    }
    parser.finish()?;
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(RESERVE).min(RESERVE));
    for batch in batches {
        out.extend(batch.await.map_err(|e| {
            StoreError::Backend(format!("decoding a page of the log failed: {e}"))
        })??);
    }
    out.extend(decode_rows(&rows)?);
    Ok(out)
}

/// Checks and decodes rows (as a query's rows are: [`decode_parts`]).
fn decode_rows(rows: &[RawRow]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter()
        .map(|r| decode_parts(r.position, &r.record, r.crc))
        .collect()
}

fn protocol(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!(
        "PostgreSQL sent an unexpected COPY stream: {reason}"
    ))
}

/// A row of the stream, not decoded yet.
pub(crate) struct RawRow {
    position: i64,
    /// A slice of the chunk it came in (no copy).
    record: Bytes,
    crc: i32,
}

/// Parses the binary COPY stream of `(position bigint, record bytea, crc integer)` rows, fed
/// in chunks cut anywhere (the server happens to send one row per chunk; nothing relies on
/// it).
#[derive(Default)]
pub(crate) struct CopyParser {
    /// Bytes of an incomplete header or row, kept until the rest arrives.
    pending: Vec<u8>,
    header_seen: bool,
    trailer_seen: bool,
}

/// A row parsed from the front of some bytes, or why not.
enum Parsed {
    Row {
        position: i64,
        record: std::ops::Range<usize>,
        crc: i32,
        used: usize,
    },
    Trailer,
    /// More bytes are needed.
    Incomplete,
}

impl CopyParser {
    /// Cuts every complete row of `chunk` (after what is pending) into `out`.
    pub(crate) fn push(&mut self, chunk: Bytes, out: &mut Vec<RawRow>) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            let used = self.consume(&chunk, out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(&chunk);
            let pending = Bytes::from(std::mem::take(&mut self.pending));
            let used = self.consume(&pending, out)?;
            self.pending.extend_from_slice(&pending[used..]);
        }
        Ok(())
    }

    /// Checks that the stream ended where it should (after its trailer, nothing left over).
    pub(crate) fn finish(&self) -> Result<(), StoreError> {
        if !self.trailer_seen {
            return Err(protocol("it ended without its trailer"));
        }
        if !self.pending.is_empty() {
            return Err(protocol(format!(
                "{} bytes follow the trailer",
                self.pending.len()
            )));
        }
        Ok(())
    }

    /// Cuts the complete rows at the front of `bytes`; returns how many bytes they used.
    fn consume(&mut self, bytes: &Bytes, out: &mut Vec<RawRow>) -> Result<usize, StoreError> {
        let mut at = 0;
        if !self.header_seen {
            match header_len(bytes)? {
                Some(len) => {
                    self.header_seen = true;
                    at = len;
                }
                None => return Ok(0),
            }
        }
        while at < bytes.len() {
            if self.trailer_seen {
                return Err(protocol("bytes follow the trailer"));
            }
            match row(&bytes[at..])? {
                Parsed::Row {
                    position,
                    record,
                    crc,
                    used,
                } => {
                    out.push(RawRow {
                        position,
                        record: bytes.slice(at + record.start..at + record.end),
                        crc,
                    });
                    at += used;
                }
                Parsed::Trailer => {
                    self.trailer_seen = true;
                    at += 2;
                }
                Parsed::Incomplete => break,
            }
        }
        Ok(at)
    }
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The length of the header at the front of `bytes`, or `None` when it is not all there.
fn header_len(bytes: &[u8]) -> Result<Option<usize>, StoreError> {
    // Signature, flags (4), header extension length (4), the extension.
    if bytes.len() < SIGNATURE.len() + 8 {
        return Ok(None);
    }
    if !bytes.starts_with(SIGNATURE) {
        return Err(protocol("it does not start with the binary COPY signature"));
    }
    let ext = be_i32(&bytes[SIGNATURE.len() + 4..]);
    let ext = usize::try_from(ext).map_err(|_| protocol("negative header extension"))?;
    let len = SIGNATURE.len() + 8 + ext;
    Ok((bytes.len() >= len).then_some(len))
}

/// The row (or trailer) at the front of `b`.
fn row(b: &[u8]) -> Result<Parsed, StoreError> {
    if b.len() < 2 {
        return Ok(Parsed::Incomplete);
    }
    match be_i16(b) {
        -1 => return Ok(Parsed::Trailer),
        3 => {}
        n => return Err(protocol(format!("a row of {n} fields (3 expected)"))),
    }
    // position: length 8 then the bigint.
    if b.len() < 2 + 4 + 8 + 4 {
        return Ok(Parsed::Incomplete);
    }
    if be_i32(&b[2..]) != 8 {
        return Err(protocol("the position is not an 8-byte bigint"));
    }
    let position = i64::from_be_bytes(b[6..14].try_into().unwrap_or_default());
    let len = usize::try_from(be_i32(&b[14..])).map_err(|_| protocol("a NULL record"))?;
    let record = 18..18 + len;
    // crc: length 4 then the integer.
    if b.len() < record.end + 8 {
        return Ok(Parsed::Incomplete);
    }
    if be_i32(&b[record.end..]) != 4 {
        return Err(protocol("the crc is not a 4-byte integer"));
    }
    let crc = be_i32(&b[record.end + 4..]);
    Ok(Parsed::Row {
        position,
        used: record.end + 8,
        record,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(position: u64) -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::from_u128(u128::from(position) * 7919),
            stream: format!("deal-{}", position % 5),
            event_type: "DealCreated".into(),
            version: position / 5,
            position,
            occurred_at: chrono::DateTime::from_timestamp(1_700_000_000 + position as i64, 5)
                .unwrap(),
            recorded_at: chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
            actor: "wukong".into(),
            data: serde_json::json!({"title": "Roof", "n": position}).into(),
            metadata: serde_json::Map::new().into(),
            schema_version: 1,
        }
    }

    /// The bytes a server sends for these rows, written from the format's documentation.
    fn stream(rows: &[(i64, Vec<u8>, i32)]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        for (position, record, crc) in rows {
            b.extend_from_slice(&3i16.to_be_bytes());
            b.extend_from_slice(&8i32.to_be_bytes());
            b.extend_from_slice(&position.to_be_bytes());
            b.extend_from_slice(&(record.len() as i32).to_be_bytes());
            b.extend_from_slice(record);
            b.extend_from_slice(&4i32.to_be_bytes());
            b.extend_from_slice(&crc.to_be_bytes());
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    fn rows(events: &[RecordedEvent]) -> Vec<(i64, Vec<u8>, i32)> {
        events
            .iter()
            .map(|e| {
                let record = crate::record::encode_record(e);
                (
                    e.position as i64,
                    record.clone(),
                    crc32fast::hash(&record) as i32,
                )
            })
            .collect()
    }

    fn parse(bytes: &[u8], cuts: &[usize]) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut parser = CopyParser::default();
        let mut rows = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            parser.push(Bytes::copy_from_slice(&bytes[at..cut]), &mut rows)?;
            at = cut;
        }
        parser.finish()?;
        decode_rows(&rows)
    }

    proptest! {
        /// However the stream is cut into chunks, the same events come out, in order.
        #[test]
        fn any_chunking_gives_the_events(n in 0u64..20, mut cuts in prop::collection::vec(0usize..4000, 0..12)) {
            let events: Vec<_> = (1..=n).map(sample).collect();
            let bytes = stream(&rows(&events));
            cuts.sort_unstable();
            let got = parse(&bytes, &cuts).unwrap();
            prop_assert_eq!(got.len(), events.len());
            for (g, e) in got.iter().zip(&events) {
                prop_assert_eq!(g.id, e.id);
                prop_assert_eq!(g.position, e.position);
                prop_assert_eq!(&g.stream, &e.stream);
            }
        }

        /// A stream cut short never parses.
        #[test]
        fn a_truncated_stream_is_an_error(n in 1u64..6, cut in 0usize..10_000) {
            let bytes = stream(&rows(&(1..=n).map(sample).collect::<Vec<_>>()));
            let cut = cut % bytes.len();
            prop_assert!(parse(&bytes[..cut], &[]).is_err());
        }
    }

    #[test]
    fn a_wrong_crc_is_corruption_at_its_position() {
        let mut r = rows(&[sample(1), sample(2)]);
        r[1].2 ^= 1;
        match parse(&stream(&r), &[]) {
            Err(StoreError::Corrupt { position, reason }) => {
                assert_eq!(position, 2);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_record_stored_at_another_position_is_corruption() {
        let mut r = rows(&[sample(1), sample(2)]);
        r[1].0 = 3;
        match parse(&stream(&r), &[]) {
            Err(StoreError::Corrupt { position, reason }) => {
                assert_eq!(position, 3);
                assert!(reason.contains("position 2"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_null_record_or_a_bad_signature_is_an_error() {
        let mut bytes = stream(&rows(&[sample(1)]));
        // The record's length (after header 19, field count 2, position 12) set to -1.
        bytes[19 + 2 + 12..19 + 2 + 16].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(parse(&bytes, &[]), Err(StoreError::Backend(m)) if m.contains("NULL")));
        let mut bytes = stream(&[]);
        bytes[0] = b'X';
        assert!(
            matches!(parse(&bytes, &[]), Err(StoreError::Backend(m)) if m.contains("signature"))
        );
    }
}
