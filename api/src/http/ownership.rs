//! Who owns a deal or a customer, and which team a rep is on — what scope decisions need.
//!
//! [`LogOwnership`] folds the few events that matter straight from the log's raw JSON.
//! It is kept in this one file on purpose: at merge it can be swapped for an
//! implementation over `domain::state` or the projections read model.

use std::sync::Arc;

use async_trait::async_trait;
use domain::{Category, StreamName};
use eventlog::{EventStore, Filter, RecordedEvent, StoreError};

/// The ownership of one entity stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The stream has no events.
    Missing,
    /// A customer in the public pool.
    Pool,
    /// A deal or customer owned by this rep.
    Owned(String),
    /// A stream that has no owner (leads, org, channels).
    Unowned,
}

#[async_trait]
pub trait OwnershipResolver: Send + Sync + 'static {
    async fn owner_of(&self, stream: &StreamName) -> Result<Ownership, StoreError>;
    /// The rep's team (the latest `RepJoined` in `org-*` streams): a rep who left stays on
    /// the team they left, so that their deals and figures stay the team's.
    async fn team_of(&self, rep: &str) -> Result<Option<String>, StoreError>;
}

/// Reads the entity's stream through the store on every ownership question; keeps a team
/// index that each team question brings up to the log's head by reading only the events
/// appended since the previous one (never the whole log per request).
pub struct LogOwnership {
    store: Arc<dyn EventStore>,
    teams: tokio::sync::Mutex<TeamIndex>,
}

/// Each rep's team from the latest `RepJoined`, as of log position `through`.
#[derive(Default)]
struct TeamIndex {
    through: u64,
    team: std::collections::HashMap<String, String>,
}

impl LogOwnership {
    pub fn new(store: Arc<dyn EventStore>) -> LogOwnership {
        LogOwnership {
            store,
            teams: Default::default(),
        }
    }
}

const PAGE: usize = 1000;

fn str_field(ev: &RecordedEvent, field: &str) -> Option<String> {
    ev.data
        .get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The ownership after `ev`, given the ownership before it.
pub fn fold_owner(before: Ownership, ev: &RecordedEvent) -> Ownership {
    let owned_or_pool = |rep: Option<String>| rep.map_or(Ownership::Pool, Ownership::Owned);
    match ev.event_type.as_str() {
        "DealOpened" => str_field(ev, "owner").map_or(before, Ownership::Owned),
        "DealReassigned" => str_field(ev, "to").map_or(before, Ownership::Owned),
        "CustomerRegistered" => owned_or_pool(str_field(ev, "owner")),
        "CustomerClaimed" | "CustomerAssigned" => {
            str_field(ev, "rep").map_or(before, Ownership::Owned)
        }
        "CustomerReleased" => Ownership::Pool,
        "CustomerUpdated" => match str_field(ev, "owner") {
            Some(rep) => Ownership::Owned(rep),
            None => before,
        },
        _ => before,
    }
}

#[async_trait]
impl OwnershipResolver for LogOwnership {
    async fn owner_of(&self, stream: &StreamName) -> Result<Ownership, StoreError> {
        let name = stream.to_string();
        let mut owner = Ownership::Missing;
        let mut from = 0;
        loop {
            let page = self.store.read_stream(&name, from, PAGE).await?;
            for ev in &page {
                owner = match (&owner, stream.category) {
                    (Ownership::Missing, Category::Deal | Category::Customer) => {
                        fold_owner(Ownership::Pool, ev)
                    }
                    (Ownership::Missing, _) => Ownership::Unowned,
                    _ => fold_owner(owner, ev),
                };
            }
            if page.len() < PAGE {
                return Ok(owner);
            }
            from += PAGE as u64;
        }
    }

    async fn team_of(&self, rep: &str) -> Result<Option<String>, StoreError> {
        let filter = Filter {
            types: vec!["RepJoined".into()],
            stream_prefix: Some("org-".into()),
        };
        let mut index = self.teams.lock().await;
        // Everything up to the head as it is now: an append acknowledged before this question
        // is seen by it.
        let head = self.store.last_position().await?;
        while index.through < head {
            let page = self
                .store
                .read_all(index.through + 1, PAGE, &filter)
                .await?;
            for ev in &page {
                if let (Some(rep), Some(team)) = (str_field(ev, "rep"), str_field(ev, "team")) {
                    index.team.insert(rep, team);
                }
            }
            index.through = match page.last() {
                Some(last) if page.len() == PAGE => last.position,
                Some(last) => last.position.max(head),
                None => head,
            };
        }
        Ok(index.team.get(rep).cloned())
    }
}
