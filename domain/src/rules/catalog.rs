//! The rule catalogue: every rule's stable code and a one-line description.

use crate::rejection::Rejection;

/// A rule checked on every append. `code` is stable: clients and tests match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub code: &'static str,
    pub description: &'static str,
}

impl Rule {
    /// A rejection of this rule (index filled in by `check_batch`).
    pub fn reject(
        &self,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Rejection {
        Rejection::new(self.code, field, value, message)
    }
}

macro_rules! rules {
    ($($name:ident = $code:literal : $desc:literal;)*) => {
        $(pub const $name: Rule = Rule { code: $code, description: $desc };)*
        /// Every rule, in the order they are checked for one event.
        pub const RULES: &[Rule] = &[$($name),*];
    };
}

rules! {
    STREAM_NAME = "stream.name": "the stream is <category>-<entity id>: a known category and an id of 1-64 characters from [A-Za-z0-9_.:-]";
    STREAM_MATCH = "stream.match": "every event of the batch names the stream being appended to";
    ACTOR = "event.actor": "actor is not empty (nor blank) and at most 128 characters";
    METADATA_SIZE = "event.metadata_size": "metadata, serialised, is at most 4 KiB";
    RECORDED_IN_FUTURE = "time.recorded_in_future": "recorded_at is not more than 5 minutes after the validator's now (a far-future import is refused)";
    OCCURRED_AFTER_RECORDED = "time.occurred_after_recorded": "occurred_at is not more than 5 minutes after recorded_at";
    TYPE_KNOWN = "event.type_known": "the event type is one of SPEC §1.2";
    TYPE_CATEGORY = "event.type_category": "the event type belongs to the stream's category";
    DATA_SHAPE = "event.data": "data has exactly the type's fields, with the right JSON types (amounts with at most 2 decimals)";
    OPENING_FIRST = "stream.opening_first": "the first event of a deal/customer/lead stream is DealOpened/CustomerRegistered/LeadCaptured";
    OPENING_ONCE = "stream.opening_once": "an opening event appears only as the first event of its stream";
    BEFORE_OPENING = "time.before_opening": "occurred_at is not earlier than the occurred_at of the stream's opening event";
    NON_EMPTY = "value.non_empty": "required text (names, ids, reasons, reps, titles) is not blank";
    ENTITY_ID = "value.entity_id": "references to other streams (customer_id, deal_id, source_lead) are valid entity ids";
    AMOUNT_NON_NEGATIVE = "value.amount_non_negative": "amounts are >= 0";
    IN_RANGE = "value.in_range": "NPS 0..10, fit/intent scores 0..100, stage probability 0..1, discount_pct 0..100";
    CURRENCY = "value.currency": "a currency (DealOpened.currency, ReportingCurrencySet.currency, ExchangeRateSet.currency) is an ISO 4217 style code: 3 upper-case letters";
    RATE_POSITIVE = "value.rate_positive": "ExchangeRateSet.rate is a finite number > 0 (units of the reporting currency per unit of the currency)";
    RATE_NOT_REPORTING = "rate.not_reporting_currency": "ExchangeRateSet is not for the reporting currency in force (its rate is 1 by definition)";
    PIPELINE_NON_EMPTY = "pipeline.non_empty": "PipelineDefined has at least one stage";
    PIPELINE_UNIQUE_IDS = "pipeline.unique_ids": "PipelineDefined stage ids are unique";
    PIPELINE_RESERVED_IDS = "pipeline.reserved_ids": "won and lost are outcomes, not stages: no stage may be called that";
    REP_LEAVE_ACTIVE = "rep.leave_active": "RepLeft names a rep who joined and has not left";
    REP_ACTIVE = "rep.active": "every rep an event names (DealOpened.owner, DealReassigned.to, CustomerRegistered.owner, CustomerClaimed.rep, CustomerAssigned.rep, LeadQualified.rep, ActivityLogged.rep, TargetSet.rep) joined (RepJoined) and has not left; not DealReassigned.from (the current owner, who may have left) nor CustomerAssigned.by (a manager, not necessarily a rep)";
    TARGET_SCOPE = "target.scope": "TargetSet is for a rep, a team or the whole org, not a rep and a team at once";
    DEAL_STAGE_EXISTS = "deal.stage_exists": "DealOpened.stage, DealStageChanged.to and DealReopened.stage exist in the pipeline in force";
    DEAL_CUSTOMER_OWNER = "deal.customer_owner": "DealOpened names a registered customer that is the deal owner's or in the public pool (a deal on another rep's customer is refused)";
    DEAL_STAGE_FROM = "deal.stage_from": "DealStageChanged.from equals the deal's current stage";
    DEAL_STAGE_UNCHANGED = "deal.stage_unchanged": "DealStageChanged moves to a different stage";
    DEAL_CLOSED = "deal.closed": "after DealWon/DealLost only DealReopened, PaymentScheduled, PaymentReceived and ActivityLogged";
    DEAL_REOPEN_CLOSED = "deal.reopen_only_closed": "DealReopened only on a won or lost deal";
    DEAL_REASSIGN_FROM = "deal.reassign_from": "DealReassigned.from equals the deal's current owner and .to is someone else";
    PAYMENT_ONLY_WON = "deal.payment_only_won": "PaymentScheduled and PaymentReceived only on a won deal";
    PAYMENT_INSTALLMENT_UNIQUE = "payment.installment_unique": "a PaymentScheduled installment_id is not already scheduled on the deal";
    PAYMENT_INSTALLMENT_KNOWN = "payment.installment_known": "a PaymentReceived installment_id names a scheduled installment of the deal";
    PAYMENT_WITHIN_WON = "payment.within_won": "payments received in total do not exceed the won amount (nor does a deal with payments get won again for less)";
    CUSTOMER_CLAIM_FROM_POOL = "customer.claim_from_pool": "CustomerClaimed only while the customer is in the public pool";
    CUSTOMER_RELEASE_OWNED = "customer.release_owned": "CustomerReleased only while the customer has an owner";
    CUSTOMER_UPDATE_OWNER = "customer.update_owner": "CustomerUpdated does not carry owner: ownership moves by CustomerClaimed/CustomerAssigned/CustomerReleased";
    CUSTOMER_UPDATE_EMPTY = "customer.update_empty": "CustomerUpdated changes at least one field";
    COMPLAINT_UNIQUE = "customer.complaint_unique": "ComplaintFiled does not reuse the id of a complaint still open";
    COMPLAINT_OPEN = "customer.complaint_open": "ComplaintResolved names a complaint that is open";
    LEAD_CONVERTED_FINAL = "lead.converted_final": "nothing follows LeadConverted on a lead but PersonalDataErased";
    PERSON_ERASED_ONCE = "person.erased_once": "PersonalDataErased appears at most once on a customer or lead";
    PERSON_ERASED_NO_DATA = "person.erased_no_personal_data": "after PersonalDataErased, no event about that customer or lead (its own stream, its deals) carries personal data (name, company, contact, summary, note), except an event already in the log sent again; PersonalDataErased itself is appended by the erase command (POST /v1/customers/{id}/erase), not as an ordinary event";
    LEAD_CONVERT_DISQUALIFIED = "lead.convert_disqualified": "a disqualified lead is qualified again before it is converted";
}

/// The rule with this code.
pub fn rule(code: &str) -> Option<Rule> {
    RULES.iter().copied().find(|r| r.code == code)
}

/// A value rendered as JSON text for a rejection, cut at 200 characters.
pub fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() > 200 {
        let cut: String = s.chars().take(200).collect();
        format!("{cut}…")
    } else {
        s
    }
}
