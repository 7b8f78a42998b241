//! Value types that can only hold valid values: each is built by parsing text at the
//! edge of the system, and a failed parse says why in plain English.

use chrono::{Datelike, NaiveDate};
use std::fmt;

/// A 10-digit NHS number that passed the modulus-11 check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Reads an NHS number; spaces and hyphens between digit groups are allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("an NHS number has 10 digits".into());
        }
        let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err("this is not a valid NHS number (its check digit cannot be right); please check it against the client's NHS letter or card".into()),
            c => c,
        };
        if check != d[9] {
            return Err("this is not a valid NHS number (the last digit does not match the others); please check it for a typing mistake".into());
        }
        Ok(NhsNumber(digits))
    }

    /// The ten digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A UK postcode in its normal form: upper case, one space before the inward code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Postcode(String);

impl Postcode {
    /// Reads a postcode in any case and spacing, such as `fy15dw` or `FY1  5DW`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bad = || Err("this is not a UK postcode; it should look like FY1 5DW".to_string());
        if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
            return bad();
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        let inward_ok = {
            let b = inward.as_bytes();
            b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
        };
        let shape: String = outward
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    '9'
                } else if c.is_ascii_alphabetic() {
                    'A'
                } else {
                    '?'
                }
            })
            .collect();
        let outward_ok = matches!(
            shape.as_str(),
            "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
        ) || outward == "GIR";
        if !(inward_ok && outward_ok) {
            return bad();
        }
        Ok(Postcode(format!("{outward} {inward}")))
    }

    /// The normalised postcode.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the shape of a code such as an LSOA (`E01012736`) or local authority code.
fn ons_code(text: &str, prefixes: &[&str], what: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_uppercase();
    let ok = t.len() == 9
        && prefixes.iter().any(|p| t.starts_with(p))
        && t[3..].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(t)
    } else {
        Err(format!("this is not {what}"))
    }
}

/// A 2019 local authority district code in England (E06, E07, E08 or E09).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LadCode(String);

impl LadCode {
    /// Reads a district code such as `E06000009`.
    pub fn parse(text: &str) -> Result<Self, String> {
        ons_code(
            text,
            &["E06", "E07", "E08", "E09"],
            "an English local authority district code (E06, E07, E08 or E09 followed by 6 digits, such as E06000009)",
        )
        .map(LadCode)
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A 2011 lower layer super output area code in England (`E01…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsoaCode(String);

impl LsoaCode {
    /// Reads an LSOA code such as `E01012736`.
    pub fn parse(text: &str) -> Result<Self, String> {
        ons_code(
            text,
            &["E01"],
            "an English 2011 LSOA code (E01 followed by 6 digits, such as E01012736)",
        )
        .map(LsoaCode)
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads an ISO date (`YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    // Read by hand: every stored date is read back through here when a client's records
    // are checked, and chrono's format parser took a quarter of reading a record.
    let b = text.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
        .then(|| {
            let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
            NaiveDate::from_ymd_opt(y as i32, m, d)
        })
        .flatten();
    date.ok_or_else(|| "this is not a date written as YYYY-MM-DD (for example 2010-04-01)".into())
}

/// A UK financial year, 1 April to 31 March, written `2010-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FinancialYear(i32);

impl FinancialYear {
    /// Reads `2010-11`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a financial year; write it as 2010-11");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let start: i32 = a.parse().map_err(|_| bad())?;
        let end: i32 = b.parse().map_err(|_| bad())?;
        if a.len() != 4
            || b.len() != 2
            || (start + 1) % 100 != end
            || !(1990..=2100).contains(&start)
        {
            return Err(bad());
        }
        Ok(FinancialYear(start))
    }
    /// The financial year a date falls in.
    pub fn containing(date: NaiveDate) -> Self {
        FinancialYear(if date.month() >= 4 {
            date.year()
        } else {
            date.year() - 1
        })
    }
    /// The calendar year in which it starts.
    pub fn start_year(self) -> i32 {
        self.0
    }
    /// 1 April.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0, 4, 1).expect("1 April exists")
    }
    /// 31 March of the next year.
    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0 + 1, 3, 31).expect("31 March exists")
    }
}

