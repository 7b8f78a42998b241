//! The catalogue's `codes_of` says which code list each field takes its values from
//! (forms offer them, the API's description lists them). Held against `parse_record` itself: every code of a field's
//! list reads without a problem on that field, and a value outside the list is refused
//! on it; a free-text field accepts anything.

use chrono::NaiveDate;
use dcrs_domain::catalogue::codes_of;
use dcrs_domain::record::{Entity, FieldKind, parse_record};

/// Problems on `field` saying the value is not a code (a code can still be refused by a
/// rule of its own: a client must consent to being recorded).
fn problems_on(entity: Entity, field: &'static str, value: &str) -> usize {
    let fields: Vec<(&'static str, String)> = vec![(field, value.to_string())];
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    match parse_record(entity, &fields, today) {
        Ok(_) => 0,
        Err(errors) => errors
            .iter()
            .filter(|e| e.field == field && e.reason.contains("not one of the allowed codes"))
            .count(),
    }
}

#[test]
fn every_listed_field_reads_exactly_its_codes() {
    let mut listed = 0;
    for e in Entity::ALL {
        for f in e.fields().iter().filter(|f| f.kind == FieldKind::Text) {
            match codes_of(e, f.name) {
                Some(list) => {
                    let codes: Vec<&str> = list.words().iter().map(|(c, _)| *c).collect();
                    let multi = list.several;
                    listed += 1;
                    assert!(!codes.is_empty());
                    for c in &codes {
                        assert_eq!(problems_on(e, f.name, c), 0, "{e:?}.{} = {c}", f.name);
                    }
                    if multi {
                        let two = format!("{};{}", codes[0], codes[codes.len() - 1]);
                        assert_eq!(problems_on(e, f.name, &two), 0, "{e:?}.{} = {two}", f.name);
                    }
                    assert!(
                        problems_on(e, f.name, "not-a-code") > 0,
                        "{e:?}.{} took any text",
                        f.name
                    );
                }
                None => {
                    // Free text, dates and area lists: not a code list. A value outside
                    // any list is either accepted or refused for its own reason (a date,
                    // an area code), never because it is not a code.
                    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
                    let fields: Vec<(&'static str, String)> = vec![(f.name, "not-a-code".into())];
                    if let Err(errors) = parse_record(e, &fields, today) {
                        for er in errors.iter().filter(|x| x.field == f.name) {
                            assert!(
                                !er.reason.contains("one of"),
                                "{e:?}.{} looks coded: {}",
                                f.name,
                                er.reason
                            );
                        }
                    }
                }
            }
        }
    }
    assert_eq!(listed, 37, "fields with a code list");
}
