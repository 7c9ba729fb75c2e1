//! Deal list — `GET /v1/deals` (SPEC §5.1).
//!
//! A deal's *list time* is its close time while it is won or lost (the last `DealWon` /
//! `DealLost`), its open time while it is open. The list is sorted by (list time, the deal's
//! place in the log) newest first; `from`/`to` bound the list time (`from` inclusive, `to`
//! inclusive, a bare date `to` being the end of that day).
//!
//! Index ([`DealIndex`], kept current by the read model one event at a time, rebuilt with
//! the other indexes): per status, and per (current owner, status), the set of
//! (list time, deal number) keys. A page walks the sets that can hold what it asks for,
//! merged newest first from the cursor, and tests the other filters on each deal's current
//! fold, stopping after `limit + 1` matches: a page costs what it skips, never a scan of
//! the log. A rep's or a team's deals come from the owner sets; a customer's from the
//! customer's record. Customer names (for `q`) are kept in the index too.
//!
//! Text search (`q`): each deal's id and title, lower-cased, sit one after the other in one
//! byte arena (a deal's title never changes). A search runs one substring search (`memchr`'s
//! `memmem`, vectorised) over the arena and one pass over the customers' names; the deals
//! found (and those of the customers found) are then ordered and filtered like any other
//! candidates, so a `q` costs a pass over ~35 bytes per deal instead of a walk over every
//! deal's records.
//!
//! Cursor: the key of the last deal of the page, opaque (hex). The next page starts
//! strictly after it in the order, so deals opened (or closed) after the first page was
//! read, which sort before it, never shift the pages that follow: every deal whose key did
//! not change while paging is listed exactly once. (A deal that closes while being paged
//! moves to its close time and may be seen twice or not at all, like any keyset paging.)

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::envelope::format_time;
use domain::Money;
use serde::{Deserialize, Serialize};

use crate::deal::{DealOp, DealStatus, DealView};
use crate::model::{DealRecord, ReadModel};
use crate::params::{ParamError, Scope};

/// (list time, the deal's number: its index among the model's deals, in first-seen order).
pub type Key = (DateTime<Utc>, u32);

const STATUSES: [DealStatus; 3] = [DealStatus::Open, DealStatus::Won, DealStatus::Lost];

fn slot(s: DealStatus) -> usize {
    match s {
        DealStatus::Open => 0,
        DealStatus::Won => 1,
        DealStatus::Lost => 2,
    }
}

/// Where a deal sits in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub status: DealStatus,
    pub owner: Arc<str>,
    pub key: Key,
}

/// A deal's list time: the final close, or the opening while open.
pub fn list_time(view: &DealView) -> DateTime<Utc> {
    view.final_close().map_or(view.state.opened_at, |c| c.at)
}

pub fn fact(number: usize, view: &DealView) -> Fact {
    Fact {
        status: view.state.status,
        owner: view.state.owner.clone(),
        key: (list_time(view), u32::try_from(number).unwrap_or(u32::MAX)),
    }
}

/// The deal list's index: see the module doc.
#[derive(Debug, Clone, Default)]
pub struct DealIndex {
    by_status: [BTreeSet<Key>; 3],
    by_owner: HashMap<Arc<str>, [BTreeSet<Key>; 3]>,
    /// Each registered customer's current name.
    customer_names: HashMap<String, String>,
    /// `id \x1f title \x1e` of every listed deal, lower-cased, in the order first listed.
    text: Vec<u8>,
    /// (where its text starts in `text`, deal number), in `text`'s order.
    text_starts: Vec<(u32, u32)>,
    /// Whether a deal number's text is in the arena already.
    has_text: Vec<bool>,
    /// How many deals have their text in the arena.
    texts: usize,
}

impl PartialEq for DealIndex {
    /// An index is derived from the model: two models are equal whatever it holds.
    fn eq(&self, _: &DealIndex) -> bool {
        true
    }
}

impl DealIndex {
    /// Moves a deal from `before` to `after` (either absent).
    pub fn change(&mut self, before: Option<&Fact>, after: Option<&Fact>) {
        if before == after {
            return;
        }
        if let Some(f) = before {
            self.by_status[slot(f.status)].remove(&f.key);
            if let Some(sets) = self.by_owner.get_mut(&f.owner) {
                sets[slot(f.status)].remove(&f.key);
            }
        }
        if let Some(f) = after {
            self.by_status[slot(f.status)].insert(f.key);
            self.by_owner.entry(f.owner.clone()).or_default()[slot(f.status)].insert(f.key);
        }
    }

