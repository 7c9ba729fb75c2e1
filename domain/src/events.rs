//! The event vocabulary of SPEC §1.2 as typed Rust.
//!
//! `Event` is adjacently tagged (`type` + `data`), so the envelope's `type` and `data` map
//! onto it directly: [`Event::from_parts`] and [`Event::to_data`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::envelope::Category;
use crate::money::Money;

/// A calendar month, `"2026-06"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn parse(s: &str) -> Result<Month, String> {
        let bad = || format!("month {s:?} must be YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn of(t: &chrono::DateTime<chrono::Utc>) -> Month {
        use chrono::Datelike;
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// First instant of the month, UTC.
    pub fn start(self) -> chrono::DateTime<chrono::Utc> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// In JSON, `"YYYY-MM"`.
impl utoipa::PartialSchema for Month {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{4}-(0[1-9]|1[0-2])$"))
            .examples(["2026-06"])
            .into()
    }
}

impl utoipa::ToSchema for Month {}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Month, D::Error> {
        let s = String::deserialize(d)?;
        Month::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    pub id: String,
    pub name: String,
    pub probability: f64,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Call,
    Email,
    Sms,
    Meeting,
    Visit,
    Note,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 6] = [
        ActivityKind::Call,
        ActivityKind::Email,
        ActivityKind::Sms,
        ActivityKind::Meeting,
        ActivityKind::Visit,
        ActivityKind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Call => "call",
            ActivityKind::Email => "email",
            ActivityKind::Sms => "sms",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Visit => "visit",
            ActivityKind::Note => "note",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }
    };
}

payload!(PipelineDefined { stages: Vec<StageDef> });
payload!(RepJoined {
    rep: String,
    name: String,
    team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manager: Option<String>,
});
payload!(RepLeft { rep: String });
payload!(TargetSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rep: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    month: Month,
    amount: Money,
});
payload!(ReportingCurrencySet { currency: String });
payload!(ExchangeRateSet {
    currency: String,
    month: Month,
    /// Units of the reporting currency per unit of `currency`.
    rate: f64,
});
payload!(
    /// An API token was issued (SPEC §7 audit trail; `actor` is who issued it). Never the
    /// secret: `token_id` is the id `GET /v1/tokens` shows.
    TokenIssued {
        token_id: String,
        /// `admin`, `manager`, `rep`, `analyst` or `service`.
        role: String,
        subject: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    }
);
payload!(
    /// An API token was revoked (`actor` is who revoked it).
    TokenRevoked { token_id: String }
);
payload!(
    /// The personal data of the customer or lead whose stream this is was erased (SPEC §7):
    /// its key is destroyed, so its encrypted fields read `"[erased]"` from then on.
    PersonalDataErased { reason: String }
);
payload!(
    /// Audit trail of an erasure, in `org-access` (`actor` is who erased, `recorded_at` when).
    PersonalDataErasureAudited {
        /// The person's stream (`customer-C-1`, `lead-L-1`).
        person: String,
        reason: String,
    }
);
payload!(CustomerRegistered {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
});
payload!(CustomerUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
});
payload!(CustomerClaimed { rep: String });
payload!(CustomerAssigned {
    rep: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
});
payload!(CustomerReleased { reason: String });
payload!(Complaint {
    complaint_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
});
payload!(NpsRecorded { score: i64 });
payload!(CustomerChurned {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
});
payload!(ActivityLogged {
    kind: ActivityKind,
    rep: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
});
payload!(LeadCaptured {
    channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact: Option<String>,
});
payload!(LeadQualified {
    rep: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fit_score: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    intent_score: Option<i64>,
});
payload!(LeadDisqualified { reason: String });
payload!(LeadConverted {
    customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deal_id: Option<String>,
});
payload!(DealOpened {
    customer_id: String,
    owner: String,
    title: String,
    amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected_close: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_lead: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    products: Option<Vec<String>>,
});
payload!(DealStageChanged {
    from: String,
    to: String
});
payload!(DealAmountChanged { amount: Money });
payload!(DealReassigned {
    from: String,
    to: String
});
payload!(QuoteIssued {
    quote_id: String,
    amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    discount_pct: Option<f64>,
});
payload!(CompetitorNoted {
    competitor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
});
payload!(DealWon {
    amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
});
payload!(DealLost {
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    competitor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
});
payload!(DealReopened { stage: String });
payload!(PaymentScheduled {
    installment_id: String,
    amount: Money,
    due: NaiveDate,
});
payload!(PaymentReceived {
    amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    installment_id: Option<String>,
});
payload!(SpendRecorded {
    month: Month,
    amount: Money
});

