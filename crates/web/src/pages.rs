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

/// A stored time (RFC 3339, UTC) as people in the UK read it, in UK local time:
/// "7 December 2026 at 16:51". Text that is not such a time is shown as it is.
pub(crate) fn uk_time(stored: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stored).map_or_else(
        |_| stored.to_string(),
        |t| {
            let local = dcrs_domain::types::uk_time(t.with_timezone(&chrono::Utc));
            local.format("%-d %B %Y at %H:%M").to_string()
        },
    )
}

/// What an entry of the audit log records, in words; the action's name when it has
/// none here.
pub(crate) fn action_words(action: &str) -> &str {
    match action {
        "auth.login" => "Signed in",
        "auth.login.failed" => "Sign-in failed",
        "auth.login.refused" => "Sign-in refused (account locked)",
        "auth.logout" => "Signed out",
        "auth.second_factor" => "Entered a security code",
        "auth.second_factor.failed" => "Security code wrong",
        "access.denied" => "Refused a page not theirs to see",
        "view.caseload" => "Viewed the caseload",
        "view.clients" => "Viewed the client list",
        "view.client" => "Viewed a client's record",
        "view.episode" => "Viewed an episode",
        "view.form" => "Opened a form",
        "view.record" | "view.records" => "Viewed records",
        "view.audit" => "Viewed the audit trail",
        "view.configuration" => "Viewed the configuration",
        "record.add" => "Added a record",
        "service.add" => "Added the service",
        "client.view" => "Viewed a client's record",
        "audit.chain.opened" => "Started the audit log",
        "backup" => "Took a backup",
        "restore" => "Restored a backup",
        "export" => "Exported records",
        "user.demo_password" => "Set a demonstration password",
        "record.update" => "Changed a record",
        "record.remove" => "Removed a record entered in error",
        "draft.save" => "Kept a draft",
        "user.add" => "Added an account",
        "user.disable" => "Disabled an account",
        "user.unlock" => "Unlocked an account",
        "user.password.change" => "Changed their password",
        "user.second_factor.set" => "Set up a second factor",
        "token.create" => "Made an API token",
        "token.revoke" => "Revoked an API token",
        "report.release" => "Released reports",
        "report.release.uncontrolled" => "Released exact reports",
        "extract.release" => "Released a research extract",
        "project.register" => "Registered a research project",
        "import.dry_run" => "Checked an import",
        "export.fhir" => "Exported FHIR bundles",
        "refdata.load" => "Loaded reference data",
        "subject_access" => "Produced everything held about a client",
        "client.erase" => "Erased a client and their records",
        "client.merge" => "Merged two records of one client",
        "view.duplicates" => "Viewed the possible duplicate clients",
        "client.restrict" => "Restricted processing of a client's records",
        "client.restrict.lift" => "Lifted the restriction on a client's records",
        "retention.set" => "Changed the retention period",
        "retention.dry_run" => "Listed the clients due for erasure",
        "retention.apply" => "Erased the clients due under the retention period",
        other => other,
    }
}

/// A date as people in the UK type it: day, month and year, with `/`, `-`, `.` or
/// spaces between, the month a number or a name ("31/5/1980", "31 May 1980"); also
/// `YYYY-MM-DD`.
pub(crate) fn typed_date(text: &str) -> Option<chrono::NaiveDate> {
    let text = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d);
    }
    let parts: Vec<&str> = text
        .split(['/', '-', '.', ' ', ','])
        .filter(|p| !p.is_empty())
        .collect();
    let [day, month, year] = parts.as_slice() else {
        return None;
    };
    let month = month.parse::<u32>().ok().or_else(|| {
        let m = month.to_lowercase();
        (1..=12u32).find(|n| {
            let name = chrono::Month::try_from(*n as u8)
                .expect("1 to 12")
                .name()
                .to_lowercase();
            m.len() >= 3 && name.starts_with(&m)
        })
    })?;
    let year = match year.len() {
        4 => year.parse().ok()?,
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(year, month, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_people_type_them() {
        let d = chrono::NaiveDate::from_ymd_opt(1980, 5, 31);
        for typed in [
            "31/5/1980",
            "31/05/1980",
            "31-05-1980",
            "31 May 1980",
            "31 may 1980",
            "1980-05-31",
            " 31.5.1980 ",
        ] {
            assert_eq!(typed_date(typed), d, "{typed}");
        }
        for typed in ["31/5/80", "31/13/1980", "Ann", "31 Ma 1980", "5/1980"] {
            assert_eq!(typed_date(typed), None, "{typed}");
        }
    }

    #[test]
    fn times_in_uk_local_time() {
        assert_eq!(uk_time("2026-07-01T12:05:00Z"), "1 July 2026 at 13:05");
        assert_eq!(uk_time("2026-12-07T16:51:28Z"), "7 December 2026 at 16:51");
        assert_eq!(uk_time("not a time"), "not a time");
    }
}
