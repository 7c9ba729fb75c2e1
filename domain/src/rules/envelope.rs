//! Rules on the envelope: stream, actor, metadata, times, type, data shape, opening events.

use chrono::{DateTime, Duration, Utc};

use super::catalog::*;
use crate::envelope::{
    format_time, Category, RecordedEvent, StreamName, MAX_FUTURE_SKEW_SECS, MAX_METADATA_BYTES,
};
use crate::events::{categories_of, Event};
use crate::rejection::Rejection;
use crate::state::StreamState;

const MAX_ACTOR_CHARS: usize = 128;

/// The length of `value` serialised as JSON, counted without building the text;
/// `usize::MAX` if it cannot be serialised.
pub fn serialised_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// The metadata rule (SPEC §1.3) for metadata of `bytes` bytes serialised; stores that
/// check it before the rules run (on the proposed events) answer with the same rejection.
pub fn check_metadata_size(bytes: usize) -> Result<(), Rejection> {
    if bytes > MAX_METADATA_BYTES {
        return Err(METADATA_SIZE.reject(
            "metadata",
            bytes,
            format!("metadata is {bytes} bytes serialised; at most {MAX_METADATA_BYTES}"),
        ));
    }
    Ok(())
}

pub(super) fn check_envelope(
    now: DateTime<Utc>,
    name: &StreamName,
    ev: &RecordedEvent,
) -> Result<(), Rejection> {
    if !name.is(&ev.stream) {
        return Err(STREAM_MATCH.reject(
            "stream",
            json_text(&ev.stream),
            format!(
                "the event names stream {:?} but is appended to {name}",
                ev.stream
            ),
        ));
    }
    if ev.actor.trim().is_empty() || ev.actor.chars().count() > MAX_ACTOR_CHARS {
        return Err(ACTOR.reject(
            "actor",
            json_text(&ev.actor),
            "actor must be a non-blank name of at most 128 characters (a rep id, `system`, a service)",
        ));
    }
    check_metadata_size(serialised_len(&ev.metadata))?;
    let skew = Duration::seconds(MAX_FUTURE_SKEW_SECS);
    // Checked: a time near the end of chrono's range must not panic.
    let plus_skew = |t: DateTime<Utc>| {
        t.checked_add_signed(skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    };
    if ev.recorded_at > plus_skew(now) {
        return Err(RECORDED_IN_FUTURE.reject(
            "recorded_at",
            json_text(&format_time(&ev.recorded_at)),
            format!(
                "recorded_at is later than now ({}) + 5 minutes",
                format_time(&now)
            ),
        ));
    }
    if ev.occurred_at > plus_skew(ev.recorded_at) {
        return Err(OCCURRED_AFTER_RECORDED.reject(
            "occurred_at",
            json_text(&format_time(&ev.occurred_at)),
            format!(
                "occurred_at is more than 5 minutes after recorded_at ({})",
                format_time(&ev.recorded_at)
            ),
        ));
    }
    Ok(())
}

/// Upcasts, checks the type against the stream's category, and parses `data`.
pub(super) fn check_type_and_data(
    name: &StreamName,
    ev: &RecordedEvent,
) -> Result<Event, Rejection> {
    // Upcast only when not current: a copy of every event checked was most of the cost of
    // checking a large import.
    let upcast;
    let ev = if ev.schema_version == 0
        || ev.schema_version >= crate::schema::current_schema_version(&ev.event_type)
    {
        ev
    } else {
        upcast = crate::schema::upcast(ev.clone());
        &upcast
    };
    let Some(categories) = categories_of(&ev.event_type) else {
        return Err(TYPE_KNOWN.reject(
            "type",
            json_text(&ev.event_type),
            format!("unknown event type {:?}", ev.event_type),
        ));
    };
    if !categories.contains(&name.category) {
        let allowed: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        return Err(TYPE_CATEGORY.reject(
            "type",
            json_text(&ev.event_type),
            format!(
                "{} belongs to {} streams, not to {}",
                ev.event_type,
                allowed.join("/"),
                name.category.as_str()
            ),
        ));
    }
    // Data still in its binary form (an import's spool) is read straight from the bytes, as
    // `schema::typed` reads the log; any error takes the path through the `Value` that words
    // the rejection.
    let stored = ev.data.undecoded();
    if let Some(Ok(event)) = stored.map(|b| Event::from_stored(&ev.event_type, b)) {
        return Ok(event);
    }
    crate::schema::parse(&ev.event_type, &ev.data)
}

fn opening_type(category: Category) -> Option<&'static str> {
    match category {
        Category::Deal => Some("DealOpened"),
        Category::Customer => Some("CustomerRegistered"),
        Category::Lead => Some("LeadCaptured"),
        Category::Channel | Category::Org => None,
    }
}

pub(super) fn check_opening(
    state: &StreamState,
    name: &StreamName,
    event: &Event,
    ev: &RecordedEvent,
) -> Result<(), Rejection> {
    let Some(opening) = opening_type(name.category) else {
        return Ok(());
    };
    let is_opening = event.type_name() == opening;
    let exists = !matches!(state, StreamState::Empty);
    if !exists && !is_opening {
        return Err(OPENING_FIRST.reject(
            "type",
            json_text(event.type_name()),
            format!("{name} does not exist yet: its first event must be {opening}"),
        ));
    }
    if exists && is_opening {
        return Err(OPENING_ONCE.reject(
            "type",
            json_text(event.type_name()),
            format!("{name} already exists: {opening} may only be its first event"),
        ));
    }
    if let Some(opened_at) = state.opened_at() {
        if ev.occurred_at < opened_at {
            return Err(BEFORE_OPENING.reject(
                "occurred_at",
                json_text(&format_time(&ev.occurred_at)),
                format!(
                    "occurred_at is before {name} was opened ({})",
                    format_time(&opened_at)
                ),
            ));
        }
    }
    Ok(())
}
