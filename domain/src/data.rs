//! An event's `data`, and the binary form the event log stores JSON values in.
//!
//! [`EventData`] is a JSON value that may still be in its stored binary form: reading the log
//! checks the bytes completely (tags, lengths, UTF-8, numbers, depth, duplicate keys) but
//! builds the `serde_json::Value` only when somebody looks at it (`Deref`). Serialising an
//! undecoded one writes JSON straight from the bytes. So reading, filtering by envelope,
//! exporting and streaming events never build trees nobody looks at, and an event read from
//! the log behaves exactly like one built from a `Value` (equality, JSON form, `Debug`).
//!
//! ## The binary form of a value
//! A tag byte then its body: 0 null, 1 false, 2 true, 3 unsigned integer (varint),
//! 4 negative integer (zigzag varint), 5 f64 (8 bytes LE, finite), 6 string
//! (`len (varint) || UTF-8`), 7 array (`count (varint)` values), 8 object (`count (varint)`
//! string + value pairs, in order, keys unique). Every length is checked against the bytes
//! left, so truncated bytes never pass [`check_value`].

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Values nested deeper than this are refused (serde_json's own parser stops at 128).
pub const MAX_DEPTH: u32 = 512;

const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_UINT: u8 = 3;
const T_NEG: u8 = 4;
const T_F64: u8 = 5;
const T_STR: u8 = 6;
const T_ARRAY: u8 = 7;
const T_OBJECT: u8 = 8;

/// Why bytes are not a value in the binary form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn err(s: &str) -> CodecError {
    CodecError(s.to_owned())
}

fn short() -> CodecError {
    err("unexpected end of record")
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends the binary form of `v`.
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(false) => out.push(T_FALSE),
        Value::Bool(true) => out.push(T_TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(T_UINT);
                put_varint(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(T_NEG);
                put_varint(out, zigzag(i));
            } else {
                // Without `arbitrary_precision` a number is a u64, an i64 or a finite f64.
                out.push(T_F64);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(T_STR);
            put_str(out, s);
        }
        Value::Array(a) => {
            out.push(T_ARRAY);
            put_varint(out, a.len() as u64);
            for x in a {
                put_value(out, x);
            }
        }
        Value::Object(m) => {
            out.push(T_OBJECT);
            put_object(out, m);
        }
    }
}

/// Appends an object's body (count, then key/value pairs), without the tag.
pub fn put_object(out: &mut Vec<u8>, m: &Map<String, Value>) {
    put_varint(out, m.len() as u64);
    for (k, x) in m {
        put_str(out, k);
        put_value(out, x);
    }
}

/// The head of a value in the binary form ([`Reader::head`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Negative(i64),
    Float(f64),
    Str(&'a str),
    /// An array of this many values.
    Array(usize),
    /// An object of this many key and value pairs.
    Object(usize),
}

