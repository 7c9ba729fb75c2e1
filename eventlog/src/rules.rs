//! The domain's rules in front of every append: [`DomainRules`] implements
//! [`AppendValidator`] with `domain::rules::check_batch`.
//!
//! Folding a stream from disk for every append would be slow, so the folded state of recently
//! appended streams is cached, keyed by the version of its last event. The store assigns
//! versions from what is really written, so a stale entry (e.g. from a batch that was
//! validated but then not written because a later batch of the same atomic append was
//! refused) never matches and the stream is folded from disk again. The same cache lets a
//! later batch of one atomic multi-stream append see an earlier batch of the same stream.
//! The one other stream a rule reads (the customer a `DealOpened` names) is folded from the
//! log view each time. A state is folded in business order (`domain::state`): a batch with a
//! late event (`domain::state::is_late`) is checked, but its state is not cached, so that
//! the next append folds the stream again, with the late event in its place. The organisation
//! (every `org-` stream) is folded the same way, in business order, and folded again after a
//! late org event.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use domain::rules::{self, check_batch_owned, Context};
use domain::state::{fold_stream, is_late, OrgFold, StreamState};
use domain::RecordedEvent;

use crate::{AppendValidator, LogView, ValidateError};

/// How many folded streams to keep before the cache is emptied (after a write, never mid-append).
const CACHE_STREAMS: usize = 200_000;

/// Validates appends with the domain's rules.
pub struct DomainRules {
    clock: fn() -> DateTime<Utc>,
    inner: Mutex<Cache>,
}

type Cached = (u64, StreamState, Option<DateTime<Utc>>);

#[derive(Default)]
struct Cache {
    /// The organisation (pipeline in force, reps, targets) folded over every `org-` stream, in
    /// business order.
    org: Option<OrgFold>,
    /// stream → (version of its last event, state after it, latest `occurred_at`).
    streams: HashMap<String, Cached>,
}

impl Default for DomainRules {
    fn default() -> Self {
        DomainRules::new(Utc::now)
    }
}

impl DomainRules {
    /// `clock` gives "now" for the far-future check (tests pass a fixed one).
    pub fn new(clock: fn() -> DateTime<Utc>) -> DomainRules {
        DomainRules {
            clock,
            inner: Mutex::new(Cache::default()),
        }
    }
}

/// Whether `batch` holds a late event after events whose latest `occurred_at` is `latest`
/// (see `domain::state::is_late`), and the latest `occurred_at` after it.
fn after(
    mut latest: Option<DateTime<Utc>>,
    batch: &[RecordedEvent],
) -> (bool, Option<DateTime<Utc>>) {
    let mut late = false;
    for ev in batch {
        late |= is_late(latest, ev);
        latest = latest.max(Some(ev.occurred_at));
    }
    (late, latest)
}

