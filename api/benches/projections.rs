//! Read-model benchmark (issue: projections). Prints figures; asserts nothing.
//!
//!     cargo bench -p api --bench projections            # 10M events / 1M deals
//!     BENCH_DEALS=100000 cargo bench -p api --bench projections
//!     BENCH_STORE=1 …   # also write the log to sled and time the service's start on it
//!                       # (two models in memory then: ignore the peak memory line)
//!
//! A synthetic log (10 events a deal: opened, stage changes, a quote, activities, won or
//! lost; customers; reps; deals open over two years, each closed within weeks except half
//! of those opened in the last month, so about 2% are open at the end) is generated on the fly and applied to a fresh `ReadModel`, so the
//! measured memory is the model's own. Then: rebuild rate, query latency p50/p99 for funnel,
//! rep trends, pipeline, customer service, the pool and a rep's follow-up list, a 1,000-event deal
//! replay, `as_of` reports a year back, pages of the deal list (`GET /v1/deals`) with various
//! filters, and peak memory (VmHWM). Customers also answer NPS, complain and churn; won deals
//! have two installments; leads are qualified to the reps.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use domain::RecordedEvent;
use projections::ReadModel;
use serde_json::{json, Value};

const REPS: usize = 40;
const INDUSTRIES: [&str; 3] = ["retail", "finance", "education"];
const STAGES: [&str; 5] = [
    "qualified",
    "presentation",
    "quote",
    "negotiation",
    "contract",
];

struct Log {
    position: u64,
    versions: std::collections::HashMap<String, u64>,
}

impl Log {
    fn event(
        &mut self,
        stream: &str,
        ty: &str,
        at: DateTime<Utc>,
        actor: &str,
        data: Value,
    ) -> RecordedEvent {
        self.position += 1;
        let v = self.versions.entry(stream.to_string()).or_insert(0);
        let version = *v;
        *v += 1;
        RecordedEvent {
            id: uuid::Uuid::from_u128(self.position as u128),
            stream: stream.to_string(),
            event_type: ty.to_string(),
            version,
            position: self.position,
            occurred_at: at,
            recorded_at: at,
            actor: actor.to_string(),
            data: data.into(),
            metadata: Default::default(),
            schema_version: 1,
        }
    }
}

/// A tiny deterministic generator (xorshift); the figures do not depend on its quality.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn time_query(name: &str, runs: usize, mut f: impl FnMut()) {
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        if !name.contains(&only) {
            return;
        }
    }
    f(); // warm-up, not timed
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "  {name:<34} p50 {:>9.2} ms   p99 {:>9.2} ms   ({runs} runs)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}

/// A recorded event as the proposal that records it again (same id, times and actor).
fn proposed(e: RecordedEvent) -> domain::ProposedEvent {
    domain::ProposedEvent {
        id: Some(e.id),
        event_type: e.event_type,
        data: e.data,
        metadata: Some(e.metadata),
        occurred_at: Some(e.occurred_at),
        actor: Some(e.actor),
        recorded_at: None,
    }
}

/// Reading a 1,000-event stream back from a sled store: what a replay adds to the fold. As in
/// a real log, each event was appended on its own, between events of other deals, so the
/// deal's events are scattered over as many group commits.
fn time_read_stream(events: &[RecordedEvent], runs: usize) {
    use eventlog::{EnvelopeOnly, EventStore, ExpectedVersion, SledStore};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = SledStore::temporary(std::sync::Arc::new(EnvelopeOnly)).expect("a sled store");
    for (i, e) in events.iter().enumerate() {
        let other = format!("deal-OTHER{}", i % 7);
        let mut copy = proposed(e.clone());
        copy.id = None;
        rt.block_on(async {
            store
                .append("deal-LONG", ExpectedVersion::Any, vec![proposed(e.clone())])
                .await?;
            store.append(&other, ExpectedVersion::Any, vec![copy]).await
        })
        .expect("append the long deal and another");
    }
    time_query("  + read its 1,000 events from sled", runs, || {
        let _ = rt.block_on(store.read_stream("deal-LONG", 0, usize::MAX));
    });
}

