//! The one place where a recorded envelope becomes a typed event.
//!
//! SEAM: when `domain::schema::typed` (upcast + parse) lands, replace the body of [`typed`]
//! with a call to it. Nothing else in this crate parses `data`.

use domain::{Event, RecordedEvent};

/// Parses an envelope's `type` + `data` into a typed event; `None` when it does not parse
/// (such an event cannot be in a validated log, so the read model ignores it).
pub fn typed(ev: &RecordedEvent) -> Option<Event> {
    Event::from_data(&ev.event_type, &ev.data).ok()
}
