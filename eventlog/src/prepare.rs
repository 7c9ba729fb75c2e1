//! What happens to a batch before the validator sees it, the same in every store (sled and
//! memory): envelope checks, the idempotency comparison, and the assignment of id, version,
//! position, times and actor.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use domain::StreamName;
use uuid::Uuid;

use crate::{
    AppendOutcome, ExpectedVersion, ProposedEvent, RecordedEvent, StoreError, StreamBatch,
    DEFAULT_ACTOR, MAX_BATCH_EVENTS,
};

/// The recording time of an append: now, to the microsecond.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The checks that need no log: stream name, non-empty batch, types, actors, metadata size,
/// ids unique within the batch.
pub(crate) fn check_envelope(batch: &StreamBatch) -> Result<(), StoreError> {
    let invalid = |m: String| Err(StoreError::Invalid(m));
    if let Err(e) = StreamName::parse(&batch.stream) {
        return invalid(format!("stream: {e}"));
    }
    if batch.events.is_empty() {
        return invalid(format!(
            "the batch for stream {} has no events: send at least one",
            batch.stream
        ));
    }
    if batch.events.len() > MAX_BATCH_EVENTS {
        return invalid(format!(
            "the batch for stream {} has {} events, at most {MAX_BATCH_EVENTS} allowed",
            batch.stream,
            batch.events.len()
        ));
    }
    // One event (an import's batches, most live appends) cannot repeat an id.
    let mut ids = HashSet::with_hasher(foldhash::fast::RandomState::default());
    let one = batch.events.len() == 1;
    for (k, ev) in batch.events.iter().enumerate() {
        if ev.event_type.trim().is_empty() {
            return invalid(format!("event {k}: `type` must not be empty"));
        }
        if ev.actor.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return invalid(format!(
                "event {k}: `actor` must not be empty (omit it for {DEFAULT_ACTOR:?})"
            ));
        }
        if let Some(m) = &ev.metadata {
            // The domain's rule, with its code, field and index (SPEC §1.3), so the answer
            // is the same whichever validator the store runs.
            domain::rules::check_metadata_size(domain::rules::serialised_len(m))
                .map_err(|r| StoreError::Rejected(r.at(k)))?;
        }
        if let Some(id) = ev.id.filter(|_| !one) {
            if !ids.insert(id) {
                return invalid(format!("event {k}: id {id} appears twice in the batch"));
            }
        }
    }
    Ok(())
}

/// `Ok` if a stream at version `current` (`None`: no stream) satisfies `expected`.
pub(crate) fn check_expected(
    stream: &str,
    expected: ExpectedVersion,
    current: Option<u64>,
) -> Result<(), StoreError> {
    let ok = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => current.is_none(),
        ExpectedVersion::Exact(n) => current == Some(n),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::WrongExpectedVersion {
            stream: stream.to_string(),
            expected,
            actual: current,
        })
    }
}

/// Whether `proposed` (for `stream`) is the same event as the already recorded `existing`
/// (SPEC §1.1): same stream, type, data and metadata, and the same `occurred_at` and `actor`
/// when the proposal gives them (an absent one takes the default it took the first time, so
/// a retry without them is the same event). A personal field that reads `"[erased]"` (its
/// person's key destroyed) is the same as any text proposed in it (`personal::fields`). Appending it again is then a no-op; an id
/// already recorded with other content is a [`StoreError::IdConflict`]. `import`'s dry run
/// asks the same question.
pub fn same_content(stream: &str, proposed: &ProposedEvent, existing: &RecordedEvent) -> bool {
    existing.stream == stream
        && existing.event_type == proposed.event_type
        && (existing.data == proposed.data
            || crate::personal::fields::same_data_but_erased(
                stream,
                &proposed.event_type,
                existing.data.value(),
                &proposed.data,
            ))
        && proposed
            .metadata
            .as_ref()
            .map_or(existing.metadata.is_empty(), |m| existing.metadata == *m)
        && proposed
            .occurred_at
            .is_none_or(|t| t == existing.occurred_at)
        && proposed
            .actor
            .as_deref()
            .is_none_or(|a| a == existing.actor)
}

/// The event as it will be written. `recorded_at` is `now` unless the proposal carries one
/// (import); `occurred_at` defaults to `recorded_at`; `actor` to [`DEFAULT_ACTOR`]; the id to
/// a fresh UUIDv7.
pub(crate) fn assign(
    stream: &str,
    ev: ProposedEvent,
    version: u64,
    position: u64,
    now: DateTime<Utc>,
) -> RecordedEvent {
    let recorded_at = ev.recorded_at.unwrap_or(now);
    RecordedEvent {
        id: ev.id.unwrap_or_else(Uuid::now_v7),
        stream: stream.to_string(),
        event_type: ev.event_type,
        version,
        position,
        occurred_at: ev.occurred_at.unwrap_or(recorded_at),
        recorded_at,
        actor: ev.actor.unwrap_or_else(|| DEFAULT_ACTOR.to_string()),
        data: ev.data,
        metadata: ev.metadata.unwrap_or_default(),
        schema_version: 0,
    }
}

/// The outcome of a batch whose events `found` (index in the batch, the event as recorded)
/// are already in the log with the same content: the original positions when all `len` are
/// there, nothing when none is, and an error when only some are (a retry must be whole).
pub(crate) fn already_written<E: std::borrow::Borrow<RecordedEvent>>(
    found: &[(usize, E)],
    len: usize,
) -> Result<Option<AppendOutcome>, StoreError> {
    let Some((k, first)) = found.first() else {
        return Ok(None);
    };
    if found.len() < len {
        let e = first.borrow();
        return Err(StoreError::Invalid(format!(
            "event {k}: id {} is already in the log (position {}) but other events of the \
             batch are not: retry a batch whole, or drop the events already written",
            e.id, e.position
        )));
    }
    let events = || found.iter().map(|(_, e)| e.borrow());
    Ok(Some(AppendOutcome {
        first_position: events().map(|e| e.position).min().unwrap_or(0),
        last_position: events().map(|e| e.position).max().unwrap_or(0),
        next_expected_version: events().map(|e| e.version).max().unwrap_or(0),
    }))
}
