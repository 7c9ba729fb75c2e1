//! Amounts in the reporting currency (SPEC §1.2 `ReportingCurrencySet`, `ExchangeRateSet`;
//! SPEC §2): amounts in different currencies are never added unconverted.
//!
//! - The reporting currency as of `as_of` is the latest `ReportingCurrencySet` on the org
//!   stream (business order), "CNY" until there is one.
//! - A rate is "units of the reporting currency per unit", so it is quoted in the reporting
//!   currency in force where it stands on the org stream (business order): after a change of
//!   reporting currency, the rates set before it no longer apply (a EUR rate in CNY is not a
//!   EUR rate in USD) and new ones are needed. For a (currency, month) the latest
//!   `ExchangeRateSet` wins.
//! - A deal's amount at a close (`DealWon`/`DealLost`) is converted at the rate of the close's
//!   month; an open deal's amount at the latest rate known as of the report: the rate of the
//!   latest month up to the report's month (`as_of`, or now). A deal in the reporting currency
//!   needs no rate. Payments are valued at the rate of their deal's win, like the won amount
//!   they are collected against (a deal paid in full collects 100% whatever the rate did).
//! - Each deal's amount is converted on its own, `cents × rate` rounded to the cent (halves
//!   away from zero), then added: a total is the sum of its rows.
//! - A rate that is needed and missing is not guessed: the report is refused
//!   ([`MissingRate`], HTTP 422, CLI exit 5), naming the currency and the month (the first
//!   of them, in currency then month order, and all of them in `missing`).
//!
//! Incremental == rebuild: rates may arrive after the deals they convert, so nothing in the
//! read model is converted. The model keeps native amounts (per deal; the rep-month index per
//! currency, see [`crate::rep_months::Bucket`]) and a report converts them when it runs, with
//! the rates as of its `as_of`. Targets (`TargetSet`) and spend (`SpendRecorded`) carry no
//! currency: they are taken to be in the reporting currency.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::state::DEFAULT_CURRENCY;
use domain::{Event, Money, Month};
use serde::Serialize;

use crate::model::{prefix, ReadModel};

/// A (currency, month) a report needed a rate for and the log has none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Needed {
    pub currency: String,
    pub month: Month,
}

/// A report needed exchange rates the log does not have: `currency` and `month` name the
/// first (in currency, then month order); `missing` lists every one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no exchange rate for {currency} in {month}: amounts are reported in {reporting}, so the org \
     stream needs ExchangeRateSet {{\"currency\": \"{currency}\", \"month\": \"{month}\", \"rate\": \
     <{reporting} per {currency}>}}{more}",
    more = more(.missing)
)]
pub struct MissingRate {
    pub currency: String,
    pub month: Month,
    /// The reporting currency the amounts were to be converted to.
    pub reporting: String,
    pub missing: Vec<Needed>,
}

fn more(missing: &[Needed]) -> String {
    if missing.len() <= 1 {
        return String::new();
    }
    let all: Vec<String> = missing
        .iter()
        .map(|n| format!("{} {}", n.currency, n.month))
        .collect();
    format!(" (missing: {})", all.join(", "))
}

/// The reporting currency as of `as_of`: the latest `ReportingCurrencySet`, else "CNY".
pub fn reporting_currency(model: &ReadModel, as_of: Option<DateTime<Utc>>) -> String {
    prefix(&model.org, as_of)
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::ReportingCurrencySet(r) => Some(r.currency.clone()),
            _ => None,
        })
        .unwrap_or_else(|| DEFAULT_CURRENCY.to_string())
}

/// Converts amounts to the reporting currency for one report, noting every rate it lacked:
/// a report converts everything it shows, then asks [`Converter::finish`] whether it may.
#[derive(Debug)]
pub struct Converter {
    /// The reporting currency.
    pub currency: String,
    /// Rates quoted in `currency`: currency → month → rate.
    rates: BTreeMap<String, BTreeMap<Month, f64>>,
    missing: RefCell<BTreeSet<Needed>>,
}

impl Converter {
    /// The reporting currency and its rates as of `as_of` (all of the log when `None`).
    pub fn new(model: &ReadModel, as_of: Option<DateTime<Utc>>) -> Converter {
        let mut reporting = DEFAULT_CURRENCY.to_string();
        let mut quoted: Vec<(String, &str, Month, f64)> = Vec::new();
        for e in prefix(&model.org, as_of) {
            match &e.event {
                Event::ReportingCurrencySet(r) => reporting = r.currency.clone(),
                Event::ExchangeRateSet(r) => {
                    quoted.push((reporting.clone(), &r.currency, r.month, r.rate))
                }
                _ => {}
            }
        }
        let mut rates: BTreeMap<String, BTreeMap<Month, f64>> = BTreeMap::new();
        for (quote, currency, month, rate) in quoted {
            if quote == reporting && currency != reporting && rate.is_finite() && rate > 0.0 {
                rates
                    .entry(currency.to_string())
                    .or_default()
                    .insert(month, rate);
            }
        }
        Converter {
            currency: reporting,
            rates,
            missing: RefCell::new(BTreeSet::new()),
        }
    }

