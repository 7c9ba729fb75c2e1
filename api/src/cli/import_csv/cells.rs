//! Reading one cell: amounts, dates and times, yes/no flags, percentages, and the ids that
//! dealtrail derives from names (entity ids, rep ids, stage ids). Pure functions; each error
//! is a short sentence about the value, which the caller prefixes with file, line and column.

use std::sync::LazyLock;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use domain::money::Money;

/// An amount: digits with an optional sign, decimal point or comma, thousands separators
/// and a leading currency symbol (`¥12,500.50`, `12.500,50`, `1 200`). Empty = 0.
pub fn amount(s: &str) -> Result<Money, String> {
    let t: String = s
        .trim()
        .trim_start_matches(['$', '¥', '€', '£', '￥'])
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .collect();
    if t.is_empty() {
        return Ok(Money::ZERO);
    }
    let bad = || format!("{s:?} is not an amount");
    // The decimal separator is the last `.` or `,` when at most two digits follow it.
    let last = t.rfind(['.', ',']);
    let (int, frac) = match last {
        Some(i) if t.len() - i - 1 <= 2 && t[..i].matches(t.as_bytes()[i] as char).count() == 0 => {
            (&t[..i], &t[i + 1..])
        }
        Some(i) if t.len() - i - 1 <= 2 => return Err(bad()),
        _ => (t.as_str(), ""),
    };
    let negative = int.starts_with('-');
    let digits: String = int
        .trim_start_matches('-')
        .chars()
        .filter(|c| *c != ',' && *c != '.')
        .collect();
    if digits.is_empty() && frac.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| format!("{s:?} is too large"))?
    };
    let cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac.parse::<i64>().map_err(|_| bad())?,
    };
    let total = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .ok_or_else(|| format!("{s:?} is too large"))?;
    Ok(Money::from_cents(if negative { -total } else { total }))
}

/// A point in time. Tried in order: RFC 3339, Salesforce's `2024-03-01T10:15:00.000+0000`,
/// the caller's formats, then ISO and `2024/3/1` dates and date-times. A value without an
/// offset is read at `offset`; a date alone is the start of that day.
pub fn time(s: &str, formats: &[String], offset: FixedOffset) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let known = &*KNOWN;
    if let Ok(t) = parsed(s, &known.salesforce).and_then(|p| p.to_datetime()) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = |n: NaiveDateTime| {
        offset
            .from_local_datetime(&n)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    for f in formats.iter().map(String::as_str) {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return local(n).ok_or_else(|| format!("{s:?} is not a time"));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return local(d.and_time(chrono::NaiveTime::MIN))
                .ok_or_else(|| format!("{s:?} is not a time"));
        }
    }
    for items in &known.times {
        if let Ok(n) = parsed(s, items).and_then(|p| p.to_naive_datetime_with_offset(0)) {
            return local(n).ok_or_else(|| format!("{s:?} is not a time"));
        }
    }
    for items in &known.dates {
        if let Ok(d) = parsed(s, items).and_then(|p| p.to_naive_date()) {
            return local(d.and_time(chrono::NaiveTime::MIN))
                .ok_or_else(|| format!("{s:?} is not a time"));
        }
    }
    Err(if s.is_empty() {
        "is empty: a date is needed".to_string()
    } else {
        format!("{s:?} is not a date or time (e.g. 2024-03-01 or 2024-03-01T10:15:00Z)")
    })
}

/// The formats `time` tries after RFC 3339, each read once into chrono's items (parsing a
/// format string again for every cell was a tenth of a large export's reading).
struct Known {
    /// Salesforce's `2024-03-01T10:15:00.000+0000`.
    salesforce: Vec<Item<'static>>,
    times: Vec<Vec<Item<'static>>>,
    dates: Vec<Vec<Item<'static>>>,
}

static KNOWN: LazyLock<Known> = LazyLock::new(|| {
    let items = |f: &'static str| {
        StrftimeItems::new(f)
            .parse()
            .expect("a constant format chrono reads")
    };
    Known {
        salesforce: items(SALESFORCE),
        times: TIMES.into_iter().map(items).collect(),
        dates: DATES.into_iter().map(items).collect(),
    }
});

const SALESFORCE: &str = "%Y-%m-%dT%H:%M:%S%.f%z";
/// Date-times without an offset, tried in order.
const TIMES: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d %H:%M:%S",
];
const DATES: [&str; 3] = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"];

/// `s` read with `items` (what chrono's `parse_from_str` does with a format it reads first).
fn parsed(s: &str, items: &[Item<'static>]) -> chrono::ParseResult<Parsed> {
    let mut p = Parsed::new();
    chrono::format::parse(&mut p, s, items.iter())?;
    Ok(p)
}

/// `true`/`false`, `1`/`0`, `yes`/`no`.
pub fn flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

/// A percentage 0..100 (`75`, `75%`, `75.0`) as a probability 0..1.
pub fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok((p * 100.0).round() / 10_000.0),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

/// A record id used as it is (a deal or customer id): `[A-Za-z0-9_.:-]`, 1–64 characters.
pub fn entity_id(s: &str) -> Result<String, String> {
    if domain::envelope::is_entity_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} cannot be an id: 1 to 64 characters of A-Z a-z 0-9 _ . : -"
        ))
    }
}