    pub fn set_customer_name(&mut self, customer_id: &str, name: Option<&str>) {
        match name {
            Some(n) => {
                self.customer_names
                    .insert(customer_id.to_string(), n.to_string());
            }
            None => {
                self.customer_names.remove(customer_id);
            }
        }
    }

    pub fn customer_name(&self, customer_id: &str) -> Option<&str> {
        self.customer_names.get(customer_id).map(String::as_str)
    }

    /// Puts deal `number`'s id and title in the search arena, once (a title never changes).
    pub fn index_text(&mut self, number: usize, id: &str, rec: &DealRecord) {
        if self.has_text.get(number).copied().unwrap_or(false) {
            return;
        }
        let (Ok(n), Ok(start)) = (u32::try_from(number), u32::try_from(self.text.len())) else {
            return; // past 4 GiB of text: such deals are found by the plain test only
        };
        if self.has_text.len() <= number {
            self.has_text.resize(number + 1, false);
        }
        self.has_text[number] = true;
        self.texts += 1;
        let (title, _) = opened(rec);
        for part in [id, title] {
            let clean = part.replace(['\x1e', '\x1f'], " ");
            self.text.extend_from_slice(clean.to_lowercase().as_bytes());
            self.text.push(0x1f);
        }
        *self.text.last_mut().unwrap_or(&mut 0) = 0x1e;
        self.text_starts.push((start, n));
    }

    /// The numbers of the deals whose id or title contains `needle` (lower-case), if the
    /// arena can answer (every listed deal is in it and the needle has no separator).
    fn text_matches(&self, needle: &str, listed: usize) -> Option<Vec<u32>> {
        if needle.is_empty() || needle.contains(['\x1e', '\x1f']) || self.texts < listed {
            return None;
        }
        let mut out = Vec::new();
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let mut last = None;
        for at in finder.find_iter(&self.text) {
            let at = u32::try_from(at).ok()?;
            let i = self
                .text_starts
                .partition_point(|(s, _)| *s <= at)
                .checked_sub(1)?;
            let n = self.text_starts[i].1;
            if last != Some(n) {
                out.push(n);
                last = Some(n);
            }
        }
        Some(out)
    }

    /// How many deals the index holds (tests compare it with the model).
    pub fn len(&self) -> usize {
        self.by_status.iter().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The query string of `GET /v1/deals` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealListParams {
    pub status: Option<String>,
    pub rep: Option<String>,
    pub team: Option<String>,
    pub customer_id: Option<String>,
    pub stage: Option<String>,
    pub reason: Option<String>,
    pub competitor: Option<String>,
    #[serde(default, deserialize_with = "crate::params::query_time::deserialize")]
    pub from: Option<DateTime<Utc>>,
    #[serde(
        default,
        deserialize_with = "crate::params::query_time::deserialize_as_of"
    )]
    pub to: Option<DateTime<Utc>>,
    pub min_amount: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Checked [`DealListParams`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DealListQuery {
    pub status: Option<DealStatus>,
    pub rep: Option<String>,
    pub team: Option<String>,
    pub customer_id: Option<String>,
    pub stage: Option<String>,
    pub reason: Option<String>,
    pub competitor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Inclusive.
    pub to: Option<DateTime<Utc>>,
    pub min_amount: Option<Money>,
    /// Lower-cased.
    pub q: Option<String>,
    pub limit: usize,
    /// The page starts strictly after this key.
    pub after: Option<Key>,
    /// Not a query parameter: set by the API from the caller's token.
    pub scope: Scope,
}

/// A value, or `None` when absent or blank (an empty form field is no filter).
fn given(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl DealListParams {
    pub fn validate(&self) -> Result<DealListQuery, ParamError> {
        let status = match given(&self.status).as_deref() {
            None => None,
            Some("open") => Some(DealStatus::Open),
            Some("won") => Some(DealStatus::Won),
            Some("lost") => Some(DealStatus::Lost),
            Some(other) => {
                return Err(ParamError::new(
                    "status",
                    format!("unknown status {other:?}: expected open, won or lost"),
                ))
            }
        };
        let limit = match given(&self.limit) {
            None => 100,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ParamError::new(
                        "limit",
                        format!("must be a whole number between 1 and 1000, got {s:?}"),
                    ))
                }
            },
        };
        let min_amount = match given(&self.min_amount) {
            None => None,
            Some(s) => {
                let m = s
                    .parse::<f64>()
                    .map_err(|_| format!("{s:?} is not a number"))
                    .and_then(Money::from_f64)
                    .map_err(|e| ParamError::new("min_amount", e))?;
                if m < Money::ZERO {
                    return Err(ParamError::new(
                        "min_amount",
                        format!("must not be negative, got {s}"),
                    ));
                }
                Some(m)
            }
        };
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                return Err(ParamError::new(
                    "from",
                    format!(
                        "`from` ({}) must not be after `to` ({})",
                        format_time(&f),
                        format_time(&t)
                    ),
                ));
            }
        }
        let after = given(&self.cursor)
            .map(|c| {
                decode_cursor(&c).ok_or_else(|| {
                    ParamError::new(
                        "cursor",
                        format!("{c:?} is not a cursor of this list: give the `next_cursor` of the previous page"),
                    )
                })
            })
            .transpose()?;
        Ok(DealListQuery {
            status,
            rep: given(&self.rep),
            team: given(&self.team),
            customer_id: given(&self.customer_id),
            stage: given(&self.stage),
            reason: given(&self.reason),
            competitor: given(&self.competitor),
            from: self.from,
            to: self.to,
            min_amount,
            q: given(&self.q).map(|q| q.to_lowercase()),
            limit,
            after,
            scope: Scope::Organisation,
        })
    }
}

