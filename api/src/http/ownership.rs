//! Who owns a deal or a customer, and which team a rep is on — what scope decisions need.
//!
//! [`LogOwnership`] keeps an index of the log ([`LogIndex`]) that each question brings up to
//! the log's head by reading only the events appended since the previous question (never a
//! stream or the whole log per request): an append acknowledged before a question is seen by
//! it. Owners come from the domain's [`Owners`] (the owner `domain::state::fold_stream` ends
//! with, business order: the one the customer and deal GETs and the reports show,
//! [`ownership_of`]); a rep's team and whether they left from the domain's `OrgState`.

use std::sync::Arc;

use async_trait::async_trait;
use domain::state::{business_key, OrgFold, Owner, Owners};
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
    /// Brings what the resolver keeps up to the log's head: `serve` calls it at start, so
    /// that the first scoped request does not wait for the whole log to be read.
    async fn catch_up(&self) -> Result<(), StoreError> {
        Ok(())
    }
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

/// Answers ownership and team questions from a [`LogIndex`] that each question brings up to
/// the log's head by reading only the events appended since the previous one.
pub struct LogOwnership {
    store: Arc<dyn EventStore>,
    index: tokio::sync::Mutex<LogIndex>,
}

/// What scope decisions need from the log, as of log position `through`: the owner of every
/// deal and customer stream ([`Owners`]); the reps as the domain's [`OrgFold`] folds their
/// `RepJoined` / `RepLeft` (in business order, as every reader folds the organisation), and
/// every team a `RepJoined` named.
#[derive(Default)]
pub struct LogIndex {
    through: u64,
    owners: Owners,
    /// The fold of the `RepJoined` / `RepLeft` taken so far.
    org: OrgFold,
    teams: std::collections::HashSet<String>,
}

impl LogIndex {
    /// Takes the next event of the log (or any event, for [`LogIndex::ownership`]).
    pub fn apply(&mut self, ev: &RecordedEvent) {
        self.through = self.through.max(ev.position);
        match StreamName::parse(&ev.stream).map(|n| n.category) {
            Ok(Category::Deal | Category::Customer) => self.owners.apply(ev),
            Ok(Category::Org) if matches!(ev.event_type.as_str(), "RepJoined" | "RepLeft") => {
                let Ok(event) = domain::schema::typed(ev) else {
                    return;
                };
                if let Event::RepJoined(j) = &event {
                    self.teams.insert(j.team.clone());
                }
                self.org.apply_event(business_key(ev), event);
            }
            _ => {}
        }
    }

    /// The rep's team (see [`OwnershipResolver::team_of`]).
    pub fn team_of(&self, rep: &str) -> Option<&str> {
        self.org.state().reps.get(rep).map(|r| r.team.as_str())
    }

    pub fn rep_status(&self, rep: &str) -> RepStatus {
        match self.org.state().reps.get(rep) {
            None => RepStatus::Unknown,
            Some(r) if r.active => RepStatus::Active,
            Some(_) => RepStatus::Left,
        }
    }

    /// The ownership of a deal or customer `stream` after the events taken so far; any other
    /// stream is [`Ownership::Unowned`] (whether it exists is not kept here).
    pub fn ownership(&self, stream: &StreamName) -> Ownership {
        if !matches!(stream.category, Category::Deal | Category::Customer) {
            return Ownership::Unowned;
        }
        match self.owners.owner(&stream.to_string()) {
            Owner::Missing => Ownership::Missing,
            // A customer in the pool; or a deal or customer stream without its opening event
            // (the rules keep it out): no owner, as for the pool.
            Owner::Nobody => Ownership::Pool,
            Owner::Rep(rep) => Ownership::Owned(rep.to_string()),
        }
    }
}

impl LogOwnership {
    pub fn new(store: Arc<dyn EventStore>) -> LogOwnership {
        LogOwnership {
            store,
            index: Default::default(),
        }
    }
}

const PAGE: usize = 1000;

/// The most events a question applies to the index on its own (async) worker.
const INLINE: usize = 64;

/// The ownership of `stream` after `events` (its events, in any order), as the index has it.
pub fn ownership_of(stream: &StreamName, events: &[RecordedEvent]) -> Ownership {
    if events.is_empty() {
        return Ownership::Missing;
    }
    let mut index = LogIndex::default();
    for ev in events {
        index.apply(ev);
    }
    index.ownership(stream)
}

#[async_trait]
impl OwnershipResolver for LogOwnership {
    async fn owner_of(&self, stream: &StreamName) -> Result<Ownership, StoreError> {
        if !matches!(stream.category, Category::Deal | Category::Customer) {
            // Only whether it exists (one look-up in the store's stream index).
            let version = self.store.stream_version(&stream.to_string()).await?;
            return Ok(version.map_or(Ownership::Missing, |_| Ownership::Unowned));
        }
        Ok(self.index().await?.ownership(stream))
    }

