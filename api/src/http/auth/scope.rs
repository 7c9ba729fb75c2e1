//! What a caller may read and write, stream by stream.
//!
//! | role | read | write |
//! |---|---|---|
//! | admin | everything | everything |
//! | analyst, service | every stream and the global log | nothing (403) |
//! | manager (team) | deals and customers owned by the team's reps, pool customers, leads | the same; a pool customer only by claiming/assigning it to a team rep; a new deal/customer only for a team rep (or the pool) |
//! | rep (rep id) | own deals and customers, pool customers, leads | own deals and customers, leads; a pool customer only by claiming it; a new deal/customer only with themself as owner (or the pool); `actor`, when given, must be themself |
//!
//! Out-of-scope reads are 404 (existence is not revealed); out-of-scope writes are 403.
//! `org-*` and `channel-*` streams are admin/analyst/service only.

use domain::{Category, ProposedEvent, StreamName};

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

/// 404 unless `who` may read `stream` (a missing stream is 404 for everyone but is left to
/// the caller, which knows whether emptiness matters).
pub async fn check_read(
    state: &AppState,
    who: &Principal,
    stream: &StreamName,
) -> Result<(), ApiError> {
    let hidden = || ApiError::NotFound(format!("stream {stream} not found"));
    if matches!(who.role, Role::Admin | Role::Analyst | Role::Service) {
        return Ok(());
    }
    match stream.category {
        Category::Lead => Ok(()),
        Category::Org | Category::Channel => Err(hidden()),
        Category::Deal | Category::Customer => match state.ownership.owner_of(stream).await? {
            Ownership::Pool => Ok(()),
            Ownership::Owned(rep) if covers(state, who, &rep).await? => Ok(()),
            _ => Err(hidden()),
        },
    }
}

/// 403 unless `who` may append `events` to `stream`.
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
    let out_of_scope = || {
        format!(
            "stream {stream} is outside the scope of this {} token",
            who.role.as_str()
        )
    };
    match stream.category {
        Category::Lead => Ok(()),
        Category::Org | Category::Channel => deny(format!(
            "only an admin may write {} streams",
            stream.category.as_str()
        )),
        Category::Deal | Category::Customer => {
            let first = events.first();
            match state.ownership.owner_of(stream).await? {
                Ownership::Owned(rep) if covers(state, who, &rep).await? => Ok(()),
                Ownership::Missing => {
                    let owner = first.and_then(|e| match e.event_type.as_str() {
                        "DealOpened" => data_str(e, "owner").map(Some),
                        "CustomerRegistered" => Some(data_str(e, "owner")),
                        _ => None,
                    });
                    match owner {
                        // A new customer in the pool.
                        Some(None) => Ok(()),
                        Some(Some(rep)) if covers(state, who, &rep).await? => Ok(()),
                        Some(Some(rep)) => deny(format!(
                            "a {} token may not open a {} owned by {rep}",
                            who.role.as_str(),
                            stream.category.as_str()
                        )),
                        // No opening event: let the domain reject it (an ordinary 422).
                        None => Ok(()),
                    }
                }
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
                _ => deny(out_of_scope()),
            }
        }
    }
}
