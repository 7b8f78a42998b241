//! What a person reads in a report's pages for the codes its tables carry: the
//! catalogue's words for a code of the dataset's lists, a field's label for a field's
//! name, and words for the reports' own names (delivery models). The downloads (JSON,
//! CSV, spreadsheet) keep the codes, which is what analysts join on.

use dcrs_domain::{Entity, catalogue};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The words of the reports' own codes.
fn own(code: &str) -> Option<&'static str> {
    Some(match code {
        "insufficient_data" => "Not enough data",
        "telephone_triage" => "Telephone triage",
        "primary_care" => "Primary care",
        "community_peer" => "Community peer support",
        "mixed" => "Mixed",
        "nhs_sub_national" => "NHS sub-national statistics",
        _ => return None,
    })
}

/// Every code of every list with its words, where all the lists that hold the code give
/// it the same words; and every field's name with its label.
fn known() -> &'static HashMap<&'static str, String> {
    static KNOWN: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut words: HashMap<&'static str, Option<&'static str>> = HashMap::new();
        for list in catalogue::all_lists() {
            for (code, said) in list.words() {
                let entry = words.entry(code).or_insert(Some(said));
                if *entry != Some(said) {
                    *entry = None;
                }
            }
        }
        // A code whose lists word it differently reads as itself in sentence case.
        let mut out: HashMap<&'static str, String> = words
            .into_iter()
            .map(|(code, said)| {
                (
                    code,
                    said.map_or_else(|| sentence_case(code), str::to_string),
                )
            })
            .collect();
        for e in Entity::ALL {
            for about in catalogue::fields_of(e) {
                out.entry(about.name)
                    .or_insert_with(|| about.label_with_unit());
            }
        }
        out
    })
}

/// "not_stated" as "Not stated".
fn sentence_case(code: &str) -> String {
    let text = code.replace('_', " ");
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A text cell as a person reads it: a date as people in the UK write it, a code or a
/// field's name in words, each of a list of codes separated by `;`, and a code with its
/// group in brackets ("gp (clinical)"); any other text as it is.
pub fn said(text: &str) -> String {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.format("%-d %B %Y").to_string();
    }
    if let Some(w) = own(text) {
        return w.to_string();
    }
    if let Some(w) = known().get(text) {
        return w.clone();
    }
    if text.contains(';') {
        return text.split(';').map(said).collect::<Vec<_>>().join(", ");
    }
    let is_code = |t: &str| own(t).is_some() || known().contains_key(t);
    if let Some((code, group)) = text
        .strip_suffix(')')
        .and_then(|t| t.split_once(" ("))
        .filter(|(code, group)| is_code(code) && is_code(group))
    {
        return format!("{} ({})", said(code), said(group).to_lowercase());
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::said;

    #[test]
    fn codes_and_field_names_in_words() {
        assert_eq!(
            said("friend_or_family (community)"),
            "Friend or family (community)"
        );
        assert_eq!(said("height_cm"), "Height (cm)");
        assert_eq!(said("insufficient_data"), "Not enough data");
        assert_eq!(said("2010-11 Q3"), "2010-11 Q3");
        assert_eq!(said("All quintiles"), "All quintiles");
        assert_eq!(said("2008-04-01"), "1 April 2008");
        assert_eq!(said("clinical"), "Clinical");
        assert_eq!(said("Share (95% CI)"), "Share (95% CI)");
        assert_eq!(said("self;gp"), "Self-referral, GP");
    }
}