impl fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.0, (self.0 + 1) % 100)
    }
}

/// A quarter of a financial year: Q1 is April to June, Q4 January to March.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quarter {
    year: FinancialYear,
    number: u8,
}

impl Quarter {
    /// Reads `2010-11 Q3` or `2010-11Q3`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("{text:?} is not a quarter; write it as 2010-11 Q3");
        let pos = t.to_ascii_uppercase().rfind('Q').ok_or_else(bad)?;
        let year = FinancialYear::parse(t[..pos].trim()).map_err(|_| bad())?;
        let number: u8 = t[pos + 1..].parse().map_err(|_| bad())?;
        if !(1..=4).contains(&number) {
            return Err(bad());
        }
        Ok(Quarter { year, number })
    }
    /// The quarter a date falls in.
    pub fn containing(date: NaiveDate) -> Self {
        let year = FinancialYear::containing(date);
        let number = match date.month() {
            4..=6 => 1,
            7..=9 => 2,
            10..=12 => 3,
            _ => 4,
        };
        Quarter { year, number }
    }
    /// The financial year.
    pub fn year(self) -> FinancialYear {
        self.year
    }
    /// 1 to 4.
    pub fn number(self) -> u8 {
        self.number
    }
    /// The first day of the quarter.
    pub fn first_day(self) -> NaiveDate {
        let (y, m) = match self.number {
            1 => (self.year.0, 4),
            2 => (self.year.0, 7),
            3 => (self.year.0, 10),
            _ => (self.year.0 + 1, 1),
        };
        NaiveDate::from_ymd_opt(y, m, 1).expect("valid quarter start")
    }
    /// The last day of the quarter.
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("a day before")
    }
    /// The quarter after this one.
    pub fn next(self) -> Self {
        if self.number == 4 {
            Quarter {
                year: FinancialYear(self.year.0 + 1),
                number: 1,
            }
        } else {
            Quarter {
                year: self.year,
                number: self.number + 1,
            }
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Q{}", self.year, self.number)
    }
}

/// Today's date in UK local time (GMT, or BST from 01:00 UTC on the last Sunday in
/// March to 01:00 UTC on the last Sunday in October). Written here because the rule is
/// fixed in law and a time zone database would be a large dependency for one zone.
pub fn uk_today(now_utc: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    uk_time(now_utc).date()
}

/// The date and time in UK local time (see [`uk_today`]).
pub fn uk_time(now_utc: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    let year = now_utc.year();
    let last_sunday = |month: u32| {
        let mut d =
            NaiveDate::from_ymd_opt(year, month, 31).expect("31st exists in March and October");
        while d.weekday() != chrono::Weekday::Sun {
            d = d.pred_opt().expect("earlier day");
        }
        d.and_hms_opt(1, 0, 0).expect("01:00").and_utc()
    };
    let in_bst = now_utc >= last_sunday(3) && now_utc < last_sunday(10);
    let local = if in_bst {
        now_utc + chrono::Duration::hours(1)
    } else {
        now_utc
    };
    local.naive_utc()
}

