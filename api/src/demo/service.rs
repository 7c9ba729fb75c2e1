//! The demo's customer service year and each rep's morning (issues 18; SPEC §2.7, §2.8).
//!
//! Generated after everything else, so the rest of the demo is the same event for event:
//! - every month, NPS from about 14 customers (promoters, passives and detractors), four or
//!   five complaints (most resolved within days, about one in five left open), and one to
//!   three customers churning — so every figure of the service report moves every month;
//! - for each rep still on the team, on the demo's last day: an installment of a won deal
//!   overdue, a deal untouched for three weeks, a customer idle for 58 days (59 at most on the
//!   last day: inside the warning of a 60-day pool policy, `serve --demo
//!   --pool-release-after-days 60`, not yet released by it), and two qualified leads to work.

use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use serde_json::json;

use super::{month_start, Gen, REPS};

/// The demo's pool policy that the Today page is made for (see the module doc).
pub const DEMO_POOL_RELEASE_AFTER_DAYS: u32 = 60;

impl Gen {
    pub(super) fn service_year(&mut self, start: DateTime<Utc>, customers: &[Vec<String>]) {
        // wukong's last six churn in `customer_care`; the rest can be asked, complain, leave.
        let mut candidates: Vec<&String> = Vec::new();
        for (ri, mine) in customers.iter().enumerate() {
            let keep = if ri == 0 { mine.len() - 6 } else { mine.len() };
            candidates.extend(mine.iter().take(keep));
        }
        let mut churned: Vec<&String> = Vec::new();
        for m in 0..12 {
            let ms = month_start(start, m);
            let alive: Vec<&String> = candidates
                .iter()
                .copied()
                .filter(|c| !churned.contains(c))
                .collect();
            for _ in 0..14 {
                let c = alive[self.rng.random_range(0..alive.len())];
                let at = ms + self.days(0.5, 29.0);
                // About half promoters, a quarter passives, a quarter detractors.
                let score = match self.rng.random_range(0..8) {
                    0..=3 => self.rng.random_range(9..11),
                    4 | 5 => self.rng.random_range(7..9),
                    _ => self.rng.random_range(0..7),
                };
                self.emit(
                    format!("customer-{c}"),
                    "NpsRecorded",
                    at,
                    "survey",
                    json!({"score": score}),
                    false,
                );
            }
            let complaints = 4 + m % 2;
            for k in 0..complaints {
                let c = alive[self.rng.random_range(0..alive.len())];
                let id = format!("SV-{m}-{k}");
                let at = ms + self.days(0.5, 27.0);
                self.emit(
                    format!("customer-{c}"),
                    "ComplaintFiled",
                    at,
                    "service",
                    json!({"complaint_id": id, "summary": "invoice wrong"}),
                    false,
                );
                if self.rng.random_range(0..5) != 0 {
                    let done = at + self.days(0.2, 9.0);
                    self.emit(
                        format!("customer-{c}"),
                        "ComplaintResolved",
                        done,
                        "service",
                        json!({"complaint_id": id}),
                        false,
                    );
                }
            }
            for _ in 0..(1 + m % 3) {
                let c = alive[self.rng.random_range(0..alive.len())];
                if churned.contains(&c) {
                    continue;
                }
                churned.push(c);
                let at = ms + self.days(1.0, 28.0);
                self.emit(
                    format!("customer-{c}"),
                    "CustomerChurned",
                    at,
                    "service",
                    json!({"reason": "moved to a competitor"}),
                    false,
                );
            }
        }
        self.mornings();
    }

    /// Each rep still on the team gets one item of every follow-up list on the last day.
    fn mornings(&mut self) {
        let end = self.end;
        for rep in REPS.iter().filter(|r| r.id != "taibai") {
            let r = rep.id;
            // A won deal whose second installment is overdue.
            let c = self.new_customer(end - Duration::days(120), Some(r), "referral", r);
            let deal = self.deal_id();
            let stream = format!("deal-{deal}");
            let opened = end - Duration::days(110);
            self.emit(stream.clone(), "DealOpened", opened, r, json!({"customer_id": c, "owner": r, "title": format!("Annual licence {c}"), "amount": 90000, "stage": "contract"}), false);
            let won = end - Duration::days(70);
            self.emit(
                stream.clone(),
                "DealWon",
                won,
                r,
                json!({"amount": 90000}),
                false,
            );
            for (i, due_days) in [(1, 40), (2, 9)] {
                let due = (end - Duration::days(due_days)).date_naive().to_string();
                self.emit(
                    stream.clone(),
                    "PaymentScheduled",
                    won + Duration::hours(1),
                    r,
                    json!({"installment_id": format!("I{i}"), "amount": 45000, "due": due}),
                    false,
                );
            }
            self.emit(
                stream.clone(),
                "PaymentReceived",
                end - Duration::days(38),
                "finance",
                json!({"amount": 45000, "installment_id": "I1"}),
                false,
            );
            self.emit(
                stream.clone(),
                "PaymentReceived",
                end - Duration::days(5),
                "finance",
                json!({"amount": 15000, "installment_id": "I2"}),
                false,
            );
            // An open deal nobody touched for three weeks.
            let deal = self.deal_id();
            let stream = format!("deal-{deal}");
            let opened = end - Duration::days(45);
            self.emit(stream.clone(), "DealOpened", opened, r, json!({"customer_id": c, "owner": r, "title": format!("Expansion {c}"), "amount": 60000, "stage": "qualified"}), false);
            self.emit(
                stream.clone(),
                "DealStageChanged",
                opened + Duration::days(10),
                r,
                json!({"from": "qualified", "to": "quote"}),
                false,
            );
            self.emit(
                stream,
                "ActivityLogged",
                end - Duration::days(21),
                r,
                json!({"kind": "call", "rep": r}),
                false,
            );
            // A customer idle for 58 days.
            let idle = self.new_customer(end - Duration::days(90), Some(r), "direct", r);
            self.emit(
                format!("customer-{idle}"),
                "ActivityLogged",
                end - Duration::days(58),
                r,
                json!({"kind": "visit", "rep": r}),
                false,
            );
            // Two fresh leads qualified to the rep.
            for (k, (fit, intent)) in [(80, 70), (55, 90)].into_iter().enumerate() {
                let lead = format!("L-{}", self.next_lead);
                self.next_lead += 1;
                let at = end - Duration::days(3 + k as i64);
                self.emit(format!("lead-{lead}"), "LeadCaptured", at, "marketing", json!({"channel": "web", "name": format!("Contact {lead}"), "company": format!("Prospect {lead}")}), false);
                self.emit(
                    format!("lead-{lead}"),
                    "LeadQualified",
                    at + Duration::hours(4),
                    r,
                    json!({"rep": r, "fit_score": fit, "intent_score": intent}),
                    false,
                );
            }
        }
    }
}
