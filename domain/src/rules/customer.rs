//! Rules on customer streams: ownership and the public pool, updates, complaints.

use super::catalog::*;
use super::org::rep_active;
use crate::events::Event;
use crate::rejection::Rejection;
use crate::state::{OrgState, StreamState};

pub(super) fn check(org: &OrgState, state: &StreamState, event: &Event) -> Result<(), Rejection> {
    if let Event::CustomerRegistered(r) = event {
        return match &r.owner {
            Some(owner) => rep_active(org, "owner", owner),
            None => Ok(()),
        };
    }
    let StreamState::Customer(customer) = state else {
        return Ok(());
    };
    match event {
        Event::PersonalDataErased(_) if customer.erased => {
            return Err(PERSON_ERASED_ONCE.reject(
                "type",
                json_text("PersonalDataErased"),
                format!(
                    "the personal data of customer {} is already erased",
                    customer.customer_id
                ),
            ));
        }
        Event::CustomerUpdated(u) => {
            if let Some(owner) = &u.owner {
                return Err(CUSTOMER_UPDATE_OWNER.reject(
                    "data.owner",
                    json_text(owner),
                    "ownership changes through CustomerAssigned (or CustomerClaimed / CustomerReleased), not CustomerUpdated",
                ));
            }
            let changes = u.name.is_some()
                || u.industry.is_some()
                || u.size.is_some()
                || u.region.is_some()
                || u.source.is_some()
                || u.tags.is_some();
            if !changes {
                return Err(CUSTOMER_UPDATE_EMPTY.reject(
                    "data",
                    "{}",
                    "CustomerUpdated must change at least one field",
                ));
            }
        }
        Event::CustomerClaimed(c) => {
            if let Some(owner) = &customer.owner {
                return Err(CUSTOMER_CLAIM_FROM_POOL.reject(
                    "data.rep",
                    json_text(&c.rep),
                    format!(
                        "customer {} is owned by {owner:?}, not in the pool",
                        customer.customer_id
                    ),
                ));
            }
            rep_active(org, "rep", &c.rep)?;
        }
        Event::CustomerAssigned(a) => rep_active(org, "rep", &a.rep)?,
        Event::CustomerReleased(_) if customer.owner.is_none() => {
            return Err(CUSTOMER_RELEASE_OWNED.reject(
                "type",
                json_text("CustomerReleased"),
                format!("customer {} is already in the pool", customer.customer_id),
            ));
        }
        Event::ComplaintFiled(c) if customer.open_complaints.contains(&c.complaint_id) => {
            return Err(COMPLAINT_UNIQUE.reject(
                "data.complaint_id",
                json_text(&c.complaint_id),
                "a complaint with this id is already open",
            ));
        }
        Event::ComplaintResolved(c) if !customer.open_complaints.contains(&c.complaint_id) => {
            return Err(COMPLAINT_OPEN.reject(
                "data.complaint_id",
                json_text(&c.complaint_id),
                "no open complaint has this id",
            ));
        }
        _ => {}
    }
    Ok(())
}
