//! `dealtrail demo`: a realistic sample organisation, generated deterministically.
//!
//! Two teams of four reps over the 12 months before `end`; about 2,200 deals with varied
//! paths (skipped stages, regressions, quote revisions, competitors, reopened deals,
//! late-logged activities, payments); leads from five channels with monthly spend; a public
//! pool with claims and releases; targets; complaints, NPS and churn every month, and for
//! each rep an item of every follow-up list on the last day (`demo/service.rs`). It tells the stories a
//! manager recognises:
//! - `wukong` has by far the most customers and a win rate that falls month after month;
//! - `nezha` improves steadily;
//! - `bajie` loses big deals (≥ 100,000) to Kingdee on price;
//! - `taibai` leaves in month 8: his open deals are reassigned and his customers released.
//!
//! The generator is pure (no clock, no I/O): the same `end` and seed give the same events
//! with the same ids, so running `demo` twice on the same day adds nothing the second time.

use chrono::{DateTime, Duration, Utc};
use domain::ProposedEvent;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

mod service;
mod text;
pub use service::DEMO_POOL_RELEASE_AFTER_DAYS;

/// The demo's fixed seed.
pub const SEED: u64 = 0xdea1_7a11;

const STAGES: [(&str, &str, f64); 5] = [
    ("qualified", "Qualified", 0.10),
    ("presentation", "Presentation", 0.25),
    ("quote", "Quote", 0.50),
    ("negotiation", "Negotiation", 0.70),
    ("contract", "Contract", 0.90),
];
const CHANNELS: [(&str, i64); 5] = [
    ("web", 18_000),
    ("referral", 4_000),
    ("trade_show", 30_000),
    ("wechat", 12_000),
    ("cold_call", 8_000),
];
const INDUSTRIES: [&str; 6] = [
    "manufacturing",
    "retail",
    "finance",
    "education",
    "healthcare",
    "logistics",
];
const REGIONS: [&str; 4] = ["east", "north", "south", "west"];
const COMPETITORS: [&str; 4] = ["Kingdee", "Yonyou", "Salesforce", "Acme"];
const LOST_REASONS: [&str; 5] = ["price", "timing", "no_budget", "no_decision", "feature_gap"];

struct Rep {
    id: &'static str,
    name: &'static str,
    team: &'static str,
    manager: &'static str,
    initial_customers: usize,
    deals_per_month: fn(usize) -> usize,
    /// Win probability by month index 0..12.
    win: fn(usize) -> f64,
}

const REPS: [Rep; 8] = [
    Rep {
        id: "wukong",
        name: "Sun Wukong",
        team: "east",
        manager: "tangseng",
        initial_customers: 70,
        deals_per_month: |_| 30,
        win: |m| (0.66 - 0.06 * m as f64).max(0.04),
    },
    Rep {
        id: "bajie",
        name: "Zhu Bajie",
        team: "east",
        manager: "tangseng",
        initial_customers: 25,
        deals_per_month: |_| 22,
        win: |_| 0.33,
    },
    Rep {
        id: "wujing",
        name: "Sha Wujing",
        team: "east",
        manager: "tangseng",
        initial_customers: 22,
        deals_per_month: |_| 20,
        win: |m| 0.36 + if m % 2 == 0 { 0.05 } else { -0.05 },
    },
    Rep {
        id: "longma",
        name: "Bai Longma",
        team: "east",
        manager: "tangseng",
        initial_customers: 20,
        deals_per_month: |_| 18,
        win: |_| 0.3,
    },
    Rep {
        id: "nezha",
        name: "Nezha",
        team: "west",
        manager: "guanyin",
        initial_customers: 22,
        deals_per_month: |m| 12 + 3 * m,
        win: |m| 0.12 + 0.05 * m as f64,
    },
    Rep {
        id: "erlang",
        name: "Erlang Shen",
        team: "west",
        manager: "guanyin",
        initial_customers: 25,
        deals_per_month: |_| 22,
        win: |_| 0.38,
    },
    Rep {
        id: "change",
        name: "Chang'e",
        team: "west",
        manager: "guanyin",
        initial_customers: 20,
        deals_per_month: |_| 18,
        win: |_| 0.34,
    },
    Rep {
        id: "taibai",
        name: "Taibai Jinxing",
        team: "west",
        manager: "guanyin",
        initial_customers: 20,
        deals_per_month: |_| 18,
        win: |_| 0.28,
    },
];
/// `taibai` leaves at the start of this month index.
const TAIBAI_LEAVES: usize = 8;