    /// Whether amounts in `currency` need a rate at all.
    pub fn is_reporting(&self, currency: &str) -> bool {
        currency == self.currency
    }

    fn apply(&self, amount: Money, rate: Option<f64>, currency: &str, month: Month) -> Money {
        match rate {
            Some(r) => convert(amount, r),
            None => {
                self.missing.borrow_mut().insert(Needed {
                    currency: currency.to_string(),
                    month,
                });
                Money::ZERO
            }
        }
    }

    /// The rate for `currency` in `month`, noting it as missing when there is none.
    pub fn needed_rate(&self, currency: &str, month: Month) -> Option<f64> {
        let rate = self.rate(currency, month);
        if rate.is_none() {
            self.apply(Money::ZERO, None, currency, month);
        }
        rate
    }

    /// The rate for `currency` in `month` (1 for the reporting currency).
    pub fn rate(&self, currency: &str, month: Month) -> Option<f64> {
        if self.is_reporting(currency) {
            return Some(1.0);
        }
        self.rates.get(currency)?.get(&month).copied()
    }

    /// The rate of the latest month up to `month` (1 for the reporting currency).
    pub fn latest_rate(&self, currency: &str, month: Month) -> Option<f64> {
        if self.is_reporting(currency) {
            return Some(1.0);
        }
        let by_month = self.rates.get(currency)?;
        by_month.range(..=month).next_back().map(|(_, r)| *r)
    }

    /// `amount` in `currency`, converted at the rate of `month` (a close's month). A missing
    /// rate is noted and counts 0 here; [`Converter::finish`] then refuses the report.
    pub fn at(&self, amount: Money, currency: &str, month: Month) -> Money {
        if self.is_reporting(currency) {
            return amount;
        }
        self.apply(amount, self.rate(currency, month), currency, month)
    }

    /// `amount` in `currency`, converted at the latest rate up to `month` (an open deal, as of
    /// a time in `month`). A missing rate is noted as one for `month`.
    pub fn latest(&self, amount: Money, currency: &str, month: Month) -> Money {
        if self.is_reporting(currency) {
            return amount;
        }
        self.apply(amount, self.latest_rate(currency, month), currency, month)
    }

    /// The reporting currency, or the rates the report lacked.
    pub fn finish(self) -> Result<String, MissingRate> {
        let missing: Vec<Needed> = self.missing.into_inner().into_iter().collect();
        match missing.first() {
            None => Ok(self.currency),
            Some(first) => Err(MissingRate {
                currency: first.currency.clone(),
                month: first.month,
                reporting: self.currency.clone(),
                missing,
            }),
        }
    }
}

/// `amount × rate` to the cent, halves away from zero.
pub fn convert(amount: Money, rate: f64) -> Money {
    if rate == 1.0 {
        return amount;
    }
    // `as` saturates: an absurd rate gives the largest amount, never a panic.
    Money::from_cents((amount.cents() as f64 * rate).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_each_amount_to_the_cent() {
        // 100.00 × 7.1 = 710.00; 1,000,000.00 × 0.137 = 137,000.00 (in cents).
        assert_eq!(convert(Money(10_000), 7.1), Money(71_000));
        assert_eq!(convert(Money(1), 0.5), Money(1));
        assert_eq!(convert(Money(3), 0.5), Money(2));
        assert_eq!(convert(Money(12_345), 1.0), Money(12_345));
        assert_eq!(convert(Money(100_000_000), 0.137), Money(13_700_000));
    }

    #[test]
    fn missing_rates_name_the_first_and_list_all() {
        let m = ReadModel::new();
        let c = Converter::new(&m, None);
        assert_eq!(c.currency, "CNY");
        let june = Month::parse("2026-06").unwrap();
        let may = Month::parse("2026-05").unwrap();
        assert_eq!(c.at(Money(500), "CNY", june), Money(500));
        c.at(Money(500), "USD", june);
        c.latest(Money(500), "EUR", june);
        c.at(Money(500), "USD", may);
        let e = c.finish().unwrap_err();
        assert_eq!((e.currency.as_str(), e.month), ("EUR", june));
        assert_eq!(e.missing.len(), 3);
        let text = e.to_string();
        assert!(
            text.starts_with("no exchange rate for EUR in 2026-06"),
            "{text}"
        );
        assert!(text.contains("USD 2026-05, USD 2026-06"), "{text}");
    }
}
