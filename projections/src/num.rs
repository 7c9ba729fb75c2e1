//! Number conventions shared by every report.
//!
//! - Ratios: rounded to 4 decimals, `None` (JSON `null`) when the denominator is 0.
//! - Days: fractional days computed from exact millisecond differences, rounded to
//!   **1 decimal** (as in the SPEC's examples: `44.1`, `28.6`) only when written out;
//!   statistics (median, p90) are computed on the unrounded values.
//! - Medians: the mean of the two middle values when the count is even.
//! - p90: nearest rank, the ⌈0.9·n⌉-th smallest value.
//! - Amounts: [`Money`] (integer cents); divisions round to the nearest cent, halves away from 0.

use chrono::{DateTime, Utc};
use domain::Money;

/// Fractional days from `a` to `b` (negative when `b` is before `a`), unrounded.
pub fn days_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 86_400_000.0
}

/// Rounds to 1 decimal (days).
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds to 4 decimals (ratios).
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Rounds to 2 decimals (amounts computed as floats, e.g. weighted amounts).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `n / d` rounded to 4 decimals; `None` when `d` is 0.
pub fn ratio(n: f64, d: f64) -> Option<f64> {
    if d == 0.0 {
        None
    } else {
        Some(round4(n / d))
    }
}

/// Median of the values (mean of the two middle ones when even); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// p90 by nearest rank: the ⌈0.9·n⌉-th smallest; `None` when empty.
pub fn p90(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // ⌈0.9·n⌉ in integers: (9n + 9) / 10.
    let rank = (9 * n).div_ceil(10).max(1);
    Some(v[rank - 1])
}

/// Median of day values, rounded to 1 decimal.
pub fn median_days(values: &[f64]) -> Option<f64> {
    median(values).map(round1)
}

/// `m / n` to the nearest cent (halves away from zero); `None` when `n` is 0.
pub fn money_div(m: Money, n: u64) -> Option<Money> {
    if n == 0 {
        return None;
    }
    let n = n as i128;
    let c = m.cents() as i128;
    let q = if c >= 0 {
        (2 * c + n) / (2 * n)
    } else {
        -((-2 * c + n) / (2 * n))
    };
    Some(Money(q as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_p90() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        // n = 10 → rank 9; n = 11 → rank 10; n = 1 → rank 1.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p90(&v), Some(9.0));
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(p90(&v), Some(10.0));
        assert_eq!(p90(&[7.0]), Some(7.0));
        assert_eq!(p90(&[1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn ratios_and_money() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(2.0, 3.0), Some(0.6667));
        assert_eq!(money_div(Money(1000), 3), Some(Money(333)));
        assert_eq!(money_div(Money(5), 2), Some(Money(3)));
        assert_eq!(money_div(Money(5), 0), None);
        assert_eq!(round1(0.25), 0.3);
    }
}

/// A JSON object whose keys keep the given order (e.g. stages in pipeline order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V: serde::Serialize> serde::Serialize for OrderedMap<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