/// Writes the generated log to a sled store (no rules: the envelope only), in order.
struct StoreSink {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    store: eventlog::SledStore,
    pending: Vec<RecordedEvent>,
}

impl StoreSink {
    fn new() -> StoreSink {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = eventlog::SledStore::open(
            &dir.path().join("log"),
            std::sync::Arc::new(eventlog::EnvelopeOnly),
        )
        .expect("a sled store");
        StoreSink {
            rt,
            dir,
            store,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, ev: RecordedEvent) {
        self.pending.push(ev);
        if self.pending.len() >= 1_000 {
            self.flush();
        }
    }

    /// One atomic append of the pending events, consecutive ones of a stream as one batch.
    fn flush(&mut self) {
        use eventlog::{EventStore, ExpectedVersion, StreamBatch};
        let mut batches: Vec<StreamBatch> = Vec::new();
        for e in self.pending.drain(..) {
            let stream = e.stream.clone();
            let p = proposed(e);
            match batches.last_mut() {
                Some(b) if b.stream == stream => b.events.push(p),
                _ => batches.push(StreamBatch {
                    stream,
                    expected: ExpectedVersion::Any,
                    events: vec![p],
                }),
            }
        }
        if !batches.is_empty() {
            self.rt
                .block_on(self.store.append_multi(batches))
                .expect("append to the bench store");
        }
    }

    /// Times the service's start on the store: read the log, apply, build the indexes.
    fn time_start(mut self, events: u64) {
        self.flush();
        let data = self.dir.path().join("data");
        let t = Instant::now();
        let projector = self
            .rt
            .block_on(api::projector::Projector::open(&data, &self.store))
            .expect("open the projector");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  rebuild from the sled log (service start) {:>10.0} events/s   ({secs:.1} s for {} events)",
            events as f64 / secs,
            projector.position()
        );
    }
}

