//! A lead folded over its stream.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::{rfc3339, rfc3339_opt};
use crate::events::{Event, LeadCaptured};

/// Where a lead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Captured,
    Qualified,
    Disqualified,
    Converted,
}

/// The state of one lead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadState {
    pub lead_id: String,
    pub channel: String,
    pub campaign: Option<String>,
    pub name: String,
    pub company: Option<String>,
    pub contact: Option<String>,
    pub status: LeadStatus,
    /// The rep who qualified it.
    pub rep: Option<String>,
    pub fit_score: Option<i64>,
    pub intent_score: Option<i64>,
    pub disqualified_reason: Option<String>,
    pub customer_id: Option<String>,
    pub deal_id: Option<String>,
    #[serde(with = "rfc3339")]
    pub captured_at: DateTime<Utc>,
    #[serde(with = "rfc3339_opt")]
    pub qualified_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_opt")]
    pub converted_at: Option<DateTime<Utc>>,
    /// `PersonalDataErased` is in the stream (SPEC §7).
    #[serde(skip_serializing_if = "crate::state::is_false")]
    pub erased: bool,
}

impl LeadState {
    pub fn captured(lead_id: &str, c: &LeadCaptured, at: DateTime<Utc>) -> LeadState {
        LeadState {
            lead_id: lead_id.to_string(),
            channel: c.channel.clone(),
            campaign: c.campaign.clone(),
            name: c.name.clone(),
            company: c.company.clone(),
            contact: c.contact.clone(),
            status: LeadStatus::Captured,
            rep: None,
            fit_score: None,
            intent_score: None,
            disqualified_reason: None,
            customer_id: None,
            deal_id: None,
            captured_at: at,
            qualified_at: None,
            converted_at: None,
            erased: false,
        }
    }

    /// Folds one event of the lead's stream. Total; unrelated events are ignored.
    pub fn apply_event(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::LeadQualified(q) => {
                self.status = LeadStatus::Qualified;
                self.rep = Some(q.rep.clone());
                self.fit_score = q.fit_score.or(self.fit_score);
                self.intent_score = q.intent_score.or(self.intent_score);
                self.disqualified_reason = None;
                self.qualified_at = Some(at);
            }
            Event::LeadDisqualified(d) => {
                self.status = LeadStatus::Disqualified;
                self.disqualified_reason = Some(d.reason.clone());
            }
            Event::LeadConverted(c) => {
                self.status = LeadStatus::Converted;
                self.customer_id = Some(c.customer_id.clone());
                self.deal_id = c.deal_id.clone();
                self.converted_at = Some(at);
            }
            Event::PersonalDataErased(_) => self.erased = true,
            _ => {}
        }
    }
}
