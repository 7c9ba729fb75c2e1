//! The encoding of one event as stored: a format-version byte, then the whole envelope.
//!
//! Format 1 is bincode 2 (standard config, through serde) of `RecordV1`. bincode cannot
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

/// The leading byte of records written by this version.
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

/// Encodes an event: `[FORMAT_V1][bincode body]`.
pub fn encode_record(ev: &RecordedEvent) -> Vec<u8> {
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

/// Decodes bytes written by [`encode_record`] (any known format).
pub fn decode_record(bytes: &[u8]) -> Result<RecordedEvent, RecordError> {
    let (&format, body) = bytes.split_first().ok_or(RecordError::Empty)?;
    match format {
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
    let time = |secs: i64, nanos: u32, what: &str| {
        DateTime::<Utc>::from_timestamp(secs, nanos)
            .ok_or_else(|| RecordError::Undecodable(format!("{what} out of range")))
    };
    Ok(RecordedEvent {
        id: Uuid::from_u128(rec.id),
        stream: rec.stream.to_owned(),
        event_type: rec.event_type.to_owned(),
        version: rec.version,
        position: rec.position,
        occurred_at: time(rec.occurred_secs, rec.occurred_nanos, "occurred_at")?,
        recorded_at: time(rec.recorded_secs, rec.recorded_nanos, "recorded_at")?,
        actor: rec.actor.to_owned(),
        data: serde_json::from_str(rec.data).map_err(|e| bad(&e))?,
        metadata: match rec.metadata {
            "{}" => serde_json::Map::new(),
            text => serde_json::from_str(text).map_err(|e| bad(&e))?,
        },
        schema_version: rec.schema_version,
    })
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
                        data,
                        metadata: meta.into_iter().collect::<Map<String, Value>>(),
                        schema_version: sv,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn records_round_trip(ev in event()) {
            let bytes = encode_record(&ev);
            prop_assert_eq!(bytes[0], FORMAT_V1);
            let back = decode_record(&bytes).unwrap();
            prop_assert_eq!(&back, &ev);
            // The canonical JSON form (times included) is identical too.
            prop_assert_eq!(
                serde_json::to_string(&back).unwrap(),
                serde_json::to_string(&ev).unwrap()
            );
        }

        #[test]
        fn truncated_records_never_decode_to_something_else(ev in event(), cut in 0usize..64) {
            let bytes = encode_record(&ev);
            let cut = cut.min(bytes.len() - 1);
            let short = &bytes[..bytes.len() - 1 - cut];
            prop_assert!(decode_record(short).is_err());
        }
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
