//! Sessions, and recovery after a failed write or sync.
//!
//! The writer serves requests in *sessions*: the flusher threads (see `commit`) and sled's
//! background flush (see `journal`) are started for a session and joined at its end, since
//! they keep the state of a failure (a failed `SledFlush` stays failed; a flusher's handle of
//! the journal has seen a write-back error).
//!
//! When a write or sync fails (the writer's sled insert or journal write, a flusher's
//! `fdatasync`, the background sled flush), the store is *faulted*
//! ([`Shared::set_fault`](super::super::Shared::set_fault)): the failing group's appends get
//! the error (`StoreError::StorageFull` for a full disk), and so does every group not yet
//! acknowledged (the flushers acknowledge nothing once faulted), so nothing is acknowledged
//! that a failed sync may not have covered; `/healthz` reports it. The session ends, and the
//! writer recovers by reopening the store's files, as a restart would: sled is closed and
//! opened again, the commit journal replayed, sled flushed and synced, the journal emptied
//! (see `open`), and a new session starts. Nothing written before the failure is trusted
//! from memory: after a failed `fdatasync` the state of the OS cache is unknown (a page that
//! failed to reach the disk may be marked clean), and sled itself refuses every operation
//! once one of its writes failed. What the reopened store holds is what is on disk, and
//! every acknowledged event is there (in sled, or in the journal synced before it was
//! acknowledged; the store refuses to go on otherwise).
//!
//! Positions stay gap-free: the reopened log continues from its last position on disk. A
//! group that was answered with an error may be in it (its journal record or sled's copy
//! reached the disk whole): it is then durable before anyone sees it, as an unacknowledged
//! append may be after a crash; a client retrying with the same event ids gets the original
//! positions. A group that did not reach the disk leaves no trace, and its positions go to
//! later appends. The validator forgets what it learned since (`AppendValidator::reset`).
//!
//! The writer tries to recover at once, then whenever a request comes or [`RETRY`] has passed,
//! but after a failed try not before twice the previous wait (up to about a minute: a disk
//! that keeps failing is not reopened every second); for a full disk only once [`MIN_FREE`]
//! bytes are free (reopening writes, and a failed reopen leaves the store without files to
//! read until the next try). Requests that come while it cannot recover get the fault's
//! error. A temporary store cannot reopen its files: it refuses
//! appends until dropped.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::commit::Commits;
use super::super::fault::{backend, io_error, Fault};
use super::super::journal::{Journal, SledFlush, JOURNAL_BYTES};
use super::super::open;
use super::{Request, Writer};
use crate::{MultiAppendError, StoreError};

/// How often the writer tries to recover when no request comes.
const RETRY: Duration = Duration::from_secs(1);
/// The free space a full disk needs before the writer reopens the store's files.
const MIN_FREE: u64 = JOURNAL_BYTES;

/// The threads of one session.
pub(super) struct Session {
    pub commits: Arc<Commits>,
    flushers: Vec<JoinHandle<()>>,
    sled_flush: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start_session(&mut self) -> Result<Session, StoreError> {
        let durable = self.shared.durable();
        self.sled_flush = Arc::new(SledFlush::new(durable));
        let commits = Arc::new(Commits::new(durable));
        let sled_flush = match &self.journal {
            None => None,
            Some(_) => {
                let (sf, shared) = (self.sled_flush.clone(), self.shared.clone());
                let flush = move || shared.flush().inspect_err(|e| shared.set_fault(e));
                let thread = std::thread::Builder::new()
                    .name("eventlog-sled-flush".into())
                    .spawn(move || sf.run(flush))
                    .map_err(|e| backend(format!("cannot start the sled flush thread: {e}")))?;
                Some(thread)
            }
        };
        if self.indexer.is_none() {
            let indexer = super::indexer::Indexer::start(self.shared.clone(), self.last_run_id)
                .map_err(|e| backend(format!("cannot start the index thread: {e}")))?;
            self.indexer = Some(indexer);
        }
        let session = |flushers| Session {
            commits: commits.clone(),
            flushers,
            sled_flush,
        };
        match Commits::start(&commits, &self.shared, self.journal.as_ref()) {
            Ok(flushers) => Ok(session(flushers)),
            Err(e) => {
                self.end_session(session(Vec::new()));
                Err(backend(format!("cannot start the flusher threads: {e}")))
            }
        }
    }

