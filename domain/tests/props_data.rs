//! Property tests on `data`: every type round-trips JSON → typed → JSON; unknown fields,
//! unknown types, wrong JSON types, missing fields and out-of-range values are refused with
//! the right rule; arbitrary JSON never makes the rules panic.
//!
//! `SHAPES` below is written from SPEC §1.2, independently of `events.rs`: if the two
//! disagree, the round-trip property fails.

mod common;

use common::Log;
use domain::events::Event;
use domain::rules::rule;
use domain::schema::typed;
use domain::RecordedEvent;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy)]
enum K {
    Text,
    Texts,
    Money,
    Month,
    Date,
    Int(i64, i64),
    Ratio(f64, f64),
    Secs,
    Kind,
    Direction,
    Stages,
    /// An RFC 3339 instant (UTC).
    Time,
}

use K::*;

type Field = (&'static str, K, bool);

/// Every type's fields: (name, kind, required).
const SHAPES: &[(&str, &[Field])] = &[
    ("PipelineDefined", &[("stages", Stages, true)]),
    (
        "RepJoined",
        &[
            ("rep", Text, true),
            ("name", Text, true),
            ("team", Text, true),
            ("manager", Text, false),
        ],
    ),
    ("RepLeft", &[("rep", Text, true)]),
    (
        "TargetSet",
        &[
            ("rep", Text, false),
            ("team", Text, false),
            ("month", Month, true),
            ("amount", Money, true),
        ],
    ),
    (
        "CustomerRegistered",
        &[
            ("name", Text, true),
            ("industry", Text, false),
            ("size", Text, false),
            ("region", Text, false),
            ("source", Text, false),
            ("tags", Texts, false),
            ("owner", Text, false),
        ],
    ),
    (
        "CustomerUpdated",
        &[
            ("name", Text, false),
            ("industry", Text, false),
            ("size", Text, false),
            ("region", Text, false),
            ("source", Text, false),
            ("tags", Texts, false),
            ("owner", Text, false),
        ],
    ),
    ("CustomerClaimed", &[("rep", Text, true)]),
    (
        "CustomerAssigned",
        &[("rep", Text, true), ("by", Text, false)],
    ),
    ("CustomerReleased", &[("reason", Text, true)]),
    (
        "ComplaintFiled",
        &[("complaint_id", Text, true), ("summary", Text, false)],
    ),
    (
        "ComplaintResolved",
        &[("complaint_id", Text, true), ("summary", Text, false)],
    ),
    ("NpsRecorded", &[("score", Int(0, 10), true)]),
    ("CustomerChurned", &[("reason", Text, false)]),
    (
        "ActivityLogged",
        &[
            ("kind", Kind, true),
            ("rep", Text, true),
            ("direction", Direction, false),
            ("duration_s", Secs, false),
            ("outcome", Text, false),
            ("summary", Text, false),
        ],
    ),
    (
        "LeadCaptured",
        &[
            ("channel", Text, true),
            ("campaign", Text, false),
            ("name", Text, true),
            ("company", Text, false),
            ("contact", Text, false),
        ],
    ),
    (
        "LeadQualified",
        &[
            ("rep", Text, true),
            ("fit_score", Int(0, 100), false),
            ("intent_score", Int(0, 100), false),
        ],
    ),
    ("LeadDisqualified", &[("reason", Text, true)]),
    (
        "LeadConverted",
        &[("customer_id", Text, true), ("deal_id", Text, false)],
    ),
    (
        "DealOpened",
        &[
            ("customer_id", Text, true),
            ("owner", Text, true),
            ("title", Text, true),
            ("amount", Money, true),
            ("currency", Text, false),
            ("stage", Text, true),
            ("expected_close", Date, false),
            ("source_lead", Text, false),
            ("products", Texts, false),
        ],
    ),
    (
        "DealStageChanged",
        &[("from", Text, true), ("to", Text, true)],
    ),
    ("DealAmountChanged", &[("amount", Money, true)]),
    (
        "DealReassigned",
        &[("from", Text, true), ("to", Text, true)],
    ),
    (
        "QuoteIssued",
        &[
            ("quote_id", Text, true),
            ("amount", Money, true),
            ("discount_pct", Ratio(0.0, 100.0), false),
        ],
    ),
    (
        "CompetitorNoted",
        &[("competitor", Text, true), ("note", Text, false)],
    ),
    (
        "DealWon",
        &[("amount", Money, true), ("reason", Text, false)],
    ),
    (
        "DealLost",
        &[
            ("reason", Text, true),
            ("competitor", Text, false),
            ("note", Text, false),
        ],
    ),
    ("DealReopened", &[("stage", Text, true)]),
    (
        "PaymentScheduled",
        &[
            ("installment_id", Text, true),
            ("amount", Money, true),
            ("due", Date, true),
        ],
    ),
    (
        "PaymentReceived",
        &[("amount", Money, true), ("installment_id", Text, false)],
    ),
    (
        "SpendRecorded",
        &[("month", Month, true), ("amount", Money, true)],
    ),
    ("ReportingCurrencySet", &[("currency", Text, true)]),
    (
        "ExchangeRateSet",
        &[
            ("currency", Text, true),
            ("month", Month, true),
            ("rate", Ratio(0.0001, 10000.0), true),
        ],
    ),
    (
        "TokenIssued",
        &[
            ("token_id", Text, true),
            ("role", Text, true),
            ("subject", Text, true),
            ("expires_at", Time, false),
        ],
    ),
    ("TokenRevoked", &[("token_id", Text, true)]),
    ("PersonalDataErased", &[("reason", Text, true)]),
    (
        "PersonalDataErasureAudited",
        &[("person", Text, true), ("reason", Text, true)],
    ),
];

fn value_of(k: K) -> BoxedStrategy<Value> {
    match k {
        Text => "[A-Za-z0-9_.:-]{1,12}".prop_map(Value::from).boxed(),
        Texts => prop::collection::vec("[a-z]{1,6}", 0..4)
            .prop_map(|v| json!(v))
            .boxed(),
        // Any amount up to 10 billion, to the cent, as a JSON number.
        Money => (0i64..1_000_000_000_000)
            .prop_map(|c| json!(c as f64 / 100.0))
            .boxed(),
        Month => (2000i32..2100, 1u32..=12)
            .prop_map(|(y, m)| json!(format!("{y:04}-{m:02}")))
            .boxed(),
        Date => (2000i32..2100, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| json!(format!("{y:04}-{m:02}-{d:02}")))
            .boxed(),
        Int(lo, hi) => (lo..=hi).prop_map(Value::from).boxed(),
        Ratio(lo, hi) => (lo..=hi).prop_map(Value::from).boxed(),
        Secs => (0u64..1_000_000).prop_map(Value::from).boxed(),
        Time => (2000i32..2100, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60)
            .prop_map(|(y, mo, d, h, mi)| {
                json!(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00Z"))
            })
            .boxed(),
        Kind => prop::sample::select(vec!["call", "email", "sms", "meeting", "visit", "note"])
            .prop_map(Value::from)
            .boxed(),
        Direction => prop::sample::select(vec!["inbound", "outbound"])
            .prop_map(Value::from)
            .boxed(),
        Stages => prop::collection::vec(("[a-z]{1,8}", "[A-Za-z ]{1,12}", 0.0f64..=1.0), 0..5)
            .prop_map(|v| {
                json!(v
                    .into_iter()
                    .map(|(id, name, p)| json!({"id": id, "name": name, "probability": p}))
                    .collect::<Vec<_>>())
            })
            .boxed(),
    }
}

/// A valid `data` object of the `i`-th type (as far as JSON shape goes).
fn data_of(i: usize) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = SHAPES[i]
        .1
        .iter()
        .map(|&(name, k, required)| {
            let v = value_of(k).prop_map(move |v| (name.to_string(), v));
            if required {
                v.prop_map(Some).boxed()
            } else {
                proptest::option::of(v).boxed()
            }
        })
        .collect();
    fields
        .prop_map(|fs| Value::Object(fs.into_iter().flatten().collect::<Map<String, Value>>()))
        .boxed()
}

fn typed_data() -> impl Strategy<Value = (usize, Value)> {
    (0..SHAPES.len()).prop_flat_map(|i| data_of(i).prop_map(move |d| (i, d)))
}

/// A value of the wrong JSON type for a field of kind `k`.
fn wrong_for(k: K) -> Value {
    match k {
        Text | Month | Date | Kind | Direction | Time => json!(7),
        Texts | Stages => json!("not a list"),
        Money | Int(..) | Ratio(..) | Secs => json!("12"),
    }
}

fn envelope(stream: &str, t: &str, data: Value) -> RecordedEvent {
    let mut log = Log::new();
    log.ev(stream, t, data)
}

/// A log where an event of type `t` is only subject to its own data: the right stream exists.
fn log_for(t: &str) -> (Log, String) {
    let mut log = Log::new();
    let cats = domain::events::categories_of(t).unwrap();
    let stream = match (t, cats[0]) {
        ("DealOpened", _) => "deal-D-new".to_string(),
        ("CustomerRegistered", _) => "customer-C-new".to_string(),
        ("LeadCaptured", _) => "lead-L-new".to_string(),
        (_, domain::Category::Deal) => log.open_deal("D-1", "qualified"),
        (_, domain::Category::Customer) => log.register_customer("C-1", Some("wukong")),
        (_, domain::Category::Lead) => {
            log.ok(
                "lead-L-1",
                "LeadCaptured",
                json!({"channel": "baidu", "name": "Tang"}),
            );
            "lead-L-1".to_string()
        }
        (_, domain::Category::Org) => "org-acme".to_string(),
        (_, domain::Category::Channel) => "channel-baidu".to_string(),
    };
    (log, stream)
}

/// `data` of `SHAPES[i]`'s type with an unknown field `extra` (`spoil` 0) or its first field of
/// the wrong JSON type (`spoil` 1).
fn spoiled(i: usize, data: &Value, spoil: usize, extra: String) -> Value {
    let mut data = data.clone();
    if let Some(m) = data.as_object_mut() {
        match (spoil, SHAPES[i].1.first()) {
            (0, _) => {
                m.insert(extra, json!(1));
            }
            (1, Some(&(name, k, _))) => {
                m.insert(name.to_string(), wrong_for(k));
            }
            _ => {}
        }
    }
    data
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z_]{0,8}".prop_map(Value::from),
        prop::sample::select(vec![
            "call",
            "2026-06",
            "2026-06-01",
            "qualified",
            "inbound",
            ""
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "amount",
                    "stage",
                    "from",
                    "to",
                    "rep",
                    "name",
                    "team",
                    "month",
                    "score",
                    "kind",
                    "reason",
                    "stages",
                    "id",
                    "probability",
                    "customer_id",
                    "owner",
                    "title",
                    "quote_id",
                    "installment_id",
                    "due",
                    "complaint_id",
                    "channel",
                    "competitor",
                    "x",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_type_round_trips_json_typed_json((i, data) in typed_data()) {
        let t = SHAPES[i].0;
        let ev = Event::from_parts(t, &data).unwrap_or_else(|e| panic!("{t} {data}: {e:?}"));
        prop_assert_eq!(ev.type_name(), t);
        prop_assert_eq!(&ev.to_data(), &data);
        prop_assert_eq!(Event::from_parts(t, &ev.to_data()).unwrap(), ev.clone());
        // Through JSON text as well (what the log stores).
        let text = serde_json::to_string(&ev.to_data()).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(Event::from_parts(t, &back).unwrap(), ev);
    }

    /// Typed events read straight from the stored bytes (what the read model does with
    /// events from the log) are exactly those read from the `Value`: `schema::typed` gives
    /// the same event or the same rejection (field path and message), and the bytes alone
    /// are accepted exactly when `schema::typed` accepts the value, as the same event; for
    /// valid data, for data with one field of the wrong JSON type or an unknown field, and
    /// for any JSON at all. The rules judge them alike too.
    #[test]
    fn typed_events_from_stored_bytes_equal_those_from_values(
        (i, data) in typed_data(),
        spoil in 0usize..2,
        extra in "[a-z]{1,8}_x",
        any_json in arbitrary_json(),
    ) {
        let t = SHAPES[i].0;
        let spoiled = spoiled(i, &data, spoil, extra);
        for v in [data, any_json, spoiled] {
            let mut bytes = Vec::new();
            domain::data::put_value(&mut bytes, &v);
            let (stored, _) = domain::EventData::from_encoded(&bytes).unwrap();
            // Through `schema::typed` (what folding and the read model call), which also
            // refuses non-object data: the same event or the same rejection.
            let mut from_log = envelope("deal-D-1", t, v.clone());
            let from_value = from_log.clone();
            from_log.data = stored.clone();
            prop_assert_eq!(typed(&from_log), typed(&from_value), "{} {}", t, v);
            prop_assert_eq!(typed(&from_log).is_ok(), !from_log.data.is_decoded(), "only errors build the Value");
            let direct = Event::from_stored(t, &bytes);
            prop_assert_eq!(direct.ok(), typed(&from_value).ok(), "{} {}", t, v);
            // The rules, in the stream where the type belongs, give the same answer (the state
            // after, or the rejection) for data in the stored form (an import's spool) as for
            // the decoded value, and accept a valid event without building the value.
            let (mut log, stream) = log_for(t);
            let by_value = log.ev(&stream, t, v.clone());
            let mut by_bytes = by_value.clone();
            by_bytes.data = stored;
            let judged = log.check(&stream, std::slice::from_ref(&by_bytes));
            let expected = log.check(&stream, std::slice::from_ref(&by_value));
            prop_assert_eq!(format!("{judged:?}"), format!("{expected:?}"), "{} {}", t, v);
            if expected.is_ok() {
                prop_assert!(!by_bytes.data.is_decoded(), "{} accepted from its bytes", t);
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused((i, data) in typed_data(), extra in "[a-z]{1,8}_x") {
        let t = SHAPES[i].0;
        let mut data = data;
        data.as_object_mut().unwrap().insert(extra.clone(), json!(1));
        let r = typed(&envelope("deal-D-1", t, data)).unwrap_err();
        prop_assert_eq!(r.rule, "event.data");
        prop_assert_eq!(r.field, format!("data.{extra}"));
    }

    #[test]
    fn wrong_json_types_are_refused((i, data) in typed_data(), pick in any::<prop::sample::Index>()) {
        let (t, fields) = SHAPES[i];
        let (name, k, _) = fields[pick.index(fields.len())];
        let mut data = data;
        data.as_object_mut().unwrap().insert(name.to_string(), wrong_for(k));
        let r = typed(&envelope("deal-D-1", t, data)).unwrap_err();
        prop_assert_eq!(r.rule, "event.data");
        prop_assert!(r.field.starts_with(&format!("data.{name}")), "{} for {}", r.field, name);
    }

    #[test]
    fn missing_required_fields_are_refused((i, data) in typed_data(), pick in any::<prop::sample::Index>()) {
        let (t, fields) = SHAPES[i];
        let required: Vec<&str> = fields.iter().filter(|f| f.2).map(|f| f.0).collect();
        prop_assume!(!required.is_empty());
        let name = required[pick.index(required.len())];
        let mut data = data;
        data.as_object_mut().unwrap().remove(name);
        let r = typed(&envelope("deal-D-1", t, data)).unwrap_err();
        prop_assert_eq!(r.rule, "event.data");
        prop_assert!(r.message.contains(name), "{}", r.message);
    }

    #[test]
    fn negative_amounts_are_refused_for_every_type_with_an_amount(
        t in prop::sample::select(
            SHAPES.iter().filter(|s| s.1.iter().any(|f| f.0 == "amount")).map(|s| s.0).collect::<Vec<_>>()
        ),
        cents in 1i64..1_000_000_000
    ) {
        // The other required fields of the type, valid, so that only the amount is wrong.
        let mut data = match t {
            "TargetSet" | "SpendRecorded" => json!({"month": "2026-06"}),
            "DealOpened" => json!({"customer_id": "C-1", "owner": "wukong", "title": "t", "stage": "qualified"}),
            "QuoteIssued" => json!({"quote_id": "Q1"}),
            "PaymentScheduled" => json!({"installment_id": "I1", "due": "2026-07-01"}),
            _ => json!({}),
        };
        data["amount"] = json!(-(cents as f64) / 100.0);
        let (log, stream) = log_for(t);
        let mut e = envelope(&stream, t, data);
        e.occurred_at = log.clock + chrono::Duration::hours(1);
        e.recorded_at = e.occurred_at;
        let r = log.check(&stream, &[e]).unwrap_err();
        prop_assert_eq!(r.rule, "value.amount_non_negative");
        prop_assert_eq!(r.field, "data.amount");
    }

    #[test]
    fn out_of_range_scores_are_refused(score in prop_oneof![i64::MIN..0, 11i64..i64::MAX], lead in prop_oneof![-1000i64..0, 101i64..1000]) {
        let (log, s) = log_for("NpsRecorded");
        let mut e = envelope(&s, "NpsRecorded", json!({"score": score}));
        e.occurred_at = log.clock + chrono::Duration::hours(1);
        e.recorded_at = e.occurred_at;
        let r = log.check(&s, &[e]).unwrap_err();
        prop_assert_eq!((r.rule, r.field.as_str(), r.value), ("value.in_range", "data.score", score.to_string()));

        let (log, s) = log_for("LeadQualified");
        let mut e = envelope(&s, "LeadQualified", json!({"rep": "wukong", "fit_score": lead}));
        e.occurred_at = log.clock + chrono::Duration::hours(1);
        e.recorded_at = e.occurred_at;
        let r = log.check(&s, &[e]).unwrap_err();
        prop_assert_eq!((r.rule, r.field.as_str()), ("value.in_range", "data.fit_score"));
    }

    #[test]
    fn out_of_range_ratios_are_refused(p in prop_oneof![-1e9f64..-1e-9, 1.000_001f64..1e9], d in prop_oneof![-1e9f64..-1e-9, 100.000_01f64..1e9]) {
        let (log, s) = log_for("PipelineDefined");
        let e = envelope(&s, "PipelineDefined", json!({"stages": [{"id": "a", "name": "A", "probability": p}]}));
        let r = log.check(&s, &[e]).unwrap_err();
        prop_assert_eq!((r.rule, r.field.as_str()), ("value.in_range", "data.stages[0].probability"));

        let (log, s) = log_for("QuoteIssued");
        let mut e = envelope(&s, "QuoteIssued", json!({"quote_id": "Q1", "amount": 1.0, "discount_pct": d}));
        e.occurred_at = log.clock + chrono::Duration::hours(1);
        e.recorded_at = e.occurred_at;
        let r = log.check(&s, &[e]).unwrap_err();
        prop_assert_eq!((r.rule, r.field.as_str()), ("value.in_range", "data.discount_pct"));
    }

    #[test]
    fn arbitrary_json_as_data_never_panics_and_refusals_name_a_catalogued_rule(
        i in 0..SHAPES.len(), data in arbitrary_json()
    ) {
        let t = SHAPES[i].0;
        let (log, stream) = log_for(t);
        let mut e = envelope(&stream, t, data);
        e.occurred_at = log.clock + chrono::Duration::hours(1);
        e.recorded_at = e.occurred_at;
        if let Err(r) = log.check(&stream, &[e.clone()]) {
            prop_assert!(rule(r.rule).is_some(), "{}", r.rule);
            prop_assert_eq!(r.index, Some(0));
        }
        let _ = domain::state::fold_stream(&stream, &[e]);
    }

    #[test]
    fn arbitrary_types_and_streams_never_panic(t in "[A-Za-z]{0,20}", stream in "[a-z]{0,8}-?[A-Za-z0-9 _.:-]{0,70}", data in arbitrary_json()) {
        let log = Log::new();
        let e = envelope(&stream, &t, data);
        match log.check(&stream, &[e]) {
            Ok(_) => prop_assert!(domain::events::categories_of(&t).is_some()),
            Err(r) => prop_assert!(rule(r.rule).is_some(), "{}", r.rule),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Folding is total: after a valid opening, any mix of types and data (valid, invalid,
    /// other categories', unknown) folds without panicking, and the fold ignores what does
    /// not parse, exactly as if those events were absent.
    #[test]
    fn folding_any_sequence_never_panics(
        tail in prop::collection::vec((prop::sample::select(
            SHAPES.iter().map(|s| s.0).chain(["Nope", ""]).collect::<Vec<_>>()), arbitrary_json()), 0..20),
        valid in prop::collection::vec(typed_data(), 0..10),
    ) {
        let mut log = Log::new();
        let s = log.open_deal("D-1", "qualified");
        let mut events = log.events.clone();
        for (t, data) in tail {
            events.push(envelope(&s, t, data));
        }
        for (i, data) in valid {
            events.push(envelope(&s, SHAPES[i].0, data));
        }
        let folded = domain::state::fold_stream(&s, &events);
        let parsable: Vec<RecordedEvent> = events.iter().filter(|e| typed(e).is_ok()).cloned().collect();
        prop_assert_eq!(&folded, &domain::state::fold_stream(&s, &parsable));
        prop_assert!(folded.as_deal().is_some());
        let mut org = domain::state::OrgState::default();
        for e in &events {
            org.apply(e);
        }
    }
}

#[test]
fn unknown_types_are_refused_by_name() {
    let r = typed(&envelope("deal-D-1", "DealWonBig", json!({}))).unwrap_err();
    assert_eq!(
        (r.rule, r.field.as_str(), r.value.as_str()),
        ("event.type_known", "type", "\"DealWonBig\"")
    );
}

#[test]
fn the_shapes_table_lists_every_type() {
    let shapes: Vec<&str> = SHAPES.iter().map(|s| s.0).collect();
    let types: Vec<&str> = domain::events::EVENT_TYPES.iter().map(|t| t.0).collect();
    assert_eq!(shapes, types);
}

/// What `schema::typed` refuses beyond serde (data that is not an object, a stage that is
/// not an object) is refused just the same when the data comes from the log's bytes.
#[test]
fn stored_data_gets_the_same_shape_checks() {
    for (t, data) in [
        ("PipelineDefined", json!({"stages": [["won", "Won", 1.0]]})),
        ("DealStageChanged", json!(["qualified", "quote"])),
    ] {
        let from_value = envelope("deal-D-1", t, data.clone());
        assert!(
            Event::from_parts(t, &data).is_ok(),
            "serde alone reads {data}"
        );
        let mut from_log = from_value.clone();
        let mut bytes = Vec::new();
        domain::data::put_value(&mut bytes, &data);
        from_log.data = domain::EventData::from_encoded(&bytes).unwrap().0;
        let refused = typed(&from_value).unwrap_err();
        assert_eq!(refused.rule, "event.data");
        assert_eq!(typed(&from_log).unwrap_err(), refused);
    }
}
