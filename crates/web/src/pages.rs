//! How pages say things a person reads: a stored date as people in the UK write it, and
//! a code in the catalogue's words. The HTML of pages is in `templates/` and
//! [`crate::view`].

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

/// A person's name as written: given and family names with a space between, either
/// left out when not recorded.
pub(crate) fn full_name(given: &Option<String>, family: &Option<String>) -> String {
    [given, family]
        .iter()
        .filter_map(|n| n.as_deref().map(str::trim))
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
