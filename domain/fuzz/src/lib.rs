//! What the `stored_data` fuzz target checks, as a plain function: the fuzz target calls it
//! with libFuzzer's inputs, and `domain/tests/fuzz_seeds.rs` (under `cargo test`) with the
//! committed seed corpus. It panics where an invariant does not hold.
//!
//! Input: one selector byte (which event type the typed read is asked for), then bytes as
//! an event's `data` (or `metadata`) is stored in the log (`domain::data`'s binary form).

use domain::data::{
    check_value, put_object, put_value, EventData, EventMetadata, Reader, StoredDe,
};
use domain::events::{Event, EVENT_TYPES};
use domain::schema::{parse, typed};
use domain::RecordedEvent;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The `stored_data` target: the checks of stored bytes, their decoding, the JSON written
/// straight from them, and the typed read, all agree.
pub fn stored_data(input: &[u8]) {
    let Some((&selector, bytes)) = input.split_first() else {
        return;
    };
    stored_value(bytes);
    stored_metadata(bytes);
    typed_read(selector, bytes);
}

/// `data`: whatever passes the check decodes, re-encodes to the same bytes (one encoding per
/// value), serialises from the bytes exactly as from the value, and the serde path (typed
/// reads) reads the same value.
fn stored_value(bytes: &[u8]) {
    let checked = check_value(bytes);
    let mut r = Reader::new(bytes);
    let decoded = r.value(0);
    let (len, value) = match (checked, decoded) {
        (Ok(len), Ok(value)) => (len, value),
        (Err(_), Err(_)) => {
            assert!(EventData::from_encoded(bytes).is_err());
            return;
        }
        (checked, decoded) => {
            panic!("the check and the decoder disagree: {checked:?} vs {decoded:?}")
        }
    };
    assert_eq!(len, bytes.len() - r.rest.len(), "check and decoder lengths");
    let mut again = Vec::new();
    put_value(&mut again, &value);
    assert_eq!(again, &bytes[..len], "re-encoding {value:?}");

    let (lazy, used) = EventData::from_encoded(bytes).expect("checked bytes are data");
    assert_eq!(used, len);
    let text = serde_json::to_string(&lazy).expect("checked bytes serialise");
    assert_eq!(
        text,
        serde_json::to_string(&value).expect("a Value serialises")
    );
    json_text_reads_back(&text, &value);

    let mut r = Reader::new(&bytes[..len]);
    let via_serde = Value::deserialize(StoredDe::new(&mut r)).expect("the serde path reads it");
    assert!(
        r.rest.is_empty(),
        "the serde path read {} bytes less",
        r.rest.len()
    );
    assert_eq!(via_serde, value);

    let mut out = Vec::new();
    lazy.encode_into(&mut out);
    assert_eq!(out, &bytes[..len]);
    assert_eq!(*lazy, value);
}

/// `metadata` (an object's body): the same checks as [`stored_value`].
fn stored_metadata(bytes: &[u8]) {
    let mut r = Reader::new(bytes);
    let decoded = r.object(0);
    let Ok((lazy, used)) = EventMetadata::from_encoded(bytes) else {
        assert!(
            decoded.is_err(),
            "the check refused what the decoder took: {decoded:?}"
        );
        return;
    };
    let map: Map<String, Value> = decoded.expect("the decoder takes what the check took");
    assert_eq!(used, bytes.len() - r.rest.len());
    let mut again = Vec::new();
    put_object(&mut again, &map);
    assert_eq!(again, &bytes[..used], "re-encoding {map:?}");
    let text = serde_json::to_string(&lazy).expect("checked bytes serialise");
    assert_eq!(text, serde_json::to_string(&map).expect("a Map serialises"));
    // Metadata reads back as an object (its own parser: no raw-value token there).
    json_text_reads_back(&text, &map);
    assert_eq!(*lazy, map);
}

/// The JSON written from stored data (HTTP, SSE, export) reads back as the same item (what
/// import and HTTP clients do), unless serde_json's text parser refuses it by design
/// ([`beyond_json_text`]): stored bytes not written from parsed JSON can hold that.
fn json_text_reads_back<T>(text: &str, item: &T)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    match serde_json::from_str::<T>(text) {
        Ok(back) => assert_eq!(&back, item, "JSON text {text}"),
        Err(e) => assert!(
            beyond_json_text(text, &e),
            "JSON written from stored data does not read back: {e}: {text}"
        ),
    }
}

/// Whether serde_json refused `text` (with `error`) by design: nested deeper than its limit
/// of 128, or holding an object whose first key is its private raw-value token.
fn beyond_json_text(text: &str, error: &serde_json::Error) -> bool {
    error.to_string().starts_with("recursion limit exceeded")
        || text.contains(r#"{"$serde_json::private::RawValue":"#)
}

/// The typed read straight from the bytes (`Event::from_stored`, used by `schema::typed`
/// while the data is undecoded) gives the event that parsing the decoded `Value` gives, and
/// an event's canonical `data` parses back to the same event.
fn typed_read(selector: u8, bytes: &[u8]) {
    let event_type = EVENT_TYPES[usize::from(selector) % EVENT_TYPES.len()].0;
    let Ok((data, used)) = EventData::from_encoded(bytes) else {
        return;
    };
    if used < bytes.len() {
        assert!(
            Event::from_stored(event_type, bytes).is_err(),
            "from_stored took {} trailing bytes",
            bytes.len() - used
        );
    }
    let stored = Event::from_stored(event_type, &bytes[..used]);
    let value: Value = data.value().clone();
    let parsed = parse(event_type, &value);
    if let Ok(event) = &stored {
        assert_eq!(
            parsed.as_ref().ok(),
            Some(event),
            "{event_type}: the typed read from bytes and from the Value differ: {value}"
        );
    }
    let (undecoded, _) = EventData::from_encoded(bytes).expect("checked above");
    let ev = RecordedEvent {
        id: Default::default(),
        stream: "deal-D-1".into(),
        event_type: event_type.into(),
        version: 0,
        position: 1,
        occurred_at: Default::default(),
        recorded_at: Default::default(),
        actor: "wukong".into(),
        data: undecoded,
        metadata: Default::default(),
        schema_version: 0,
    };
    assert_eq!(
        typed(&ev),
        parsed,
        "{event_type}: typed() and parse() differ"
    );
    if let Ok(event) = parsed {
        let canonical = event.to_data();
        let again = Event::from_parts(event_type, &canonical);
        assert_eq!(
            again.as_ref().ok(),
            Some(&event),
            "{event_type}: canonical data {canonical} does not parse back: {again:?}"
        );
    }
}
