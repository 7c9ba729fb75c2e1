//! Group commit with several flushes in flight.
//!
//! The writer hands every group it has written (in sled, not flushed) to [`Commits`], in
//! order. Up to [`FLUSHERS`] threads make them durable: an idle flusher claims every group
//! handed over so far, flushes sled and syncs its files (see `Shared::flush`), then, under the
//! lock, moves the durable watermark and takes every group up to its claim off the queue, and
//! acknowledges those (in order) after the lock.
//!
//! Why this is still durable: a flush started after a group's sled insert returned covers
//! that group (sled's flush writes everything reserved before it, then the sync is an
//! `fdatasync` of the whole file issued after that), whoever else is flushing meanwhile. A
//! flusher acknowledges only groups handed over before its own claim, and only after its own
//! flush and sync succeeded. A flush that finishes first may acknowledge groups claimed by
//! an earlier, slower one (it covers them too); the watermark only ever moves forward.
//!
//! Why several: with one flusher, the 64 writers of a `64x1` load split into two cohorts (one
//! being flushed, the other queued behind it), so each append waited for about two flushes
//! and each flush carried half of them. The disk (a virtio block device) completes
//! concurrent syncs about as fast as a single one, so letting the next flush start while one
//! is in flight shortens the wait to about one flush.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::journal::Journal;
use super::{Shared, StoreError};
use crate::{AppendOutcome, MultiAppendError};

/// At most this many flushes are in flight at once.
pub(crate) const FLUSHERS: usize = 4;

pub(crate) type Reply = Result<Vec<AppendOutcome>, MultiAppendError>;

/// A group's answers, on their way to a flusher.
pub(crate) struct Written {
    /// The last position the group wrote, `None` if it wrote nothing.
    pub last_position: Option<u64>,
    pub answers: Vec<(oneshot::Sender<Reply>, Reply)>,
}

struct State {
    /// Groups handed over and not yet acknowledged, oldest first, with their numbers.
    queue: VecDeque<(u64, Written)>,
    /// The number of the last group handed over.
    handed: u64,
    /// The last position written by the groups handed over.
    written: u64,
    /// The number of the last group some flusher has claimed.
    claimed: u64,
    /// Whether a flusher is syncing (only one does at a time, see `flush_loop`).
    syncing: bool,
    /// Set when the writer stops: the flushers end once every group is claimed.
    closed: bool,
}

pub(crate) struct Commits {
    state: Mutex<State>,
    work: Condvar,
}

impl Commits {
    /// For a log whose last (durable) position is `durable`.
    pub(crate) fn new(durable: u64) -> Commits {
        Commits {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                handed: 0,
                written: durable,
                claimed: 0,
                syncing: false,
                closed: false,
            }),
            work: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here panics while holding the lock; if something did, the queue is still
        // consistent (every step leaves it so).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands over a written group (after its sled write returned).
    pub(crate) fn push(&self, group: Written) {
        let mut st = self.lock();
        st.handed += 1;
        if let Some(last) = group.last_position {
            st.written = st.written.max(last);
        }
        let n = st.handed;
        st.queue.push_back((n, group));
        drop(st);
        self.work.notify_one();
    }

    /// No more groups: the flushers finish what they hold and end.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Starts the flusher threads (at least one, or an error).
    pub(crate) fn start(
        commits: &std::sync::Arc<Commits>,
        shared: &std::sync::Arc<Shared>,
        journal: Option<&Journal>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let n = std::env::var("DT_FLUSHERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(FLUSHERS);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            // Opened here, before anything is appended (see `sync`).
            let handle = match journal {
                Some(j) => j.handle().map(Some).map_err(|e| e.to_string()),
                None => Ok(None),
            };
            let (commits, shared) = (commits.clone(), shared.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("eventlog-flush-{i}"))
                .spawn(move || commits.flush_loop(&shared, handle));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) if threads.is_empty() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start another flusher thread");
                    break;
                }
            }
        }
        Ok(threads)
    }

    /// `journal`: this thread's handle of the journal, `None` for a temporary store (whose
    /// flush is sled's).
    fn flush_loop(&self, shared: &Shared, journal: Result<Option<File>, String>) {
        let mut st = self.lock();
        loop {
            if st.claimed == st.handed || st.syncing {
                if st.closed && st.claimed == st.handed {
                    return;
                }
                st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let claim = st.handed;
            let position = st.written;
            st.claimed = claim;
            st.syncing = true;
            drop(st);
            let mut failure = None;
            if shared.poisoned.load(Ordering::Acquire) {
                failure = Some("the store is poisoned by an earlier failed write".to_string());
            } else if position > shared.durable() {
                let t = std::time::Instant::now();
                let flushed = match &journal {
                    Ok(Some(j)) => j
                        .sync_data()
                        .map_err(|e| format!("cannot sync the commit journal: {e}")),
                    Ok(None) => shared.flush(),
                    Err(e) => Err(format!("cannot open the commit journal to sync it: {e}")),
                };
                super::stats::SYNC_NS.add(super::stats::ns(t));
                if let Err(e) = flushed {
                    tracing::error!(error = %e, "flushing the event log failed; refusing further appends");
                    shared.poisoned.store(true, Ordering::Release);
                    failure = Some(e);
                }
            }
            st = self.lock();
            st.syncing = false;
            if failure.is_none() && shared.poisoned.load(Ordering::Acquire) {
                // Another flush failed meanwhile: acknowledge nothing more.
                failure = Some("the store is poisoned by an earlier failed write".to_string());
            }
            if failure.is_none() && position > shared.durable() {
                shared.publish_durable(position);
            }
            let mut done = Vec::new();
            while st.queue.front().is_some_and(|(n, _)| *n <= claim) {
                done.extend(st.queue.pop_front().map(|(_, g)| g));
            }
            super::stats::FLUSHES.add(1);
            super::stats::FLUSH_GROUPS.add(done.len() as u64);
            super::stats::FLUSH_EVENTS.add(done.iter().map(|g| g.answers.len() as u64).sum());
            let more = st.claimed < st.handed;
            drop(st);
            if more {
                // Another flusher syncs what was written meanwhile while this one answers.
                self.work.notify_one();
            }
            let t = std::time::Instant::now();
            for mut group in done {
                if let Some(e) = &failure {
                    fail_successes(&mut group.answers, e);
                }
                for (reply, answer) in group.answers {
                    // The caller may have gone away; its append stands regardless.
                    let _ = reply.send(answer);
                }
            }
            super::stats::ACK_NS.add(super::stats::ns(t));
            st = self.lock();
        }
    }
}

pub(crate) fn fail_successes(
    answers: &mut [(oneshot::Sender<Reply>, Reply)],
    e: &dyn std::fmt::Display,
) {
    for (_, answer) in answers.iter_mut() {
        if answer.is_ok() {
            *answer = Err(MultiAppendError::general(StoreError::Backend(format!(
                "the append could not be made durable: {e}"
            ))));
        }
    }
}
