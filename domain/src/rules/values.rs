//! Rules on field values that need no state: non-blank text, references, amounts, ranges.

use super::catalog::*;
use crate::envelope::is_entity_id;
use crate::events::Event;
use crate::money::Money;
use crate::rejection::Rejection;

type Check = Result<(), Rejection>;

fn text(field: &str, v: &str) -> Check {
    if v.trim().is_empty() {
        return Err(NON_EMPTY.reject(
            format!("data.{field}"),
            json_text(v),
            format!("{field} must not be blank"),
        ));
    }
    Ok(())
}

fn opt_text(field: &str, v: &Option<String>) -> Check {
    v.as_deref().map_or(Ok(()), |v| text(field, v))
}

fn entity(field: &str, v: &str) -> Check {
    if !is_entity_id(v) {
        return Err(ENTITY_ID.reject(
            format!("data.{field}"),
            json_text(v),
            format!("{field} must be an entity id: 1-64 characters from [A-Za-z0-9_.:-]"),
        ));
    }
    Ok(())
}

fn amount(field: &str, m: Money) -> Check {
    if m < Money::ZERO {
        return Err(AMOUNT_NON_NEGATIVE.reject(
            format!("data.{field}"),
            m,
            format!("{field} must be >= 0"),
        ));
    }
    Ok(())
}

fn range_i(field: &str, v: i64, lo: i64, hi: i64) -> Check {
    if !(lo..=hi).contains(&v) {
        return Err(IN_RANGE.reject(
            format!("data.{field}"),
            v,
            format!("{field} must be between {lo} and {hi}"),
        ));
    }
    Ok(())
}

fn range_f(field: &str, v: f64, lo: f64, hi: f64) -> Check {
    if !(lo..=hi).contains(&v) {
        return Err(IN_RANGE.reject(
            format!("data.{field}"),
            json_text(&v),
            format!("{field} must be between {lo} and {hi}"),
        ));
    }
    Ok(())
}

fn rate(v: f64) -> Check {
    if !(v.is_finite() && v > 0.0) {
        return Err(RATE_POSITIVE.reject(
            "data.rate",
            json_text(&v),
            "rate must be a number > 0: units of the reporting currency per unit",
        ));
    }
    Ok(())
}

fn currency(v: &str) -> Check {
    if v.len() != 3 || !v.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(CURRENCY.reject(
            "data.currency",
            json_text(v),
            "currency must be 3 upper-case letters, e.g. CNY",
        ));
    }
    Ok(())
}

pub(super) fn check_values(event: &Event) -> Check {
    match event {
        Event::PipelineDefined(p) => {
            for (i, s) in p.stages.iter().enumerate() {
                text(&format!("stages[{i}].id"), &s.id)?;
                text(&format!("stages[{i}].name"), &s.name)?;
                range_f(&format!("stages[{i}].probability"), s.probability, 0.0, 1.0)?;
            }
        }
        Event::RepJoined(r) => {
            text("rep", &r.rep)?;
            text("name", &r.name)?;
            text("team", &r.team)?;
            opt_text("manager", &r.manager)?;
        }
        Event::RepLeft(r) => text("rep", &r.rep)?,
        Event::TokenIssued(t) => {
            text("token_id", &t.token_id)?;
            text("role", &t.role)?;
            text("subject", &t.subject)?;
        }
        Event::TokenRevoked(t) => text("token_id", &t.token_id)?,
        Event::PersonalDataErased(e) => text("reason", &e.reason)?,
        Event::PersonalDataErasureAudited(a) => {
            text("person", &a.person)?;
            text("reason", &a.reason)?;
        }
        Event::TargetSet(t) => {
            opt_text("rep", &t.rep)?;
            opt_text("team", &t.team)?;
            amount("amount", t.amount)?;
        }
        Event::ReportingCurrencySet(r) => currency(&r.currency)?,
        Event::ExchangeRateSet(r) => {
            currency(&r.currency)?;
            rate(r.rate)?;
        }
        Event::CustomerRegistered(c) => {
            text("name", &c.name)?;
            opt_text("owner", &c.owner)?;
        }
        Event::CustomerUpdated(c) => opt_text("name", &c.name)?,
        Event::CustomerClaimed(c) => text("rep", &c.rep)?,
        Event::CustomerAssigned(c) => text("rep", &c.rep)?,
        Event::CustomerReleased(c) => text("reason", &c.reason)?,
        Event::ComplaintFiled(c) | Event::ComplaintResolved(c) => {
            text("complaint_id", &c.complaint_id)?
        }
        Event::NpsRecorded(n) => range_i("score", n.score, 0, 10)?,
        Event::CustomerChurned(_) => {}
        Event::ActivityLogged(a) => text("rep", &a.rep)?,
        Event::LeadCaptured(l) => {
            text("channel", &l.channel)?;
            text("name", &l.name)?;
        }
        Event::LeadQualified(q) => {
            text("rep", &q.rep)?;
            if let Some(s) = q.fit_score {
                range_i("fit_score", s, 0, 100)?;
            }
            if let Some(s) = q.intent_score {
                range_i("intent_score", s, 0, 100)?;
            }
        }
        Event::LeadDisqualified(d) => text("reason", &d.reason)?,
        Event::LeadConverted(c) => {
            entity("customer_id", &c.customer_id)?;
            if let Some(d) = &c.deal_id {
                entity("deal_id", d)?;
            }
        }
        Event::DealOpened(o) => {
            entity("customer_id", &o.customer_id)?;
            text("owner", &o.owner)?;
            text("title", &o.title)?;
            amount("amount", o.amount)?;
            if let Some(c) = &o.currency {
                currency(c)?;
            }
            if let Some(l) = &o.source_lead {
                entity("source_lead", l)?;
            }
        }
        Event::DealStageChanged(_) | Event::DealReopened(_) => {}
        Event::DealAmountChanged(a) => amount("amount", a.amount)?,
        Event::DealReassigned(r) => text("to", &r.to)?,
        Event::QuoteIssued(q) => {
            text("quote_id", &q.quote_id)?;
            amount("amount", q.amount)?;
            if let Some(d) = q.discount_pct {
                range_f("discount_pct", d, 0.0, 100.0)?;
            }
        }
        Event::CompetitorNoted(c) => text("competitor", &c.competitor)?,
        Event::DealWon(w) => amount("amount", w.amount)?,
        Event::DealLost(l) => {
            text("reason", &l.reason)?;
            opt_text("competitor", &l.competitor)?;
        }
        Event::PaymentScheduled(p) => {
            text("installment_id", &p.installment_id)?;
            amount("amount", p.amount)?;
        }
        Event::PaymentReceived(p) => amount("amount", p.amount)?,
        Event::SpendRecorded(s) => amount("amount", s.amount)?,
    }
    Ok(())
}
