//! A snapshot of every page, as each role sees it, on fixed data (`common::dataset`): a
//! change to any page shows up as a reviewed change to its snapshot
//! (`tests/snapshots/pages__*.snap`). What changes from run to run is replaced by a
//! name in brackets: the session's form token, one-time keys, today's date and times.
//! A report page is kept up to its first report: the reports themselves have their own
//! snapshots in the report crate.

use dcrs_testkit::TestDb;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

/// The value of every `name="…" value="…"` input of these names replaced by `[name]`.
fn redact_inputs(page: &str, names: &[&str]) -> String {
    let mut out = page.to_string();
    for name in names {
        let key = format!("name=\"{name}\" value=\"");
        let mut at = 0;
        while let Some(found) = out[at..].find(&key) {
            let start = at + found + key.len();
            let end = start + out[start..].find('"').expect("a closed value");
            out.replace_range(start..end, &format!("[{name}]"));
            at = start;
        }
    }
    out
}

/// Times of this run replaced: RFC 3339 timestamps, `HH:MM:SS` and `HH:MM` clock times,
/// today's date in the forms' two ways of writing it, and the quarters and financial
/// year that pages take from today when the data hold nothing later.
fn redact_times(page: &str) -> String {
    use dcrs_domain::types::{FinancialYear, Quarter};
    let today = dcrs_domain::types::uk_today(chrono::Utc::now());
    let this = Quarter::containing(today);
    let before = Quarter::containing(this.first_day() - chrono::Days::new(1));
    let page = page
        .replace(&today.to_string(), "[today]")
        .replace(&today.format("%-d %B %Y").to_string(), "[today]")
        .replace(&this.to_string(), "[this quarter]")
        .replace(&this.to_string().replace(' ', ""), "[this quarter]")
        .replace(&before.to_string(), "[last quarter]")
        .replace(&FinancialYear::containing(today).to_string(), "[this year]");
    let bytes = page.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        // A clock time: two digits, ':', two digits (and perhaps ':' and two more), not
        // inside a longer number.
        let clock = digit(i)
            && digit(i + 1)
            && bytes.get(i + 2) == Some(&b':')
            && digit(i + 3)
            && digit(i + 4)
            && (i == 0 || !digit(i - 1));
        if clock {
            let mut end = i + 5;
            if bytes.get(end) == Some(&b':') && digit(end + 1) && digit(end + 2) {
                end += 3;
            }
            while end < bytes.len() && (bytes[end] == b'.' || bytes[end].is_ascii_digit()) {
                end += 1;
            }
            if matches!(bytes.get(end), Some(b'Z') | Some(b'+')) {
                end += if bytes[end] == b'Z' { 1 } else { 6 };
            }
            out.push_str("[time]");
            i = end;
            continue;
        }
        let c = page[i..].chars().next().expect("a character");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn redact(page: &str) -> String {
    let page = match (page.find("<style>"), page.find("</style>")) {
        (Some(a), Some(b)) => format!(
            "{}<style>[the reports' stylesheet]{}",
            &page[..a],
            &page[b..]
        ),
        _ => page.to_string(),
    };
    let page = match page.find("<article") {
        Some(at) => format!(
            "{}[the reports: see the report crate's snapshots]",
            &page[..at]
        ),
        None => page.to_string(),
    };
    redact_times(&redact_inputs(&page, &["csrf", "once"]))
}

/// A name for a page's snapshot: the user and the address in letters and digits.
fn snapshot_name(user: &str, path: &str) -> String {
    let path: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{user}{path}")
}

#[tokio::test]
async fn every_page_of_every_role_matches_its_snapshot() {
    let t = TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut anyone = Browser::new(&app);
    let login = anyone.get("/login").await;
    insta::assert_snapshot!("login", redact(&login.body));
    let plan: [(&str, &[&str]); 5] = [
        (
            "trainer",
            &[
                "/",
                "/services/S1/caseload",
                "/services/S1/clients",
                "/services/S1/clients/new",
                "/services/S1/clients/C1",
                "/services/S1/clients/C1/episodes/new",
                "/account/password",
                "/account/tokens",
                "/services/S2/clients",
            ],
        ),
        (
            "manager",
            &[
                "/",
                "/services/S1/dashboard",
                "/services/S1/caseload",
                "/services/S1/staff",
                "/services/S1/configuration",
                "/services/S1/audit",
                "/services/S1/reports/activity?period=2010-11",
                "/reports",
            ],
        ),
        (
            "commissioner",
            &["/", "/services/S1/reports/pack?period=2010-11"],
        ),
        (
            "analyst",
            &[
                "/",
                "/reports",
                "/reports/view?kind=activity&period=2010-11&services=S1",
                "/patterns/view?services=S1",
                "/extracts",
            ],
        ),
        (
            "admin",
            &["/", "/admin/users", "/admin/projects", "/admin/releases"],
        ),
    ];
    for (user, pages) in plan {
        let mut b = Browser::new(&app);
        b.sign_in(user, PASSWORD).await;
        for path in pages {
            let page = b.get(path).await;
            assert!(
                matches!(page.status.as_u16(), 200 | 404),
                "{user} {path}: {}",
                page.status
            );
            insta::assert_snapshot!(snapshot_name(user, path), redact(&page.body));
        }
    }
}
