//! A customer folded over its stream.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::{rfc3339, rfc3339_opt};
use crate::events::{CustomerRegistered, Event};

/// The state of one customer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerState {
    pub customer_id: String,
    pub name: String,
    pub industry: Option<String>,
    pub size: Option<String>,
    pub region: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    /// The owning rep; `None` = in the public pool.
    pub owner: Option<String>,
    /// `owner.is_none()`, spelled out for readers of the JSON.
    pub in_pool: bool,
    /// Since when the customer is in the pool (registration without owner, or the release).
    #[serde(with = "rfc3339_opt")]
    pub in_pool_since: Option<DateTime<Utc>>,
    /// Since when the current owner has the customer (registration, claim, assignment; a
    /// claim or assignment to the owner it already has keeps the date).
    #[serde(with = "rfc3339_opt")]
    pub owned_since: Option<DateTime<Utc>>,
    pub churned: bool,
    /// Ids of complaints filed and not yet resolved.
    pub open_complaints: BTreeSet<String>,
    /// Number of `ComplaintFiled`.
    pub complaints: u32,
    /// Latest NPS score.
    pub nps: Option<i64>,
    /// Number of `ActivityLogged` on the customer stream.
    pub activities: u32,
    /// `occurred_at` of the latest `ActivityLogged` on the customer stream.
    #[serde(with = "rfc3339_opt")]
    pub last_activity_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    pub registered_at: DateTime<Utc>,
    /// Latest `occurred_at` of any event of the customer's stream.
    #[serde(with = "rfc3339")]
    pub last_touch_at: DateTime<Utc>,
    /// `PersonalDataErased` is in the stream (SPEC §7).
    #[serde(skip_serializing_if = "crate::state::is_false")]
    pub erased: bool,
}

impl CustomerState {
    pub fn registered(
        customer_id: &str,
        r: &CustomerRegistered,
        at: DateTime<Utc>,
    ) -> CustomerState {
        CustomerState {
            customer_id: customer_id.to_string(),
            name: r.name.clone(),
            industry: r.industry.clone(),
            size: r.size.clone(),
            region: r.region.clone(),
            source: r.source.clone(),
            tags: r.tags.clone().unwrap_or_default(),
            owner: r.owner.clone(),
            in_pool: r.owner.is_none(),
            in_pool_since: r.owner.is_none().then_some(at),
            owned_since: r.owner.is_some().then_some(at),
            churned: false,
            open_complaints: BTreeSet::new(),
            complaints: 0,
            nps: None,
            activities: 0,
            last_activity_at: None,
            registered_at: at,
            last_touch_at: at,
            erased: false,
        }
    }

    fn set_owner(&mut self, owner: Option<&str>, at: DateTime<Utc>) {
        if owner.is_none() {
            self.owned_since = None;
        } else if self.owner.as_deref() != owner {
            self.owned_since = Some(at);
        }
        self.in_pool = owner.is_none();
        self.in_pool_since = if owner.is_none() { Some(at) } else { None };
        self.owner = owner.map(str::to_string);
    }

    /// What `event` does to a customer's owner, whatever the owner was: `Some(Some(rep))`
    /// makes the rep the owner, `Some(None)` puts the customer in the pool, `None` leaves the
    /// owner alone. The fold ([`CustomerState::apply_event`]) and the owner index
    /// ([`Owners`](super::Owners)) both ask this.
    pub fn owner_set_by(event: &Event) -> Option<Option<&str>> {
        match event {
            Event::CustomerUpdated(u) => u.owner.as_deref().map(Some),
            Event::CustomerClaimed(c) => Some(Some(&c.rep)),
            Event::CustomerAssigned(a) => Some(Some(&a.rep)),
            Event::CustomerReleased(_) => Some(None),
            _ => None,
        }
    }

    /// Folds one event of the customer's stream, the next in business order (see
    /// [`crate::state`]). Total; unrelated events are ignored. `CustomerUpdated.owner` makes
    /// its rep the owner, like an assignment: the rules refuse it on append (ownership changes
    /// through `CustomerClaimed`, `CustomerAssigned`, `CustomerReleased`), but a log written
    /// before that rule, or imported, may hold it, and every read folds it the same way.
    pub fn apply_event(&mut self, event: &Event, at: DateTime<Utc>) {
        if at > self.last_touch_at {
            self.last_touch_at = at;
        }
        if let Some(owner) = CustomerState::owner_set_by(event) {
            self.set_owner(owner, at);
        }
        match event {
            Event::CustomerUpdated(u) => {
                if let Some(v) = &u.name {
                    self.name = v.clone();
                }
                let keep = |slot: &mut Option<String>, v: &Option<String>| {
                    if v.is_some() {
                        *slot = v.clone();
                    }
                };
                keep(&mut self.industry, &u.industry);
                keep(&mut self.size, &u.size);
                keep(&mut self.region, &u.region);
                keep(&mut self.source, &u.source);
                if let Some(t) = &u.tags {
                    self.tags = t.clone();
                }
            }
            Event::ComplaintFiled(c) => {
                self.complaints = self.complaints.saturating_add(1);
                self.open_complaints.insert(c.complaint_id.clone());
            }
            Event::ComplaintResolved(c) => {
                self.open_complaints.remove(&c.complaint_id);
            }
            Event::NpsRecorded(n) => self.nps = Some(n.score),
            Event::CustomerChurned(_) => self.churned = true,
            Event::ActivityLogged(_) => {
                self.activities = self.activities.saturating_add(1);
                self.last_activity_at = Some(self.last_activity_at.map_or(at, |l| l.max(at)));
            }
            Event::PersonalDataErased(_) => self.erased = true,
            _ => {}
        }
    }
}
