//! The envelope every event travels in (SPEC §1.1), and stream names.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::data::{EventData, EventMetadata};

/// An event as it is stored and as it crosses every boundary (HTTP, SSE, import, export).
/// Serialises to exactly the canonical JSON form of SPEC §1.1. Its OpenAPI schema
/// (`EventEnvelope`) leaves `type` and `data` open; the API combines it with
/// [`Event`](crate::events::Event)'s, which ties `data` to `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventEnvelope)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub stream: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u64,
    pub position: u64,
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    /// Read from the log, decoded only when looked at (see [`crate::data`]).
    #[schema(value_type = Object)]
    pub data: EventData,
    /// Read from the log, decoded only when looked at, like `data`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: EventMetadata,
    /// Schema version of `data` as written (see `crate::schema`). Not part of the JSON form:
    /// exported events are always upcast to the current schema, so 0 ("current") on parse.
    #[serde(skip)]
    pub schema_version: u16,
}

/// An event as a client proposes it for appending; the store assigns the rest. Its OpenAPI
/// schema (`ProposedEventEnvelope`) leaves `type` and `data` open, like [`RecordedEvent`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProposedEventEnvelope)]
pub struct ProposedEvent {
    /// Idempotency key; a UUIDv7 is assigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Defaults to the caller (a rep's id, the token subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// A JSON value, or already in the log's binary form (an import's spool: see
    /// [`crate::data`]), which the store then writes as it is.
    #[schema(value_type = Object)]
    pub data: EventData,
    /// At most 4 KiB serialised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<EventMetadata>,
    /// Only set by `import` (which preserves the original recording time); never from HTTP.
    #[serde(skip)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Maximum size of an event's `metadata` object, serialised (SPEC §1.1).
pub const MAX_METADATA_BYTES: usize = 4096;

/// How far `occurred_at` may lie in the future of `recorded_at` (SPEC §1.1).
pub const MAX_FUTURE_SKEW_SECS: i64 = 300;

/// The optimistic-concurrency condition of an append (SPEC §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedVersion {
    /// No check.
    #[default]
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(u64),
}

impl Serialize for ExpectedVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpectedVersion::Any => s.serialize_str("any"),
            ExpectedVersion::NoStream => s.serialize_str("no_stream"),
            ExpectedVersion::Exact(v) => s.serialize_u64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "any" => Ok(ExpectedVersion::Any),
            Value::String(s) if s == "no_stream" => Ok(ExpectedVersion::NoStream),
            Value::Number(n) if n.as_u64().is_some() => Ok(ExpectedVersion::Exact(n.as_u64().unwrap_or(0))),
            other => Err(serde::de::Error::custom(format!(
                "expected_version must be \"any\", \"no_stream\" or a non-negative integer, got {other}"
            ))),
        }
    }
}

/// The category of a stream: the part of its name before the first `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Customer,
    Lead,
    Deal,
    Channel,
    Org,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Customer,
        Category::Lead,
        Category::Deal,
        Category::Channel,
        Category::Org,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Customer => "customer",
            Category::Lead => "lead",
            Category::Deal => "deal",
            Category::Channel => "channel",
            Category::Org => "org",
        }
    }
}

/// A parsed stream name `<category>-<entity id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamName {
    pub category: Category,
    pub entity: String,
}

/// Why a stream name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamNameError {
    #[error("stream name {0:?} has no '-': it must be <category>-<entity id>")]
    NoSeparator(String),
    #[error("unknown stream category {0:?}: expected one of customer, lead, deal, channel, org")]
    UnknownCategory(String),
    #[error("entity id {0:?} must be 1-64 characters from [A-Za-z0-9_.:-]")]
    BadEntityId(String),
}

impl StreamName {
    pub fn parse(name: &str) -> Result<StreamName, StreamNameError> {
        let (cat, entity) = name
            .split_once('-')
            .ok_or_else(|| StreamNameError::NoSeparator(name.to_string()))?;
        let category = Category::ALL
            .into_iter()
            .find(|c| c.as_str() == cat)
            .ok_or_else(|| StreamNameError::UnknownCategory(cat.to_string()))?;
        if !is_entity_id(entity) {
            return Err(StreamNameError::BadEntityId(entity.to_string()));
        }
        Ok(StreamName {
            category,
            entity: entity.to_string(),
        })
    }