    async fn team_of(&self, rep: &str) -> Result<Option<String>, StoreError> {
        Ok(self.index().await?.team_of(rep).map(str::to_string))
    }

    async fn rep_status(&self, rep: &str) -> Result<RepStatus, StoreError> {
        Ok(self.index().await?.rep_status(rep))
    }

    async fn team_exists(&self, team: &str) -> Result<bool, StoreError> {
        Ok(self.index().await?.teams.contains(team))
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        self.index().await.map(drop)
    }
}

impl LogOwnership {
    /// The index, brought up to the log's head.
    async fn index(&self) -> Result<tokio::sync::MutexGuard<'_, LogIndex>, StoreError> {
        // Everything up to the head as it is now: an append acknowledged before this question
        // is seen by it. Read before taking the lock, so that the questions every rep's
        // request asks (see `auth`) do not queue behind one another's reads of the head.
        let head = self.store.last_position().await?;
        let mut index = self.index.lock().await;
        while index.through < head {
            let page = self
                .store
                .read_all(index.through + 1, PAGE, &Filter::default())
                .await?;
            let full = page.len() == PAGE;
            if page.len() <= INLINE {
                for ev in &page {
                    index.apply(ev);
                }
            } else {
                // A long way behind (the first question after a start, before `serve`'s
                // `catch_up` is done): parsing pages of the log is work for a blocking thread.
                // Should it fail, the index starts again from nothing at the next question.
                let mut taken = std::mem::take(&mut *index);
                *index = tokio::task::spawn_blocking(move || {
                    for ev in &page {
                        taken.apply(ev);
                    }
                    taken
                })
                .await
                .map_err(|e| StoreError::Backend(format!("indexing owners failed: {e}")))?;
            }
            if !full {
                // Nothing more up to `head` (read past it, or an empty log between).
                index.through = index.through.max(head);
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlog::memory::MemoryStore;
    use eventlog::{ExpectedVersion, ProposedEvent};
    use serde_json::json;

    fn event(event_type: &str, data: serde_json::Value) -> ProposedEvent {
        ProposedEvent {
            id: None,
            event_type: event_type.into(),
            occurred_at: None,
            actor: None,
            data: data.into(),
            metadata: None,
            recorded_at: None,
        }
    }

    async fn append(store: &MemoryStore, stream: &str, events: Vec<ProposedEvent>) {
        store
            .append(stream, ExpectedVersion::Any, events)
            .await
            .expect("append");
    }

    fn name(stream: &str) -> StreamName {
        StreamName::parse(stream).expect("a stream name")
    }

    /// More than a page of the log behind (the first question after a start): the index is
    /// built on a blocking thread, page by page, and then follows one event at a time.
    #[tokio::test]
    async fn the_index_catches_up_over_pages_then_follows_each_append() {
        let store = Arc::new(MemoryStore::new());
        append(
            &store,
            "org-acme",
            vec![event(
                "RepJoined",
                json!({"rep": "wukong", "name": "Wukong", "team": "east"}),
            )],
        )
        .await;
        for i in 0..1500 {
            let owner = if i % 2 == 0 { "wukong" } else { "bajie" };
            let opened = json!({"customer_id": "C1", "owner": owner, "title": "t", "amount": 1, "stage": "qualified"});
            append(
                &store,
                &format!("deal-D{i}"),
                vec![event("DealOpened", opened)],
            )
            .await;
        }
        let released = vec![event("CustomerReleased", json!({"reason": "idle"}))];
        append(&store, "customer-C1", released).await;
        let owners = LogOwnership::new(store.clone());
        let owned = |rep: &str| Ownership::Owned(rep.into());
        for (stream, want) in [
            ("deal-D0", owned("wukong")),
            ("deal-D1499", owned("bajie")),
            // Events but no registration: no owner.
            ("customer-C1", Ownership::Pool),
            ("deal-D1500", Ownership::Missing),
            ("org-acme", Ownership::Unowned),
            ("org-other", Ownership::Missing),
        ] {
            let got = owners.owner_of(&name(stream)).await.unwrap();
            assert_eq!(got, want, "{stream}");
        }
        assert_eq!(
            owners.team_of("wukong").await.unwrap().as_deref(),
            Some("east")
        );

        let reassigned = json!({"from": "wukong", "to": "bajie"});
        append(&store, "deal-D0", vec![event("DealReassigned", reassigned)]).await;
        assert_eq!(
            owners.owner_of(&name("deal-D0")).await.unwrap(),
            owned("bajie")
        );
        let left = vec![event("RepLeft", json!({"rep": "wukong"}))];
        append(&store, "org-acme", left).await;
        assert_eq!(owners.rep_status("wukong").await.unwrap(), RepStatus::Left);
    }
}
