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
    /// Whether the rep joined, and whether they have left since (a later `RepJoined`
    /// brings them back).
    async fn rep_status(&self, rep: &str) -> Result<RepStatus, StoreError>;
    /// Whether any `RepJoined` names `team`.
    async fn team_exists(&self, team: &str) -> Result<bool, StoreError>;
}

/// A rep as the `org-*` streams tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepStatus {
    /// No `RepJoined` for them.
    Unknown,
    Active,
    /// `RepLeft` after their latest `RepJoined`.
    Left,
}

/// Reads the entity's stream through the store on every ownership question; keeps a team
/// index that each team question brings up to the log's head by reading only the events
/// appended since the previous one (never the whole log per request).
pub struct LogOwnership {
    store: Arc<dyn EventStore>,
    teams: tokio::sync::Mutex<TeamIndex>,
}

/// Each rep's team from the latest `RepJoined`, the reps who left since, and every team
/// named, as of log position `through`.
#[derive(Default)]
struct TeamIndex {
    through: u64,
    team: std::collections::HashMap<String, String>,
    left: std::collections::HashSet<String>,
    teams: std::collections::HashSet<String>,
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
        Ok(self.teams().await?.team.get(rep).cloned())
    }

    async fn rep_status(&self, rep: &str) -> Result<RepStatus, StoreError> {
        let index = self.teams().await?;
        Ok(if !index.team.contains_key(rep) {
            RepStatus::Unknown
        } else if index.left.contains(rep) {
            RepStatus::Left
        } else {
            RepStatus::Active
        })
    }

    async fn team_exists(&self, team: &str) -> Result<bool, StoreError> {
        Ok(self.teams().await?.teams.contains(team))
    }
}

impl LogOwnership {
    /// The team index, brought up to the log's head.
    async fn teams(&self) -> Result<tokio::sync::MutexGuard<'_, TeamIndex>, StoreError> {
        let filter = Filter {
            types: vec!["RepJoined".into(), "RepLeft".into()],
            stream_prefix: Some("org-".into()),
        };
        // Everything up to the head as it is now: an append acknowledged before this question
        // is seen by it. Read before taking the lock, so that the questions every rep's
        // request asks (see `auth`) do not queue behind one another's reads of the head.
        let head = self.store.last_position().await?;
        let mut index = self.teams.lock().await;
        while index.through < head {
            let page = self
                .store
                .read_all(index.through + 1, PAGE, &filter)
                .await?;
            for ev in &page {
                let Some(rep) = str_field(ev, "rep") else {
                    continue;
                };
                if ev.event_type == "RepLeft" {
                    index.left.insert(rep);
                } else if let Some(team) = str_field(ev, "team") {
                    index.left.remove(&rep);
                    index.teams.insert(team.clone());
                    index.team.insert(rep, team);
                }
            }
            index.through = match page.last() {
                Some(last) if page.len() == PAGE => last.position,
                Some(last) => last.position.max(head),
                None => head,
            };
        }
        Ok(index)
    }
}
