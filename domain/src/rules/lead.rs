//! Rules on lead streams: conversion is final; a disqualified lead is not converted.

use super::catalog::*;
use super::org::rep_active;
use crate::events::Event;
use crate::rejection::Rejection;
use crate::state::{LeadStatus, OrgState, StreamState};

pub(super) fn check(org: &OrgState, state: &StreamState, event: &Event) -> Result<(), Rejection> {
    let StreamState::Lead(lead) = state else {
        return Ok(());
    };
    if let Event::PersonalDataErased(_) = event {
        if lead.erased {
            return Err(PERSON_ERASED_ONCE.reject(
                "type",
                json_text("PersonalDataErased"),
                format!(
                    "the personal data of lead {} is already erased",
                    lead.lead_id
                ),
            ));
        }
        return Ok(());
    }
    if lead.status == LeadStatus::Converted {
        return Err(LEAD_CONVERTED_FINAL.reject(
            "type",
            json_text(event.type_name()),
            format!("lead {} is already converted", lead.lead_id),
        ));
    }
    match event {
        Event::LeadQualified(q) => rep_active(org, "rep", &q.rep)?,
        Event::LeadConverted(_) if lead.status == LeadStatus::Disqualified => {
            return Err(LEAD_CONVERT_DISQUALIFIED.reject(
                "type",
                json_text("LeadConverted"),
                format!(
                    "lead {} is disqualified: qualify it again first",
                    lead.lead_id
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}
