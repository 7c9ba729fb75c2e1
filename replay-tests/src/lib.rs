//! # replay-tests — event logs built by hand, and the tests that replay them
//!
//! Layout:
//! - this file: [`LogBuilder`], which writes canonical events the way the store would
//!   (positions, per-stream versions, ids, `recorded_at` never going backwards, so an
//!   `occurred_at` earlier than the previous event's is a late entry), and
//!   [`LogBuilder::refusals`], what the domain's rules would refuse of such a log.
//! - `tests/org_*.rs`: small organisations whose report figures are worked out by hand in
//!   the comments and compared with every report.
//! - `tests/model_props.rs`: property tests over random valid logs (incremental with
//!   restarts == rebuild, as-of == fold of the earlier events, determinism).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::rules::{check_batch, Context};
use domain::state::{OrgState, StreamState};
use domain::{RecordedEvent, Rejection};
use serde_json::Value;

/// Parses an RFC 3339 time; panics on a typo (tests only).
pub fn t(s: &str) -> DateTime<Utc> {
    domain::envelope::parse_time(s).unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
}

/// Appends canonical events as the store would number them.
#[derive(Debug, Default, Clone)]
pub struct LogBuilder {
    events: Vec<RecordedEvent>,
    versions: HashMap<String, u64>,
}

impl LogBuilder {
    pub fn new() -> LogBuilder {
        LogBuilder::default()
    }

    /// Appends one event that occurred at `at`; returns its position.
    pub fn ev(&mut self, at: &str, stream: &str, ty: &str, actor: &str, data: Value) -> u64 {
        self.ev_at(t(at), stream, ty, actor, data)
    }

    pub fn ev_at(
        &mut self,
        occurred_at: DateTime<Utc>,
        stream: &str,
        ty: &str,
        actor: &str,
        data: Value,
    ) -> u64 {
        let position = self.events.len() as u64 + 1;
        let version = self.versions.entry(stream.to_string()).or_insert(0);
        let recorded_at = self
            .events
            .last()
            .map_or(occurred_at, |l| l.recorded_at.max(occurred_at));
        self.events.push(RecordedEvent {
            id: uuid::Uuid::from_u128(u128::from(position)),
            stream: stream.to_string(),
            event_type: ty.to_string(),
            version: *version,
            position,
            occurred_at,
            recorded_at,
            actor: actor.to_string(),
            data: data.into(),
            metadata: Default::default(),
            schema_version: 0,
        });
        *version += 1;
        position
    }

    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }

    /// The events the domain's rules would refuse if the log were appended one event at a
    /// time, in order, at `now` (each with its position and rejection): a hand-built log
    /// should be one the service accepts.
    pub fn refusals(&self, now: DateTime<Utc>) -> Vec<(u64, Rejection)> {
        let mut org = OrgState::default();
        let mut states: HashMap<String, StreamState> = HashMap::new();
        let mut out = Vec::new();
        for ev in &self.events {
            let customers = |id: &str| {
                states
                    .get(&format!("customer-{id}"))
                    .and_then(|s| s.as_customer().cloned())
            };
            let ctx = Context {
                org: &org,
                now,
                customers: &customers,
            };
            let before = states
                .get(&ev.stream)
                .cloned()
                .unwrap_or(StreamState::Empty);
            match check_batch(&ctx, &before, &ev.stream, std::slice::from_ref(ev)) {
                Ok(after) => {
                    if ev.stream.starts_with("org-") {
                        org.apply(ev);
                    }
                    states.insert(ev.stream.clone(), after);
                }
                Err(r) => out.push((ev.position, r)),
            }
        }
        out
    }
}