    /// Whether `name` is this stream's name (its `Display` form), without building it.
    pub fn is(&self, name: &str) -> bool {
        name.split_once('-')
            .is_some_and(|(cat, entity)| cat == self.category.as_str() && entity == self.entity)
    }

    pub fn new(category: Category, entity: &str) -> StreamName {
        StreamName {
            category,
            entity: entity.to_string(),
        }
    }
}

impl std::fmt::Display for StreamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.category.as_str(), self.entity)
    }
}

/// Entity ids are opaque strings of 1–64 characters from `[A-Za-z0-9_.:-]`.
pub fn is_entity_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Formats a time the canonical way: RFC 3339, UTC, `Z`, fractional seconds only when present.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 time (any offset) into UTC.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// serde helpers for canonical RFC 3339 times.
pub mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_time(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}")))
    }
}

/// serde helpers for optional canonical RFC 3339 times.
pub mod rfc3339_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_time(&s)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is` answers exactly what comparing with the `Display` form answers.
    #[test]
    fn a_stream_name_is_its_display_form_and_nothing_else() {
        let names = [
            "deal-D-1001",
            "deal-D",
            "customer-C-1",
            "org-main",
            "lead-x",
        ];
        let others = [
            "deal-D-1001",
            "deal-D-100",
            "deal-D-10011",
            "deal-D",
            "customer-D-1001",
            "deal",
            "dealD-1001",
            "",
            "-",
            "org-main",
            "org-main-",
            "lead-x",
            "lead-X",
            "deals-D-1001",
        ];
        for n in names {
            let name = StreamName::parse(n).unwrap();
            for o in others {
                assert_eq!(name.is(o), name.to_string() == o, "{n} against {o}");
            }
        }
    }

    #[test]
    fn the_serialised_length_is_the_text_s() {
        let values = [
            serde_json::json!({}),
            serde_json::json!({"a": 1, "b": [1.5, "x\"y\u{e9}", null, true]}),
            serde_json::json!("tab\there"),
        ];
        for v in values {
            assert_eq!(
                crate::rules::serialised_len(&v),
                serde_json::to_string(&v).unwrap().len(),
                "{v}"
            );
        }
    }

    #[test]
    fn stream_names_parse_category_and_entity() {
        let s = StreamName::parse("deal-D-1001").unwrap();
        assert_eq!(s.category, Category::Deal);
        assert_eq!(s.entity, "D-1001");
        assert_eq!(s.to_string(), "deal-D-1001");
        assert!(matches!(
            StreamName::parse("deals-1"),
            Err(StreamNameError::UnknownCategory(_))
        ));
        assert!(matches!(
            StreamName::parse("deal"),
            Err(StreamNameError::NoSeparator(_))
        ));
        assert!(matches!(
            StreamName::parse("deal-"),
            Err(StreamNameError::BadEntityId(_))
        ));
        assert!(matches!(
            StreamName::parse("deal-a b"),
            Err(StreamNameError::BadEntityId(_))
        ));
        assert!(StreamName::parse(&format!("lead-{}", "x".repeat(64))).is_ok());
        assert!(StreamName::parse(&format!("lead-{}", "x".repeat(65))).is_err());
    }

    #[test]
    fn canonical_json_round_trips_and_uses_z_times() {
        let line = r#"{"id":"0192f4c2-6b1e-7c3a-9d2e-1f00c0ffee00","stream":"deal-D-1001","type":"DealStageChanged","version":3,"position":48211,"occurred_at":"2026-06-03T09:30:00Z","recorded_at":"2026-06-03T09:30:02.118Z","actor":"wukong","data":{"from":"presentation","to":"quote"},"metadata":{"correlation_id":"c"}}"#;
        let ev: RecordedEvent = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&ev).unwrap(), line);
    }

    #[test]
    fn expected_version_forms() {
        let p = |s: &str| serde_json::from_str::<ExpectedVersion>(s);
        assert_eq!(p("\"any\"").unwrap(), ExpectedVersion::Any);
        assert_eq!(p("\"no_stream\"").unwrap(), ExpectedVersion::NoStream);
        assert_eq!(p("7").unwrap(), ExpectedVersion::Exact(7));
        assert!(p("-1").is_err());
        assert!(p("\"latest\"").is_err());
    }
}