/// The one declaration of the event types: from it come the [`Event`] enum, the name list
/// [`EVENT_TYPES`] (with each type's stream categories), [`personal_fields`],
/// [`Event::type_name`] and the parse dispatch. A row is `Variant(Payload) in [categories]`
/// and, for a type with personal data (SPEC §7), `personal [fields]`.
///
/// The rows' order is the index of a type in `EVENT_TYPES`, which the read model's snapshot
/// and the fuzz seeds' selector byte store: new types go at the end, none moves.
macro_rules! event_types {
    ($(
        $variant:ident($payload:ty) in [$($cat:ident),+] $(personal [$($field:literal),+])?;
    )+) => {
        /// Every event type of SPEC §1.2. The variant name is the `type` of the envelope. Its
        /// OpenAPI schema is a `oneOf` of `{type, data}`, one per type: what `data` must be
        /// for each `type`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $($variant($payload),)+
        }

        /// Every event type name, with the stream categories it may be appended to. The
        /// index of a type in this list is stored (see `event_types!`): it never changes.
        pub const EVENT_TYPES: &[(&str, &[Category])] = &[
            $((stringify!($variant), &[$(Category::$cat),+]),)+
        ];

        /// The personal fields of a type, whatever the stream (see [`personal_fields`]).
        fn personal_fields_of(event_type: &str) -> &'static [&'static str] {
            match event_type {
                $($(stringify!($variant) => &[$($field),+],)?)+
                _ => &[],
            }
        }

        impl Event {
            /// The envelope `type` of this event.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => stringify!($variant),)+
                }
            }

            /// `track`: name the offending field's path in the error (which costs an
            /// allocation per key); without it an error names only `data`.
            fn from_deserializer<'de, D: serde::Deserializer<'de>>(
                event_type: &str,
                data: D,
                track: bool,
            ) -> Result<Event, DataError> {
                match event_type {
                    $(stringify!($variant) => parse_data(data, track).map(Event::$variant),)+
                    _ => unknown_type(event_type),
                }
            }
        }
    };
}

event_types! {
    PipelineDefined(PipelineDefined) in [Org];
    RepJoined(RepJoined) in [Org];
    RepLeft(RepLeft) in [Org];
    TargetSet(TargetSet) in [Org];
    CustomerRegistered(CustomerRegistered) in [Customer] personal ["name"];
    CustomerUpdated(CustomerUpdated) in [Customer] personal ["name"];
    CustomerClaimed(CustomerClaimed) in [Customer];
    CustomerAssigned(CustomerAssigned) in [Customer];
    CustomerReleased(CustomerReleased) in [Customer];
    ComplaintFiled(Complaint) in [Customer] personal ["summary"];
    ComplaintResolved(Complaint) in [Customer] personal ["summary"];
    NpsRecorded(NpsRecorded) in [Customer];
    CustomerChurned(CustomerChurned) in [Customer];
    // A deal's notes are about its customer: personal on both streams.
    ActivityLogged(ActivityLogged) in [Customer, Deal] personal ["summary"];
    LeadCaptured(LeadCaptured) in [Lead] personal ["name", "company", "contact"];
    LeadQualified(LeadQualified) in [Lead];
    LeadDisqualified(LeadDisqualified) in [Lead];
    LeadConverted(LeadConverted) in [Lead];
    DealOpened(DealOpened) in [Deal];
    DealStageChanged(DealStageChanged) in [Deal];
    DealAmountChanged(DealAmountChanged) in [Deal];
    DealReassigned(DealReassigned) in [Deal];
    QuoteIssued(QuoteIssued) in [Deal];
    CompetitorNoted(CompetitorNoted) in [Deal] personal ["note"];
    DealWon(DealWon) in [Deal];
    DealLost(DealLost) in [Deal] personal ["note"];
    DealReopened(DealReopened) in [Deal];
    PaymentScheduled(PaymentScheduled) in [Deal];
    PaymentReceived(PaymentReceived) in [Deal];
    SpendRecorded(SpendRecorded) in [Channel];
    // Added later: new types go at the end.
    ReportingCurrencySet(ReportingCurrencySet) in [Org];
    ExchangeRateSet(ExchangeRateSet) in [Org];
    TokenIssued(TokenIssued) in [Org];
    TokenRevoked(TokenRevoked) in [Org];
    PersonalDataErased(PersonalDataErased) in [Customer, Lead];
    PersonalDataErasureAudited(PersonalDataErasureAudited) in [Org];
}