/// The cursor for `key`: opaque text (hex of `"<nanos since 1970>.<deal number>"`).
pub fn encode_cursor(key: Key) -> String {
    let nanos = key.0.timestamp_nanos_opt().unwrap_or(i64::MAX);
    format!("{nanos}.{}", key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn decode_cursor(s: &str) -> Option<Key> {
    if !s.len().is_multiple_of(2) || s.len() > 80 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (nanos, number) = text.split_once('.')?;
    let t = DateTime::from_timestamp_nanos(nanos.parse().ok()?);
    Some((t, number.parse().ok()?))
}

/// One deal of the list (SPEC §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DealRow {
    pub id: String,
    pub title: String,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub owner: String,
    pub status: DealStatus,
    pub stage: String,
    pub amount: Money,
    pub currency: String,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub reason: Option<String>,
    pub competitor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DealList {
    pub deals: Vec<DealRow>,
    pub next_cursor: Option<String>,
}

/// Case-insensitive substring; `needle` is lower-case already.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
    }
}

/// The title and currency `DealOpened` gave the deal.
fn opened(rec: &DealRecord) -> (&str, &str) {
    rec.entries
        .iter()
        .find_map(|e| match &e.op {
            DealOp::Opened(o) => Some((&*o.title, &*o.currency)),
            _ => None,
        })
        .unwrap_or(("", "CNY"))
}

/// Walks several key sets at once, newest first (a k-way merge of descending ranges).
struct Merge<'a> {
    heads: Vec<std::iter::Peekable<std::iter::Rev<std::collections::btree_set::Range<'a, Key>>>>,
}

impl Iterator for Merge<'_> {
    type Item = Key;
    fn next(&mut self) -> Option<Key> {
        let mut best: Option<(usize, Key)> = None;
        for (i, h) in self.heads.iter_mut().enumerate() {
            if let Some(&&k) = h.peek() {
                if best.is_none_or(|(_, b)| k > b) {
                    best = Some((i, k));
                }
            }
        }
        let (i, k) = best?;
        self.heads[i].next();
        Some(k)
    }
}

