//! The encoding of one event as stored: a format-version byte, then the whole envelope.
//!
//! Format 2 (written now) is a hand-rolled binary form, described below at [`FORMAT_V2`]'s
//! section: `data` and `metadata` are a tagged binary tree that decodes straight into
//! `serde_json::Value`, without parsing JSON text (the bulk of format 1's decoding cost).
//!
//! Format 1 (still decoded, no longer written) is bincode 2 (standard config, through serde) of `RecordV1`. bincode cannot
//! decode a `serde_json::Value`, so `data` and `metadata` travel as JSON text; times travel as
//! whole seconds plus nanoseconds since the Unix epoch, which round-trips every
//! `DateTime<Utc>` exactly (and so its canonical RFC 3339 form).
//!
//! A later format gets a new leading byte and a new struct; decoding dispatches on the byte,
//! so old records never need rewriting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::RecordedEvent;

/// The leading byte of format-1 records (bincode, JSON text for `data`/`metadata`).
pub const FORMAT_V1: u8 = 1;

/// Why stored bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    #[error("undecodable record: {0}")]
    Undecodable(String),
    #[error("{len} trailing bytes after the record")]
    Trailing { len: usize },
}

#[derive(Serialize, Deserialize)]
struct RecordV1<'a> {
    id: u128,
    stream: &'a str,
    event_type: &'a str,
    version: u64,
    position: u64,
    occurred_secs: i64,
    occurred_nanos: u32,
    recorded_secs: i64,
    recorded_nanos: u32,
    actor: &'a str,
    data: &'a str,
    metadata: &'a str,
    schema_version: u16,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes an event in the old format 1: `[FORMAT_V1][bincode body]`. New records are
/// written in format 2 ([`encode_record`]); this stays for tests and tools that need
/// format-1 bytes.
pub fn encode_record_v1(ev: &RecordedEvent) -> Vec<u8> {
    // Serialising a `Value` or a string-keyed map to JSON text cannot fail.
    let data = serde_json::to_string(&ev.data).unwrap_or_default();
    let metadata = serde_json::to_string(&ev.metadata).unwrap_or_default();
    let rec = RecordV1 {
        id: ev.id.as_u128(),
        stream: &ev.stream,
        event_type: &ev.event_type,
        version: ev.version,
        position: ev.position,
        occurred_secs: ev.occurred_at.timestamp(),
        occurred_nanos: ev.occurred_at.timestamp_subsec_nanos(),
        recorded_secs: ev.recorded_at.timestamp(),
        recorded_nanos: ev.recorded_at.timestamp_subsec_nanos(),
        actor: &ev.actor,
        data: &data,
        metadata: &metadata,
        schema_version: ev.schema_version,
    };
    let mut out = Vec::with_capacity(64 + ev.stream.len() + data.len() + metadata.len());
    out.push(FORMAT_V1);
    // bincode into a Vec only fails for types serde cannot describe; ours are plain.
    let body = bincode::serde::encode_to_vec(&rec, config()).unwrap_or_default();
    out.extend_from_slice(&body);
    out
}

/// Decodes bytes written by [`encode_record`] or [`encode_record_v1`] (any known format).
pub fn decode_record(bytes: &[u8]) -> Result<RecordedEvent, RecordError> {
    let (&format, body) = bytes.split_first().ok_or(RecordError::Empty)?;
    match format {
        FORMAT_V2 => decode_v2(body),
        FORMAT_V1 => decode_v1(body),
        other => Err(RecordError::UnknownFormat(other)),
    }
}