    /// Ends a session once every group handed over is answered and the index thread is done
    /// with its round.
    pub(super) fn end_session(&mut self, session: Session) {
        session.commits.close();
        for f in session.flushers {
            let _ = f.join();
        }
        if let Some(indexer) = self.indexer.take() {
            match indexer.stop() {
                Some(id) => self.last_run_id = id,
                None => self.shared.set_fault(&backend("the index thread panicked")),
            }
        }
        self.sled_flush.stop();
        if let Some(t) = session.sled_flush {
            let _ = t.join();
        }
    }

    /// Waits until the store has recovered (`true`) or is dropped (`false`), answering
    /// requests with the fault's error meanwhile, unless it can recover at once.
    pub(super) fn await_recovery(
        &mut self,
        requests: &mpsc::Receiver<Request>,
        waiting: &mut Vec<Request>,
    ) -> bool {
        // When to try next (`None`: as soon as the disk allows).
        let mut next_try: Option<Instant> = None;
        let mut failed_tries = 0;
        loop {
            if self.recovery_due(next_try) {
                match self.recover() {
                    Ok(()) => return true,
                    Err(e) => {
                        tracing::warn!(error = %e, "the event store could not recover yet");
                        next_try = Some(Instant::now() + RETRY * 2u32.pow(failed_tries));
                        failed_tries = (failed_tries + 1).min(6);
                    }
                }
            }
            let refusal = self.shared.fault().unwrap_or(Fault::Io("unknown".into()));
            for r in waiting.drain(..) {
                let _ = r
                    .reply
                    .send(Err(MultiAppendError::general(refusal.error())));
            }
            match requests.recv_timeout(RETRY) {
                Ok(r) => waiting.push(r),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn recovery_due(&self, next_try: Option<Instant>) -> bool {
        let Some(dir) = &self.shared.dir else {
            return false;
        };
        if next_try.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        match self.shared.fault() {
            Some(Fault::Full(_)) => free_space(dir).is_ok_and(|free| free >= MIN_FREE),
            _ => true,
        }
    }

    /// Reopens the store's files (see the module's documentation).
    fn recover(&mut self) -> Result<(), StoreError> {
        let dir = self
            .shared
            .dir
            .clone()
            .ok_or_else(|| backend("a temporary store"))?;
        // Readers get the fault's error until the new files are in place; sled lets go of its
        // files once the reads still holding it are done (`open` waits for that).
        let old = self
            .shared
            .sled
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(old);
        self.journal = None;
        let opened = self.shared.watch(open::open(&dir, None))?;
        let (tail, durable) = (opened.tail.position, self.shared.durable());
        if tail < durable {
            return self.shared.watch(Err(StoreError::Corrupt {
                position: tail + 1,
                reason: format!(
                    "reopened after a failed write, the store ends at position {tail} \
                     although events up to {durable} were acknowledged"
                ),
            }));
        }
        let journal =
            Journal::open(&dir, tail).map_err(|e| io_error("cannot open the commit journal", e))?;
        *self
            .shared
            .unindexed
            .write()
            .unwrap_or_else(|e| e.into_inner()) = opened.unindexed.into();
        *self.shared.sled.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(opened.sled));
        self.next_position = tail + 1;
        self.last_hash = opened.tail.hash;
        self.last_run_id = opened.last_run_id;
        self.versions.clear();
        self.journal = Some(journal);
        self.validator.reset();
        self.shared.publish_durable(tail);
        self.shared.clear_fault();
        Ok(())
    }
}

/// The bytes an unprivileged process may still write on the file system of `dir`.
fn free_space(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}
