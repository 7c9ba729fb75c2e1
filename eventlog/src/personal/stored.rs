//! Sealed fields read and replaced in an event's `data` while it is still in its stored
//! binary form (`domain::data`): opening them never builds a `serde_json::Value`, and the
//! event stays in the form that JSON writing and typed decoding read fastest.

use domain::data::{put_str, put_varint, Reader};

/// Tags of the binary form (see `domain::data`'s module doc).
const TAG_STR: u8 = 6;
const TAG_OBJECT: u8 = 8;

/// The top-level entries of an object in the binary form: each key and its value's bytes
/// (tag included). `None` if `bytes` is not an object (or not well formed, which the log's
/// reader has already ruled out).
pub fn entries(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut r = Reader::new(bytes);
    if r.byte().ok()? != TAG_OBJECT {
        return None;
    }
    let n = r.count().ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.str().ok()?;
        let start = r.rest;
        r.skip_value(1).ok()?;
        out.push((key, &start[..start.len() - r.rest.len()]));
    }
    Some(out)
}

/// The text of a value's bytes, if it is a string.
pub fn text(value: &[u8]) -> Option<&str> {
    let (&tag, body) = value.split_first()?;
    if tag != TAG_STR {
        return None;
    }
    Reader::new(body).str().ok()
}

/// The object of `entries` with some values replaced (`replace[i]`: the new text of entry
/// `i`), in the binary form.
pub fn rebuild(entries: &[(&str, &[u8])], replace: &[Option<String>], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 16);
    out.push(TAG_OBJECT);
    put_varint(&mut out, entries.len() as u64);
    for ((key, raw), new) in entries.iter().zip(replace) {
        put_str(&mut out, key);
        match new {
            Some(text) => {
                out.push(TAG_STR);
                put_str(&mut out, text);
            }
            None => out.extend_from_slice(raw),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_rebuilt_with_one_text_replaced_is_that_object() {
        let v = json!({"kind": "call", "duration_s": 30, "summary": "sealed", "tags": ["a", {"b": null}]});
        let mut bytes = Vec::new();
        domain::data::put_value(&mut bytes, &v);
        let e = entries(&bytes).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(text(e[2].1), Some("sealed"));
        assert_eq!(text(e[1].1), None);
        let replace = vec![None, None, Some("Zhuge".to_string()), None];
        let out = rebuild(&e, &replace, bytes.len());
        let (data, len) = domain::EventData::from_encoded(&out).unwrap();
        assert_eq!(len, out.len());
        let mut want = v.clone();
        want["summary"] = json!("Zhuge");
        assert_eq!(data.value(), &want);
        assert_eq!(rebuild(&e, &[None, None, None, None], 0), bytes);
        let mut array = Vec::new();
        domain::data::put_value(&mut array, &json!([1]));
        assert!(entries(&array).is_none());
    }
}