/// A cursor over bytes in the binary form. Every read checks the bytes left.
pub struct Reader<'a> {
    pub rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub fn byte(&mut self) -> Result<u8, CodecError> {
        let (&b, rest) = self.rest.split_first().ok_or_else(short)?;
        self.rest = rest;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < n {
            return Err(short());
        }
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(b)
    }

    /// A varint as [`put_varint`] writes it: the shortest form only (a last byte of 0 after
    /// others is padding the writer never produces), so a value has one encoding and stored
    /// bytes are exactly what encoding their value gives.
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if (shift == 63 && b > 1) || (shift > 0 && b == 0) {
                    break;
                }
                return Ok(v);
            }
        }
        Err(err("malformed varint"))
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.varint()?).map_err(|_| err("u32 overflow"))
    }

    /// A count of items each at least one byte long (so it cannot exceed the bytes left).
    pub fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        if n > self.rest.len() as u64 {
            return Err(short());
        }
        Ok(n as usize)
    }

    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.count()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|e| CodecError(e.to_string()))
    }

    fn negative(&mut self) -> Result<i64, CodecError> {
        let i = unzigzag(self.varint()?);
        if i >= 0 {
            return Err(err("non-negative T_NEG"));
        }
        Ok(i)
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        let b = self.bytes(8)?;
        let f = f64::from_le_bytes(b.try_into().map_err(|_| short())?);
        if !f.is_finite() {
            return Err(err("non-finite number"));
        }
        Ok(f)
    }

    /// Decodes one value into a `Value`.
    pub fn value(&mut self, depth: u32) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(err("value nested too deeply"));
        }
        Ok(match self.byte()? {
            T_NULL => Value::Null,
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_UINT => Value::Number(self.varint()?.into()),
            T_NEG => Value::Number(self.negative()?.into()),
            T_F64 => Value::from(self.f64()?),
            T_STR => Value::String(self.str()?.to_owned()),
            T_ARRAY => {
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            T_OBJECT => Value::Object(self.object(depth + 1)?),
            t => return Err(CodecError(format!("unknown value tag {t}"))),
        })
    }

    /// Decodes an object's body (as written by [`put_object`]).
    pub fn object(&mut self, depth: u32) -> Result<Map<String, Value>, CodecError> {
        let n = self.count()?;
        let mut m = Map::with_capacity(n);
        for _ in 0..n {
            let k = self.str()?.to_owned();
            let v = self.value(depth)?;
            if m.insert(k, v).is_some() {
                return Err(err("duplicate key in an object"));
            }
        }
        Ok(m)
    }

    /// Takes the stored item at the cursor as it is (checked completely, not decoded).
    pub fn lazy<T: Stored>(&mut self) -> Result<Lazy<T>, CodecError> {
        let (item, used) = Lazy::from_encoded(self.rest)?;
        self.rest = &self.rest[used..];
        Ok(item)
    }

    /// Reads the head of one value: a scalar whole, or an array's or object's count (its
    /// items follow: values, or key and value pairs). For walking stored bytes without
    /// building a tree; the caller reads the items.
    pub fn head(&mut self) -> Result<Head<'a>, CodecError> {
        Ok(match self.byte()? {
            T_NULL => Head::Null,
            T_FALSE => Head::Bool(false),
            T_TRUE => Head::Bool(true),
            T_UINT => Head::Unsigned(self.varint()?),
            T_NEG => Head::Negative(self.negative()?),
            T_F64 => Head::Float(self.f64()?),
            T_STR => Head::Str(self.str()?),
            T_ARRAY => Head::Array(self.count()?),
            T_OBJECT => Head::Object(self.count()?),
            t => return Err(CodecError(format!("unknown value tag {t}"))),
        })
    }

    /// Walks one value without building it, checking everything [`Reader::value`] checks.
    pub fn skip_value(&mut self, depth: u32) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(err("value nested too deeply"));
        }
        match self.byte()? {
            T_NULL | T_FALSE | T_TRUE => {}
            T_UINT => {
                self.varint()?;
            }
            T_NEG => {
                self.negative()?;
            }
            T_F64 => {
                self.f64()?;
            }
            T_STR => {
                self.str()?;
            }
            T_ARRAY => {
                for _ in 0..self.count()? {
                    self.skip_value(depth + 1)?;
                }
            }
            T_OBJECT => self.skip_object(depth + 1)?,
            t => return Err(CodecError(format!("unknown value tag {t}"))),
        }
        Ok(())
    }

    /// Walks an object's body (as written by [`put_object`]) without building it.
    pub fn skip_object(&mut self, depth: u32) -> Result<(), CodecError> {
        let n = self.count()?;
        // Keys are checked for uniqueness: a decoded `Value` would silently keep the last of
        // two, the JSON written from the bytes both. Small objects (the usual event data)
        // without allocating.
        let mut small = [""; 16];
        let mut large = std::collections::HashSet::new();
        for i in 0..n {
            let k = self.str()?;
            let fresh = if n <= small.len() {
                let fresh = !small[..i].contains(&k);
                small[i] = k;
                fresh
            } else {
                large.insert(k)
            };
            if !fresh {
                return Err(err("duplicate key in an object"));
            }
            self.skip_value(depth)?;
        }
        Ok(())
    }
}

/// Checks that `bytes` start with one value in the binary form; returns its length.
pub fn check_value(bytes: &[u8]) -> Result<usize, CodecError> {
    let mut r = Reader::new(bytes);
    r.skip_value(0)?;
    Ok(bytes.len() - r.rest.len())
}