/// The page of the deal list that `q` asks for.
pub fn list(model: &ReadModel, q: &DealListQuery) -> DealList {
    let index = &model.deal_index;
    // Whose deals may be listed: the scope, narrowed by `rep` and `team`.
    let owners = list_owners(model, q);
    let slots: Vec<usize> = match q.status {
        Some(s) => vec![slot(s)],
        None => STATUSES.iter().map(|s| slot(*s)).collect(),
    };
    let lower = q.from.map(|f| (f, 0u32));
    let upper = match (q.to, q.after) {
        (None, None) => Bound::Unbounded,
        (Some(t), None) => Bound::Included((t, u32::MAX)),
        (None, Some(a)) => Bound::Excluded(a),
        (Some(t), Some(a)) => {
            if a <= (t, u32::MAX) {
                Bound::Excluded(a)
            } else {
                Bound::Included((t, u32::MAX))
            }
        }
    };
    let in_range = |k: &Key| {
        lower.is_none_or(|l| *k >= l)
            && match upper {
                Bound::Unbounded => true,
                Bound::Included(u) => *k <= u,
                Bound::Excluded(u) => *k < u,
            }
    };
    if let Some(lo) = lower {
        let empty = match upper {
            Bound::Unbounded => false,
            Bound::Included(u) => u < lo,
            Bound::Excluded(u) => u <= lo,
        };
        if empty {
            return DealList {
                deals: Vec::new(),
                next_cursor: None,
            };
        }
    }
    let lo_bound = lower.map_or(Bound::Unbounded, Bound::Included);
    let found = match (&q.q, &q.customer_id) {
        (Some(needle), None) => text_candidates(model, needle),
        _ => None,
    };
    let candidates: Box<dyn Iterator<Item = Key> + '_> = if let Some(numbers) = found {
        // A text search: the deals it found, newest first; the filters follow as for any.
        let mut keys: Vec<Key> = numbers
            .into_iter()
            .filter_map(|n| {
                let (_, rec) = model.deals.get_index(n as usize)?;
                let f = fact(n as usize, rec.current.as_deref()?);
                let owned = owners.as_ref().is_none_or(|o| o.contains(&*f.owner));
                (owned && slots.contains(&slot(f.status))).then_some(f.key)
            })
            .filter(|k| in_range(k))
            .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        Box::new(keys.into_iter())
    } else if let Some(c) = &q.customer_id {
        // A customer has few deals: sort them.
        let mut keys: Vec<Key> = model
            .customers
            .get(c)
            .into_iter()
            .flat_map(|r| r.deals.iter())
            .filter_map(|d| {
                let (n, _, rec) = model.deals.get_full(d)?;
                Some(fact(n, rec.current.as_deref()?).key)
            })
            .filter(|k| in_range(k))
            .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        Box::new(keys.into_iter())
    } else {
        let sets: Vec<&BTreeSet<Key>> = match &owners {
            None => slots.iter().map(|s| &index.by_status[*s]).collect(),
            Some(reps) => reps
                .iter()
                .filter_map(|r| index.by_owner.get(r.as_str()))
                .flat_map(|sets| slots.iter().map(move |s| &sets[*s]))
                .collect(),
        };
        Box::new(Merge {
            heads: sets
                .into_iter()
                .map(|s| s.range((lo_bound, upper)).rev().peekable())
                .collect(),
        })
    };
    let mut deals = Vec::new();
    let mut last = None;
    let mut next_cursor = None;
    for key in candidates {
        let Some((id, rec)) = model.deals.get_index(key.1 as usize) else {
            continue;
        };
        let Some(view) = rec.current.as_deref() else {
            continue;
        };
        if !matches(model, q, owners.as_ref(), id, rec, view) {
            continue;
        }
        if deals.len() == q.limit {
            next_cursor = last.map(encode_cursor);
            break;
        }
        deals.push(row(model, id, rec, view));
        last = Some(key);
    }
    DealList { deals, next_cursor }
}

/// The deal numbers a text search `needle` (lower-case) can match: by id or title (the
/// arena) or by the customer's name; `None` when the arena cannot answer.
fn text_candidates(model: &ReadModel, needle: &str) -> Option<Vec<u32>> {
    let index = &model.deal_index;
    let listed = index.by_status.iter().map(BTreeSet::len).sum();
    let mut numbers = index.text_matches(needle, listed)?;
    for (customer, name) in &index.customer_names {
        if contains_ci(name, needle) {
            let deals = model
                .customers
                .get(customer)
                .into_iter()
                .flat_map(|r| r.deals.iter());
            numbers.extend(deals.filter_map(|d| u32::try_from(model.deals.get_index_of(d)?).ok()));
        }
    }
    numbers.sort_unstable();
    numbers.dedup();
    Some(numbers)
}

