//! An entity's entries in business order ((`occurred_at`, `position`), see
//! [`Keyed`]), in a container whose insert costs the same at any length of the stream.
//!
//! Up to [`CHUNK`] entries (nearly every deal, customer and lead) it is one `Vec`, as
//! before. Past that it is a list of sorted chunks of at most [`CHUNK`] entries each, every
//! chunk's keys at or after the previous chunk's:
//! - an entry that is the latest (nearly every live event) is pushed on the last chunk, or
//!   starts a new one: as cheap as a `Vec` push, and nothing is ever reallocated and copied
//!   as the stream grows;
//! - a late entry finds its chunk by a binary search over the chunks' last keys and moves
//!   at most [`CHUNK`] entries of that chunk; a full chunk is first split in two halves.
//!   Splitting inserts one pointer-sized chunk header into the chunk list (a move of
//!   1/[`CHUNK`]-th of the stream's length in headers, once per `CHUNK / 2` late entries at
//!   worst): flat in practice up to streams of hundreds of millions of entries.
//!
//! Readers take a [`Prefix`] (all entries, or those with `occurred_at ≤ as_of`): full
//! chunks then the part of one chunk, iterated in order or backwards.
//!
//! Serialised as the plain sequence of entries a `Vec` gives (snapshots written before the
//! container existed load unchanged); read back by inserting each, so the order holds
//! whatever the file says.

use std::fmt;
use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::slice;

use chrono::{DateTime, Utc};
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::Keyed;

/// Most entries in one chunk (and in the single `Vec` of a short stream).
pub const CHUNK: usize = 512;

/// Entries sorted by key; equal keys keep their insertion order.
#[derive(Clone)]
pub struct Entries<E>(Repr<E>);

#[derive(Clone)]
enum Repr<E> {
    /// At most [`CHUNK`] entries.
    Flat(Vec<E>),
    /// More: at least one chunk, none empty, each at most [`CHUNK`] long (boxed: the
    /// container stays the size of a `Vec`).
    // The box is the point (size checked below), not an extra allocation by mistake.
    #[allow(clippy::box_collection)]
    Chunked(Box<Vec<Vec<E>>>),
}

// As small as the `Vec` it replaces: a million deals each have one.
const _: () = assert!(std::mem::size_of::<Entries<u64>>() == std::mem::size_of::<Vec<u64>>());

impl<E> Default for Entries<E> {
    fn default() -> Self {
        Entries(Repr::Flat(Vec::new()))
    }
}

/// Inserts `e` after every entry of `v` whose key is ≤ its key; true when that is the end.
fn insert_in<E: Keyed>(v: &mut Vec<E>, e: E) -> bool {
    let k = e.key();
    // Nearly every event is the latest of its entity: no search.
    if v.last().is_none_or(|x| x.key() <= k) {
        v.push(e);
        return true;
    }
    let i = v.partition_point(|x| x.key() <= k);
    v.insert(i, e);
    false
}

/// [`insert_in`] for a list of chunks.
fn insert_chunked<E: Keyed>(chunks: &mut Vec<Vec<E>>, e: E) -> bool {
    let k = e.key();
    match chunks.last_mut() {
        Some(last) if last.len() < CHUNK && last.last().is_none_or(|x| x.key() <= k) => {
            last.push(e);
            return true;
        }
        Some(last) if last.last().is_some_and(|x| x.key() > k) => {}
        // Empty, or the latest entry and the last chunk is full.
        _ => {
            let mut next = Vec::with_capacity(CHUNK);
            next.push(e);
            chunks.push(next);
            return true;
        }
    }
    // The first chunk holding a key after `k` (the last one does).
    let mut i = chunks.partition_point(|c| c.last().is_some_and(|x| x.key() <= k));
    if chunks[i].len() >= CHUNK {
        let right = chunks[i].split_off(CHUNK / 2);
        chunks.insert(i + 1, right);
        if chunks[i].last().is_some_and(|x| x.key() <= k) {
            i += 1;
        }
    }
    insert_in(&mut chunks[i], e);
    false
}

impl<E: Keyed> Entries<E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts in (`occurred_at`, `position`) order, after any entry with the same key;
    /// returns true when it went at the end.
    pub fn insert(&mut self, e: E) -> bool {
        match &mut self.0 {
            Repr::Flat(v) if v.len() < CHUNK => insert_in(v, e),
            Repr::Flat(v) => {
                // Full: it becomes the first chunk (moved, not copied).
                let mut chunks = vec![std::mem::take(v)];
                let at_end = insert_chunked(&mut chunks, e);
                self.0 = Repr::Chunked(Box::new(chunks));
                at_end
            }
            Repr::Chunked(c) => insert_chunked(c, e),
        }
    }

    /// The entries with `occurred_at ≤ as_of` (all when `as_of` is `None`).
    pub fn up_to(&self, as_of: Option<DateTime<Utc>>) -> Prefix<'_, E> {
        let Some(t) = as_of else { return self.all() };
        let before = |x: &E| x.at() <= t;
        match &self.0 {
            Repr::Flat(v) => Prefix {
                full: &[],
                tail: &v[..v.partition_point(before)],
            },
            Repr::Chunked(c) => {
                let i = c.partition_point(|ch| ch.last().is_some_and(before));
                match c.get(i) {
                    None => self.all(),
                    Some(ch) => Prefix {
                        full: &c[..i],
                        tail: &ch[..ch.partition_point(before)],
                    },
                }
            }
        }
    }
}