/// What can be kept in its binary form by [`Lazy`]: a JSON value (`data`) or an object
/// (`metadata`, stored as an object's body).
pub trait Stored: Default + Clone + PartialEq + std::fmt::Debug + Serialize {
    /// Appends the binary form.
    fn put(&self, out: &mut Vec<u8>);
    /// Walks one stored item, checking everything [`Stored::read`] checks.
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError>;
    /// Decodes one stored item.
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError>;
    /// Serialises the stored item at the cursor straight from its bytes.
    fn serialize_stored<S: Serializer>(cursor: &Cell<&[u8]>, s: S) -> Result<S::Ok, S::Error>;
}

impl Stored for Value {
    fn put(&self, out: &mut Vec<u8>) {
        put_value(out, self)
    }
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.skip_value(0)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.value(0)
    }
    fn serialize_stored<S: Serializer>(cursor: &Cell<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
        Encoded { cursor }.serialize(s)
    }
}

impl Stored for Map<String, Value> {
    fn put(&self, out: &mut Vec<u8>) {
        put_object(out, self)
    }
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.skip_object(0)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.object(0)
    }
    fn serialize_stored<S: Serializer>(cursor: &Cell<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
        serialize_object_body(cursor, s)
    }
}

/// A [`Stored`] item, possibly still in its binary form (see the module's documentation).
/// Dereferences to the item, decoding it on first use.
#[derive(Clone, Default)]
pub struct Lazy<T: Stored> {
    /// The binary form, checked by [`Stored::skip`]; `None` once the item may have changed.
    encoded: Option<Box<[u8]>>,
    value: OnceLock<T>,
}

/// An event's `data`: a JSON value.
pub type EventData = Lazy<Value>;
/// An event's `metadata`: a JSON object.
pub type EventMetadata = Lazy<Map<String, Value>>;

impl<T: Stored> Lazy<T> {
    /// Takes the item at the start of `bytes` (checked completely); returns it and the
    /// number of bytes it used.
    pub fn from_encoded(bytes: &[u8]) -> Result<(Self, usize), CodecError> {
        let mut r = Reader::new(bytes);
        T::skip(&mut r)?;
        let len = bytes.len() - r.rest.len();
        let lazy = Lazy {
            encoded: Some(bytes[..len].into()),
            value: OnceLock::new(),
        };
        Ok((lazy, len))
    }

    /// Appends the binary form (the stored bytes as they are, when there are some).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match &self.encoded {
            Some(b) => out.extend_from_slice(b),
            None => self.value().put(out),
        }
    }

    /// The item, decoded now if it was not yet.
    pub fn value(&self) -> &T {
        self.value.get_or_init(|| match &self.encoded {
            // The bytes passed `T::skip`, which checks everything decoding does, so this
            // cannot fail; the default only keeps the impossible case from panicking.
            Some(b) => T::read(&mut Reader::new(b)).unwrap_or_default(),
            None => T::default(),
        })
    }

    /// The stored bytes, while the item has not been decoded (then reading a typed value
    /// from them with [`Event::from_stored`](crate::events::Event::from_stored) builds no tree).
    pub fn undecoded(&self) -> Option<&[u8]> {
        match (&self.encoded, self.value.get()) {
            (Some(b), None) => Some(b),
            _ => None,
        }
    }

    /// Whether the item has been decoded (for tests and measurements).
    pub fn is_decoded(&self) -> bool {
        self.value.get().is_some()
    }

    pub fn into_inner(mut self) -> T {
        self.value();
        self.value.take().unwrap_or_default()
    }
}

impl EventData {
    /// The text at `key` of an object, read from the stored bytes while they are not decoded
    /// (no tree built for one field); `None` when absent, not text, or not an object.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        let Some(bytes) = self.undecoded() else {
            return self.value().get(key).and_then(Value::as_str);
        };
        let mut r = Reader::new(bytes);
        let Ok(Head::Object(n)) = r.head() else {
            return None;
        };
        for _ in 0..n {
            let k = r.str().ok()?;
            if k == key {
                return match r.head() {
                    Ok(Head::Str(s)) => Some(s),
                    _ => None,
                };
            }
            r.skip_value(1).ok()?;
        }
        None
    }
}

