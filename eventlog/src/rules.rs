//! The domain's rules in front of every append: [`DomainRules`] implements
//! [`AppendValidator`] with `domain::rules::check_batch`.
//!
//! Folding a stream from disk for every append would be slow, so the folded state of recently
//! appended streams is cached, keyed by the version of its last event. The store assigns
//! versions from what is really written, so a stale entry (e.g. from a batch that was
//! validated but then not written because a later batch of the same atomic append was
//! refused) never matches and the stream is folded from disk again. The same cache lets a
//! later batch of one atomic multi-stream append see an earlier batch of the same stream.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use domain::rules::{check_batch, Context};
use domain::state::{fold_stream, OrgState, StreamState};
use domain::{RecordedEvent, Rejection};

use crate::{AppendValidator, LogView};

/// How many folded streams to keep before the cache is emptied (after a write, never mid-append).
const CACHE_STREAMS: usize = 200_000;

/// Validates appends with the domain's rules.
pub struct DomainRules {
    clock: fn() -> DateTime<Utc>,
    inner: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// The organisation (pipeline in force, reps, targets) folded over every `org-` stream.
    org: Option<OrgState>,
    /// stream → (version of its last event, state after it).
    streams: HashMap<String, (u64, StreamState)>,
}

impl Default for DomainRules {
    fn default() -> Self {
        DomainRules::new(Utc::now)
    }
}

impl DomainRules {
    /// `clock` gives "now" for the far-future check (tests pass a fixed one).
    pub fn new(clock: fn() -> DateTime<Utc>) -> DomainRules {
        DomainRules {
            clock,
            inner: Mutex::new(Cache::default()),
        }
    }
}

fn storage(e: crate::StoreError) -> Rejection {
    Rejection::new(
        "storage.read",
        "stream",
        "",
        format!("could not read the stream to validate it: {e}"),
    )
}

impl AppendValidator for DomainRules {
    fn validate(
        &self,
        view: &dyn LogView,
        stream: &str,
        batch: &[RecordedEvent],
    ) -> Result<(), Rejection> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let cache = &mut *guard;
        let org = match &mut cache.org {
            Some(org) => org,
            none => {
                let mut org = OrgState::default();
                for ev in view.streams_with_prefix("org-").map_err(storage)? {
                    org.apply(&ev);
                }
                none.insert(org)
            }
        };
        // Taken out, not cloned: a refused batch leaves the stream to be folded again.
        let cached = cache
            .streams
            .remove(stream)
            .filter(|(v, _)| first.version > 0 && *v == first.version - 1)
            .map(|(_, s)| s);
        let state = match cached {
            Some(s) => s,
            None if first.version == 0 => StreamState::Empty,
            None => fold_stream(stream, &view.stream(stream).map_err(storage)?),
        };
        // The organisation is borrowed, not cloned: an org of hundreds of reps cloned for
        // every batch was most of the cost of a large import.
        let ctx = Context {
            org,
            now: (self.clock)(),
        };
        match check_batch(&ctx, &state, stream, batch) {
            Ok(next) => {
                let last = batch.last().map(|e| e.version).unwrap_or(first.version);
                cache.streams.insert(stream.to_string(), (last, next));
                if stream.starts_with("org-") {
                    for ev in batch {
                        org.apply(ev);
                    }
                }
                Ok(())
            }
            Err(r) => {
                // An earlier batch of this atomic append may have changed the organisation;
                // it will not be written now, so fold it again from disk next time.
                cache.org = None;
                Err(r)
            }
        }
    }

    fn applied(&self, _batch: &[RecordedEvent]) {
        let mut cache = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if cache.streams.len() > CACHE_STREAMS {
            cache.streams.clear();
        }
    }
}