/// One event to append, in append order.
#[derive(Debug, Clone)]
pub struct DemoEvent {
    pub stream: String,
    pub event: ProposedEvent,
}

struct Gen {
    rng: StdRng,
    end: DateTime<Utc>,
    out: Vec<(DateTime<Utc>, u64, DemoEvent)>,
    seq: u64,
    next_customer: usize,
    next_deal: usize,
    next_lead: usize,
    /// When `taibai` leaves (`RepLeft`): activities recorded from then on are not his.
    taibai_left: DateTime<Utc>,
    /// Picks the demo's words (summaries, outcomes), apart from `rng` so that the figures do
    /// not depend on them.
    words: StdRng,
}

/// Generates the demo organisation for the 12 months before `end`.
pub fn generate(end: DateTime<Utc>, seed: u64) -> Vec<DemoEvent> {
    let start = end - Duration::days(365);
    let mut g = Gen {
        taibai_left: taibai_leaves_at(start),
        rng: StdRng::seed_from_u64(seed),
        words: StdRng::seed_from_u64(seed ^ 0x7e47),
        end,
        out: Vec::new(),
        seq: 0,
        next_customer: 1,
        next_deal: 1001,
        next_lead: 1,
    };
    g.org(start);
    let customers = g.initial_customers(start);
    g.channels_and_leads(start);
    g.pool(start);
    g.deals(start, &customers);
    g.taibai_leaves(start, &customers);
    g.customer_care(start, &customers);
    g.service_year(start, &customers);
    g.reassign_taibai_deals();
    g.out.sort_by_key(|(recorded, seq, _)| (*recorded, *seq));
    g.out.into_iter().map(|(_, _, e)| e).collect()
}

fn taibai_leaves_at(start: DateTime<Utc>) -> DateTime<Utc> {
    month_start(start, TAIBAI_LEAVES) + Duration::hours(1)
}

fn month_start(start: DateTime<Utc>, m: usize) -> DateTime<Utc> {
    start + Duration::days(365 * m as i64 / 12)
}

