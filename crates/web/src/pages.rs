//! The helpers of pages not yet on templates: each renders a component of
//! [`crate::view`] (so the layout, form parts, tables and summary lists are the
//! templates' HTML) and returns it as text to be joined into a page. Text these pages
//! put between components passes through [`esc`]. They go as pages move to templates.

use crate::users::{FieldError, User};
use crate::view::{
    Cell, Csrf, ErrorSummary, Input, Layout, Markup, Page, Select, SummaryList, Table,
};

/// Escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    dcrs_report::chart::escape(text)
}

/// The page: the base layout (header with the account and a sign-out button when signed
/// in, the title) around a body of HTML.
pub fn layout(title: &str, user: Option<(&User, &str)>, body: &str) -> String {
    let layout = match user {
        Some((u, csrf)) => Layout::signed_in(title, u, csrf),
        None => Layout::public(title),
    };
    Markup::render(&Page {
        layout,
        body: Markup::from_legacy(body.to_string()),
    })
    .into_string()
}

/// The error summary at the top of a form.
pub fn error_summary(errors: &[FieldError]) -> String {
    Markup::render(&ErrorSummary { errors }).into_string()
}

/// A labelled text input with its hint and error.
pub fn input(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: Option<&str>,
    errors: &[FieldError],
    autocomplete: &str,
) -> String {
    let mut i = Input::text(name, label, value, errors)
        .kind(kind)
        .autocomplete(autocomplete);
    i.hint = hint;
    Markup::render(&i).into_string()
}

/// A select with options (value, label).
pub fn select(
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    selected: &str,
    errors: &[FieldError],
) -> String {
    Markup::render(&Select {
        name,
        label,
        options: options.to_vec(),
        selected,
        error: errors
            .iter()
            .find(|e| e.field == name)
            .map(|e| e.message.as_str()),
    })
    .into_string()
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    Markup::render(&Csrf { token }).into_string()
}

/// A table with a caption. The cells are HTML: callers escape text with [`esc`] (pages
/// on templates use [`crate::view::Table`] with [`Cell::Text`], escaped by construction).
pub fn table(caption: &str, headings: &[&str], rows: &[Vec<String>]) -> String {
    Markup::render(&Table {
        caption,
        headings,
        rows: rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| Cell::Markup(Markup::from_legacy(c.clone())))
                    .collect()
            })
            .collect(),
    })
    .into_string()
}

/// A summary list of (key, value) pairs; values are escaped.
pub fn summary(pairs: &[(&str, String)]) -> String {
    Markup::render(&SummaryList {
        rows: pairs.to_vec(),
    })
    .into_string()
}

/// A stored date (`YYYY-MM-DD`) as people in the UK write it: "7 December 2026". Text
/// that is not such a date is shown as it is.
pub(crate) fn uk_date(iso: &str) -> String {
    chrono::NaiveDate::parse_from_str(iso.get(..10).unwrap_or(iso), "%Y-%m-%d")
        .map_or_else(|_| iso.to_string(), |d| d.format("%-d %B %Y").to_string())
}

/// The words a person reads for a code of a field, from the dataset's catalogue; the
/// code itself when the field has no list or the code is not in it.
pub(crate) fn words(entity: dcrs_domain::Entity, field: &str, code: &str) -> String {
    dcrs_domain::catalogue::codes_of(entity, field)
        .and_then(|c| c.words_for(code))
        .map_or_else(|| code.to_string(), str::to_string)
}