impl AppendValidator for DomainRules {
    fn validate(
        &self,
        view: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), ValidateError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let cache = &mut *guard;
        let org = match &mut cache.org {
            Some(org) => org,
            none => none.insert(OrgFold::of(&view.streams_with_prefix("org-")?)),
        };
        // Taken out, not cloned: a refused batch leaves the stream to be folded again.
        let cached = cache
            .streams
            .remove(stream)
            .filter(|(v, _, _)| first.version > 0 && *v == first.version - 1)
            .map(|(_, s, latest)| (s, latest));
        let (state, latest) = match cached {
            Some(s) => s,
            None if first.version == 0 => (StreamState::Empty, None),
            None => {
                let events = view.stream(stream)?;
                let latest = events.iter().map(|e| e.occurred_at).max();
                (fold_stream(stream, &events), latest)
            }
        };
        // The customer a `DealOpened` names, folded from the log as it stands (pending
        // events of this group and request included): never from the cache, whose entry may
        // come from a batch that was checked but then not written.
        let customer = match rules::customer_named(stream, batch) {
            Some(id) => {
                let name = format!("customer-{id}");
                fold_stream(&name, &view.stream(&name)?)
                    .as_customer()
                    .cloned()
            }
            None => None,
        };
        let customers = |id: &str| customer.as_ref().filter(|c| c.customer_id == id).cloned();
        // The organisation is borrowed, not cloned: an org of hundreds of reps cloned for
        // every batch was most of the cost of a large import.
        let ctx = Context {
            org: org.state(),
            now: (self.clock)(),
            customers: &customers,
        };
        match check_batch_owned(&ctx, state, stream, batch) {
            Ok(next) => {
                let last = batch.last().map(|e| e.version).unwrap_or(first.version);
                let (late, latest) = after(latest, batch);
                if !late {
                    cache
                        .streams
                        .insert(stream.to_string(), (last, next, latest));
                }
                if stream.starts_with("org-") {
                    for ev in batch {
                        org.apply(ev);
                    }
                }
                Ok(())
            }
            Err(r) => {
                // An earlier batch of this atomic append may have changed the organisation;
                // it will not be written now, so fold it again from disk next time.
                cache.org = None;
                Err(ValidateError::Rejected(r))
            }
        }
    }

    fn applied(&self, _batch: &[RecordedEvent]) {
        let mut cache = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if cache.streams.len() > CACHE_STREAMS {
            cache.streams.clear();
        }
    }

    fn reset(&self) {
        // Batches validated since the last reset may not be in the log: fold from disk again.
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Cache::default();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::DomainRules;
    use crate::memory::MemoryStore;
    use crate::{EventStore, ExpectedVersion, ProposedEvent, SledStore, StoreError, StreamBatch};

    fn ev(t: &str, data: serde_json::Value) -> Vec<ProposedEvent> {
        vec![serde_json::from_value(json!({"type": t, "data": data})).unwrap()]
    }

    fn batch(stream: &str, t: &str, data: serde_json::Value) -> StreamBatch {
        StreamBatch {
            stream: stream.into(),
            expected: ExpectedVersion::Any,
            events: ev(t, data),
        }
    }

    fn deal_for(owner: &str) -> serde_json::Value {
        json!({"customer_id": "C-1", "owner": owner, "title": "t", "amount": 1.0, "stage": "qualified"})
    }

    fn refused_rule(r: Result<impl std::fmt::Debug, StoreError>) -> String {
        match r {
            Err(StoreError::Rejected(r)) => r.rule.to_string(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// `reps` join team east of `org-acme`.
    async fn join(store: &dyn EventStore, reps: &[&str]) {
        for rep in reps {
            let joined = json!({"rep": rep, "name": rep, "team": "east"});
            store
                .append("org-acme", ExpectedVersion::Any, ev("RepJoined", joined))
                .await
                .unwrap();
        }
    }

    /// The customer a `DealOpened` names is read as it stands in the log: assigned in the same
    /// atomic append as the deal, and never from a batch that was checked but not written (a
    /// refused multi-stream append leaves the customer with its owner).
    async fn a_deal_opens_on_the_customer_as_written(store: Arc<dyn EventStore>) {
        // Reps named by events must have joined (`rep.active`).
        join(&*store, &["wukong", "bajie"]).await;
        let pooled = store
            .append(
                "deal-D-0",
                ExpectedVersion::Any,
                ev("DealOpened", deal_for("wukong")),
            )
            .await;
        assert_eq!(
            refused_rule(pooled),
            "deal.customer_owner",
            "not registered"
        );
        store
            .append(
                "customer-C-1",
                ExpectedVersion::Any,
                ev("CustomerRegistered", json!({"name": "c", "owner": "bajie"})),
            )
            .await
            .unwrap();
        let others = store
            .append(
                "deal-D-1",
                ExpectedVersion::Any,
                ev("DealOpened", deal_for("wukong")),
            )
            .await;
        assert_eq!(refused_rule(others), "deal.customer_owner");
        // Assigned to wukong, then a refused batch: nothing is written, C-1 stays bajie's.
        let refused = store
            .append_multi(vec![
                batch("customer-C-1", "CustomerAssigned", json!({"rep": "wukong"})),
                batch(
                    "deal-D-2",
                    "DealStageChanged",
                    json!({"from": "a", "to": "b"}),
                ),
            ])
            .await;
        assert!(refused.is_err());
        let stale = store
            .append(
                "deal-D-3",
                ExpectedVersion::Any,
                ev("DealOpened", deal_for("wukong")),
            )
            .await;
        assert_eq!(
            refused_rule(stale),
            "deal.customer_owner",
            "C-1 is still bajie's"
        );
        // Assigned to wukong and the deal opened in one atomic append.
        store
            .append_multi(vec![
                batch("customer-C-1", "CustomerAssigned", json!({"rep": "wukong"})),
                batch("deal-D-4", "DealOpened", deal_for("wukong")),
            ])
            .await
            .unwrap();
    }

    /// A late event takes its place in business order in the state the next append is
    /// checked against (not at the end, as a cached state folded by appending would have it).
    #[tokio::test]
    async fn a_late_event_is_checked_in_business_order_afterwards() {
        let store = MemoryStore::with_validator(Arc::new(DomainRules::default()));
        join(&store, &["wukong", "bajie"]).await;
        let at = |t: &str, ty: &str, data: serde_json::Value| -> Vec<ProposedEvent> {
            vec![
                serde_json::from_value(json!({"type": ty, "occurred_at": t, "data": data}))
                    .unwrap(),
            ]
        };
        for (t, ty, data) in [
            (
                "2026-01-01T00:00:00Z",
                "CustomerRegistered",
                json!({"name": "c", "owner": "wukong"}),
            ),
            (
                "2026-01-20T00:00:00Z",
                "CustomerReleased",
                json!({"reason": "idle"}),
            ),
            // Logged last, occurred before the release: in business order the customer was
            // assigned to bajie on the 10th and released on the 20th, so it is in the pool.
            (
                "2026-01-10T00:00:00Z",
                "CustomerAssigned",
                json!({"rep": "bajie"}),
            ),
        ] {
            store
                .append("customer-C-1", ExpectedVersion::Any, at(t, ty, data))
                .await
                .unwrap();
        }
        store
            .append(
                "customer-C-1",
                ExpectedVersion::Any,
                ev("CustomerClaimed", json!({"rep": "wukong"})),
            )
            .await
            .expect("a pool customer may be claimed");
        let again = store
            .append(
                "customer-C-1",
                ExpectedVersion::Any,
                ev("CustomerClaimed", json!({"rep": "bajie"})),
            )
            .await;
        assert_eq!(refused_rule(again), "customer.claim_from_pool");
    }

    /// The organisation too is folded in business order, by the warm cache as by a cold fold:
    /// bajie's `RepLeft`, logged after his second `RepJoined` but dated between the two, leaves
    /// him active (in log order he would be gone, and could own nothing).
    #[tokio::test]
    async fn a_late_org_event_takes_its_place_in_business_order() {
        let rules = Arc::new(DomainRules::default());
        let store = MemoryStore::with_validator(rules.clone());
        for (t, ty, data) in [
            (
                "2026-01-01T00:00:00Z",
                "RepJoined",
                json!({"rep": "bajie", "name": "Bajie", "team": "east"}),
            ),
            (
                "2026-01-20T00:00:00Z",
                "RepJoined",
                json!({"rep": "bajie", "name": "Bajie", "team": "west"}),
            ),
            ("2026-01-10T00:00:00Z", "RepLeft", json!({"rep": "bajie"})),
        ] {
            let event = json!({"type": ty, "occurred_at": t, "data": data});
            let events = vec![serde_json::from_value(event).unwrap()];
            store
                .append("org-acme", ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
        for customer in ["customer-C-1", "customer-C-2"] {
            let registered = json!({"name": "c", "owner": "bajie"});
            store
                .append(
                    customer,
                    ExpectedVersion::Any,
                    ev("CustomerRegistered", registered),
                )
                .await
                .expect("bajie is active");
            // The second time, from a cold cache: the organisation folded from the log.
            crate::AppendValidator::reset(&*rules);
        }
    }

    #[tokio::test]
    async fn memory_store_reads_the_deals_customer_as_written() {
        let store = MemoryStore::with_validator(Arc::new(DomainRules::default()));
        a_deal_opens_on_the_customer_as_written(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn sled_store_reads_the_deals_customer_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), Arc::new(DomainRules::default())).unwrap();
        a_deal_opens_on_the_customer_as_written(Arc::new(store)).await;
    }
}
