//! What a caller may read and write.
//!
//! A rep's *scope* is the rep; a manager's, the reps who joined the team (a rep who left stays
//! on the team they left). A deal belongs to its current owner; a customer to its owner, or
//! to nobody while in the public pool.
//!
//! | read | admin, analyst | service | manager (team), rep (own) |
//! |---|---|---|---|
//! | customer state, `/v1/streams/customer-…` | all | all | customers owned in scope, and pool customers; others 404 |
//! | timeline | all | all | as the customer; inside: the customer's own events, its converted leads, and the events of the deals owned in scope; other deals on the customer are left out entirely |
//! | deal state, `as_of`, replay, `/v1/streams/deal-…` | all | all | deals owned in scope; others 404 |
//! | deal list `/v1/deals` | all | all | the deals owned in scope (others are not listed) |
//! | `/v1/streams/lead-…` | all | all | all (leads belong to nobody) |
//! | `/v1/streams/org-…`, `channel-…` | all | all | 404 |
//! | `/v1/events`, `/v1/subscribe` | all | all | 403: the global log is for integrations and analysts; filtering it per caller would make positions skip and `next_position` say what was left out |
//! | reports funnel, reps, pipeline, win-loss, activity | whole org | 403 | computed over the scope: deals owned in scope (as of the report's `as_of`), the scope's reps' rows |
//! | reports channels, l2c | whole org | 403 | 403 (leads and spend belong to nobody: organisation figures) |
//! | `/v1/pool`, `/v1/reports/pool` | whole org | 403 | pool customers and monthly claims/releases as everyone sees them; `customers_per_rep` of the scope's reps only |
//!
//! | write | admin | analyst, service | manager (team), rep (own) |
//! |---|---|---|---|
//! | any stream | yes | 403 (read-only) | `org-`/`channel-` 403; leads yes; deals and customers below |
//! | an existing deal or customer in scope | yes | 403 | yes; a rep records only as themself (`actor`, 403) |
//! | a pool customer | yes | 403 | only to claim it (a manager: to claim or assign it for a team rep), else 403 |
//! | an existing deal or customer out of scope, or a missing one (no opening event) | yes (the domain answers) | 403 | 404 `stream … not found`, the same answer for both |
//! | a new deal or customer | yes | 403 | owner in scope (a customer may be new in the pool), else 403 whether or not the stream exists; a deal's customer must be one the caller sees, else 404 `customer … not found` (missing or not) |
//!
//! The domain then checks the rest (`deal.customer_owner`: a deal is opened on its owner's
//! customer or a pool one). Role-level refusals (read-only role, `org-`/`channel-` streams,
//! another actor, an owner outside the scope) are 403: they depend on the request alone,
//! never on what exists.

use std::collections::BTreeSet;

use domain::{Category, ProposedEvent, StreamName};
use projections::params::Scope;
use projections::ReadModel;

use super::{Principal, Role};
use crate::http::ownership::Ownership;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

