//! Schema evolution: every event type has a current schema version; events written under an
//! older version are brought up to date by a chain of upcasters when they are read, so the
//! log itself is never rewritten. See the crate docs for the procedure.

use serde_json::Value;

use crate::envelope::RecordedEvent;
use crate::events::{Event, EVENT_TYPES};
use crate::rejection::Rejection;
use crate::rules;

/// One step of an event type's history: turns `data` written as `event_type` at
/// `from_version` into `from_version + 1`. It may also rename the type (`event_type` of the
/// event is replaced by what the step leaves there); the chain continues under the new name.
#[derive(Clone, Copy)]
pub struct UpcastStep {
    pub event_type: &'static str,
    pub from_version: u16,
    pub upcast: fn(&mut String, &mut Value),
}

/// The schema versions in force and the steps that lead to them.
#[derive(Clone, Copy)]
pub struct Schema {
    /// Current version per type. A known type not listed is at version 1.
    pub versions: &'static [(&'static str, u16)],
    pub steps: &'static [UpcastStep],
}

/// Version 1 of every type: the vocabulary as first released (SPEC §1.2).
const FIRST_VERSION: u16 = 1;

/// The schema of this build. Every type is at version 1; no upcaster is needed yet.
pub const CURRENT: Schema = Schema {
    versions: &[],
    steps: &[],
};

impl Schema {
    /// The version a freshly written event of `event_type` has.
    pub fn current_version(&self, event_type: &str) -> u16 {
        self.versions
            .iter()
            .find(|(t, _)| *t == event_type)
            .map_or(FIRST_VERSION, |(_, v)| *v)
    }

    /// Brings `ev.data` (and, for a renamed type, `ev.event_type`) to the current schema.
    /// `schema_version == 0` means "already current" (what JSON parsing gives). When no step
    /// is registered for a version, the event is left as it is and parsing will say why.
    pub fn upcast(&self, mut ev: RecordedEvent) -> RecordedEvent {
        if ev.schema_version == 0 {
            return ev;
        }
        // A chain can only be as long as the steps registered; this bound also stops a
        // (mistaken) cycle of type renames.
        for _ in 0..=self.steps.len() {
            if ev.schema_version >= self.current_version(&ev.event_type) {
                break;
            }
            let step = self
                .steps
                .iter()
                .find(|s| s.event_type == ev.event_type && s.from_version == ev.schema_version);
            match step {
                Some(s) => {
                    (s.upcast)(&mut ev.event_type, &mut ev.data);
                    ev.schema_version += 1;
                }
                None => break,
            }
        }
        ev
    }
}

/// The current schema version of `event_type` (1 for every type today).
pub fn current_schema_version(event_type: &str) -> u16 {
    CURRENT.current_version(event_type)
}

/// Brings an event to the current schema (see [`Schema::upcast`]).
pub fn upcast(ev: RecordedEvent) -> RecordedEvent {
    CURRENT.upcast(ev)
}

/// Upcasts and parses an event into its typed form.
/// Refusals: unknown type → `event.type_known` (field `type`);
/// `data` not matching the type → `event.data` (field `data.<path>`, the value found there).
pub fn typed(ev: &RecordedEvent) -> Result<Event, Rejection> {
    if ev.schema_version == 0 || ev.schema_version >= current_schema_version(&ev.event_type) {
        // Already current: nothing to upcast, so no copy of the event. Data still in its
        // stored form is read straight from the bytes (which, as `parse`, takes structs only
        // as objects); any error takes the path through the `Value` that words the
        // rejection.
        let stored = ev.data.undecoded();
        if let Some(Ok(event)) = stored.map(|b| Event::from_stored(&ev.event_type, b)) {
            return Ok(event);
        }
        return parse(&ev.event_type, &ev.data);
    }
    let ev = upcast(ev.clone());
    parse(&ev.event_type, &ev.data)
}

/// Parses current-schema `type` + `data`, with the rejection the rules use.
pub fn parse(event_type: &str, data: &Value) -> Result<Event, Rejection> {
    if !EVENT_TYPES.iter().any(|(t, _)| *t == event_type) {
        return Err(rules::TYPE_KNOWN.reject(
            "type",
            rules::json_text(&event_type),
            format!("unknown event type {event_type:?}"),
        ));
    }
    // serde would also read a struct from an array of its fields in order: refuse that.
    if !data.is_object() {
        return Err(rules::DATA_SHAPE.reject(
            "data",
            rules::json_text(data),
            format!("data of {event_type} must be a JSON object"),
        ));
    }
    // The same for the one nested struct of the vocabulary, a pipeline's stages.
    if let Some(stages) = data.get("stages").and_then(Value::as_array) {
        if let Some((i, s)) = stages.iter().enumerate().find(|(_, s)| !s.is_object()) {
            return Err(rules::DATA_SHAPE.reject(
                format!("data.stages[{i}]"),
                rules::json_text(s),
                "a stage must be a JSON object {id, name, probability}",
            ));
        }
    }
    Event::from_parts(event_type, data).map_err(|e| {
        let (field, value) = if e.field == "data" {
            ("data".to_string(), data)
        } else {
            let value = value_at(data, &e.field).unwrap_or(data);
            let sep = if e.field.starts_with('[') { "" } else { "." };
            (format!("data{sep}{}", e.field), value)
        };
        rules::DATA_SHAPE.reject(field, rules::json_text(value), e.message)
    })
}

