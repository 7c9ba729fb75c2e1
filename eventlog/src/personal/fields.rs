//! Which fields of which events are personal data (SPEC §7: `domain::events::personal_fields`),
//! and whose.
//!
//! The owner (whose key seals them) is the customer or lead whose stream it is; for a deal's
//! events, the deal's customer (`DealOpened.customer_id`). Everything else (types, amounts,
//! stages, times, reps, ids, titles, reasons) stays clear.

use domain::data::EventData;
use domain::Category;
use serde_json::Value;

use super::cipher::{self, PREFIX};

/// What a personal field reads after its person's key was destroyed.
pub const ERASED: &str = "[erased]";

/// The personal fields of `event_type` on a stream of this name (empty: none; the list is
/// `domain::events::personal_fields`).
pub fn personal_fields(stream: &str, event_type: &str) -> &'static [&'static str] {
    let category = match stream.split_once('-').map_or("", |(c, _)| c) {
        "customer" => Category::Customer,
        "lead" => Category::Lead,
        "deal" => Category::Deal,
        _ => return &[],
    };
    domain::events::personal_fields(category, event_type)
}

/// Whether `stream` is a person's (`customer-…`, `lead-…`).
pub fn is_person(stream: &str) -> bool {
    stream.starts_with("customer-") || stream.starts_with("lead-")
}

/// The fields of `data` that [`seal_data`] would seal: present, text, not blank (blank or
/// mistyped values are left as they are, for the domain's rules to refuse as they would).
/// Read from the stored bytes while `data` is in its binary form (an import's): only an event
/// with something to seal is decoded, to be sealed.
pub fn fields_to_seal<'a>(
    fields: &'static [&'static str],
    data: &'a EventData,
) -> Vec<(&'static str, &'a str)> {
    fields
        .iter()
        .filter_map(|f| match data.str_field(f) {
            Some(s) if !s.trim().is_empty() && !s.starts_with(PREFIX) => Some((*f, s)),
            _ => None,
        })
        .collect()
}

/// Seals the personal `fields` of `data` for `person`.
pub fn seal_data(
    key: &cipher::PersonKey,
    person: &str,
    event_id: Option<&uuid::Uuid>,
    fields: &'static [&'static str],
    data: &mut Value,
) {
    let Value::Object(map) = data else {
        return;
    };
    for f in fields {
        if let Some(Value::String(s)) = map.get_mut(*f) {
            if !s.trim().is_empty() && !s.starts_with(PREFIX) {
                *s = cipher::seal(key, person, event_id, f, s);
            }
        }
    }
}

/// The sealed values among `fields` of `data`: (field, owner).
pub fn sealed_fields<'a>(
    fields: &'static [&'static str],
    data: &'a Value,
) -> Vec<(&'static str, &'a str)> {
    fields
        .iter()
        .filter_map(|f| match data.get(*f) {
            Some(Value::String(s)) => cipher::owner(s).map(|o| (*f, o)),
            _ => None,
        })
        .collect()
}

/// The clear personal values among `fields` of `data` (events written before encryption).
pub fn clear_fields(fields: &'static [&'static str], data: &Value) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|f| match data.get(**f) {
            Some(Value::String(s)) => !s.trim().is_empty() && !s.starts_with(PREFIX) && s != ERASED,
            _ => false,
        })
        .copied()
        .collect()
}

/// Whether `existing` (as read: opened, or `"[erased]"`) and `proposed` are the same data,
/// taking a personal field that reads `"[erased]"` as the same as whatever was proposed in
/// it: an event of an erased person sent again (an export taken before the erasure,
/// re-imported) is recognised as the event already in the log.
pub fn same_data_but_erased(
    stream: &str,
    event_type: &str,
    existing: &Value,
    proposed: &Value,
) -> bool {
    let fields = personal_fields(stream, event_type);
    let (Value::Object(e), Value::Object(p)) = (existing, proposed) else {
        return false;
    };
    let erased = |f: &str| fields.contains(&f) && e.get(f).and_then(Value::as_str) == Some(ERASED);
    if !fields.iter().any(|f| erased(f)) {
        return false;
    }
    e.len() == p.len()
        && e.iter()
            .all(|(k, v)| p.get(k).is_some_and(|pv| erased(k) || pv == v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_personal_fields_are_those_of_spec_7_by_stream() {
        assert_eq!(
            personal_fields("customer-C", "CustomerRegistered"),
            ["name"]
        );
        assert_eq!(
            personal_fields("lead-L", "LeadCaptured"),
            ["name", "company", "contact"]
        );
        assert_eq!(personal_fields("deal-D", "ActivityLogged"), ["summary"]);
        assert_eq!(personal_fields("deal-D", "DealLost"), ["note"]);
        assert!(personal_fields("deal-D", "DealOpened").is_empty());
        assert!(personal_fields("org-acme", "RepJoined").is_empty());
        assert!(personal_fields("customer-C", "CustomerReleased").is_empty());
    }

    #[test]
    fn blank_and_mistyped_values_are_left_for_the_rules() {
        let data = json!({"name": "  ", "company": 3, "contact": "x@y"});
        let f = personal_fields("lead-L", "LeadCaptured");
        assert_eq!(fields_to_seal(f, &data.into()), [("contact", "x@y")]);
    }

    #[test]
    fn an_erased_field_matches_any_proposed_text_and_nothing_else_does() {
        let existing = json!({"name": ERASED, "industry": "retail"});
        let same = json!({"name": "Huaguo", "industry": "retail"});
        let other = json!({"name": "Huaguo", "industry": "tech"});
        let more = json!({"name": "Huaguo", "industry": "retail", "region": "east"});
        let t = "CustomerRegistered";
        assert!(same_data_but_erased("customer-C", t, &existing, &same));
        assert!(!same_data_but_erased("customer-C", t, &existing, &other));
        assert!(!same_data_but_erased("customer-C", t, &existing, &more));
        // "[erased]" in a field that is not personal is an ordinary value.
        let title = json!({"title": ERASED});
        assert!(!same_data_but_erased(
            "deal-D",
            "DealOpened",
            &title,
            &json!({"title": "x"})
        ));
    }
}