fn decode_v1(body: &[u8]) -> Result<RecordedEvent, RecordError> {
    let bad = |e: &dyn std::fmt::Display| RecordError::Undecodable(e.to_string());
    let (rec, used): (RecordV1, usize) =
        bincode::serde::borrow_decode_from_slice(body, config()).map_err(|e| bad(&e))?;
    if used != body.len() {
        return Err(RecordError::Trailing {
            len: body.len() - used,
        });
    }
    Ok(RecordedEvent {
        id: Uuid::from_u128(rec.id),
        stream: rec.stream.to_owned(),
        event_type: rec.event_type.to_owned(),
        version: rec.version,
        position: rec.position,
        occurred_at: time(rec.occurred_secs, rec.occurred_nanos, "occurred_at")?,
        recorded_at: time(rec.recorded_secs, rec.recorded_nanos, "recorded_at")?,
        actor: rec.actor.to_owned(),
        data: serde_json::from_str::<serde_json::Value>(rec.data)
            .map_err(|e| bad(&e))?
            .into(),
        metadata: match rec.metadata {
            "{}" => serde_json::Map::new().into(),
            text => serde_json::from_str(text).map_err(|e| bad(&e))?,
        },
        schema_version: rec.schema_version,
    })
}

// ---------------------------------------------------------------------------------------
// Format 2: a hand-rolled binary form. `data` and `metadata` are stored as a tagged binary
// tree (no JSON text to parse).
//
// `[2] id (16 bytes, big endian) version (varint) position (varint)
//  occurred_secs (zigzag varint) occurred_nanos (varint) recorded_secs (zigzag varint)
//  recorded_nanos (varint) schema_version (varint) stream actor event_type (strings)
//  data (value) metadata (object body)`
//
// A string is `len (varint) || UTF-8 bytes`. A value is in the binary form of
// `domain::data` (a tag byte then its body). Every length is checked against the bytes
// left, so a truncated record never decodes. `data` is checked completely but kept in its
// binary form ([`EventData`]): the `Value` is built only when somebody looks at it.

/// The leading byte of records written by this version.
pub const FORMAT_V2: u8 = 2;

use domain::data::{
    put_str, put_varint, unzigzag, zigzag, CodecError, EventData, EventMetadata, Reader,
};

impl From<CodecError> for RecordError {
    fn from(e: CodecError) -> Self {
        RecordError::Undecodable(e.0)
    }
}

/// Encodes an event in the current format: `[FORMAT_V2][body]` (see above).
pub fn encode_record(ev: &RecordedEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + ev.stream.len() + ev.event_type.len());
    encode_record_into(&mut out, ev);
    out
}

/// Appends the encoding of `ev` (as [`encode_record`]) to `out`.
pub fn encode_record_into(out: &mut Vec<u8>, ev: &RecordedEvent) {
    out.push(FORMAT_V2);
    out.extend_from_slice(&ev.id.as_u128().to_be_bytes());
    put_varint(out, ev.version);
    put_varint(out, ev.position);
    put_varint(out, zigzag(ev.occurred_at.timestamp()));
    put_varint(out, u64::from(ev.occurred_at.timestamp_subsec_nanos()));
    put_varint(out, zigzag(ev.recorded_at.timestamp()));
    put_varint(out, u64::from(ev.recorded_at.timestamp_subsec_nanos()));
    put_varint(out, u64::from(ev.schema_version));
    put_str(out, &ev.stream);
    put_str(out, &ev.actor);
    put_str(out, &ev.event_type);
    ev.data.encode_into(out);
    ev.metadata.encode_into(out);
}

fn decode_v2(body: &[u8]) -> Result<RecordedEvent, RecordError> {
    let mut r = Reader::new(body);
    let id = u128::from_be_bytes(
        r.bytes(16)?
            .try_into()
            .map_err(|_| CodecError("short id".into()))?,
    );
    let version = r.varint()?;
    let position = r.varint()?;
    let occurred_secs = unzigzag(r.varint()?);
    let occurred_nanos = r.u32()?;
    let recorded_secs = unzigzag(r.varint()?);
    let recorded_nanos = r.u32()?;
    let schema_version = u16::try_from(r.varint()?)
        .map_err(|_| RecordError::Undecodable("schema version overflow".into()))?;
    let stream = r.str()?.to_owned();
    let actor = r.str()?.to_owned();
    let event_type = r.str()?.to_owned();
    let data: EventData = r.lazy()?;
    let metadata: EventMetadata = r.lazy()?;
    if !r.rest.is_empty() {
        return Err(RecordError::Trailing { len: r.rest.len() });
    }
    Ok(RecordedEvent {
        id: Uuid::from_u128(id),
        stream,
        event_type,
        version,
        position,
        occurred_at: time(occurred_secs, occurred_nanos, "occurred_at")?,
        recorded_at: time(recorded_secs, recorded_nanos, "recorded_at")?,
        actor,
        data,
        metadata,
        schema_version,
    })
}

