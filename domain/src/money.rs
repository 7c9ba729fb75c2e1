//! Exact amounts: integer cents, JSON numbers with at most 2 decimals.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in the deal's currency, stored exactly as integer cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

/// Amounts are below this many cents in magnitude (see [`Money::from_f64`]).
const MAX_CENTS: f64 = 1e15;

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// The amount as a JSON-friendly float (`120000.0`). For output only.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Converts a JSON number, refusing more than 2 decimals or a magnitude that cents cannot hold exactly.
    pub fn from_f64(x: f64) -> Result<Money, String> {
        if !x.is_finite() {
            return Err(format!("amount {x} is not a finite number"));
        }
        let cents = x * 100.0;
        let rounded = cents.round();
        // Below 10^15 cents (10 trillion), every amount is exactly the one its JSON number
        // reads back as (`as_f64`, then this); higher up, neighbouring cents share a number,
        // or the product above rounds to the neighbour. Far beyond any real deal.
        if rounded.abs() >= MAX_CENTS {
            return Err(format!("amount {x} is too large"));
        }
        if (cents - rounded).abs() > 1e-6 * rounded.abs().max(1.0) {
            return Err(format!("amount {x} has more than 2 decimals"));
        }
        Ok(Money(rounded as i64))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        self.0 = self.0.saturating_add(o.0);
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(it: I) -> Money {
        it.fold(Money::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// In JSON, a number with at most 2 decimals (see [`Money::from_f64`]).
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .description(Some(
                "An amount: at most 2 decimals, below 10 trillion in magnitude",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Money {}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let x = f64::deserialize(d)?;
        Money::from_f64(x).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimals_are_exact_and_three_are_refused() {
        assert_eq!(Money::from_f64(0.1).unwrap(), Money(10));
        assert_eq!(Money::from_f64(1234.56).unwrap(), Money(123456));
        assert_eq!(Money::from_f64(120000.0).unwrap(), Money(12000000));
        assert!(Money::from_f64(1.005).is_err());
        assert!(Money::from_f64(f64::NAN).is_err());
        assert!(Money::from_f64(1e20).is_err());
        assert_eq!(Money(123456).to_string(), "1234.56");
        assert_eq!(Money(-5).to_string(), "-0.05");
        assert_eq!(serde_json::to_string(&Money(12000000)).unwrap(), "120000.0");
    }

    /// Found while checking the `stored_data` fuzz target's invariant (an event's canonical
    /// `data` parses back to the same event): near the old limit of 9e15 cents, an amount
    /// came back from its JSON number one cent off (8101256739681932 cents as ...931).
    #[test]
    fn every_accepted_amount_reads_back_from_its_json_number() {
        let one_cent_off = Money(8_101_256_739_681_932);
        assert!(Money::from_f64(one_cent_off.as_f64()).is_err());
        // Amounts up to the limit, spread over every magnitude (a fixed pseudo-random walk).
        let mut walk: u64 = 1;
        for _ in 0..200_000 {
            walk = walk
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = ((walk >> 11) % 1_000_000_000_000_000) as i64;
            let near_limit = 999_999_999_999_999 - c % 10_000_000;
            for cents in [c, -c, near_limit, c % 1_000_000_000] {
                let m = Money(cents);
                assert_eq!(Money::from_f64(m.as_f64()), Ok(m), "{cents}");
            }
        }
        assert!(Money::from_f64(1e13).is_err());
    }
}