/// The personal fields (SPEC §7) of `event_type` on a stream of `category`: the person's
/// name, company and contact, and the free text of events about a customer or lead (a
/// deal's notes are about its customer). The event store seals them with the person's key.
/// None for a type on a stream it may not be appended to.
pub fn personal_fields(category: Category, event_type: &str) -> &'static [&'static str] {
    match categories_of(event_type) {
        Some(cats) if cats.contains(&category) => personal_fields_of(event_type),
        _ => &[],
    }
}

/// The categories a type may be appended to; `None` for an unknown type.
pub fn categories_of(event_type: &str) -> Option<&'static [Category]> {
    EVENT_TYPES
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, c)| *c)
}

/// Parses one payload; `track`: see `Event::from_deserializer`.
fn parse_data<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    data: D,
    track: bool,
) -> Result<T, DataError> {
    if !track {
        return T::deserialize(data).map_err(|e| DataError {
            field: "data".to_string(),
            message: e.to_string(),
        });
    }
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "data".to_string()
        } else {
            path
        };
        DataError {
            field,
            message: e.into_inner().to_string(),
        }
    })
}

impl Event {
    /// Parses the envelope's `type` and `data` (current schema) into a typed event.
    /// The error names the offending field path (`stages[1].probability`) and serde's reason.
    pub fn from_parts(event_type: &str, data: &serde_json::Value) -> Result<Event, DataError> {
        // Tracking the path allocates for every key: only data that fails is parsed again
        // with it, for the message (parsing is deterministic: it fails the same way).
        Event::from_deserializer(event_type, data, false)
            .or_else(|_| Event::from_deserializer(event_type, data, true))
    }

    /// Parses `data` given in its stored binary form (`crate::data`), building no `Value`.
    /// Its errors are worded by this deserialiser, not serde_json: for messages, use
    /// `schema::typed` or [`Event::from_parts`]. Structs must be objects, as `schema::parse`
    /// requires (serde_json's `Value` would also take arrays).
    pub fn from_stored(event_type: &str, bytes: &[u8]) -> Result<Event, DataError> {
        let parse = |track| {
            let mut r = crate::data::Reader::new(bytes);
            let event =
                Event::from_deserializer(event_type, crate::data::StoredDe::new(&mut r), track)?;
            if !r.rest.is_empty() {
                return Err(DataError {
                    field: "data".into(),
                    message: "trailing bytes after the value".into(),
                });
            }
            Ok(event)
        };
        // As in `from_parts`: the path only for the message of data that fails.
        parse(false).or_else(|_| parse(true))
    }

    /// The event's `data` object in canonical form.
    pub fn to_data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }
}

fn unknown_type(event_type: &str) -> Result<Event, DataError> {
    Err(DataError {
        field: "type".into(),
        message: format!("unknown event type {event_type:?}"),
    })
}

