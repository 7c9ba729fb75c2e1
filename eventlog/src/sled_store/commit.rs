//! Group commit: making written groups durable, then answering them.
//!
//! The writer hands every group it has written (in sled and in the journal, not synced) to
//! [`Commits`], in order. [`FLUSHERS`] threads take turns syncing, one sync at a time (the
//! disk does concurrent ones no faster: measured, two or three syncs in flight were slower
//! than one), so that while one thread answers the groups its sync covered, another is
//! already syncing the groups written meanwhile. A flusher claims every group handed over
//! so far, syncs the journal (`fdatasync`; for a temporary store, sled's flush), then, under
//! the lock, moves the durable watermark and takes every group up to its claim off the
//! queue, and answers those, in order, after the lock.
//!
//! Why this is durable: a sync that starts after a group's journal record was written covers
//! it, and a flusher answers only groups handed over before its claim, after its own sync
//! succeeded. After a failed sync the store is faulted before the next sync may start, and
//! every later answer of the session is an error (see `writer::recover`). Each flusher syncs through its own handle of the journal,
//! opened before anything is appended (Linux reports a write-back error once per open file
//! description: so no sync can miss an error because another handle consumed it).

use std::collections::VecDeque;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::fault::{io_error, Fault};
use super::journal::Journal;
use super::{Shared, StoreError};
use crate::{AppendOutcome, MultiAppendError};

/// Threads taking turns at syncing.
const FLUSHERS: usize = 2;

pub(crate) type Reply = Result<Vec<AppendOutcome>, MultiAppendError>;

/// A group's answers, on their way to a flusher.
pub(crate) struct Written {
    /// The last position the group wrote, `None` if it wrote nothing.
    pub last_position: Option<u64>,
    pub answers: Vec<(oneshot::Sender<Reply>, Reply)>,
}

struct State {
    /// Groups handed over and not yet answered, oldest first, with their numbers.
    queue: VecDeque<(u64, Written)>,
    /// The number of the last group handed over.
    handed: u64,
    /// The last position written by the groups handed over.
    written: u64,
    /// The number of the last group some flusher has claimed.
    claimed: u64,
    /// Whether a flusher is syncing.
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
        // Nothing panics while holding the lock, and every step leaves the state consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands over a written group (after its writes returned).
    pub(crate) fn push(&self, group: Written) {
        let mut st = self.lock();
        st.handed += 1;
        if let Some(last) = group.last_position {
            st.written = st.written.max(last);
        }
        let n = st.handed;
        st.queue.push_back((n, group));
        // While a sync runs nobody may start another: its flusher wakes one when it ends.
        let wake = !st.syncing;
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// No more groups: the flushers finish what they hold and end.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Starts the flusher threads (at least one, or an error).
    pub(crate) fn start(
        commits: &Arc<Commits>,
        shared: &Arc<Shared>,
        journal: Option<&Journal>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let mut threads = Vec::with_capacity(FLUSHERS);
        for i in 0..FLUSHERS {
            // Opened here, before anything is appended (see above).
            let handle = match journal {
                Some(j) => j.handle().map(Some).map_err(|e| e.to_string()),
                None => Ok(None),
            };
            let (c, shared) = (commits.clone(), shared.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("eventlog-flush-{i}"))
                .spawn(move || c.flush_loop(&shared, handle));
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
            let mut failure = shared.fault();
            if failure.is_none() && position > shared.durable() {
                let started = std::time::Instant::now();
                let synced = match &journal {
                    Ok(Some(j)) => j
                        .sync_data()
                        .map_err(|e| io_error("cannot sync the commit journal", e)),
                    Ok(None) => shared.flush(),
                    Err(e) => Err(StoreError::Backend(format!(
                        "cannot open the commit journal to sync it: {e}"
                    ))),
                };
                let took = started.elapsed();
                if took >= std::time::Duration::from_millis(50) {
                    tracing::warn!("syncing the commit journal took {} ms", took.as_millis());
                }
                if let Err(e) = synced {
                    shared.set_fault(&e);
                    failure = Some(Fault::of(&e));
                }
            }
            st = self.lock();
            st.syncing = false;
            if failure.is_none() {
                // Another sync or a write failed meanwhile: acknowledge nothing more.
                failure = shared.fault();
            }
            if failure.is_none() && position > shared.durable() {
                shared.publish_durable(position);
            }
            let mut done = Vec::new();
            while st.queue.front().is_some_and(|(n, _)| *n <= claim) {
                done.extend(st.queue.pop_front().map(|(_, g)| g));
            }
            let more = st.claimed < st.handed;
            drop(st);
            if more {
                // Another flusher syncs what was written meanwhile while this one answers.
                self.work.notify_one();
            }
            for mut group in done {
                if let Some(e) = &failure {
                    fail_successes(&mut group.answers, e);
                }
                for (reply, answer) in group.answers {
                    // The caller may have gone away; its append stands regardless.
                    let _ = reply.send(answer);
                }
            }
            st = self.lock();
        }
    }
}

/// Turns the successes among `answers` into the error of `fault` (their group was not made
/// durable).
pub(crate) fn fail_successes(answers: &mut [(oneshot::Sender<Reply>, Reply)], fault: &Fault) {
    for (_, answer) in answers.iter_mut() {
        if answer.is_ok() {
            *answer = Err(MultiAppendError::general(fault.error()));
        }
    }
}
