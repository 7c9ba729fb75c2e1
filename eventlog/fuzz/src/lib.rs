//! What the `record` and `chunk` fuzz targets check, as plain functions: the fuzz targets
//! call them with libFuzzer's inputs, and `eventlog/tests/fuzz_seeds.rs` (under
//! `cargo test`) with the committed seed corpus. They panic where an invariant does not hold.

use chrono::Datelike;
use eventlog::fuzzing::{chain_hash, decode_frame, frames, seal_encoded, Frame, GENESIS};
use eventlog::record::{decode_record, encode_record, encode_record_v1, FORMAT_V1, FORMAT_V2};
use eventlog::{RecordedEvent, StoreError};

/// The `record` target: bytes as one stored record (format byte + body). Whatever decodes
/// is exactly what encoding it gives (format 2) or survives a re-encoding in either format
/// (format 1); no strict prefix and no longer input decodes; the canonical JSON form reads
/// back as the same event.
pub fn record(bytes: &[u8]) {
    let Ok(ev) = decode_record(bytes) else {
        return;
    };
    match bytes[0] {
        FORMAT_V2 => assert_eq!(encode_record(&ev), bytes, "re-encoding {ev:?}"),
        FORMAT_V1 => {
            let again = decode_record(&encode_record_v1(&ev)).expect("format 1 re-encoded");
            assert_eq!(again, ev, "format 1 round trip");
        }
        other => panic!("format {other} decoded"),
    }
    let v2 = encode_record(&ev);
    assert_eq!(decode_record(&v2).as_ref(), Ok(&ev), "format 2 round trip");
    assert!(
        decode_record(&bytes[..bytes.len() - 1]).is_err(),
        "a strict prefix decoded"
    );
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode_record(&longer).is_err(), "a trailing byte was taken");
    json_form_reads_back(&ev);
}

/// The canonical JSON form (export, HTTP) parses back to the same event: for times that
/// RFC 3339 can write (years 0000–9999) and data serde_json can read ([`beyond_json_text`]).
fn json_form_reads_back(ev: &RecordedEvent) {
    let text = serde_json::to_string(ev).expect("an event serialises");
    let writable = |t: &chrono::DateTime<chrono::Utc>| (0..=9999).contains(&t.year());
    if !writable(&ev.occurred_at) || !writable(&ev.recorded_at) {
        return;
    }
    match serde_json::from_str::<RecordedEvent>(&text) {
        Ok(back) => {
            let mut expected = ev.clone();
            // Not part of the JSON form (exports are upcast).
            expected.schema_version = 0;
            assert_eq!(back, expected, "JSON form {text}");
        }
        Err(e) => assert!(
            beyond_json_text(&text, &e),
            "the JSON form does not read back: {e}: {text}"
        ),
    }
}

/// Whether serde_json refused `text` (with `error`) by design: nested deeper than its limit
/// of 128, or holding an object whose first key is its private raw-value token. Stored bytes
/// not written from parsed JSON can hold that.
fn beyond_json_text(text: &str, error: &serde_json::Error) -> bool {
    error.to_string().starts_with("recursion limit exceeded")
        || text.contains(r#"{"$serde_json::private::RawValue":"#)
}

/// The `chunk` target: bytes as a stored chunk (frames back to back). Splitting it never
/// reads past the bytes, the frames found are exactly the chunk's bytes in order (an error
/// only at the end), and each frame decodes as `read` decodes it: checksum first, then the
/// record, then its position. Then the input as one record, sealed the way the writer seals
/// it, splits back into that record with its checksum and chain hash.
pub fn chunk(bytes: &[u8]) {
    let mut at = 0;
    let mut failed = false;
    for (i, frame) in frames(bytes).enumerate() {
        assert!(!failed, "a frame after a framing error");
        match frame {
            Ok(f) => {
                let framed = reframe(&f);
                assert_eq!(
                    &bytes[at..at + framed.len()],
                    framed,
                    "frame {i} is not the bytes at {at}"
                );
                at += framed.len();
                decodes_as_read_does(1 + i as u64, &f);
            }
            Err(_) => failed = true,
        }
    }
    assert!(
        failed || at == bytes.len(),
        "frames left {} bytes",
        bytes.len() - at
    );

    let mut sealed = Vec::new();
    let hash = seal_encoded(&mut sealed, &GENESIS, |out| out.extend_from_slice(bytes));
    let mut split = frames(&sealed);
    match split.next() {
        Some(Ok(f)) if !bytes.is_empty() => {
            assert_eq!(f.record, bytes);
            assert!(f.check_crc().is_ok());
            assert_eq!(f.hash, hash);
            assert_eq!(hash, chain_hash(&GENESIS, bytes));
            decodes_as_read_does(1, &f);
        }
        // A frame holds at least one byte: an empty record is refused, never split.
        Some(Err(_)) if bytes.is_empty() => {}
        other => panic!(
            "a sealed record split into {:?}",
            other.map(|r| r.map(|f| f.record))
        ),
    }
    assert!(split.next().is_none(), "a sealed record split into more");
}

/// The frame's bytes as the writer lays them out.
fn reframe(f: &Frame<'_>) -> Vec<u8> {
    let mut out = (f.record.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(f.record);
    out.extend_from_slice(&f.crc.to_le_bytes());
    out.extend_from_slice(&f.hash);
    out
}

/// `decode_frame` at `position` is `Corrupt` unless the checksum matches, the record
/// decodes and it says that position; then it is the decoded record.
fn decodes_as_read_does(position: u64, f: &Frame<'_>) {
    let got = decode_frame(position, f);
    let crc_ok = f.check_crc().is_ok();
    let decoded = decode_record(f.record);
    match (got, crc_ok, decoded) {
        (Ok(ev), true, Ok(d)) => {
            assert_eq!(ev, d);
            assert_eq!(ev.position, position);
        }
        (Err(StoreError::Corrupt { position: p, .. }), _, d) => {
            assert_eq!(p, position);
            assert!(
                !crc_ok || d.as_ref().map_or(true, |d| d.position != position),
                "a frame with a good checksum and record refused"
            );
        }
        (got, crc_ok, d) => panic!("decode_frame {got:?} with checksum ok {crc_ok}, record {d:?}"),
    }
}
