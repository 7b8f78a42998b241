//! Reading one record's fields from text (a CSV row or a form) into domain values,
//! collecting every problem with the field, the value and a plain-English reason.

use crate::codes::CodeList;
use crate::measure::Ranged;
use crate::types::parse_date;
use chrono::{Datelike, NaiveDate};
use std::fmt;

/// One problem with one field of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (CSV column) name.
    pub field: String,
    /// The value as given (may be empty).
    pub value: String,
    /// Why it was rejected, as a sentence a health trainer understands.
    pub reason: String,
}

impl FieldError {
    /// A problem with a field.
    pub fn new(field: &str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{} (blank): {}", self.field, self.reason)
        } else {
            write!(f, "{} = {:?}: {}", self.field, self.value, self.reason)
        }
    }
}

/// Where field text comes from: a CSV row, a web form, a database row.
pub trait FieldSource {
    /// The text of a field, or `None` when the source has no such field.
    fn field(&self, name: &str) -> Option<&str>;
}

impl FieldSource for std::collections::HashMap<String, String> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl FieldSource for [(&str, &str)] {
    fn field(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

impl FieldSource for Vec<(&'static str, String)> {
    fn field(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<const N: usize> FieldSource for [(&str, &str); N] {
    fn field(&self, name: &str) -> Option<&str> {
        self.as_slice().field(name)
    }
}

/// Reads typed fields, keeping every error so a record's problems are reported together.
/// The reason given for a required field left blank.
pub const REQUIRED: &str = "this is required and was left blank";

pub struct Reader<'a> {
    source: &'a dyn FieldSource,
    today: NaiveDate,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    /// Starts reading a record; `today` (UK local time) is the latest date an event may have.
    pub fn new(source: &'a dyn FieldSource, today: NaiveDate) -> Self {
        Reader {
            source,
            today,
            errors: Vec::new(),
        }
    }

    /// The raw text of a field, trimmed; empty when blank or absent.
    pub fn raw(&self, name: &str) -> &'a str {
        self.source.field(name).unwrap_or("").trim()
    }

    /// Records a problem found by a rule that spans several fields.
    pub fn fail(&mut self, field: &str, value: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(field, value, reason));
    }

    /// Ends reading: the record, or every problem found.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(self.errors)
        }
    }

    /// Whether any problem was found so far.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn required_missing(&mut self, name: &str) {
        self.fail(name, "", REQUIRED);
    }

    /// Free text may hold line breaks and tabs but no other control character (a NUL
    /// cannot be stored in PostgreSQL, and the rest are never typed on purpose).
    fn check_text(&mut self, name: &str, v: &str) {
        if v.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.fail(
                name,
                v.escape_debug().to_string(),
                "contains a control character; only letters, numbers, punctuation, spaces and line breaks can be stored",
            );
        }
    }

    /// Optional free text.
    pub fn text(&mut self, name: &str) -> Option<String> {
        let v = self.raw(name);
        self.check_text(name, v);
        (!v.is_empty()).then(|| v.to_string())
    }

    /// Required free text or reference.
    pub fn required_text(&mut self, name: &str) -> String {
        let v = self.raw(name);
        if v.is_empty() {
            self.required_missing(name);
        }
        self.check_text(name, v);
        v.to_string()
    }

    /// A required reference (`*_ref`): free text without separators or control characters.
    pub fn reference(&mut self, name: &str) -> String {
        let v = self.raw(name).to_string();
        if v.is_empty() {
            self.required_missing(name);
        }
        if v.chars().count() > 64 || v.chars().any(|c| c.is_control() || c == ';') {
            self.fail(
                name,
                &v,
                "a reference must be at most 64 characters, without ';' or control characters",
            );
        }
        v
    }

    /// An optional reference.
    pub fn opt_reference(&mut self, name: &str) -> Option<String> {
        if self.raw(name).is_empty() {
            None
        } else {
            Some(self.reference(name))
        }
    }

    /// A required code from a code list.
    pub fn code<C: CodeList>(&mut self, name: &str) -> Option<C> {
        let v = self.raw(name);
        if v.is_empty() {
            self.required_missing(name);
            return None;
        }
        self.parse_code(name, v)
    }

    /// An optional code.
    pub fn opt_code<C: CodeList>(&mut self, name: &str) -> Option<C> {
        let v = self.raw(name);
        if v.is_empty() {
            None
        } else {
            self.parse_code(name, v)
        }
    }

    fn parse_code<C: CodeList>(&mut self, name: &str, v: &str) -> Option<C> {
        let parsed = C::parse_code(v);
        if parsed.is_none() {
            self.fail(
                name,
                v,
                format!(
                    "this is not one of the allowed codes: {}",
                    C::all_codes().join(", ")
                ),
            );
        }
        parsed
    }

    /// One or more codes separated by `;`; at least one required.
    pub fn codes<C: CodeList + Ord>(&mut self, name: &str) -> Vec<C> {
        self.list(name, true, |s| {
            C::parse_code(s).ok_or_else(|| {
                format!(
                    "{s:?} is not one of the allowed codes: {}",
                    C::all_codes().join(", ")
                )
            })
        })
    }

    /// A `;`-separated list of values, each parsed by `parse`; sorted and de-duplicated
    /// so the same set is always written the same way.
    pub fn list<T: Ord>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let v = self.raw(name);
        if v.is_empty() {
            if required {
                self.required_missing(name);
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        for part in v.split(';').map(str::trim) {
            if part.is_empty() {
                self.fail(name, v, "there is an empty item between the ';' separators");
                continue;
            }
            match parse(part) {
                Ok(x) => out.push(x),
                Err(reason) => self.fail(name, v, format!("{part}: {reason}")),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A required date.
    pub fn date(&mut self, name: &str) -> Option<NaiveDate> {
        let v = self.raw(name);
        if v.is_empty() {
            self.required_missing(name);
            return None;
        }
        self.opt_date(name)
    }

    /// An optional date of something that has happened (so not after today).
    pub fn opt_date(&mut self, name: &str) -> Option<NaiveDate> {
        let d = self.opt_planned_date(name)?;
        if d > self.today {
            self.fail(name, d.to_string(), "this date is in the future; only things that have already happened can be recorded");
            return None;
        }
        Some(d)
    }

    /// An optional date that may lie in the future (a goal's target date, a planned end).
    pub fn opt_planned_date(&mut self, name: &str) -> Option<NaiveDate> {
        let v = self.raw(name);
        if v.is_empty() {
            return None;
        }
        match parse_date(v) {
            Ok(d) if d.year() < 1900 => {
                self.fail(name, v, "this date is before 1900, which cannot be right");
                None
            }
            Ok(d) => Some(d),
            Err(reason) => {
                self.fail(name, v, reason);
                None
            }
        }
    }

    /// An optional number in `min..=max`; `whole` requires a whole number.
    pub fn number(&mut self, name: &str, min: f64, max: f64, whole: bool) -> Option<f64> {
        let v = self.raw(name);
        if v.is_empty() {
            return None;
        }
        let parsed: Option<f64> = v.parse().ok().filter(|x: &f64| x.is_finite());
        let Some(x) = parsed else {
            self.fail(name, v, "this is not a number");
            return None;
        };
        if whole && x.fract() != 0.0 {
            self.fail(name, v, "this must be a whole number");
            return None;
        }
        if x < min || x > max {
            self.fail(name, v, format!("this must be between {min} and {max}"));
            return None;
        }
        Some(x)
    }

    /// An optional measure, within its accepted range.
    pub fn measure<M: Ranged>(&mut self, name: &str) -> Option<M> {
        let x = self.number(name, M::min(), M::max(), M::WHOLE)?;
        match M::from_number(x) {
            Ok(m) => Some(m),
            Err(reason) => {
                let v = self.raw(name).to_string();
                self.fail(name, v, reason);
                None
            }
        }
    }

    /// A required measure.
    pub fn required_measure<M: Ranged>(&mut self, name: &str) -> Option<M> {
        if self.raw(name).is_empty() {
            self.required_missing(name);
            return None;
        }
        self.measure(name)
    }

    /// A required whole number in `min..=max`.
    pub fn required_int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        if self.raw(name).is_empty() {
            self.required_missing(name);
            return None;
        }
        self.number(name, min as f64, max as f64, true)
            .map(|x| x as i64)
    }

    /// An optional whole number in `min..=max`.
    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        self.number(name, min as f64, max as f64, true)
            .map(|x| x as i64)
    }
}