fn main() {
    let deals: u64 = std::env::var("BENCH_DEALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let start = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let span_secs = 2 * 365 * 86_400u64;
    let mut log = Log {
        position: 0,
        versions: Default::default(),
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // As `dealtrail rebuild` and the service's first start: indexes built at the end.
    let mut model = ReadModel::deferred();
    let mut apply_time = Duration::ZERO;
    // BENCH_STORE=1: the same log is also written to a sled store, and at the end the
    // service's start (read the log, apply, build the indexes) is timed on it.
    let mut sink = std::env::var("BENCH_STORE").is_ok().then(StoreSink::new);
    let mut apply = |model: &mut ReadModel, ev: RecordedEvent| {
        let t = Instant::now();
        model.apply(&ev);
        apply_time += t.elapsed();
        if let Some(s) = sink.as_mut() {
            s.push(ev);
        }
    };

    let generated = Instant::now();
    for r in 0..REPS {
        let ev = log.event("org-main", "RepJoined", start, "admin", json!({"rep": format!("rep{r}"), "name": format!("Rep {r}"), "team": if r % 2 == 0 { "east" } else { "west" }}));
        apply(&mut model, ev);
    }
    let customers = deals / 5;
    for c in 0..customers {
        let at = start + chrono::Duration::seconds((c * span_secs / customers / 4) as i64);
        let ev = log.event(&format!("customer-C{c}"), "CustomerRegistered", at, "admin", json!({"name": format!("Customer {c}"), "industry": INDUSTRIES[(c % 3) as usize], "owner": format!("rep{}", c % REPS as u64)}));
        apply(&mut model, ev);
    }
    log.versions.clear(); // org and customer streams get nothing more
                          // Deals open in time order over two years; each deal's ~10 events follow within weeks.
    for d in 0..deals {
        let rep = format!("rep{}", rng.below(REPS as u64));
        let stream = format!("deal-D{d}");
        let mut t = start + chrono::Duration::seconds((d * span_secs / deals) as i64);
        let amount = (rng.below(200) + 1) * 1000;
        let ev = log.event(&stream, "DealOpened", t, &rep, json!({"customer_id": format!("C{}", rng.below(customers)), "owner": rep, "title": "Deal", "amount": amount, "stage": "qualified"}));
        apply(&mut model, ev);
        let last_stage = 1 + rng.below(4) as usize;
        for s in 1..=last_stage {
            t += chrono::Duration::hours(24 + rng.below(240) as i64);
            let ev = log.event(
                &stream,
                "DealStageChanged",
                t,
                &rep,
                json!({"from": STAGES[s - 1], "to": STAGES[s]}),
            );
            apply(&mut model, ev);
            if s == 2 {
                let ev = log.event(
                    &stream,
                    "QuoteIssued",
                    t,
                    &rep,
                    json!({"quote_id": "Q1", "amount": amount}),
                );
                apply(&mut model, ev);
            }
        }
        for _ in 0..(8 - last_stage.min(7)) {
            t += chrono::Duration::hours(1 + rng.below(48) as i64);
            let ev = log.event(
                &stream,
                "ActivityLogged",
                t,
                &rep,
                json!({"kind": "call", "rep": rep}),
            );
            apply(&mut model, ev);
        }
        t += chrono::Duration::hours(24);
        // Like a real pipeline, the open deals are the recent ones: of the deals opened in
        // the last 1/25 of the span (about a month), every other one is still open.
        let still_open = d >= deals - deals / 25 && d % 2 == 0;
        if !still_open {
            let won = rng.below(3) == 0;
            let ev = if won {
                log.event(&stream, "DealWon", t, &rep, json!({"amount": amount}))
            } else {
                log.event(
                    &stream,
                    "DealLost",
                    t,
                    &rep,
                    json!({"reason": "price", "competitor": "Acme"}),
                )
            };
            apply(&mut model, ev);
            if won {
                // Two installments; the second is paid in two deals out of three.
                for (i, days) in [(1, 30), (2, 60)] {
                    let due = (t + chrono::Duration::days(days)).date_naive().to_string();
                    let ev = log.event(&stream, "PaymentScheduled", t, &rep, json!({"installment_id": format!("I{i}"), "amount": amount / 2, "due": due}));
                    apply(&mut model, ev);
                }
                let paid = if rng.below(3) == 0 { 1 } else { 2 };
                for i in 1..=paid {
                    let at = t + chrono::Duration::days(30 * i);
                    let ev = log.event(
                        &stream,
                        "PaymentReceived",
                        at,
                        "finance",
                        json!({"installment_id": format!("I{i}"), "amount": amount / 2}),
                    );
                    apply(&mut model, ev);
                }
            }
        }
        log.versions.remove(&stream); // done with this deal: the generator keeps nothing
    }
    // Keeping customers (issue 18): every customer answers NPS twice, one in five complains
    // (most resolved within days), one in forty churns; leads qualified to the reps, some
    // converted or disqualified. Logged after the deals, at times across the two years.
    for c in 0..customers {
        let stream = format!("customer-C{c}");
        log.versions.insert(stream.clone(), 1);
        let reg = start + chrono::Duration::seconds((c * span_secs / customers / 4) as i64);
        let mut at = reg;
        for _ in 0..2 {
            at += chrono::Duration::seconds(rng.below(span_secs / 3) as i64);
            let ev = log.event(
                &stream,
                "NpsRecorded",
                at,
                "survey",
                json!({"score": rng.below(11)}),
            );
            apply(&mut model, ev);
        }
        if c % 5 == 0 {
            let ev = log.event(
                &stream,
                "ComplaintFiled",
                at,
                "service",
                json!({"complaint_id": "X1"}),
            );
            apply(&mut model, ev);
            if c % 25 != 0 {
                let done = at + chrono::Duration::hours(1 + rng.below(240) as i64);
                let ev = log.event(
                    &stream,
                    "ComplaintResolved",
                    done,
                    "service",
                    json!({"complaint_id": "X1"}),
                );
                apply(&mut model, ev);
            }
        }
        if c % 40 == 0 {
            let ev = log.event(
                &stream,
                "CustomerChurned",
                at + chrono::Duration::days(3),
                "service",
                json!({}),
            );
            apply(&mut model, ev);
        }
        log.versions.remove(&stream);
    }
    for l in 0..deals / 20 {
        let stream = format!("lead-L{l}");
        let at = start + chrono::Duration::seconds((l * 20 * span_secs / deals) as i64);
        let rep = format!("rep{}", l % REPS as u64);
        let ev = log.event(
            &stream,
            "LeadCaptured",
            at,
            "web",
            json!({"channel": "web", "name": format!("Lead {l}")}),
        );
        apply(&mut model, ev);
        let ev = log.event(
            &stream,
            "LeadQualified",
            at + chrono::Duration::hours(2),
            &rep,
            json!({"rep": rep, "fit_score": rng.below(101), "intent_score": rng.below(101)}),
        );
        apply(&mut model, ev);
        if l % 3 != 0 {
            let ev = log.event(
                &stream,
                "LeadDisqualified",
                at + chrono::Duration::days(2),
                &rep,
                json!({"reason": "no_budget"}),
            );
            apply(&mut model, ev);
        }
        log.versions.remove(&stream);
    }
    // One long deal: 1,000 events, for the replay latency.
    let long_open = start + chrono::Duration::days(30);
    // The replay reads the deal's events from the log: they are kept here as the log would
    // return them (reading 1,000 events of a stream from sled is timed separately below).
    let mut long = Vec::new();
    let ev = log.event("deal-LONG", "DealOpened", long_open, "rep0", json!({"customer_id": "C0", "owner": "rep0", "title": "Long", "amount": 500000, "stage": "qualified"}));
    long.push(ev.clone());
    apply(&mut model, ev);
    for i in 1..999 {
        let ev = log.event(
            "deal-LONG",
            "ActivityLogged",
            long_open + chrono::Duration::hours(i),
            "rep0",
            json!({"kind": "email", "rep": "rep0"}),
        );
        long.push(ev.clone());
        apply(&mut model, ev);
    }
    let ev = log.event(
        "deal-LONG",
        "DealLost",
        long_open + chrono::Duration::hours(1000),
        "rep0",
        json!({"reason": "price"}),
    );
    long.push(ev.clone());
    apply(&mut model, ev);
    let before_indexes = peak_rss_mib();
    let t = Instant::now();
    model.finish();
    apply_time += t.elapsed();
    let index_build = t.elapsed();
    let total_events = log.position;
    if let Some(s) = sink.take() {
        s.time_start(total_events);
    }
    drop(log);
    let wall = generated.elapsed();

    println!(
        "projections benchmark: {total_events} events, {} deals (machine: {} cores, shared)",
        deals + 1,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  rebuild (apply only)               {:>10.0} events/s   ({:.1} s; generation included: {:.1} s)",
        total_events as f64 / apply_time.as_secs_f64(),
        apply_time.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  of which building the indexes        {:>10.1} s   (peak memory before it: {before_indexes:.0} MiB)",
        index_build.as_secs_f64()
    );
    // The service's clock: a day after the last event.
    let now = model.latest_occurred_at.unwrap_or(start) + chrono::Duration::days(1);
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    time_query("funnel", runs, || {
        let _ = api::reports::run(&model, "funnel", "", now);
    });
    time_query("funnel group_by=rep", runs, || {
        let _ = api::reports::run(&model, "funnel", "group_by=rep", now);
    });
    time_query("reps (12 months)", runs, || {
        let _ = api::reports::run(&model, "reps", "months=12", now);
    });
    time_query("pipeline", runs, || {
        let _ = api::reports::run(&model, "pipeline", "", now);
    });
    let pq = projections::pipeline::PipelineParams::default()
        .validate()
        .expect("default parameters");
    let mut rows = 0;
    time_query("  pipeline without the JSON", runs, || {
        let p = projections::pipeline::pipeline(&model, &pq, now).unwrap();
        rows = p.stale.len() + p.stuck.len();
    });
    println!("  (pipeline body: {rows} stale and stuck rows)");
    let year_back = domain::envelope::format_time(&(now - chrono::Duration::days(365)));
    time_query("pipeline as_of one year back", 5, || {
        let _ = api::reports::run(&model, "pipeline", &format!("as_of={year_back}"), now);
    });
    time_query("funnel as_of one year back (a scan)", 5, || {
        let _ = api::reports::run(&model, "funnel", &format!("as_of={year_back}"), now);
    });
    time_query("service (12 months)", runs, || {
        let _ = api::reports::run(&model, "service", "months=12", now);
    });
    time_query("service group_by=rep", runs, || {
        let _ = api::reports::run(&model, "service", "months=12&group_by=rep", now);
    });
    // The pool folds every customer (the domain's customer fold).
    time_query("pool", runs, || {
        let _ = api::reports::run(&model, "pool", "", now);
    });
    time_query("pool as_of one year back", 5, || {
        let _ = api::reports::run(&model, "pool", &format!("as_of={year_back}"), now);
    });
    let options = api::reports::ReportOptions {
        pool_release_after_days: Some(30),
    };
    let mut items = 0;
    time_query("follow-up (one rep, pool policy 30 d)", runs, || {
        let scope = projections::params::Scope::Organisation;
        if let Ok(b) = api::reports::run_with(&model, "follow-up", "rep=rep7", now, scope, &options)
        {
            items = b.get().matches("_id\"").count();
        }
    });
    println!("  (follow-up body: {items} items)");
    time_query("follow-up as_of a year back (a scan)", 5, || {
        let scope = projections::params::Scope::Organisation;
        let q = format!("rep=rep7&as_of={year_back}");
        let _ = api::reports::run_with(&model, "follow-up", &q, now, scope, &options);
    });
    time_query("deal replay (1,000 events)", runs, || {
        let _ = api::reports::replay(&model, "LONG", &long, now);
    });
    time_read_stream(&long, runs);
    // The deal list (SPEC §5.1): pages of 100 from the index, as `GET /v1/deals` serves them.
    let month = (now - chrono::Duration::days(60))
        .format("%Y-%m")
        .to_string();
    let deal_lists = [
        ("deals: first page, no filter", String::new()),
        (
            "deals: a rep's lost deals in a month",
            format!("rep=rep7&status=lost&from={month}-01&to={month}-28"),
        ),
        (
            "deals: a team's big wins",
            "team=east&status=won&min_amount=150000".to_string(),
        ),
        ("deals: a customer's", "customer_id=C4242".to_string()),
        (
            "deals: lost to Acme at a stage",
            "status=lost&competitor=Acme&reason=price&stage=negotiation".to_string(),
        ),
        (
            "deals: open, 1,000 a page",
            "status=open&limit=1000".to_string(),
        ),
        (
            "deals: q= (title/id/customer scan)",
            "q=customer 4242".to_string(),
        ),
        (
            "deals: q= matching nothing (all scanned)",
            "q=zzz".to_string(),
        ),
    ];
    // p99 needs a hundred runs at least.
    let list_runs = runs.max(100);
    for (name, q) in &deal_lists {
        // `q` alone scans every deal: fewer runs.
        let n = if q.starts_with("q=") { runs } else { list_runs };
        time_query(name, n, || {
            let _ = api::reports::deal_list(&model, q, projections::params::Scope::Organisation);
        });
    }
    // Deep paging: the 50th page of a filter, by the cursors of the 49 before it.
    let mut cursor = String::new();
    let lost = "status=lost&limit=100";
    for _ in 0..49 {
        let body = api::reports::deal_list(
            &model,
            &format!("{lost}&cursor={cursor}"),
            projections::params::Scope::Organisation,
        )
        .expect("a page");
        let v: Value = serde_json::from_str(body.get()).expect("JSON");
        cursor = v["next_cursor"].as_str().unwrap_or_default().to_string();
    }
    time_query("deals: the 50th page of lost deals", list_runs, || {
        let _ = api::reports::deal_list(
            &model,
            &format!("{lost}&cursor={cursor}"),
            projections::params::Scope::Organisation,
        );
    });
    println!(
        "  peak memory (VmHWM)                {:>10.0} MiB",
        peak_rss_mib()
    );
}
