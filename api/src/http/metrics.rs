//! Service metrics and their Prometheus text exposition (format 0.0.4), hand-rolled:
//! a few counters, one gauge and one histogram do not need a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the append latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Outcomes an append is counted under.
#[derive(Debug, Clone, Copy)]
pub enum AppendResult {
    Ok = 0,
    Conflict = 1,
    Rejected = 2,
    Invalid = 3,
    Error = 4,
}

const RESULT_LABELS: [&str; 5] = ["ok", "conflict", "rejected", "invalid", "error"];

#[derive(Default)]
pub struct Metrics {
    appends: [AtomicU64; 5],
    events_appended: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    subscribers: AtomicI64,
    events_read: AtomicU64,
    events_streamed: AtomicU64,
}

impl Metrics {
    pub fn record_append(&self, result: AppendResult, events: usize, took: Duration) {
        self.appends[result as usize].fetch_add(1, Relaxed);
        if let AppendResult::Ok = result {
            self.events_appended.fetch_add(events as u64, Relaxed);
        }
        let secs = took.as_secs_f64();
        // Buckets are stored non-cumulatively and summed on exposition.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn events_read(&self, n: usize) {
        self.events_read.fetch_add(n as u64, Relaxed);
    }

    pub fn events_streamed(&self, n: u64) {
        self.events_streamed.fetch_add(n, Relaxed);
    }

    /// Counts a subscriber until the returned guard is dropped.
    pub fn subscriber(self: &std::sync::Arc<Self>) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Relaxed);
        SubscriberGuard(self.clone())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP dealtrail_appends_total Append requests by result."
        )?;
        writeln!(out, "# TYPE dealtrail_appends_total counter")?;
        for (i, label) in RESULT_LABELS.iter().enumerate() {
            writeln!(
                out,
                "dealtrail_appends_total{{result=\"{label}\"}} {}",
                self.appends[i].load(Relaxed)
            )?;
        }
        counter(
            out,
            "dealtrail_events_appended_total",
            "Events written by appends.",
            self.events_appended.load(Relaxed),
        )?;
        writeln!(
            out,
            "# HELP dealtrail_append_duration_seconds Append latency, as seen by the API."
        )?;
        writeln!(out, "# TYPE dealtrail_append_duration_seconds histogram")?;
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            writeln!(
                out,
                "dealtrail_append_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            )?;
        }
        let count = self.latency_count.load(Relaxed);
        writeln!(
            out,
            "dealtrail_append_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        )?;
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        writeln!(out, "dealtrail_append_duration_seconds_sum {sum}")?;
        writeln!(out, "dealtrail_append_duration_seconds_count {count}")?;
        writeln!(
            out,
            "# HELP dealtrail_subscribers Open event subscriptions (SSE)."
        )?;
        writeln!(out, "# TYPE dealtrail_subscribers gauge")?;
        writeln!(
            out,
            "dealtrail_subscribers {}",
            self.subscribers.load(Relaxed)
        )?;
        counter(
            out,
            "dealtrail_events_read_total",
            "Events returned by stream and log reads.",
            self.events_read.load(Relaxed),
        )?;
        counter(
            out,
            "dealtrail_events_streamed_total",
            "Events sent to subscribers.",
            self.events_streamed.load(Relaxed),
        )
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} counter")?;
    writeln!(out, "{name} {value}")
}

/// Keeps the subscriber gauge up while alive.
pub struct SubscriberGuard(std::sync::Arc<Metrics>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = std::sync::Arc::new(Metrics::default());
        m.record_append(AppendResult::Ok, 3, Duration::from_micros(800));
        m.record_append(AppendResult::Conflict, 1, Duration::from_millis(30));
        let text = m.render();
        assert!(text.contains("dealtrail_appends_total{result=\"ok\"} 1"));
        assert!(text.contains("dealtrail_events_appended_total 3"));
        assert!(text.contains("dealtrail_append_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("dealtrail_append_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("dealtrail_append_duration_seconds_bucket{le=\"+Inf\"} 2"));
        let g = m.subscriber();
        assert!(m.render().contains("dealtrail_subscribers 1"));
        drop(g);
        assert!(m.render().contains("dealtrail_subscribers 0"));
    }
}