impl Gen {
    /// Appends one event at business time `at`, recorded a few seconds later (or a day or
    /// two later when `late`). Events that would lie after `end` are not generated.
    fn emit(
        &mut self,
        stream: String,
        ty: &str,
        at: DateTime<Utc>,
        actor: &str,
        data: Value,
        late: bool,
    ) -> bool {
        let delay = if late {
            Duration::hours(self.rng.random_range(20..60))
        } else {
            Duration::seconds(self.rng.random_range(1..30))
        };
        let recorded = at + delay;
        if recorded > self.end {
            return false;
        }
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes);
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        if ty == "ActivityLogged"
            && !stream.starts_with("deal-")
            && self.has_left(&data["rep"], recorded)
        {
            // A rep who left logs nothing more (`rep.active`); on his deals, the rep who takes
            // them over logs it (`reassign_taibai_deals`).
            return false;
        }
        let mut data = data;
        if ty == "ActivityLogged" && data.get("summary").is_none() {
            // What the rep wrote down, in the demo's own words.
            let kind = data["kind"].as_str().unwrap_or("note").to_string();
            let (summary, outcome) = text::activity(&mut self.words, &kind);
            data["summary"] = json!(summary);
            data["outcome"] = json!(outcome);
        }
        self.seq += 1;
        let event = ProposedEvent {
            id: Some(id),
            event_type: ty.to_string(),
            occurred_at: Some(at),
            actor: Some(actor.to_string()),
            data: data.into(),
            metadata: None,
            recorded_at: Some(recorded),
        };
        self.out
            .push((recorded, self.seq, DemoEvent { stream, event }));
        true
    }

    /// True when `rep` is taibai and he has left by `at`.
    fn has_left(&self, rep: &Value, at: DateTime<Utc>) -> bool {
        rep == "taibai" && at >= self.taibai_left
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn days(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::seconds((self.rng.random_range(lo..hi) * 86_400.0) as i64)
    }

    fn org(&mut self, start: DateTime<Utc>) {
        let t = start - Duration::days(40);
        let stages: Vec<Value> = STAGES
            .iter()
            .map(|(id, name, p)| json!({"id": id, "name": name, "probability": p}))
            .collect();
        self.emit(
            "org-main".into(),
            "PipelineDefined",
            t,
            "admin",
            json!({ "stages": stages }),
            false,
        );
        for (i, r) in REPS.iter().enumerate() {
            let at = t + Duration::hours(1 + i as i64);
            let data = json!({"rep": r.id, "name": r.name, "team": r.team, "manager": r.manager});
            self.emit("org-main".into(), "RepJoined", at, "admin", data, false);
        }
        // Targets for every calendar month the year touches, set on its first day.
        let mut month = domain::Month::of(&start);
        let last = domain::Month::of(&self.end);
        while month <= last {
            let at = month.start().max(start - Duration::days(1)) + Duration::hours(2);
            let at = at.min(self.end - Duration::hours(1));
            let label = month.to_string();
            let taibai_gone = at >= month_start(start, TAIBAI_LEAVES);
            for r in REPS.iter().filter(|r| r.id != "taibai" || !taibai_gone) {
                let data = json!({"rep": r.id, "month": label, "amount": 600000});
                self.emit("org-main".into(), "TargetSet", at, r.manager, data, false);
            }
            for team in ["east", "west"] {
                let data = json!({"team": team, "month": label, "amount": 2400000});
                self.emit("org-main".into(), "TargetSet", at, "admin", data, false);
            }
            let data = json!({"month": label, "amount": 4800000});
            self.emit("org-main".into(), "TargetSet", at, "admin", data, false);
            month = month.next();
        }
    }

    fn new_customer(
        &mut self,
        at: DateTime<Utc>,
        owner: Option<&str>,
        source: &str,
        actor: &str,
    ) -> String {
        let id = format!("C-{}", self.next_customer);
        self.next_customer += 1;
        let industry = self.pick(&INDUSTRIES);
        let region = self.pick(&REGIONS);
        let size = self.pick(&["small", "medium", "large"]);
        let mut data = json!({"name": format!("{} {} Co.", title_case(region), id), "industry": industry, "size": size, "region": region, "source": source});
        if let Some(o) = owner {
            data["owner"] = json!(o);
        }
        self.emit(
            format!("customer-{id}"),
            "CustomerRegistered",
            at,
            actor,
            data,
            false,
        );
        id
    }

    /// Existing customers per rep, registered in the month before the year starts.
    fn initial_customers(&mut self, start: DateTime<Utc>) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for r in REPS.iter() {
            let mut mine = Vec::new();
            for _ in 0..r.initial_customers {
                let at = start - Duration::days(35) + self.days(0.0, 30.0);
                let source = self.pick(&["direct", "referral", "trade_show"]);
                mine.push(self.new_customer(at, Some(r.id), source, r.id));
            }
            all.push(mine);
        }
        all
    }

    fn channels_and_leads(&mut self, start: DateTime<Utc>) {
        for m in 0..12 {
            let ms = month_start(start, m);
            let month = month_label(ms + Duration::days(2));
            for (ch, spend) in CHANNELS {
                let jitter = self.rng.random_range(80..120) as i64;
                self.emit(
                    format!("channel-{ch}"),
                    "SpendRecorded",
                    ms + Duration::hours(3),
                    "marketing",
                    json!({"month": month, "amount": spend * jitter / 100}),
                    false,
                );
            }
            for _ in 0..45 {
                let ch = CHANNELS[self.rng.random_range(0..CHANNELS.len())].0;
                let lead = format!("L-{}", self.next_lead);
                self.next_lead += 1;
                let at = ms + self.days(0.0, 28.0);
                let company = format!("Prospect {lead}");
                if !self.emit(format!("lead-{lead}"), "LeadCaptured", at, "marketing", json!({"channel": ch, "campaign": format!("{ch}-{month}"), "name": format!("Contact {lead}"), "company": company}), false) {
                    continue;
                }
                let rep = &REPS[self.rng.random_range(0..REPS.len())];
                if rep.id == "taibai" && m >= TAIBAI_LEAVES {
                    continue;
                }
                let t1 = at + self.days(0.5, 4.0);
                if self.rng.random_bool(0.35) {
                    self.emit(
                        format!("lead-{lead}"),
                        "LeadDisqualified",
                        t1,
                        rep.id,
                        json!({"reason": "no_budget"}),
                        false,
                    );
                    continue;
                }
                let fit = self.rng.random_range(30..100);
                let intent = self.rng.random_range(20..100);
                self.emit(
                    format!("lead-{lead}"),
                    "LeadQualified",
                    t1,
                    rep.id,
                    json!({"rep": rep.id, "fit_score": fit, "intent_score": intent}),
                    false,
                );
                if self.rng.random_bool(0.55) {
                    let t2 = t1 + self.days(1.0, 6.0);
                    let customer = self.new_customer(t2, Some(rep.id), ch, rep.id);
                    let deal = self.deal_id();
                    let won_p = (rep.win)(m) + 0.1;
                    if self.one_deal(
                        &deal,
                        &customer,
                        rep,
                        t2 + Duration::hours(1),
                        won_p,
                        Some(&lead),
                    ) {
                        self.emit(
                            format!("lead-{lead}"),
                            "LeadConverted",
                            t2 + Duration::hours(2),
                            rep.id,
                            json!({"customer_id": customer, "deal_id": deal}),
                            false,
                        );
                    }
                }
            }
        }
    }

    fn deal_id(&mut self) -> String {
        let id = format!("D-{}", self.next_deal);
        self.next_deal += 1;
        id
    }

    /// Customers in the public pool, claimed over the year; idle customers released to it.
    fn pool(&mut self, start: DateTime<Utc>) {
        for i in 0..90 {
            let at = start + self.days(0.0, 300.0);
            let c = self.new_customer(at, None, "web", "system");
            if i % 3 == 0 {
                continue; // stays in the pool
            }
            let rep = &REPS[self.rng.random_range(0..7)]; // not taibai
            let t1 = at + self.days(2.0, 40.0);
            if !self.emit(
                format!("customer-{c}"),
                "CustomerClaimed",
                t1,
                rep.id,
                json!({"rep": rep.id}),
                false,
            ) {
                continue;
            }
            self.emit(
                format!("customer-{c}"),
                "ActivityLogged",
                t1 + Duration::hours(3),
                rep.id,
                json!({"kind": "call", "rep": rep.id, "direction": "outbound", "duration_s": 240}),
                false,
            );
            if i % 4 == 0 {
                // No follow-up for weeks: released back to the pool by the policy, then claimed again.
                let t2 = t1 + self.days(31.0, 45.0);
                if self.emit(
                    format!("customer-{c}"),
                    "CustomerReleased",
                    t2,
                    "system",
                    json!({"reason": "no_follow_up"}),
                    false,
                ) {
                    let other = &REPS[self.rng.random_range(0..7)];
                    let t3 = t2 + self.days(1.0, 10.0);
                    self.emit(
                        format!("customer-{c}"),
                        "CustomerClaimed",
                        t3,
                        other.id,
                        json!({"rep": other.id}),
                        false,
                    );
                }
            }
        }
    }

    fn deals(&mut self, start: DateTime<Utc>, customers: &[Vec<String>]) {
        for m in 0..12 {
            for (ri, rep) in REPS.iter().enumerate() {
                if rep.id == "taibai" && m >= TAIBAI_LEAVES {
                    continue;
                }
                for _ in 0..(rep.deals_per_month)(m) {
                    let mine = &customers[ri];
                    let customer = mine[self.rng.random_range(0..mine.len())].clone();
                    let at = month_start(start, m) + self.days(0.2, 29.0);
                    let deal = self.deal_id();
                    self.one_deal(&deal, &customer, rep, at, (rep.win)(m), None);
                }
            }
        }
    }

    /// One deal's whole story from `at`; false if it would open after `end`.
    fn one_deal(
        &mut self,
        deal: &str,
        customer: &str,
        rep: &Rep,
        at: DateTime<Utc>,
        win_p: f64,
        lead: Option<&str>,
    ) -> bool {
        let stream = format!("deal-{deal}");
        let big = self.rng.random_bool(0.12);
        let amount: i64 = if big {
            self.rng.random_range(100..500) * 1000
        } else {
            self.rng.random_range(5..95) * 1000
        };
        let first_stage = if self.rng.random_bool(0.8) { 0 } else { 1 };
        let mut data = json!({"customer_id": customer, "owner": rep.id, "title": format!("{} for {customer}", self.pick(&["ERP rollout", "CRM seats", "Data platform", "Support plan", "Hardware refresh"])), "amount": amount, "stage": STAGES[first_stage].0, "products": [self.pick(&["GTX Basic", "GTX Pro", "MG Special", "MG Advanced"])]});
        data["expected_close"] = json!((at + Duration::days(45)).date_naive().to_string());
        if let Some(l) = lead {
            data["source_lead"] = json!(l);
        }
        if !self.emit(stream.clone(), "DealOpened", at, rep.id, data, false) {
            return false;
        }
        let bajie_big = rep.id == "bajie" && big;
        let won = !bajie_big && self.rng.random_bool(win_p.clamp(0.02, 0.95));
        // Where the deal is closed: won deals go through contract; lost ones stop somewhere.
        let close_stage = if won {
            4
        } else if bajie_big {
            self.rng.random_range(2..5)
        } else {
            self.rng.random_range(0..5)
        };
        let mut t = at;
        let mut stage = first_stage;
        let mut quotes = 0;
        let mut quoted = amount;
        let mut activities_until = at;
        let mut alive = true;
        let mut regressed = false;
        // Some deals stall: one step forward, then nothing — stale and stuck in the pipeline.
        let stall = self.rng.random_bool(0.07);
        while stage < close_stage && alive && !(stall && stage != first_stage) {
            t += self.days(1.0, 12.0);
            let mut next = stage + 1;
            if next < close_stage && self.rng.random_bool(0.15) {
                next += 1; // a skipped stage
            }
            if !regressed && stage >= 2 && self.rng.random_bool(0.08) {
                next = stage - 1; // a regression: back to an earlier stage
                regressed = true;
            }
            alive = self.emit(
                stream.clone(),
                "DealStageChanged",
                t,
                rep.id,
                json!({"from": STAGES[stage].0, "to": STAGES[next].0}),
                false,
            );
            if alive {
                stage = next;
            }
            if alive && STAGES[stage].0 == "quote" {
                let revisions = self.rng.random_range(1..4);
                for _ in 0..revisions {
                    t += self.days(0.5, 5.0);
                    quotes += 1;
                    let discount = self.rng.random_range(0..12);
                    quoted = quoted * (100 - discount) / 100;
                    alive = self.emit(stream.clone(), "QuoteIssued", t, rep.id, json!({"quote_id": format!("Q-{deal}-{quotes}"), "amount": quoted, "discount_pct": discount}), false);
                    if !alive {
                        break;
                    }
                }
            }
            if alive && (bajie_big || self.rng.random_bool(0.12)) && stage >= 1 {
                let competitor = if bajie_big {
                    "Kingdee"
                } else {
                    self.pick(&COMPETITORS)
                };
                t += self.days(0.2, 2.0);
                alive = self.emit(
                    stream.clone(),
                    "CompetitorNoted",
                    t,
                    rep.id,
                    json!({"competitor": competitor, "note": "also bidding"}),
                    false,
                );
            }
            if alive && self.rng.random_bool(0.06) {
                t += self.days(0.2, 2.0);
                quoted = quoted * 11 / 10;
                alive = self.emit(
                    stream.clone(),
                    "DealAmountChanged",
                    t,
                    rep.id,
                    json!({"amount": quoted}),
                    false,
                );
            }
        }
        if stall && alive {
            self.activities(&stream, rep.id, at, t);
            return true;
        }
        let cycle_end = t + self.days(1.0, 20.0);
        if alive {
            activities_until = cycle_end;
        }
        self.activities(&stream, rep.id, at, activities_until);
        if !alive {
            return true; // still open at `end`
        }
        if won {
            if self.emit(
                stream.clone(),
                "DealWon",
                cycle_end,
                rep.id,
                json!({"amount": quoted, "reason": "best fit"}),
                false,
            ) {
                self.payments(&stream, rep.id, cycle_end, quoted);
            }
        } else {
            let (reason, competitor) = if bajie_big {
                ("price", Some("Kingdee"))
            } else {
                let r = self.pick(&LOST_REASONS);
                let c = if self.rng.random_bool(0.3) {
                    Some(self.pick(&COMPETITORS))
                } else {
                    None
                };
                (r, c)
            };
            let mut data = json!({"reason": reason, "note": text::lost_note(reason)});
            if let Some(c) = competitor {
                data["competitor"] = json!(c);
            }
            if self.emit(stream.clone(), "DealLost", cycle_end, rep.id, data, false)
                && self.rng.random_bool(0.04)
            {
                // Reopened a few weeks later, then won.
                let t2 = cycle_end + self.days(10.0, 25.0);
                if self.emit(
                    stream.clone(),
                    "DealReopened",
                    t2,
                    rep.id,
                    json!({"stage": "negotiation"}),
                    false,
                ) {
                    let t3 = t2 + self.days(3.0, 15.0);
                    if self.emit(
                        stream.clone(),
                        "DealStageChanged",
                        t3,
                        rep.id,
                        json!({"from": "negotiation", "to": "contract"}),
                        false,
                    ) {
                        let t4 = t3 + self.days(2.0, 10.0);
                        if self.emit(
                            stream.clone(),
                            "DealWon",
                            t4,
                            rep.id,
                            json!({"amount": quoted}),
                            false,
                        ) {
                            self.payments(&stream, rep.id, t4, quoted);
                        }
                    }
                }
            }
        }
        true
    }

    /// Calls, emails, meetings and visits between `from` and `to`; some logged a day or two late.
    fn activities(&mut self, stream: &str, rep: &str, from: DateTime<Utc>, to: DateTime<Utc>) {
        let n = self.rng.random_range(2..14);
        let span = (to - from).num_seconds().max(7200);
        for _ in 0..n {
            let at = from + Duration::seconds(self.rng.random_range(3600..span));
            let kind = self.pick(&[
                "call", "call", "call", "email", "email", "meeting", "visit", "sms", "note",
            ]);
            let mut data = json!({"kind": kind, "rep": rep});
            if kind == "call" {
                data["direction"] = json!(if self.rng.random_bool(0.7) {
                    "outbound"
                } else {
                    "inbound"
                });
                data["duration_s"] = json!(self.rng.random_range(30..1800));
            }
            let late = self.rng.random_bool(0.1);
            self.emit(stream.to_string(), "ActivityLogged", at, rep, data, late);
        }
    }

    fn payments(&mut self, stream: &str, rep: &str, won_at: DateTime<Utc>, amount: i64) {
        let n: i64 = self.rng.random_range(1..4);
        let share = amount / n;
        for i in 0..n {
            let part = if i == n - 1 {
                amount - share * (n - 1)
            } else {
                share
            };
            let due = won_at + Duration::days(30 * (i + 1));
            let inst = format!("I{}", i + 1);
            self.emit(stream.to_string(), "PaymentScheduled", won_at + Duration::hours(2), rep, json!({"installment_id": inst, "amount": part, "due": due.date_naive().to_string()}), false);
            if self.rng.random_bool(0.85) {
                let paid_at = due + self.days(-5.0, 20.0);
                self.emit(
                    stream.to_string(),
                    "PaymentReceived",
                    paid_at.max(won_at + Duration::hours(3)),
                    "finance",
                    json!({"amount": part, "installment_id": inst}),
                    false,
                );
            }
        }
    }

    /// `taibai` leaves: his customers go back to the pool; `erlang` takes over his deals
    /// (open deals are not tracked here, so the reassignment is shown on his customers only).
    fn taibai_leaves(&mut self, start: DateTime<Utc>, customers: &[Vec<String>]) {
        let at = taibai_leaves_at(start);
        self.emit(
            "org-main".into(),
            "RepLeft",
            at,
            "guanyin",
            json!({"rep": "taibai"}),
            false,
        );
        let idx = REPS.iter().position(|r| r.id == "taibai").unwrap_or(0);
        for (i, c) in customers[idx].iter().enumerate() {
            let t = at + Duration::minutes(i as i64 + 1);
            if i % 2 == 0 {
                self.emit(
                    format!("customer-{c}"),
                    "CustomerAssigned",
                    t,
                    "guanyin",
                    json!({"rep": "erlang", "by": "guanyin"}),
                    false,
                );
            } else {
                self.emit(
                    format!("customer-{c}"),
                    "CustomerReleased",
                    t,
                    "guanyin",
                    json!({"reason": "rep_left"}),
                    false,
                );
            }
        }
    }

    /// `taibai`'s deals after he leaves: a deal still open when he leaves (or reopened after)
    /// is reassigned to `erlang` by their manager, and everything recorded on it from then on
    /// is `erlang`'s (actor and activity rep). Rewrites the generated events in place.
    fn reassign_taibai_deals(&mut self) {
        let left = self.taibai_left;
        self.out.sort_by_key(|(recorded, seq, _)| (*recorded, *seq));
        let mut theirs: std::collections::HashMap<String, (bool, bool)> = Default::default();
        let mut reassign: Vec<(String, DateTime<Utc>)> = Vec::new();
        for (recorded, _, e) in &mut self.out {
            let ty = e.event.event_type.as_str();
            if ty == "DealOpened" && e.event.data["owner"] == "taibai" {
                theirs.insert(e.stream.clone(), (true, false)); // (open, reassigned)
                continue;
            }
            let Some((open, moved)) = theirs.get_mut(&e.stream) else {
                continue;
            };
            if *recorded >= left {
                if *open && !*moved {
                    // Open when he left: reassigned the moment he leaves.
                    reassign.push((e.stream.clone(), left));
                    *moved = true;
                }
                if e.event.actor.as_deref() == Some("taibai") {
                    e.event.actor = Some("erlang".into());
                }
                if e.event.data.get("rep").is_some_and(|r| r == "taibai") {
                    e.event.data["rep"] = json!("erlang");
                }
            }
            match ty {
                "DealWon" | "DealLost" => *open = false,
                "DealReopened" => {
                    *open = true;
                    if *recorded >= left && !*moved {
                        // Reopened after he left: reassigned right after the reopening.
                        let at = e.event.occurred_at.unwrap_or(*recorded) + Duration::seconds(1);
                        reassign.push((e.stream.clone(), at.max(*recorded)));
                        *moved = true;
                    }
                }
                _ => {}
            }
        }
        // Open when he left, with nothing recorded since: reassigned all the same.
        for (stream, (open, moved)) in theirs {
            if open && !moved {
                reassign.push((stream, left));
            }
        }
        reassign.sort();
        for (stream, at) in reassign {
            self.emit(
                stream,
                "DealReassigned",
                at,
                "guanyin",
                json!({"from": "taibai", "to": "erlang"}),
                false,
            );
        }
    }

    fn customer_care(&mut self, start: DateTime<Utc>, customers: &[Vec<String>]) {
        for (ri, mine) in customers.iter().enumerate() {
            for (i, c) in mine.iter().enumerate().step_by(5) {
                let rep = REPS[ri].id;
                let at = start + self.days(5.0, 300.0);
                let stream = format!("customer-{c}");
                let score = self.rng.random_range(3..11);
                self.emit(
                    stream.clone(),
                    "NpsRecorded",
                    at,
                    rep,
                    json!({"score": score}),
                    false,
                );
                if i % 3 == 0 {
                    let cid = format!("CP-{c}");
                    self.emit(
                        stream.clone(),
                        "ComplaintFiled",
                        at + Duration::hours(5),
                        rep,
                        json!({"complaint_id": cid, "summary": "late delivery"}),
                        false,
                    );
                    let resolved = at + self.days(1.0, 9.0);
                    self.emit(
                        stream.clone(),
                        "ComplaintResolved",
                        resolved,
                        rep,
                        json!({"complaint_id": cid}),
                        false,
                    );
                }
                if i % 7 == 0 && ri != 7 {
                    self.emit(
                        stream.clone(),
                        "ActivityLogged",
                        at + Duration::hours(1),
                        rep,
                        json!({"kind": "visit", "rep": rep, "summary": "quarterly review"}),
                        false,
                    );
                }
            }
        }
        let wukong = &customers[0];
        for c in wukong.iter().rev().take(6) {
            let at = start + self.days(200.0, 330.0);
            self.emit(
                format!("customer-{c}"),
                "CustomerChurned",
                at,
                "wukong",
                json!({"reason": "no follow-up"}),
                false,
            );
        }
    }
}

