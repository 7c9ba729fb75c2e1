//! TEMPORARY instrumentation (env DEALTRAIL_APPEND_STATS=1).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

pub(crate) struct C(AtomicU64);
impl C {
    pub(crate) const fn new() -> C {
        C(AtomicU64::new(0))
    }
    pub(crate) fn add(&self, v: u64) {
        self.0.fetch_add(v, Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}
pub(crate) static FLUSHES: C = C::new();
pub(crate) static FLUSH_GROUPS: C = C::new();
pub(crate) static FLUSH_EVENTS: C = C::new();
pub(crate) static SLED_FLUSH_NS: C = C::new();
pub(crate) static SLED_FLUSH_BYTES: C = C::new();
pub(crate) static SYNC_NS: C = C::new();
pub(crate) static ACK_NS: C = C::new();
pub(crate) static FLUSHER_IDLE_NS: C = C::new();
pub(crate) static GROUPS: C = C::new();
pub(crate) static GROUP_REQS: C = C::new();
pub(crate) static DECIDE_NS: C = C::new();
pub(crate) static WRITE_NS: C = C::new();
pub(crate) static WRITER_IDLE_NS: C = C::new();
pub(crate) static INDEX_WRITES: C = C::new();

pub(crate) fn ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

pub(crate) fn report() {
    if std::env::var_os("DEALTRAIL_APPEND_STATS").is_none() {
        return;
    }
    let f = FLUSHES.get().max(1) as f64;
    let g = GROUPS.get().max(1) as f64;
    eprintln!(
        "flushes {} groups/flush {:.2} events/flush {:.1} sled_flush {:.0}us ({:.0} B) sync {:.0}us ack {:.0}us flusher idle total {:.0}ms\n\
         groups {} reqs/group {:.1} decide {:.0}us write {:.0}us writer idle total {:.0}ms index writes {}",
        FLUSHES.get(), FLUSH_GROUPS.get() as f64 / f, FLUSH_EVENTS.get() as f64 / f,
        SLED_FLUSH_NS.get() as f64 / f / 1e3, SLED_FLUSH_BYTES.get() as f64 / f,
        SYNC_NS.get() as f64 / f / 1e3, ACK_NS.get() as f64 / f / 1e3, FLUSHER_IDLE_NS.get() as f64 / 1e6,
        GROUPS.get(), GROUP_REQS.get() as f64 / g, DECIDE_NS.get() as f64 / g / 1e3,
        WRITE_NS.get() as f64 / g / 1e3, WRITER_IDLE_NS.get() as f64 / 1e6, INDEX_WRITES.get(),
    );
}
