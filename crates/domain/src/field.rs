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

impl FieldSource for std::collections::HashMap<&str, String> {
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

/// The reason given for a required field left blank.
pub const REQUIRED: &str = "this is required and was left blank";

/// The longest reference (`*_ref`), in characters.
pub const REFERENCE_LIMIT: usize = 64;
/// The longest `;`-separated list (such as a service's target LSOAs), in characters.
pub const LIST_LIMIT: usize = 20_000;

/// The longest text a free-text field may hold, in characters: enough for any real name,
/// code or note, and a bound on what one record can make the system store and print.
pub fn text_limit(field: &str) -> usize {
    match field {
        "given_name" | "family_name" | "display_name" => 100,
        "name" => 200,
        "ods_code" | "gp_practice_code" => 12,
        "reason" | "description" => 500,
        "notes" => 2_000,
        _ => 200,
    }
}

/// Reads typed fields, keeping every error so a record's problems are reported together.
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
    /// cannot be stored in PostgreSQL, and the rest are never typed on purpose), and no
    /// more than its field's limit ([`text_limit`]).
    fn check_text(&mut self, name: &str, v: &str) {
        if self.too_long(name, v, text_limit(name)) {
            return;
        }
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

    /// Refuses a value longer than `limit` characters, quoting only its start (the value
    /// may be megabytes long). Returns whether it was too long.
    fn too_long(&mut self, name: &str, v: &str, limit: usize) -> bool {
        let n = v.chars().count();
        if n <= limit {
            return false;
        }
        let start: String = v.chars().take(40).collect();
        self.fail(
            name,
            format!("{}…", start.escape_debug()),
            format!("this is {n} characters long; at most {limit} can be stored"),
        );
        true
    }

    /// A required reference (`*_ref`): free text without separators or control
    /// characters, and not `.` or `..`, which a web address cannot carry as a part.
    pub fn reference(&mut self, name: &str) -> String {
        let v = self.raw(name).to_string();
        if v.is_empty() {
            self.required_missing(name);
        }
        if self.too_long(name, &v, REFERENCE_LIMIT) {
            return v;
        }
        if v.chars().any(|c| c.is_control() || c == ';') {
            self.fail(
                name,
                v.escape_debug().to_string(),
                "a reference must be at most 64 characters, without ';' or control characters",
            );
        } else if v == "." || v == ".." {
            self.fail(
                name,
                &v,
                "a reference cannot be only '.' or '..': it must name the record, like C0001",
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
        if self.too_long(name, v, LIST_LIMIT) {
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

/// The characters that make a spreadsheet read a cell as a formula (OWASP's list for
/// CSV injection), and the apostrophe that marks a cell neutralised.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// Text as it is written into a CSV file that people open in a spreadsheet: text that
/// would start a formula (`=`, `+`, `-`, `@`, tab, carriage return) gets an apostrophe in
/// front, as does text that already starts with one, so that [`from_spreadsheet_safe`]
/// gives back exactly what was stored. Numbers (`-1.5`) are left as they are.
pub fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some(c) if FORMULA_STARTS.contains(&c) && text.parse::<f64>().is_err() => {
            format!("'{text}").into()
        }
        _ => text.into(),
    }
}

/// The stored text of a CSV cell written by [`spreadsheet_safe`]: an apostrophe is taken
/// off only where it stands before a character that would start a formula (or another
/// apostrophe). Text typed with a leading apostrophe before anything else is kept whole.
pub fn from_spreadsheet_safe(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod spreadsheet_tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored_exactly() {
        for text in [
            "=HYPERLINK(\"http://example.org\")",
            "+cmd|' /C calc'!A0",
            "@SUM(A1)",
            "-2+3",
            "\tx",
            "\rx",
            "'=already",
            "''",
            "'",
            "'plain",
            "plain",
            "-1.5",
            "",
        ] {
            let safe = spreadsheet_safe(text);
            assert!(
                !safe.starts_with(['=', '+', '@', '\t', '\r'])
                    && (!safe.starts_with('-') || safe.parse::<f64>().is_ok()),
                "{safe:?}"
            );
            assert_eq!(from_spreadsheet_safe(&safe), text, "{text:?}");
        }
    }
}