/// Finds the value at a serde_path_to_error path such as `stages[1].probability`.
fn value_at<'a>(data: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = data;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.trim_end_matches(']').parse().ok()?;
            cur = cur.get(n)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(event_type: &str, schema_version: u16, data: Value) -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::nil(),
            stream: "deal-D-1".into(),
            event_type: event_type.into(),
            version: 3,
            position: 9,
            occurred_at: crate::envelope::parse_time("2026-06-03T09:30:00Z").unwrap(),
            recorded_at: crate::envelope::parse_time("2026-06-03T09:30:00Z").unwrap(),
            actor: "wukong".into(),
            data: data.into(),
            metadata: Default::default(),
            schema_version,
        }
    }

    // A hypothetical history, to exercise the machinery the way a real change would use it:
    // - CompetitorNoted v1 called the field `name`; v2 renamed it to `competitor`.
    // - v3 made `note` required: the v2 → v3 step fills a default for old events.
    // - `DealLostToCompetitor` (v1) was retired: it reads as `DealLost` v1 with reason "competitor".
    fn rename_name_to_competitor(_: &mut String, data: &mut Value) {
        if let Some(obj) = data.as_object_mut() {
            if let Some(v) = obj.remove("name") {
                obj.insert("competitor".into(), v);
            }
        }
    }
    fn add_default_note(_: &mut String, data: &mut Value) {
        if let Some(obj) = data.as_object_mut() {
            obj.entry("note").or_insert(json!("(none)"));
        }
    }
    fn retire_lost_to_competitor(t: &mut String, data: &mut Value) {
        *t = "DealLost".into();
        let competitor = data.get("competitor").cloned().unwrap_or(Value::Null);
        *data = json!({"reason": "competitor", "competitor": competitor});
    }
    const HISTORY: Schema = Schema {
        versions: &[("CompetitorNoted", 3), ("DealLostToCompetitor", 2)],
        steps: &[
            UpcastStep {
                event_type: "CompetitorNoted",
                from_version: 1,
                upcast: rename_name_to_competitor,
            },
            UpcastStep {
                event_type: "CompetitorNoted",
                from_version: 2,
                upcast: add_default_note,
            },
            UpcastStep {
                event_type: "DealLostToCompetitor",
                from_version: 1,
                upcast: retire_lost_to_competitor,
            },
        ],
    };

    #[test]
    fn every_type_is_at_version_one_and_current_events_pass_unchanged() {
        for (t, _) in EVENT_TYPES {
            assert_eq!(current_schema_version(t), 1, "{t}");
        }
        let ev = recorded("DealStageChanged", 0, json!({"from": "a", "to": "b"}));
        assert_eq!(upcast(ev.clone()), ev);
        let ev1 = recorded("DealStageChanged", 1, json!({"from": "a", "to": "b"}));
        assert_eq!(upcast(ev1.clone()), ev1);
    }

    #[test]
    fn a_chain_of_steps_renames_then_adds_a_field() {
        let old = recorded("CompetitorNoted", 1, json!({"name": "Acme"}));
        let up = HISTORY.upcast(old);
        assert_eq!(up.schema_version, 3);
        assert_eq!(up.data, json!({"competitor": "Acme", "note": "(none)"}));
        // Only the data changed: the envelope is the one that was recorded.
        assert_eq!(
            (up.version, up.position, up.stream.as_str()),
            (3, 9, "deal-D-1")
        );
        // The result parses under today's schema.
        let ev = Event::from_parts(&up.event_type, &up.data).unwrap();
        assert!(matches!(ev, Event::CompetitorNoted(c) if c.competitor == "Acme"));

        // Starting half-way runs only the remaining step.
        let mid = recorded("CompetitorNoted", 2, json!({"competitor": "Zed"}));
        assert_eq!(
            HISTORY.upcast(mid).data,
            json!({"competitor": "Zed", "note": "(none)"})
        );
        // Current ("0") and up-to-date events are untouched.
        let cur = recorded("CompetitorNoted", 0, json!({"competitor": "Q"}));
        assert_eq!(HISTORY.upcast(cur.clone()), cur);
    }

    #[test]
    fn a_retired_type_reads_as_its_replacement() {
        let old = recorded("DealLostToCompetitor", 1, json!({"competitor": "Acme"}));
        let up = HISTORY.upcast(old);
        assert_eq!(up.event_type, "DealLost");
        assert_eq!(
            up.data,
            json!({"reason": "competitor", "competitor": "Acme"})
        );
        assert!(Event::from_parts(&up.event_type, &up.data).is_ok());
    }

    #[test]
    fn a_missing_step_leaves_the_event_for_parsing_to_refuse() {
        let ev = recorded("DealLostToCompetitor", 0, json!({}));
        // Version 0 = "current": nothing runs, and parsing refuses the unknown type.
        assert_eq!(HISTORY.upcast(ev.clone()), ev);
        let err = typed(&ev).unwrap_err();
        assert_eq!((err.rule, err.field.as_str()), ("event.type_known", "type"));
    }

    #[test]
    fn typed_names_the_field_and_the_value() {
        let ev = recorded(
            "PipelineDefined",
            0,
            json!({"stages": [{"id": "a", "name": "A", "probability": "high"}]}),
        );
        let err = typed(&ev).unwrap_err();
        assert_eq!(err.rule, "event.data");
        assert_eq!(err.field, "data.stages[0].probability");
        assert_eq!(err.value, "\"high\"");
        // An array of the fields in order is not an object, though serde would accept it.
        let err = typed(&recorded("DealStageChanged", 0, json!(["a", "b"]))).unwrap_err();
        assert_eq!(err.rule, "event.data");
        assert_eq!(
            (err.field.as_str(), err.value.as_str()),
            ("data", "[\"a\",\"b\"]")
        );
    }
}
