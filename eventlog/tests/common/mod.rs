//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod disk;
pub mod stores;

use std::sync::Arc;

use eventlog::{AppendValidator, EnvelopeOnly, ProposedEvent, SledStore};
use serde_json::json;

pub fn open(dir: &std::path::Path) -> SledStore {
    SledStore::open(dir, Arc::new(EnvelopeOnly)).expect("open store")
}

pub fn open_with(dir: &std::path::Path, v: Arc<dyn AppendValidator>) -> SledStore {
    SledStore::open(dir, v).expect("open store")
}

/// A note event with a distinguishing number.
pub fn note(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: None,
        event_type: "ActivityLogged".into(),
        occurred_at: None,
        actor: Some("wukong".into()),
        data: json!({ "kind": "note", "rep": "wukong", "n": n }).into(),
        metadata: None,
        recorded_at: None,
    }
}

pub fn note_with_id(n: u64) -> ProposedEvent {
    ProposedEvent {
        id: Some(uuid::Uuid::now_v7()),
        ..note(n)
    }
}