impl<T: Stored> From<T> for Lazy<T> {
    fn from(v: T) -> Self {
        Lazy {
            encoded: None,
            value: OnceLock::from(v),
        }
    }
}

impl From<EventData> for Value {
    fn from(d: EventData) -> Self {
        d.into_inner()
    }
}

impl From<EventMetadata> for Map<String, Value> {
    fn from(m: EventMetadata) -> Self {
        m.into_inner()
    }
}

impl<T: Stored> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value()
    }
}

impl<T: Stored> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value();
        // The item may change through this reference: the bytes no longer describe it.
        self.encoded = None;
        self.value.get_mut().expect("decoded just above")
    }
}

impl<T: Stored> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (&self.encoded, &other.encoded) {
            if a == b {
                return true;
            }
        }
        self.value() == other.value()
    }
}

impl<T: Stored> PartialEq<T> for Lazy<T> {
    fn eq(&self, other: &T) -> bool {
        self.value() == other
    }
}

impl PartialEq<EventData> for Value {
    fn eq(&self, other: &EventData) -> bool {
        self == other.value()
    }
}

impl<T: Stored> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl<T: Stored> Serialize for Lazy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.value.get(), &self.encoded) {
            (None, Some(b)) => T::serialize_stored(&Cell::new(&b[..]), s),
            _ => self.value().serialize(s),
        }
    }
}

impl<'de, T: Stored + Deserialize<'de>> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Lazy::from)
    }
}

/// Serialises the value at the cursor straight from the binary form, moving the cursor
/// past it (so arrays and objects serialise their items one after the other).
struct Encoded<'a, 'c> {
    cursor: &'c Cell<&'a [u8]>,
}

impl<'a> Serialize for Encoded<'a, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bad = |e: CodecError| S::Error::custom(e.0);
        let mut r = Reader::new(self.cursor.get());
        let tag = r.byte().map_err(bad)?;
        let leaf = |r: &Reader<'a>| self.cursor.set(r.rest);
        match tag {
            T_NULL => {
                leaf(&r);
                s.serialize_unit()
            }
            T_FALSE | T_TRUE => {
                leaf(&r);
                s.serialize_bool(tag == T_TRUE)
            }
            T_UINT => {
                let v = r.varint().map_err(bad)?;
                leaf(&r);
                s.serialize_u64(v)
            }
            T_NEG => {
                let v = r.negative().map_err(bad)?;
                leaf(&r);
                s.serialize_i64(v)
            }
            T_F64 => {
                let v = r.f64().map_err(bad)?;
                leaf(&r);
                s.serialize_f64(v)
            }
            T_STR => {
                let v = r.str().map_err(bad)?;
                leaf(&r);
                s.serialize_str(v)
            }
            T_ARRAY => {
                let n = r.count().map_err(bad)?;
                leaf(&r);
                let mut seq = s.serialize_seq(Some(n))?;
                for _ in 0..n {
                    seq.serialize_element(&Encoded {
                        cursor: self.cursor,
                    })?;
                }
                seq.end()
            }
            T_OBJECT => {
                leaf(&r);
                serialize_object_body(self.cursor, s)
            }
            t => Err(S::Error::custom(format!("unknown value tag {t}"))),
        }
    }
}

/// Serialises the object body at the cursor (count, then key/value pairs) as a map.
fn serialize_object_body<S: Serializer>(cursor: &Cell<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    let bad = |e: CodecError| S::Error::custom(e.0);
    let mut r = Reader::new(cursor.get());
    let n = r.count().map_err(bad)?;
    cursor.set(r.rest);
    let mut map = s.serialize_map(Some(n))?;
    for _ in 0..n {
        let mut r = Reader::new(cursor.get());
        let k = r.str().map_err(bad)?;
        cursor.set(r.rest);
        map.serialize_entry(k, &Encoded { cursor })?;
    }
    map.end()
}

impl serde::de::Error for CodecError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        CodecError(msg.to_string())
    }
}

/// A serde `Deserializer` reading one value at the reader's position (moving past it).
/// Containers nest at most [`MAX_DEPTH`] deep, as [`Reader::value`] allows.
pub struct StoredDe<'r, 'de> {
    r: &'r mut Reader<'de>,
    /// How deep the value read is (0 at the top).
    depth: u32,
}

