//! A snapshot of every page, as each role sees it, on fixed data (`common::dataset`): a
//! change to any page shows up as a reviewed change to its snapshot
//! (`tests/snapshots/pages__*.snap`). The pages run on a fixed clock ([`CLOCK`]), so the
//! dates, quarters and years they take from today are shown as they are. What still
//! changes from run to run is replaced by a name in brackets: the session's form token,
//! one-time keys, the references forms make up, and the times and date the store
//! stamps on what it writes.
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

use common::CLOCK;

/// The settings of every page in these snapshots: the defaults on [`CLOCK`].
fn settings() -> Settings {
    Settings {
        clock: Some(CLOCK.parse().expect("a time")),
        ..Settings::default()
    }
}

/// Times of this run replaced: RFC 3339 timestamps, `HH:MM:SS` and `HH:MM` clock times,
/// and the day of the run in the two ways pages write a date (the store stamps what it
/// writes with the system clock).
fn redact_times(page: &str) -> String {
    let today = dcrs_domain::types::uk_today(chrono::Utc::now());
    let page = page
        .replace(&today.to_string(), "[day of the run]")
        .replace(&today.format("%-d %B %Y").to_string(), "[day of the run]");
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

/// References the forms make up (`EP-` and ten hex digits, and the like) named by their
/// kind.
fn redact_made_up(page: &str) -> String {
    let mut out = page.to_string();
    for prefix in ["EP-", "REF-", "APP-", "ASM-", "SES-", "PLAN-"] {
        let mut at = 0;
        while let Some(found) = out[at..].find(prefix) {
            let start = at + found;
            let end = start + prefix.len();
            let hex = out[end..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if hex == 10 {
                out.replace_range(start..end + hex, &format!("[{prefix}made up]"));
            }
            at = end;
        }
    }
    out
}

fn redact(page: &str) -> String {
    let page = redact_made_up(page);
    let page = page.as_str();
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
    let app = app(&t.db, settings()).await;
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
    episode_pages(&app).await;
}

/// The fields a form sends: its inputs with their values, each radio group and each
/// select with its first option that is not blank.
fn form_fields(page: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let form = &page[page
        .find("<form method=\"post\" action=\"/services")
        .expect("a form")..];
    let mut out = Vec::new();
    for part in form.split("<input").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        // A radio group sends its first option.
        if tag.contains("type=\"radio\"") && out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push((name, attr(tag, "value").unwrap_or_default()));
    }
    for part in form.split("<select").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let body = &part[..part.find("</select>").unwrap()];
        let first = body
            .split("<option")
            .skip(1)
            .filter_map(|o| attr(o, "value"))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        out.push((attr(tag, "name").unwrap(), first));
    }
    out
}

/// An episode opened through the referral form by the trainer (on a fixed day), then
/// its page and the page of each thing that can be recorded in it. The references the
/// form makes up are named in brackets.
async fn episode_pages(app: &axum::Router) {
    let mut b = Browser::new(app);
    b.sign_in("trainer", PASSWORD).await;
    let path = "/services/S1/clients/C1/episodes/new";
    let form = b.get(path).await;
    let mut fields = form_fields(&form.body);
    for (name, value) in fields.iter_mut() {
        match name.as_str() {
            "received_on" | "first_contact_on" => *value = "2010-06-01".into(),
            "kind" => *value = "full".into(),
            "reason" => *value = "Wants to eat better".into(),
            _ => {}
        }
    }
    fields.retain(|(n, _)| n != "do");
    fields.push(("do".into(), "save".into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let opened = b.post(path, &pairs).await;
    assert_eq!(opened.status.as_u16(), 303, "{}", opened.body);
    let episode = opened
        .location()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let name = |p: &str| p.replace(&episode, "[episode]");
    let mut pages = vec![format!("/services/S1/episodes/{episode}")];
    for flow in [
        "baseline",
        "plan",
        "session",
        "onward",
        "wider-issue",
        "exit",
        "close",
        "follow-up",
    ] {
        pages.push(format!("/services/S1/episodes/{episode}/{flow}"));
    }
    for path in pages {
        let page = b.get(&path).await;
        assert_eq!(page.status.as_u16(), 200, "{path}");
        let body = redact(&page.body);
        insta::assert_snapshot!(snapshot_name("trainer", &name(&path)), body);
    }
}
