//! Rules on deal streams: stages, closing, reopening, owners, payments.

use super::catalog::*;
use super::org::{rep_active, stage_exists};
use super::Customers;
use crate::events::{DealOpened, Event};
use crate::rejection::Rejection;
use crate::state::{DealStatus, OrgState, StreamState};

pub(super) fn check(
    org: &OrgState,
    customers: &dyn Customers,
    state: &StreamState,
    event: &Event,
) -> Result<(), Rejection> {
    let pipeline = &org.pipeline;
    if let Event::DealOpened(o) = event {
        stage_exists(pipeline, "stage", &o.stage)?;
        rep_active(org, "owner", &o.owner)?;
        return customer_open_to(customers, o);
    }
    // The opening rules guarantee the deal exists here.
    let StreamState::Deal(deal) = state else {
        return Ok(());
    };
    let after_close_ok = matches!(
        event,
        Event::DealReopened(_)
            | Event::PaymentScheduled(_)
            | Event::PaymentReceived(_)
            | Event::ActivityLogged(_)
    );
    if deal.is_closed() && !after_close_ok {
        return Err(DEAL_CLOSED.reject(
            "type",
            json_text(event.type_name()),
            format!(
                "deal {} is {}: only DealReopened, PaymentScheduled, PaymentReceived and ActivityLogged may follow",
                deal.deal_id,
                if deal.status == DealStatus::Won { "won" } else { "lost" }
            ),
        ));
    }
    match event {
        Event::DealStageChanged(c) => {
            if *c.from != *deal.stage {
                return Err(DEAL_STAGE_FROM.reject(
                    "data.from",
                    json_text(&c.from),
                    format!("the deal is in stage {:?}, not {:?}", deal.stage, c.from),
                ));
            }
            stage_exists(pipeline, "to", &c.to)?;
            if c.to == c.from {
                return Err(DEAL_STAGE_UNCHANGED.reject(
                    "data.to",
                    json_text(&c.to),
                    "a stage change moves to a different stage",
                ));
            }
        }
        Event::DealReassigned(r) => {
            if *r.from != *deal.owner {
                return Err(DEAL_REASSIGN_FROM.reject(
                    "data.from",
                    json_text(&r.from),
                    format!("the deal is owned by {:?}, not {:?}", deal.owner, r.from),
                ));
            }
            if r.to == r.from {
                return Err(DEAL_REASSIGN_FROM.reject(
                    "data.to",
                    json_text(&r.to),
                    "a reassignment gives the deal to someone else",
                ));
            }
            rep_active(org, "to", &r.to)?;
        }
        Event::DealReopened(r) => {
            if !deal.is_closed() {
                return Err(DEAL_REOPEN_CLOSED.reject(
                    "type",
                    json_text("DealReopened"),
                    format!(
                        "deal {} is open: only a won or lost deal can be reopened",
                        deal.deal_id
                    ),
                ));
            }
            stage_exists(pipeline, "stage", &r.stage)?;
        }
        Event::DealWon(w) if deal.paid > w.amount => {
            return Err(PAYMENT_WITHIN_WON.reject(
                "data.amount",
                w.amount,
                format!(
                    "{} was already received on this deal: it cannot be won for less",
                    deal.paid
                ),
            ));
        }
        Event::PaymentScheduled(p) => {
            only_won(deal.status, event)?;
            if deal.installment(&p.installment_id).is_some() {
                return Err(PAYMENT_INSTALLMENT_UNIQUE.reject(
                    "data.installment_id",
                    json_text(&p.installment_id),
                    "this installment is already scheduled",
                ));
            }
        }
        Event::PaymentReceived(p) => {
            only_won(deal.status, event)?;
            if let Some(id) = &p.installment_id {
                if deal.installment(id).is_none() {
                    return Err(PAYMENT_INSTALLMENT_KNOWN.reject(
                        "data.installment_id",
                        json_text(id),
                        "no installment of the deal has this id",
                    ));
                }
            }
            let won = deal.won_amount.unwrap_or(deal.amount);
            if deal.paid + p.amount > won {
                return Err(PAYMENT_WITHIN_WON.reject(
                    "data.amount",
                    p.amount,
                    format!(
                        "{} already received; this payment would exceed the won amount {won}",
                        deal.paid
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A deal is opened on the owner's own customer or on one in the public pool, never on
/// another rep's: the deal would show in that rep's timeline and take their customer. The
/// customer's state is the one before this append; a later reassignment of either is fine.
fn customer_open_to(customers: &dyn Customers, o: &DealOpened) -> Result<(), Rejection> {
    let refuse = |message: String| {
        Err(DEAL_CUSTOMER_OWNER.reject("data.customer_id", json_text(&o.customer_id), message))
    };
    match customers.owner(&o.customer_id) {
        None => refuse(format!(
            "customer {} is not registered: register it (CustomerRegistered) before opening a deal on it",
            o.customer_id
        )),
        Some(owner) => match owner {
            Some(rep) if rep != o.owner => refuse(format!(
                "customer {} is {rep}'s: a deal on it is opened for {rep}, or the customer is assigned to {} first (CustomerAssigned)",
                o.customer_id, o.owner
            )),
            _ => Ok(()),
        },
    }
}

fn only_won(status: DealStatus, event: &Event) -> Result<(), Rejection> {
    if status != DealStatus::Won {
        return Err(PAYMENT_ONLY_WON.reject(
            "type",
            json_text(event.type_name()),
            "payments are recorded only on a won deal",
        ));
    }
    Ok(())
}