/// `data` did not match the event type's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// Path of the offending field inside `data` (`"data"` for the object itself).
    pub field: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_parts_and_to_data_round_trip() {
        let data = json!({"customer_id": "C-77", "owner": "wukong", "title": "ERP", "amount": 120000.5, "stage": "qualified"});
        let ev = Event::from_parts("DealOpened", &data).unwrap();
        assert_eq!(ev.type_name(), "DealOpened");
        assert_eq!(ev.to_data(), data);
    }

    #[test]
    fn the_currency_events_round_trip() {
        let set = json!({"currency": "USD"});
        let ev = Event::from_parts("ReportingCurrencySet", &set).unwrap();
        assert_eq!(ev.type_name(), "ReportingCurrencySet");
        assert_eq!(ev.to_data(), set);
        let rate = json!({"currency": "EUR", "month": "2026-06", "rate": 7.8125});
        let ev = Event::from_parts("ExchangeRateSet", &rate).unwrap();
        assert_eq!(ev.type_name(), "ExchangeRateSet");
        assert_eq!(ev.to_data(), rate);
        // Through the stored binary form too (what the read model reads).
        let mut bytes = Vec::new();
        crate::data::put_value(&mut bytes, &rate);
        assert_eq!(Event::from_stored("ExchangeRateSet", &bytes).unwrap(), ev);
        let e = Event::from_parts(
            "ExchangeRateSet",
            &json!({"currency": "EUR", "month": "2026-6", "rate": 7.8}),
        )
        .unwrap_err();
        assert_eq!(e.field, "month", "{e:?}");
        let e = Event::from_parts(
            "ExchangeRateSet",
            &json!({"currency": "EUR", "month": "2026-06"}),
        )
        .unwrap_err();
        assert!(e.message.contains("rate"), "{e:?}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Event::from_parts("DealOpened", &json!({"customer_id": "C", "owner": "w", "title": "t", "amount": "lots", "stage": "q"})).unwrap_err();
        assert_eq!(e.field, "amount");
        let e = Event::from_parts(
            "DealStageChanged",
            &json!({"from": "a", "to": "b", "extra": 1}),
        )
        .unwrap_err();
        assert!(e.message.contains("extra"), "{e:?}");
        let e = Event::from_parts("NoSuchEvent", &json!({})).unwrap_err();
        assert_eq!(e.field, "type");
        let e = Event::from_parts("PipelineDefined", &json!({"stages": [{"id": "a", "name": "A", "probability": 0.1}, {"id": "b", "name": "B"}]})).unwrap_err();
        assert_eq!(e.field, "stages[1]", "{e:?}");
    }

    #[test]
    fn a_types_index_never_changes() {
        // The index is stored (read model snapshots, fuzz seeds): this is the order they were
        // written with. A new type may only be added at the end.
        let stored = [
            "PipelineDefined",
            "RepJoined",
            "RepLeft",
            "TargetSet",
            "CustomerRegistered",
            "CustomerUpdated",
            "CustomerClaimed",
            "CustomerAssigned",
            "CustomerReleased",
            "ComplaintFiled",
            "ComplaintResolved",
            "NpsRecorded",
            "CustomerChurned",
            "ActivityLogged",
            "LeadCaptured",
            "LeadQualified",
            "LeadDisqualified",
            "LeadConverted",
            "DealOpened",
            "DealStageChanged",
            "DealAmountChanged",
            "DealReassigned",
            "QuoteIssued",
            "CompetitorNoted",
            "DealWon",
            "DealLost",
            "DealReopened",
            "PaymentScheduled",
            "PaymentReceived",
            "SpendRecorded",
            "ReportingCurrencySet",
            "ExchangeRateSet",
            "TokenIssued",
            "TokenRevoked",
            "PersonalDataErased",
            "PersonalDataErasureAudited",
        ];
        let names: Vec<&str> = EVENT_TYPES.iter().map(|t| t.0).collect();
        assert_eq!(&names[..stored.len()], &stored[..]);
    }

    #[test]
    fn personal_fields_depend_on_the_stream() {
        use Category::*;
        assert_eq!(personal_fields(Customer, "CustomerRegistered"), ["name"]);
        assert_eq!(personal_fields(Customer, "ActivityLogged"), ["summary"]);
        assert_eq!(personal_fields(Deal, "ActivityLogged"), ["summary"]);
        assert_eq!(personal_fields(Deal, "DealLost"), ["note"]);
        assert_eq!(
            personal_fields(Lead, "LeadCaptured"),
            ["name", "company", "contact"]
        );
        // Not on a stream the type may not be appended to, nor for types without any.
        assert!(personal_fields(Org, "CustomerRegistered").is_empty());
        assert!(personal_fields(Lead, "ActivityLogged").is_empty());
        assert!(personal_fields(Deal, "DealWon").is_empty());
        assert!(personal_fields(Customer, "NoSuchType").is_empty());
    }

    #[test]
    fn the_type_name_is_the_listed_name() {
        for (t, _) in EVENT_TYPES {
            let probe = Event::from_parts(t, &json!({}));
            if let Ok(ev) = probe {
                assert_eq!(ev.type_name(), *t);
            }
        }
        let ev = Event::from_parts("RepLeft", &json!({"rep": "r"})).unwrap();
        assert_eq!(ev.type_name(), "RepLeft");
    }

    #[test]
    fn every_listed_type_is_a_variant() {
        for (t, _) in EVENT_TYPES {
            // A type that parses at all (even with an error about data) is known to serde.
            let e = Event::from_parts(t, &json!({"__probe": 1})).unwrap_err();
            assert!(!e.message.contains("unknown variant"), "{t}: {e:?}");
        }
    }
}