fn month_label(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn end() -> DateTime<Utc> {
        domain::envelope::parse_time("2026-11-23T00:00:00Z").unwrap()
    }

    #[test]
    fn deterministic_and_big_enough() {
        let a = generate(end(), SEED);
        let b = generate(end(), SEED);
        assert_eq!(a.len(), b.len());
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.event.id == y.event.id && x.stream == y.stream));
        let deals: HashSet<&str> = a
            .iter()
            .filter(|e| e.event.event_type == "DealOpened")
            .map(|e| e.stream.as_str())
            .collect();
        assert!(deals.len() >= 2000, "{} deals", deals.len());
        let channels: HashSet<&str> = a
            .iter()
            .filter(|e| e.event.event_type == "SpendRecorded")
            .map(|e| e.stream.as_str())
            .collect();
        assert!(channels.len() >= 4);
        for ty in [
            "DealReopened",
            "DealLost",
            "DealWon",
            "QuoteIssued",
            "CompetitorNoted",
            "PaymentReceived",
            "CustomerClaimed",
            "CustomerReleased",
            "LeadConverted",
            "DealStageChanged",
        ] {
            assert!(a.iter().any(|e| e.event.event_type == ty), "no {ty}");
        }
    }

    #[test]
    fn append_order_is_recording_order_and_nothing_lies_after_end() {
        let a = generate(end(), SEED);
        let times: Vec<_> = a.iter().map(|e| e.event.recorded_at.unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| *t <= end()));
        assert!(a
            .iter()
            .all(|e| e.event.occurred_at.unwrap() <= e.event.recorded_at.unwrap()));
    }
}