impl<'r, 'de> StoredDe<'r, 'de> {
    pub fn new(r: &'r mut Reader<'de>) -> Self {
        StoredDe { r, depth: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.r.rest.first().copied()
    }
}

impl<'de> serde::Deserializer<'de> for StoredDe<'_, 'de> {
    type Error = CodecError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, CodecError> {
        let depth = self.depth;
        match self.r.byte()? {
            T_ARRAY | T_OBJECT if depth >= MAX_DEPTH => Err(err("value nested too deeply")),
            T_NULL => v.visit_unit(),
            T_FALSE => v.visit_bool(false),
            T_TRUE => v.visit_bool(true),
            T_UINT => v.visit_u64(self.r.varint()?),
            T_NEG => v.visit_i64(self.r.negative()?),
            T_F64 => v.visit_f64(self.r.f64()?),
            T_STR => v.visit_borrowed_str(self.r.str()?),
            T_ARRAY => {
                let left = self.r.count()?;
                let mut seq = Items {
                    r: self.r,
                    left,
                    depth,
                };
                let out = v.visit_seq(&mut seq)?;
                match seq.left {
                    0 => Ok(out),
                    _ => Err(serde::de::Error::invalid_length(
                        left,
                        &"fewer elements in array",
                    )),
                }
            }
            T_OBJECT => {
                let left = self.r.count()?;
                let mut map = Items {
                    r: self.r,
                    left,
                    depth,
                };
                let out = v.visit_map(&mut map)?;
                match map.left {
                    0 => Ok(out),
                    _ => Err(serde::de::Error::invalid_length(
                        left,
                        &"fewer elements in map",
                    )),
                }
            }
            t => Err(CodecError(format!("unknown value tag {t}"))),
        }
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, CodecError> {
        if self.peek() == Some(T_NULL) {
            self.r.byte()?;
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, CodecError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, CodecError> {
        use serde::de::IntoDeserializer;
        match self.r.byte()? {
            // A unit variant as a string, or `{"Variant": content}`, as serde_json reads them.
            T_STR => v.visit_enum(self.r.str()?.into_deserializer()),
            T_OBJECT if self.r.count()? == 1 => {
                v.visit_enum(serde::de::value::MapAccessDeserializer::new(Items {
                    r: self.r,
                    left: 1,
                    depth: self.depth,
                }))
            }
            _ => Err(CodecError(
                "expected an enum: a string or an object with one entry".into(),
            )),
        }
    }

    fn deserialize_ignored_any<V: serde::de::Visitor<'de>>(
        self,
        v: V,
    ) -> Result<V::Value, CodecError> {
        self.r.skip_value(self.depth)?;
        v.visit_unit()
    }

    /// A struct must be an object (serde_json's `Value` would also take an array of its
    /// fields in order; `schema::parse` refuses that, and so does this, at every depth).
    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, CodecError> {
        if self.peek() != Some(T_OBJECT) {
            return Err(err("expected an object"));
        }
        self.deserialize_any(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// The items of an array, or the entries of an object, still to be read.
struct Items<'r, 'de> {
    r: &'r mut Reader<'de>,
    left: usize,
    /// The depth of the container they are in.
    depth: u32,
}

impl<'de> serde::de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = CodecError;

    fn next_element_seed<T: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(StoredDe {
            r: &mut *self.r,
            depth: self.depth + 1,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> serde::de::MapAccess<'de> for Items<'_, 'de> {
    type Error = CodecError;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let key = self.r.str()?;
        seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, CodecError> {
        seed.deserialize(StoredDe {
            r: &mut *self.r,
            depth: self.depth + 1,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encoded(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        put_value(&mut out, v);
        out
    }

    /// Arrays nested `n` deep around `0`, in the binary form.
    fn nested(n: usize) -> Vec<u8> {
        let mut out = [T_ARRAY, 1].repeat(n);
        out.extend_from_slice(&[T_UINT, 0]);
        out
    }

    #[test]
    fn typed_reads_refuse_values_nested_deeper_than_the_decoder_allows() {
        let read = |bytes: &[u8]| Value::deserialize(StoredDe::new(&mut Reader::new(bytes)));
        assert!(read(&nested(MAX_DEPTH as usize)).is_ok());
        assert_eq!(
            read(&nested(MAX_DEPTH as usize + 1)).unwrap_err().0,
            "value nested too deeply"
        );
        // Far deeper than the stack would take, had the depth not been counted.
        assert!(read(&nested(1 << 20)).is_err());
        // The same limit as the decoder's.
        assert!(Reader::new(&nested(MAX_DEPTH as usize)).value(0).is_ok());
        assert!(Reader::new(&nested(MAX_DEPTH as usize + 1))
            .value(0)
            .is_err());
    }

    /// A text field read from the bytes is the decoded value's, and decodes nothing.
    #[test]
    fn a_text_field_is_read_from_the_bytes() {
        let v = json!({"n": [1, {"customer_id": "inner"}], "owner": "w", "customer_id": "C-77", "x": 2.5});
        let (stored, _) = EventData::from_encoded(&encoded(&v)).unwrap();
        let decoded = EventData::from(v.clone());
        for key in ["customer_id", "owner", "n", "x", "missing"] {
            assert_eq!(stored.str_field(key), decoded.str_field(key), "{key}");
            assert_eq!(
                stored.str_field(key),
                v.get(key).and_then(Value::as_str),
                "{key}"
            );
        }
        assert_eq!(stored.str_field("customer_id"), Some("C-77"));
        assert!(!stored.is_decoded());
        let (array, _) = EventData::from_encoded(&encoded(&json!(["customer_id"]))).unwrap();
        assert_eq!(array.str_field("customer_id"), None);
    }

    #[test]
    fn an_event_read_from_stored_bytes_must_be_the_whole_of_them() {
        let mut bytes = encoded(&json!({"stage": "won"}));
        assert!(crate::events::Event::from_stored("DealReopened", &bytes).is_ok());
        bytes.push(T_NULL);
        let e = crate::events::Event::from_stored("DealReopened", &bytes).unwrap_err();
        assert_eq!(e.message, "trailing bytes after the value");
    }

    // Round trips over arbitrary values: `eventlog::record`'s property tests.

    #[test]
    fn bad_values_are_refused() {
        // Duplicate key, non-finite float, a positive number tagged negative, unknown tag.
        let mut dup = vec![T_OBJECT, 2];
        for _ in 0..2 {
            put_str(&mut dup, "a");
            dup.push(T_NULL);
        }
        let mut nan = vec![T_F64];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        let mut pos = vec![T_NEG];
        put_varint(&mut pos, zigzag(5));
        for bad in [dup, nan, pos, vec![9]] {
            assert!(check_value(&bad).is_err(), "{bad:?}");
            assert!(Reader::new(&bad).value(0).is_err(), "{bad:?}");
        }
        let deep = [T_ARRAY, 1].repeat(600);
        assert!(check_value(&deep).is_err());
    }

    /// Found by the `stored_data` fuzz target: `[T_UINT, 0x80, 0x00]` (0 padded to two
    /// bytes) was taken as 0, so stored bytes the writer never produces decoded, and
    /// re-encoding them gave other bytes.
    #[test]
    fn padded_varints_are_refused_so_a_value_has_one_encoding() {
        let padded_zero = [T_UINT, 0x80, 0x00];
        assert!(check_value(&padded_zero).is_err());
        assert!(Reader::new(&padded_zero).value(0).is_err());
        // 300 padded with an empty last group, and a string length padded the same way.
        let padded_300 = [T_UINT, 0xac, 0x82, 0x00];
        assert!(check_value(&padded_300).is_err());
        let padded_len = [T_STR, 0x81, 0x00, b'a'];
        assert!(check_value(&padded_len).is_err());
        // The shortest forms still read, up to u64::MAX.
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            let bytes = encoded(&json!(v));
            assert_eq!(check_value(&bytes), Ok(bytes.len()), "{v}");
            assert_eq!(Reader::new(&bytes).value(0), Ok(json!(v)));
        }
    }

    #[test]
    fn changing_the_value_drops_the_stale_bytes() {
        let (mut d, _) = EventData::from_encoded(&encoded(&json!({"a": 1}))).unwrap();
        d["a"] = json!(2);
        let mut out = Vec::new();
        d.encode_into(&mut out);
        assert_eq!(out, encoded(&json!({"a": 2})));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"a":2}"#);
    }
}