fn time(secs: i64, nanos: u32, what: &str) -> Result<DateTime<Utc>, RecordError> {
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .ok_or_else(|| RecordError::Undecodable(format!("{what} out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            (0i64..10_000_000).prop_map(|c| Value::from(c as f64 / 100.0)),
            ".{0,20}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        // Years 1900..2200, any nanosecond.
        (-2_208_988_800i64..7_258_118_400, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::<Utc>::from_timestamp(s, n).unwrap())
    }

    fn event() -> impl Strategy<Value = RecordedEvent> {
        (
            any::<u128>(),
            "(deal|lead|org)-[A-Za-z0-9_.:-]{1,64}",
            "[A-Za-z]{1,30}",
            any::<u64>(),
            any::<u64>(),
            time(),
            time(),
            ".{0,20}",
            json_value(),
            prop::collection::btree_map(".{0,8}", json_value(), 0..4),
            any::<u16>(),
        )
            .prop_map(
                |(id, stream, ty, version, position, occ, rec, actor, data, meta, sv)| {
                    RecordedEvent {
                        id: Uuid::from_u128(id),
                        stream,
                        event_type: ty,
                        version,
                        position,
                        occurred_at: occ,
                        recorded_at: rec,
                        actor,
                        data: data.into(),
                        metadata: meta.into_iter().collect::<Map<String, Value>>().into(),
                        schema_version: sv,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(ev in event()) {
            for (bytes, format) in [(encode_record(&ev), FORMAT_V2), (encode_record_v1(&ev), FORMAT_V1)] {
                prop_assert_eq!(bytes[0], format);
                let back = decode_record(&bytes).unwrap();
                prop_assert_eq!(&back, &ev);
                // The canonical JSON form (times included) is identical too.
                prop_assert_eq!(
                    serde_json::to_string(&back).unwrap(),
                    serde_json::to_string(&ev).unwrap()
                );
            }
        }

        /// `data` read back undecoded equals, prints and serialises exactly like its value,
        /// and encodes back to the same bytes.
        #[test]
        fn undecoded_data_behaves_like_its_value(v in json_value(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
            let mut bytes = Vec::new();
            EventData::from(v.clone()).encode_into(&mut bytes);
            let len = bytes.len();
            bytes.extend(tail);
            let (d, used) = EventData::from_encoded(&bytes).unwrap();
            prop_assert_eq!(used, len);
            prop_assert_eq!(serde_json::to_string(&d).unwrap(), serde_json::to_string(&v).unwrap());
            prop_assert!(!d.is_decoded());
            prop_assert_eq!(&*d, &v);
            prop_assert_eq!(d.clone(), EventData::from(v.clone()));
            let mut again = Vec::new();
            d.encode_into(&mut again);
            prop_assert_eq!(&again[..], &bytes[..len]);
            // Cut short, the bytes never pass the check.
            prop_assert!(EventData::from_encoded(&bytes[..len - 1]).is_err());
        }

        /// Arbitrary bytes never panic, and whatever passes the check decodes to the value
        /// its JSON form shows.
        #[test]
        fn arbitrary_bytes_are_checked(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((d, _)) = EventData::from_encoded(&bytes) {
                let v = d.value().clone();
                prop_assert_eq!(serde_json::to_string(&d).unwrap(), serde_json::to_string(&v).unwrap());
            }
        }

        #[test]
        fn truncated_records_never_decode_to_something_else(ev in event(), cut in 0usize..64) {
            for bytes in [encode_record(&ev), encode_record_v1(&ev)] {
                let cut = cut.min(bytes.len() - 1);
                let short = &bytes[..bytes.len() - 1 - cut];
                prop_assert!(decode_record(short).is_err());
            }
        }

        #[test]
        fn trailing_bytes_are_refused(ev in event(), extra in 1usize..4) {
            for mut bytes in [encode_record(&ev), encode_record_v1(&ev)] {
                bytes.extend(std::iter::repeat_n(0u8, extra));
                prop_assert!(decode_record(&bytes).is_err());
            }
        }
    }

    /// Format-1 bytes as written by earlier versions of the store decode unchanged.
    #[test]
    fn format_1_fixture_still_decodes() {
        let ev = RecordedEvent {
            id: Uuid::from_u128(0x0192_f4c2_6b1e_7c3a_9d2e_1f00_c0ff_ee00),
            stream: "deal-D-1001".into(),
            event_type: "DealStageChanged".into(),
            version: 3,
            position: 48211,
            occurred_at: "2026-06-03T09:30:00Z".parse().unwrap(),
            recorded_at: "2026-06-03T09:30:02.118Z".parse().unwrap(),
            actor: "wukong".into(),
            data: serde_json::json!({ "from": "presentation", "to": "quote", "amount": 12.5 })
                .into(),
            metadata: Map::from_iter([("correlation_id".to_string(), Value::from("c-1"))]).into(),
            schema_version: 0,
        };
        let v1 = encode_record_v1(&ev);
        assert_eq!(v1[0], FORMAT_V1);
        assert_eq!(decode_record(&v1).unwrap(), ev);
        let v2 = encode_record(&ev);
        assert_eq!(v2[0], FORMAT_V2);
        assert_eq!(decode_record(&v2).unwrap(), ev);
        assert!(v2.len() < v1.len(), "{} vs {}", v2.len(), v1.len());
    }

    #[test]
    fn number_kinds_survive() {
        let data = serde_json::json!([0, 1, -1, u64::MAX, i64::MIN, 1.0, -0.0, 0.1, 1e300, 12.34]);
        let ev = decode_record(&encode_record(&RecordedEvent {
            id: Uuid::nil(),
            stream: "deal-x".into(),
            event_type: "T".into(),
            version: 0,
            position: 1,
            occurred_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            recorded_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            actor: "a".into(),
            data: data.clone().into(),
            metadata: Map::new().into(),
            schema_version: 0,
        }))
        .unwrap();
        assert_eq!(ev.data, data);
        assert_eq!(
            serde_json::to_string(&ev.data).unwrap(),
            serde_json::to_string(&data).unwrap()
        );
    }

    /// The padded varints the `stored_data` fuzz target found in `domain::data` were taken
    /// in a record's envelope too (same reader): a version of 3 written in two bytes
    /// decoded, and the record did not re-encode to its own bytes.
    #[test]
    fn a_record_with_a_padded_varint_is_refused() {
        let ev = RecordedEvent {
            id: Uuid::nil(),
            stream: "deal-D-1".into(),
            event_type: "DealWon".into(),
            version: 3,
            position: 4,
            occurred_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            recorded_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            actor: "wukong".into(),
            data: serde_json::json!({"amount": 1}).into(),
            metadata: Map::new().into(),
            schema_version: 0,
        };
        let bytes = encode_record(&ev);
        // Format byte, 16 bytes of id, then the version.
        assert_eq!(bytes[17], 3);
        let padded = [&bytes[..17], &[0x83, 0x00], &bytes[18..]].concat();
        assert!(decode_record(&padded).is_err());
        assert_eq!(decode_record(&bytes), Ok(ev));
    }

    #[test]
    fn unknown_formats_are_refused() {
        assert_eq!(decode_record(&[]), Err(RecordError::Empty));
        assert_eq!(
            decode_record(&[9, 1, 2]),
            Err(RecordError::UnknownFormat(9))
        );
    }
}