/// Whole years between a date of birth and a later date.
pub fn age_on(date_of_birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - date_of_birth.year();
    if (on.month(), on.day()) < (date_of_birth.month(), date_of_birth.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_only_as_real_yyyy_mm_dd_days() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(parse_date("2010-04-01"), Ok(day(2010, 4, 1)));
        assert_eq!(parse_date(" 2024-02-29 "), Ok(day(2024, 2, 29)));
        for bad in [
            "",
            "2010-4-1",
            "2010/04/01",
            "01-04-2010",
            "2010-04-1x",
            "2010-13-01",
            "2010-00-10",
            "2023-02-29",
            "2010-04-31",
            "+010-04-01",
            "2010-04-011",
            "२०१०-04-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} was read as a date");
        }
    }

    #[test]
    fn nhs_numbers_pass_only_with_the_right_check_digit() {
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
        assert!(NhsNumber::parse("9434765918").is_err());
        assert!(NhsNumber::parse("943476591").is_err());
        assert!(NhsNumber::parse("94347659190").is_err());
        assert!(NhsNumber::parse("94347659x9").is_err());
        // A remainder that makes the check digit 10 is never valid: 1000000060 has
        // weighted sum 10*1+6*3 = 28 (28 % 11 = 6, check 5); build one with check 10.
        let mut found = None;
        for n in 100_000_000u64..100_001_000 {
            let s = format!("{n:09}");
            let sum: u32 = s
                .bytes()
                .zip((2..=10).rev())
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum();
            if 11 - sum % 11 == 10 {
                found = Some(s);
                break;
            }
        }
        let base = found.expect("some number has check 10");
        for last in 0..=9 {
            assert!(NhsNumber::parse(&format!("{base}{last}")).is_err());
        }
        // Check digit 0 arises from remainder 0.
        assert!(NhsNumber::parse("4010232137").is_ok());
    }

    #[test]
    fn postcodes_are_normalised() {
        assert_eq!(Postcode::parse("fy15dw").unwrap().as_str(), "FY1 5DW");
        assert_eq!(Postcode::parse(" SW1A  1AA ").unwrap().as_str(), "SW1A 1AA");
        assert_eq!(Postcode::parse("M1 1AA").unwrap().as_str(), "M1 1AA");
        assert_eq!(Postcode::parse("EC1A1BB").unwrap().as_str(), "EC1A 1BB");
        for bad in ["", "FY1", "FY1 5D", "12345", "FY1 DW5", "FYZZ1 5DW"] {
            assert!(Postcode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn financial_years_and_quarters() {
        let fy = FinancialYear::parse("2010-11").unwrap();
        assert_eq!(fy.first_day().to_string(), "2010-04-01");
        assert_eq!(fy.last_day().to_string(), "2011-03-31");
        assert!(FinancialYear::parse("2010-12").is_err());
        assert!(FinancialYear::parse("2010").is_err());
        assert_eq!(
            FinancialYear::parse("1999-00").unwrap().to_string(),
            "1999-00"
        );
        let q = Quarter::parse("2010-11Q4").unwrap();
        assert_eq!(q, Quarter::parse("2010-11 Q4").unwrap());
        assert_eq!(q.first_day().to_string(), "2011-01-01");
        assert_eq!(q.last_day().to_string(), "2011-03-31");
        assert_eq!(
            Quarter::parse("2010-11 Q1").unwrap().last_day().to_string(),
            "2010-06-30"
        );
        assert!(Quarter::parse("2010-11 Q5").is_err());
        assert!(Quarter::parse("2010-11 Q0").is_err());
        let d = NaiveDate::from_ymd_opt(2011, 3, 31).unwrap();
        assert_eq!(Quarter::containing(d).to_string(), "2010-11 Q4");
        assert_eq!(
            Quarter::containing(d.succ_opt().unwrap()).to_string(),
            "2011-12 Q1"
        );
    }

    #[test]
    fn uk_today_follows_british_summer_time() {
        use chrono::TimeZone;
        let utc = |y, m, d, h| chrono::Utc.with_ymd_and_hms(y, m, d, h, 30, 0).unwrap();
        // 23:30 UTC on 1 July is 00:30 BST on 2 July.
        assert_eq!(uk_today(utc(2026, 7, 1, 23)).to_string(), "2026-07-02");
        // 23:30 UTC on 1 December is still 1 December (GMT).
        assert_eq!(uk_today(utc(2026, 12, 1, 23)).to_string(), "2026-12-01");
    }

    #[test]
    fn ages_count_whole_years() {
        let dob = NaiveDate::from_ymd_opt(1990, 6, 15).unwrap();
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2006, 6, 14).unwrap()),
            15
        );
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2006, 6, 15).unwrap()),
            16
        );
    }
}
