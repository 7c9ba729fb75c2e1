//! Who owns a deal or a customer, and which team a rep is on — what scope decisions need.
//!
//! [`LogOwnership`] reads the entity's stream and folds it with the domain's fold
//! (`domain::state::fold_stream`, business order): the owner the scope decides on is the one
//! the customer and deal GETs and the reports show ([`ownership_of`]). A rep's team and
//! whether they left come from the domain's `OrgState`, kept current from the log's new
//! `RepJoined` / `RepLeft` (no scan of the log per request).

use std::sync::Arc;

use async_trait::async_trait;
use domain::state::{fold_stream, OrgState, StreamState};
use domain::{Category, Event, StreamName};
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

/// The reps as the domain's [`OrgState`] folds their `RepJoined` / `RepLeft` (in log order,
/// as the rules fold the organisation), and every team a `RepJoined` named, as of log
/// position `through`.
#[derive(Default)]
struct TeamIndex {
    through: u64,
    org: OrgState,
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

/// The ownership of `stream` after `events` (its events, in any order), by the domain's fold.
pub fn ownership_of(stream: &StreamName, events: &[RecordedEvent]) -> Ownership {
    if events.is_empty() {
        return Ownership::Missing;
    }
    match fold_stream(&stream.to_string(), events) {
        StreamState::Deal(d) => Ownership::Owned(d.owner.to_string()),
        StreamState::Customer(c) => c.owner.map_or(Ownership::Pool, Ownership::Owned),
        // A deal or customer stream without its opening event (the rules keep it out): no
        // owner, as for the pool.
        _ if matches!(stream.category, Category::Deal | Category::Customer) => Ownership::Pool,
        _ => Ownership::Unowned,
    }
}

#[async_trait]
impl OwnershipResolver for LogOwnership {
    async fn owner_of(&self, stream: &StreamName) -> Result<Ownership, StoreError> {
        let name = stream.to_string();
        if !matches!(stream.category, Category::Deal | Category::Customer) {
            // Only whether it exists: its first event.
            let first = self.store.read_stream(&name, 0, 1).await?;
            return Ok(ownership_of(stream, &first));
        }
        let mut events = Vec::new();
        loop {
            let page = self
                .store
                .read_stream(&name, events.len() as u64, PAGE)
                .await?;
            let done = page.len() < PAGE;
            events.extend(page);
            if done {
                return Ok(ownership_of(stream, &events));
            }
        }
    }

    async fn team_of(&self, rep: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .teams()
            .await?
            .org
            .reps
            .get(rep)
            .map(|r| r.team.clone()))
    }

    async fn rep_status(&self, rep: &str) -> Result<RepStatus, StoreError> {
        Ok(match self.teams().await?.org.reps.get(rep) {
            None => RepStatus::Unknown,
            Some(r) if r.active => RepStatus::Active,
            Some(_) => RepStatus::Left,
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
                let Ok(event) = domain::schema::typed(ev) else {
                    continue;
                };
                index.org.apply_event(&event, ev.occurred_at);
                if let Event::RepJoined(j) = event {
                    index.teams.insert(j.team);
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
