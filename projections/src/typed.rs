//! The one place where a recorded envelope becomes a typed event: the domain's
//! `schema::typed` (upcast to the current schema, then parse; data still in its stored form
//! is read straight from the bytes).

use domain::{Event, RecordedEvent};

/// Parses an envelope's `type` + `data` into a typed event; `None` when it does not parse
/// (such an event cannot be in a validated log, so the read model ignores it).
pub fn typed(ev: &RecordedEvent) -> Option<Event> {
    domain::schema::typed(ev).ok()
}