fn data_str(ev: &ProposedEvent, field: &str) -> Option<String> {
    ev.data
        .get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Whether `rep`'s work is visible to the rep or manager `who`.
async fn covers(state: &AppState, who: &Principal, rep: &str) -> Result<bool, ApiError> {
    Ok(match who.role {
        Role::Rep => rep == who.subject,
        Role::Manager => {
            state.ownership.team_of(rep).await?.as_deref() == Some(who.subject.as_str())
        }
        Role::Admin | Role::Analyst | Role::Service => true,
    })
}

/// The reps whose deals and work `who` sees in reports, timelines and the deal list (from
/// the read model).
pub fn reps_in_scope(who: &Principal, model: &ReadModel) -> Scope {
    match who.role {
        Role::Admin | Role::Analyst | Role::Service => Scope::Organisation,
        Role::Rep => Scope::Reps(BTreeSet::from([who.subject.clone()])),
        Role::Manager => Scope::Reps(
            model
                .reps(None)
                .into_iter()
                .filter(|(_, r)| r.team == who.subject)
                .map(|(id, _)| id)
                .collect(),
        ),
    }
}

fn not_found(stream: &StreamName) -> ApiError {
    ApiError::NotFound(format!("stream {stream} not found"))
}

/// 404 unless `who` may read `stream` (a missing stream is 404 for everyone but is left to
/// the caller, which knows whether emptiness matters).
pub async fn check_read(
    state: &AppState,
    who: &Principal,
    stream: &StreamName,
) -> Result<(), ApiError> {
    if matches!(who.role, Role::Admin | Role::Analyst | Role::Service) {
        return Ok(());
    }
    match stream.category {
        Category::Lead => Ok(()),
        Category::Org | Category::Channel => Err(not_found(stream)),
        Category::Deal | Category::Customer => match state.ownership.owner_of(stream).await? {
            Ownership::Pool => Ok(()),
            Ownership::Owned(rep) if covers(state, who, &rep).await? => Ok(()),
            _ => Err(not_found(stream)),
        },
    }
}

/// 403 or 404 unless `who` may append `events` to `stream` (see the table above).
pub async fn check_write(
    state: &AppState,
    who: &Principal,
    stream: &StreamName,
    events: &[ProposedEvent],
) -> Result<(), ApiError> {
    let deny = |why: String| Err(ApiError::Forbidden(why));
    match who.role {
        Role::Admin => return Ok(()),
        Role::Analyst | Role::Service => {
            return deny(format!("role {} is read-only", who.role.as_str()))
        }
        Role::Rep | Role::Manager => {}
    }
    if who.role == Role::Rep {
        if let Some((i, ev)) = events
            .iter()
            .enumerate()
            .find(|(_, e)| e.actor.as_deref().is_some_and(|a| a != who.subject))
        {
            return deny(format!(
                "event {i}: a rep may only record events as themself, not as {:?}",
                ev.actor.as_deref().unwrap_or_default()
            ));
        }
    }
    match stream.category {
        Category::Lead => return Ok(()),
        Category::Org | Category::Channel => {
            return deny(format!(
                "only an admin may write {} streams",
                stream.category.as_str()
            ))
        }
        Category::Deal | Category::Customer => {}
    }
    let first = events.first();
    let opening =
        first.filter(|e| matches!(e.event_type.as_str(), "DealOpened" | "CustomerRegistered"));
    // What the request itself asks for, before anything about the stream is looked at.
    if let Some(e) = opening {
        if let Some(rep) = data_str(e, "owner") {
            if !covers(state, who, &rep).await? {
                return deny(format!(
                    "a {} token may not open a {} owned by {rep}",
                    who.role.as_str(),
                    stream.category.as_str()
                ));
            }
        }
        if e.event_type == "DealOpened" {
            if let Some(customer) = data_str(e, "customer_id") {
                let hidden = || ApiError::NotFound(format!("customer {customer} not found"));
                let name =
                    StreamName::parse(&format!("customer-{customer}")).map_err(|_| hidden())?;
                check_read(state, who, &name).await.map_err(|_| hidden())?;
            }
        }
    }
    match state.ownership.owner_of(stream).await? {
        Ownership::Owned(rep) if covers(state, who, &rep).await? => Ok(()),
        // A new deal or customer; its owner was checked above.
        Ownership::Missing if opening.is_some() => Ok(()),
        Ownership::Pool => {
            let taker = first.and_then(|e| match e.event_type.as_str() {
                "CustomerClaimed" => data_str(e, "rep"),
                "CustomerAssigned" if who.role == Role::Manager => data_str(e, "rep"),
                _ => None,
            });
            match taker {
                Some(rep) if covers(state, who, &rep).await? => Ok(()),
                _ => deny(format!(
                    "{stream} is in the public pool: claim it first (CustomerClaimed with yourself as rep)"
                )),
            }
        }
        // Out of scope, or missing: the same answer, so that existence is not revealed.
        _ => Err(not_found(stream)),
    }
}