/// An id from a name (customers and reps known by name): lower case, every run of other
/// characters than `a-z0-9_.:` becomes one `-`. A name with other than ASCII letters (`张三`)
/// gets 8 hex digits of its hash, so that different names never share an id; so does one
/// longer than 64 characters.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || "_.:".contains(c) {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    if !name.is_ascii() || out.is_empty() || out.len() > 64 {
        let hash = blake3::hash(name.trim().as_bytes()).to_hex();
        let keep = &out[..out.len().min(55)];
        let keep = keep.trim_end_matches('-');
        return if keep.is_empty() {
            format!("h{}", &hash[..8])
        } else {
            format!("{keep}-{}", &hash[..8])
        };
    }
    out.to_string()
}

/// A stage id from a stage name (SPEC §4): lower case, every run of characters other than
/// `a-z0-9` becomes one `_` (`Proposal/Price Quote` → `proposal_price_quote`). A name with no
/// such characters at all (`需求确认`) becomes `stage_` and 8 hex digits of its hash.
pub fn stage_id(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_');
    if out.is_empty() {
        format!(
            "stage_{}",
            &blake3::hash(name.trim().as_bytes()).to_hex()[..8]
        )
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn amounts_in_the_ways_exports_write_them() {
        let cents = |s: &str| amount(s).map(Money::cents);
        assert_eq!(cents("12500"), Ok(1_250_000));
        assert_eq!(cents("12500.5"), Ok(1_250_050));
        assert_eq!(cents("12,500.50"), Ok(1_250_050));
        assert_eq!(cents("12.500,50"), Ok(1_250_050));
        assert_eq!(cents("1,500"), Ok(150_000));
        assert_eq!(cents("¥ 1 200"), Ok(120_000));
        assert_eq!(cents(""), Ok(0));
        assert_eq!(cents("-3.1"), Ok(-310));
        assert!(amount("12x").is_err());
        assert!(amount("1.2.3,45,6").is_err());
        assert!(amount("1,2,34").is_err());
    }

    #[test]
    fn times_with_and_without_offsets() {
        let t = |s: &str| time(s, &[], utc()).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2024-03-01T10:15:00.000+0000"),
            Ok("2024-03-01T10:15:00+00:00".into())
        );
        assert_eq!(
            t("2024-03-01T10:15:00+08:00"),
            Ok("2024-03-01T02:15:00+00:00".into())
        );
        assert_eq!(t("2024-03-01"), Ok("2024-03-01T00:00:00+00:00".into()));
        assert_eq!(t("2024/3/1 9:05"), Ok("2024-03-01T09:05:00+00:00".into()));
        assert!(t("03/01/2024").is_err());
        let us = ["%m/%d/%Y".to_string()];
        let beijing = FixedOffset::east_opt(8 * 3600).unwrap();
        assert_eq!(
            time("03/01/2024", &us, beijing).map(|t| t.to_rfc3339()),
            Ok("2024-02-29T16:00:00+00:00".into())
        );
    }

    /// The formats read once give what chrono gives reading the format string each time,
    /// for values in each of them (and a few in none).
    #[test]
    fn formats_read_once_read_as_chrono_reads_them() {
        let values = [
            "2024-03-01T10:15:00.000+0000",
            "2024-03-01T10:15:00.5-0130",
            "2024-03-01T10:15:00",
            "2024-03-01T10:15:00.123456",
            "2024-03-01 10:15:00",
            "2024-03-01 10:15",
            "2024/3/1 9:05:07",
            "2024/03/01 09:05",
            "20240301 09:05:07",
            "2024-03-01",
            "2024/3/1",
            "20240301",
            "2024-02-30",
            "2024-03-01T25:00:00",
            "yesterday",
        ];
        let known = &*KNOWN;
        for v in values {
            let sf = DateTime::parse_from_str(v, SALESFORCE);
            let ours = parsed(v, &known.salesforce).and_then(|p| p.to_datetime());
            assert_eq!(ours, sf, "{v}");
            for (f, items) in TIMES.iter().zip(&known.times) {
                let ours = parsed(v, items).and_then(|p| p.to_naive_datetime_with_offset(0));
                assert_eq!(ours, NaiveDateTime::parse_from_str(v, f), "{v} {f}");
            }
            for (f, items) in DATES.iter().zip(&known.dates) {
                let ours = parsed(v, items).and_then(|p| p.to_naive_date());
                assert_eq!(ours, NaiveDate::parse_from_str(v, f), "{v} {f}");
            }
        }
    }

    #[test]
    fn ids_from_names() {
        assert_eq!(stage_id("Proposal/Price Quote"), "proposal_price_quote");
        assert_eq!(stage_id("Id. Decision Makers"), "id_decision_makers");
        assert!(stage_id("需求确认").starts_with("stage_"));
        assert_ne!(stage_id("需求确认"), stage_id("初步接洽"));
        assert_eq!(slug("Gekko & Co"), "gekko-co");
        assert_eq!(slug("Moses Frase"), "moses-frase");
        assert_ne!(slug("张三"), slug("李四"));
        assert!(domain::envelope::is_entity_id(&slug("张三")));
        assert!(domain::envelope::is_entity_id(&slug(
            &"long name ".repeat(20)
        )));
        assert_eq!(percent("75"), Ok(0.75));
        assert!(percent("150").is_err());
    }
}