#[cfg(test)]
mod story_tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_rep_who_left_has_his_open_deals_reassigned_and_records_nothing_after() {
        let end = domain::envelope::parse_time("2026-11-23T00:00:00Z").unwrap();
        let events = generate(end, SEED);
        // When he leaves (the business time of `RepLeft`).
        let left = events
            .iter()
            .find(|e| e.event.event_type == "RepLeft")
            .and_then(|e| e.event.occurred_at)
            .unwrap();
        // Folded by hand, in append order: each of taibai's deals, open or not, and its owner.
        let mut deals: HashMap<&str, (bool, &str)> = HashMap::new();
        let mut open_when_left = 0;
        let mut counted_at_leave = false;
        for e in &events {
            let at = e.event.recorded_at.unwrap();
            if at >= left && !counted_at_leave {
                counted_at_leave = true;
                open_when_left = deals
                    .values()
                    .filter(|(open, owner)| *open && *owner == "taibai")
                    .count();
            }
            let d = &e.event.data;
            match e.event.event_type.as_str() {
                "DealOpened" if d["owner"] == "taibai" => {
                    deals.insert(&e.stream, (true, "taibai"));
                }
                ty => {
                    if let Some((open, owner)) = deals.get_mut(e.stream.as_str()) {
                        if at >= left {
                            assert_ne!(
                                e.event.actor.as_deref(),
                                Some("taibai"),
                                "{ty} on {}",
                                e.stream
                            );
                            assert_ne!(d.get("rep").and_then(|r| r.as_str()), Some("taibai"));
                        }
                        match ty {
                            "DealWon" | "DealLost" => *open = false,
                            "DealReopened" => *open = true,
                            "DealReassigned" => {
                                assert_eq!(d["from"], "taibai");
                                assert!(at >= left);
                                *owner = "erlang";
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        assert!(open_when_left > 0, "taibai has open deals when he leaves");
        let still_his = deals
            .iter()
            .filter(|(_, (open, owner))| *open && *owner == "taibai")
            .count();
        assert_eq!(still_his, 0, "no open deal is left with taibai");
    }

    #[test]
    fn lost_deals_carry_notes_and_activities_their_words() {
        let end = domain::envelope::parse_time("2026-11-23T00:00:00Z").unwrap();
        let events = generate(end, SEED);
        let of = |ty: &'static str| events.iter().filter(move |e| e.event.event_type == ty);
        assert!(of("DealLost").all(|e| e.event.data["note"]
            .as_str()
            .is_some_and(|n| n.contains(" / "))));
        let deal_activities: Vec<_> = of("ActivityLogged")
            .filter(|e| e.stream.starts_with("deal-"))
            .collect();
        assert!(!deal_activities.is_empty());
        assert!(deal_activities
            .iter()
            .all(|e| e.event.data["summary"].is_string() && e.event.data["outcome"].is_string()));
    }
}
