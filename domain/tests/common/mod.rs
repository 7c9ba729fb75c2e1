//! A tiny in-memory log for the tests: appends go through `check_batch` and are written
//! only when the whole batch passes, exactly as `eventlog` does it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use domain::envelope::parse_time;
use domain::rules::{check_batch, Context};
use domain::state::{OrgState, StreamState};
use domain::{Category, RecordedEvent, Rejection, StreamName};
use serde_json::Value;

pub fn at(s: &str) -> DateTime<Utc> {
    parse_time(s).expect("test time")
}

/// The log's clock starts here; each new event is one hour later than the previous one.
pub const START: &str = "2026-06-01T09:00:00Z";
/// The validator's "now" in the tests: after every event the tests write.
pub const NOW: &str = "2027-01-01T00:00:00Z";

pub struct Log {
    pub org: OrgState,
    pub states: BTreeMap<String, StreamState>,
    pub events: Vec<RecordedEvent>,
    pub clock: DateTime<Utc>,
    pub now: DateTime<Utc>,
    next_id: u128,
}

impl Default for Log {
    fn default() -> Self {
        Log::new()
    }
}

/// The reps of the team every test works with (`Log::new`): they joined team east.
pub const TEAM: [&str; 3] = ["wukong", "bajie", "shaseng"];

impl Log {
    /// A log whose org has the [`TEAM`] joined (one `RepJoined` each on `org-acme`): the
    /// rules accept only reps who joined and have not left (`rep.active`).
    pub fn new() -> Log {
        let mut log = Log::empty();
        // The team joins in the hours before START, so the tests' own events keep their times.
        log.clock -= Duration::hours(TEAM.len() as i64);
        for rep in TEAM {
            log.join(rep);
        }
        log
    }

    /// A log with nothing in it, not even a rep.
    pub fn empty() -> Log {
        Log {
            org: OrgState::default(),
            states: BTreeMap::new(),
            events: Vec::new(),
            clock: at(START),
            now: at(NOW),
            next_id: 1,
        }
    }

    /// A new event one hour after the previous one, by `wukong`. Version and position are
    /// filled in by `append`.
    pub fn ev(&mut self, stream: &str, event_type: &str, data: Value) -> RecordedEvent {
        self.clock += Duration::hours(1);
        self.next_id += 1;
        RecordedEvent {
            id: uuid::Uuid::from_u128(self.next_id),
            stream: stream.into(),
            event_type: event_type.into(),
            version: 0,
            position: 0,
            occurred_at: self.clock,
            recorded_at: self.clock,
            actor: "wukong".into(),
            data: data.into(),
            metadata: Default::default(),
            schema_version: 0,
        }
    }

    pub fn state(&self, stream: &str) -> StreamState {
        self.states
            .get(stream)
            .cloned()
            .unwrap_or(StreamState::Empty)
    }

    /// What `check_batch` says about the batch, without writing.
    pub fn check(&self, stream: &str, batch: &[RecordedEvent]) -> Result<StreamState, Rejection> {
        let customers = |id: &str| {
            self.states
                .get(&format!("customer-{id}"))
                .and_then(|s| s.as_customer().cloned())
        };
        let ctx = Context {
            org: &self.org,
            now: self.now,
            customers: &customers,
        };
        check_batch(&ctx, &self.state(stream), stream, batch)
    }

    /// Checks, then writes the whole batch, or nothing.
    pub fn append(&mut self, stream: &str, mut batch: Vec<RecordedEvent>) -> Result<(), Rejection> {
        let first_version = self.events.iter().filter(|e| e.stream == stream).count() as u64;
        let first_position = self.events.len() as u64 + 1;
        for (i, e) in batch.iter_mut().enumerate() {
            e.version = first_version + i as u64;
            e.position = first_position + i as u64;
        }
        let after = self.check(stream, &batch)?;
        if StreamName::parse(stream).map(|n| n.category) == Ok(Category::Org) {
            for e in &batch {
                self.org.apply(e);
            }
        }
        self.states.insert(stream.to_string(), after);
        self.events.extend(batch);
        Ok(())
    }

    /// Appends one event that must pass (test set-up).
    pub fn ok(&mut self, stream: &str, event_type: &str, data: Value) -> RecordedEvent {
        let e = self.ev(stream, event_type, data);
        if let Err(r) = self.append(stream, vec![e.clone()]) {
            panic!("set-up event {event_type} on {stream} refused: {r}");
        }
        e
    }

    /// `rep` joins team east (a `RepJoined` on `org-acme` that must pass).
    pub fn join(&mut self, rep: &str) -> RecordedEvent {
        let data = serde_json::json!({"rep": rep, "name": rep.to_uppercase(), "team": "east", "manager": "tangseng"});
        self.ok("org-acme", "RepJoined", data)
    }

    /// A deal stream `deal-{id}` opened in `stage`, owned by wukong, 100000.00 CNY, on
    /// customer C-1 (registered for wukong first if it is not yet).
    pub fn open_deal(&mut self, id: &str, stage: &str) -> String {
        if !self.states.contains_key("customer-C-1") {
            self.register_customer("C-1", Some("wukong"));
        }
        let stream = format!("deal-{id}");
        self.ok(
            &stream,
            "DealOpened",
            serde_json::json!({"customer_id": "C-1", "owner": "wukong", "title": "ERP rollout",
                "amount": 100000.0, "stage": stage}),
        );
        stream
    }

    /// A customer stream `customer-{id}`, owned by `owner` (None = in the pool).
    pub fn register_customer(&mut self, id: &str, owner: Option<&str>) -> String {
        let stream = format!("customer-{id}");
        let mut data = serde_json::json!({"name": "Huaguo Trading", "industry": "retail"});
        if let Some(o) = owner {
            data["owner"] = o.into();
        }
        self.ok(&stream, "CustomerRegistered", data);
        stream
    }
}