impl<E> Entries<E> {
    /// Every entry.
    pub fn all(&self) -> Prefix<'_, E> {
        match &self.0 {
            Repr::Flat(v) => Prefix { full: &[], tail: v },
            Repr::Chunked(c) => match c.split_last() {
                Some((last, full)) => Prefix { full, tail: last },
                None => Prefix {
                    full: &[],
                    tail: &[],
                },
            },
        }
    }

    pub fn iter(&self) -> Iter<'_, E> {
        self.all().iter()
    }

    pub fn len(&self) -> usize {
        self.all().len()
    }

    pub fn is_empty(&self) -> bool {
        self.last().is_none()
    }

    /// The latest entry.
    pub fn last(&self) -> Option<&E> {
        self.all().last()
    }

    /// Gives back spare room at the end (a closed deal rarely gets more events).
    pub fn shrink_to_fit(&mut self) {
        match &mut self.0 {
            Repr::Flat(v) => v.shrink_to_fit(),
            Repr::Chunked(c) => {
                if let Some(last) = c.last_mut() {
                    last.shrink_to_fit();
                }
            }
        }
    }
}

/// Entries in order: those of `full` chunks, then `tail`.
pub struct Prefix<'a, E> {
    full: &'a [Vec<E>],
    tail: &'a [E],
}

impl<E> Clone for Prefix<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Prefix<'_, E> {}

/// A [`Prefix`]'s entries, front to back (and back to front: `rev()`). `front`, the
/// chunks of `mid`, then `back` are the entries in order; a single `Vec` is all `front`,
/// so iterating it costs what iterating a slice does.
pub struct Iter<'a, E> {
    front: slice::Iter<'a, E>,
    mid: slice::Iter<'a, Vec<E>>,
    back: slice::Iter<'a, E>,
}

impl<E> Clone for Iter<'_, E> {
    fn clone(&self) -> Self {
        Iter {
            front: self.front.clone(),
            mid: self.mid.clone(),
            back: self.back.clone(),
        }
    }
}

impl<'a, E> Iterator for Iter<'a, E> {
    type Item = &'a E;

    fn next(&mut self) -> Option<&'a E> {
        loop {
            if let Some(e) = self.front.next() {
                return Some(e);
            }
            match self.mid.next() {
                Some(chunk) => self.front = chunk.iter(),
                // The rest is `back`: make it `front`, the first place looked at.
                None if self.back.len() > 0 => self.front = std::mem::take(&mut self.back),
                None => return None,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let ends = self.front.len() + self.back.len();
        let mid: usize = self.mid.clone().map(Vec::len).sum();
        (ends + mid, Some(ends + mid))
    }
}

impl<E> DoubleEndedIterator for Iter<'_, E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.back.next_back() {
                return Some(e);
            }
            match self.mid.next_back() {
                Some(chunk) => self.back = chunk.iter(),
                None if self.front.len() > 0 => self.back = std::mem::take(&mut self.front),
                None => return None,
            }
        }
    }
}

impl<E> ExactSizeIterator for Iter<'_, E> {}

impl<E> FusedIterator for Iter<'_, E> {}

impl<'a, E> Prefix<'a, E> {
    pub fn iter(&self) -> Iter<'a, E> {
        match self.full.split_first() {
            None => Iter {
                front: self.tail.iter(),
                mid: [].iter(),
                back: [].iter(),
            },
            Some((first, mid)) => Iter {
                front: first.iter(),
                mid: mid.iter(),
                back: self.tail.iter(),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.full.iter().map(Vec::len).sum::<usize>() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }

    pub fn first(&self) -> Option<&'a E> {
        self.full
            .first()
            .and_then(|c| c.first())
            .or(self.tail.first())
    }

    pub fn last(&self) -> Option<&'a E> {
        self.tail.last().or_else(|| self.full.last()?.last())
    }
}

impl<'a, E> IntoIterator for Prefix<'a, E> {
    type Item = &'a E;
    type IntoIter = Iter<'a, E>;
    fn into_iter(self) -> Iter<'a, E> {
        self.iter()
    }
}

impl<'a, E> IntoIterator for &'a Entries<E> {
    type Item = &'a E;
    type IntoIter = Iter<'a, E>;
    fn into_iter(self) -> Iter<'a, E> {
        self.iter()
    }
}

impl<E: Keyed> FromIterator<E> for Entries<E> {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        let mut out = Entries::new();
        for e in iter {
            out.insert(e);
        }
        out
    }
}

/// Equal when the entries are, however they are chunked.
impl<E: PartialEq> PartialEq for Entries<E> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<E: fmt::Debug> fmt::Debug for Entries<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<E: Serialize> Serialize for Entries<E> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for e in self {
            seq.serialize_element(e)?;
        }
        seq.end()
    }
}

