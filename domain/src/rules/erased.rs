//! After `PersonalDataErased`, the person's stream carries no personal data again
//! (`person.erased_no_personal_data`; its deals are the event store's to check: see
//! `eventlog::personal`).

use super::catalog::*;
use crate::envelope::{RecordedEvent, StreamName};
use crate::events::personal_fields;
use crate::rejection::Rejection;
use crate::state::StreamState;

pub(super) fn check(
    state: &StreamState,
    name: &StreamName,
    ev: &RecordedEvent,
) -> Result<(), Rejection> {
    let (erased, person) = match state {
        StreamState::Customer(c) => (c.erased, format!("customer {}", c.customer_id)),
        StreamState::Lead(l) => (l.erased, format!("lead {}", l.lead_id)),
        _ => return Ok(()),
    };
    if !erased {
        return Ok(());
    }
    let fields = personal_fields(name.category, &ev.event_type);
    let data = ev.data.value();
    for f in fields {
        if data
            .get(*f)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
        {
            return Err(PERSON_ERASED_NO_DATA.reject(
                format!("data.{f}"),
                "(personal data)",
                format!("the personal data of {person} was erased: no event about it may carry {f} again"),
            ));
        }
    }
    Ok(())
}
