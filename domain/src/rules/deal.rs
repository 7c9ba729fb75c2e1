//! Rules on deal streams: stages, closing, reopening, owners, payments.

use super::catalog::*;
use super::org::{rep_active, stage_exists};
use crate::events::Event;
use crate::rejection::Rejection;
use crate::state::{DealStatus, OrgState, StreamState};

pub(super) fn check(org: &OrgState, state: &StreamState, event: &Event) -> Result<(), Rejection> {
    let pipeline = &org.pipeline;
    if let Event::DealOpened(o) = event {
        stage_exists(pipeline, "stage", &o.stage)?;
        return rep_active(org, "owner", &o.owner);
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
            if c.from != deal.stage {
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
            if r.from != deal.owner {
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
            if deal.installments.contains_key(&p.installment_id) {
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
                if !deal.installments.contains_key(id) {
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