fn matches(
    model: &ReadModel,
    q: &DealListQuery,
    owners: Option<&BTreeSet<String>>,
    id: &str,
    rec: &DealRecord,
    view: &DealView,
) -> bool {
    let s = &view.state;
    if q.status.is_some_and(|st| st != s.status) {
        return false;
    }
    if owners.is_some_and(|o| !o.contains(&*s.owner)) {
        return false;
    }
    if q.customer_id
        .as_deref()
        .is_some_and(|c| c != &*s.customer_id)
    {
        return false;
    }
    if q.stage.as_deref().is_some_and(|st| st != &*s.stage) {
        return false;
    }
    if q.min_amount.is_some_and(|m| s.amount < m) {
        return false;
    }
    if q.reason.is_some() || q.competitor.is_some() {
        let lost = match view.final_close() {
            Some(c) if !c.won => c,
            _ => return false,
        };
        if q.reason
            .as_deref()
            .is_some_and(|r| lost.reason.as_deref() != Some(r))
        {
            return false;
        }
        if q.competitor
            .as_deref()
            .is_some_and(|c| lost.competitor.as_deref() != Some(c))
        {
            return false;
        }
    }
    if let Some(needle) = &q.q {
        let (title, _) = opened(rec);
        let name = model.deal_index.customer_name(&s.customer_id).unwrap_or("");
        if !(contains_ci(id, needle) || contains_ci(title, needle) || contains_ci(name, needle)) {
            return false;
        }
    }
    true
}

fn row(model: &ReadModel, id: &str, rec: &DealRecord, view: &DealView) -> DealRow {
    let s = &view.state;
    let (title, currency) = opened(rec);
    let close = view.final_close();
    let lost = close.filter(|c| !c.won);
    DealRow {
        id: id.to_string(),
        title: title.to_string(),
        customer_id: s.customer_id.to_string(),
        customer_name: model
            .deal_index
            .customer_name(&s.customer_id)
            .map(str::to_string),
        owner: s.owner.to_string(),
        status: s.status,
        stage: s.stage.to_string(),
        amount: s.amount,
        currency: currency.to_string(),
        opened_at: format_time(&s.opened_at),
        closed_at: close.map(|c| format_time(&c.at)),
        reason: lost.and_then(|c| c.reason.as_deref().map(str::to_string)),
        competitor: lost.and_then(|c| c.competitor.as_deref().map(str::to_string)),
    }
}

/// Every deal that `q`'s filters select (ignoring `limit` and `cursor`), by scanning every
/// deal: what the index must agree with (tests, and nothing else).
pub fn scan(model: &ReadModel, q: &DealListQuery) -> Vec<String> {
    let owners = list_owners(model, q);
    let mut keyed: Vec<(Key, String)> = model
        .deals
        .iter()
        .enumerate()
        .filter_map(|(n, (id, rec))| {
            let view = rec.current.as_deref()?;
            let key = fact(n, view).key;
            let in_period = q.from.is_none_or(|f| key.0 >= f) && q.to.is_none_or(|t| key.0 <= t);
            (in_period && matches(model, q, owners.as_ref(), id, rec, view))
                .then(|| (key, id.clone()))
        })
        .collect();
    keyed.sort_by_key(|k| std::cmp::Reverse(k.0));
    keyed.into_iter().map(|(_, id)| id).collect()
}

fn list_owners(model: &ReadModel, q: &DealListQuery) -> Option<BTreeSet<String>> {
    let mut owners: Option<BTreeSet<String>> = match &q.scope {
        Scope::Organisation => None,
        Scope::Reps(r) => Some(r.clone()),
    };
    if let Some(r) = &q.rep {
        owners = Some(owners.map_or_else(
            || BTreeSet::from([r.clone()]),
            |o| o.into_iter().filter(|x| x == r).collect(),
        ));
    }
    if let Some(t) = &q.team {
        let team: BTreeSet<String> = model
            .reps(None)
            .into_iter()
            .filter(|(_, info)| &info.team == t)
            .map(|(id, _)| id)
            .collect();
        owners = Some(owners.map_or(team.clone(), |o| o.intersection(&team).cloned().collect()));
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let t = DateTime::from_timestamp(1_780_000_000, 123_456_789).unwrap();
        for key in [(t, 0), (t, 4_000_000_000), (DateTime::UNIX_EPOCH, 7)] {
            assert_eq!(decode_cursor(&encode_cursor(key)), Some(key));
        }
        for bad in [
            "",
            "zz",
            "313",
            "3132",
            "2e",
            "312e",
            "2e31",
            &"31".repeat(41),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn search_ignores_case_in_any_script() {
        assert!(contains_ci("D-1311", "d-13"));
        assert!(contains_ci("South C-93 Co.", "c-93 co"));
        assert!(contains_ci("ÉTÉ Conseil", "été"));
        assert!(contains_ci("华东 Acme 公司", "acme 公司"));
        assert!(!contains_ci("Acme", "acne"));
    }
}