impl<'de, E: Keyed + Deserialize<'de>> Deserialize<'de> for Entries<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq<E>(PhantomData<E>);
        impl<'de, E: Keyed + Deserialize<'de>> Visitor<'de> for Seq<E> {
            type Value = Entries<E>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries<E>, A::Error> {
                let mut out = Entries::new();
                while let Some(e) = seq.next_element()? {
                    out.insert(e);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Seq(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    /// A key (minute, position) and the order it was inserted in.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Item {
        minute: i64,
        position: u64,
        nth: usize,
    }

    fn time(minute: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + minute * 60, 0).unwrap()
    }

    impl Keyed for Item {
        fn key(&self) -> (DateTime<Utc>, u64) {
            (time(self.minute), self.position)
        }
    }

    /// The chunks' shape: none empty or over [`CHUNK`], keys in order across them.
    fn check_shape(e: &Entries<Item>) {
        if let Repr::Chunked(chunks) = &e.0 {
            assert!(!chunks.is_empty());
            assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
        } else {
            assert!(e.len() <= CHUNK);
        }
        let keys: Vec<_> = e.iter().map(Keyed::key).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
    }

    /// (minute, position): minutes advance by a quarter per item, so four in a row share
    /// one; positions 0–2 give equal keys; a fifth of the items are up to 300 minutes late.
    fn items() -> impl Strategy<Value = Vec<Item>> {
        let late = prop_oneof![4 => Just(0i64), 1 => 0i64..300];
        prop::collection::vec((late, 0u64..3), 0..2_500).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(nth, (late, position))| Item {
                    minute: nth as i64 / 4 - late,
                    position,
                    nth,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn iterates_and_cuts_like_a_stably_sorted_vec(items in items(), cuts in prop::collection::vec(-310i64..700, 8)) {
            let mut entries = Entries::new();
            let mut seen: Option<(DateTime<Utc>, u64)> = None;
            for it in &items {
                let latest = seen.is_none_or(|k| k <= it.key());
                prop_assert_eq!(entries.insert(it.clone()), latest);
                seen = seen.max(Some(it.key()));
            }
            check_shape(&entries);
            let mut sorted = items.clone();
            sorted.sort_by_key(Keyed::key); // stable: equal keys stay in insertion order
            prop_assert_eq!(entries.len(), sorted.len());
            prop_assert!(entries.iter().eq(sorted.iter()));
            prop_assert!(entries.iter().rev().eq(sorted.iter().rev()));
            prop_assert_eq!(entries.iter().len(), sorted.len());
            // From both ends at once, meeting in the middle.
            let (mut it, mut front, mut back) = (entries.iter(), Vec::new(), Vec::new());
            while let Some(e) = it.next() {
                front.push(e);
                back.extend(it.next_back());
            }
            front.extend(back.into_iter().rev());
            prop_assert!(front.into_iter().eq(sorted.iter()));
            prop_assert_eq!(entries.last(), sorted.last());
            prop_assert!(entries.up_to(None).iter().eq(sorted.iter()));
            for minute in cuts {
                let t = time(minute);
                let n = sorted.partition_point(|x| x.at() <= t);
                let cut = entries.up_to(Some(t));
                prop_assert_eq!(cut.len(), n);
                prop_assert!(cut.iter().eq(sorted[..n].iter()));
                prop_assert!(cut.iter().rev().eq(sorted[..n].iter().rev()));
                prop_assert_eq!(cut.first(), sorted[..n].first());
                prop_assert_eq!(cut.last(), sorted[..n].last());
                prop_assert_eq!(cut.is_empty(), n == 0);
            }
            // Stored as the sorted `Vec` was (snapshots before the container load), and
            // read back equal.
            let json = serde_json::to_string(&entries).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&sorted).unwrap());
            let back: Entries<Item> = serde_json::from_str(&json).unwrap();
            check_shape(&back);
            prop_assert_eq!(&back, &entries);
        }
    }

    #[test]
    fn a_long_stream_is_chunked_and_a_late_entry_moves_one_chunk_at_most() {
        let mut entries = Entries::new();
        for nth in 0..10 * CHUNK {
            let minute = if nth % 10 == 9 { 0 } else { nth as i64 };
            entries.insert(Item {
                minute,
                position: nth as u64,
                nth,
            });
        }
        let Repr::Chunked(chunks) = &entries.0 else {
            panic!("{} entries in one Vec", entries.len())
        };
        assert!(chunks.len() >= 10);
        check_shape(&entries);
    }

    #[test]
    fn entries_stored_out_of_order_are_read_back_in_order() {
        let item = |minute, nth| Item {
            minute,
            position: 7,
            nth,
        };
        let json = serde_json::to_string(&[item(5, 0), item(1, 1), item(5, 2), item(1, 3)]);
        let back: Entries<Item> = serde_json::from_str(&json.unwrap()).unwrap();
        let order: Vec<usize> = back.iter().map(|i| i.nth).collect();
        assert_eq!(order, [1, 3, 0, 2]);
    }
}
