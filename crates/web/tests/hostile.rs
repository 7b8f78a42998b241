//! Text a person could type that HTML or a URL would read as syntax, in every free-text
//! field and every reference of a service's records (the example dataset with its
//! service, clients, episodes, plans, goals and workers renamed), shown on every page a
//! manager and a health trainer open: escaped once in the HTML, and percent-encoded in
//! every link, so each link still leads to its own page.

use dcrs_testkit::TestDb;
use dcrs_web::Settings;
use dcrs_web::users::NewUser;
use std::path::Path;

mod common;
use common::{Browser, PASSWORD};

/// Appended to every reference and free text: a script tag, both quotes, `&`, and the
/// characters of a URL's path, fragment and query.
const HOSTILE: &str = "<script>x</script>\"'&/#?= ";

/// References renamed: a field of one of these names holds a reference, renamed the
/// same way in every file so that records still find their parents.
const REFERENCES: [&str; 9] = [
    "service_ref",
    "client_ref",
    "referral_ref",
    "episode_ref",
    "plan_ref",
    "goal_ref",
    "worker_ref",
    "lead_worker_ref",
    "session_ref",
];
const FREE_TEXT: [&str; 4] = ["given_name", "family_name", "description", "display_name"];

fn hostile_dataset(to: &Path) {
    for entry in std::fs::read_dir(common::examples()).unwrap() {
        let path = entry.unwrap().path();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        let mut writer = csv::Writer::from_path(to.join(path.file_name().unwrap())).unwrap();
        writer.write_record(&headers).unwrap();
        for row in reader.records() {
            let row = row.unwrap();
            let service = row.get(headers.iter().position(|h| h == "service_ref").unwrap_or(0));
            let ours = service == Some("BPL")
                || path.ends_with("services.csv") && row.get(0) == Some("BPL");
            let out: Vec<String> = headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| {
                    let rename = ours
                        && !v.is_empty()
                        && (REFERENCES.contains(&h) || FREE_TEXT.contains(&h));
                    if rename {
                        format!("{v}{HOSTILE}")
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            writer.write_record(&out).unwrap();
        }
        writer.flush().unwrap();
    }
}

/// The hostile text appears escaped once, never raw, and every link is encoded.
fn assert_escaped(what: &str, html: &str) {
    assert!(!html.contains("<script>x"), "{what}: a raw script tag");
    assert!(
        html.contains("&#60;script&#62;x"),
        "{what}: the text is not shown escaped"
    );
    assert!(!html.contains("&#38;#"), "{what}: text escaped twice");
    for href in html.split("href=\"").skip(1) {
        let href = href[..href.find('"').expect("a closed attribute")].replace("&#38;", "&");
        let path = href.split(['?', '#']).next().unwrap_or("");
        for c in [' ', '<', '>', '\'', '"'] {
            assert!(
                !href.contains(c),
                "{what}: {c:?} not encoded in link {href}"
            );
        }
        assert!(
            !path.contains("%3Cscript%3Ex%3C/script"),
            "{what}: a '/' in a reference left as a path separator in {href}"
        );
    }
}

#[tokio::test]
async fn hostile_text_in_every_reference_and_free_text_is_escaped_and_encoded_everywhere() {
    let t = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    hostile_dataset(dir.path());
    common::import(&t.db, dir.path()).await;
    let service = format!("BPL{HOSTILE}");
    for (username, role) in [
        ("manager", "service_manager"),
        ("trainer", "health_trainer"),
    ] {
        let n = NewUser {
            username: username.into(),
            display_name: format!("Pat{HOSTILE}"),
            role: role.into(),
            service_ref: Some(service.clone()),
            worker_ref: (role == "health_trainer").then(|| format!("W1{HOSTILE}")),
            password: PASSWORD.into(),
            ..Default::default()
        };
        common::add_account(&t.db, &n).await;
    }
    let app = dcrs_web::router(
        dcrs_web::App::new(t.db.clone(), Settings::default())
            .await
            .unwrap(),
    );
    let mut visited = 0;
    for user in ["manager", "trainer"] {
        let mut b = Browser::new(&app);
        b.sign_in(user, PASSWORD).await;
        // Start from the start page and follow every link into the service, as a person
        // would, to the pages of clients and episodes.
        let mut queue = vec!["/".to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = queue.pop() {
            if !seen.insert(path.clone()) || seen.len() > 60 {
                continue;
            }
            let page = b.get(&path).await;
            assert_eq!(page.status.as_u16(), 200, "{user} {path}");
            if !page.body.contains("<html") {
                continue;
            }
            assert_escaped(&format!("{user} {path}"), &page.body);
            visited += 1;
            for href in page.body.split("href=\"").skip(1) {
                let href = href[..href.find('"').unwrap()].replace("&#38;", "&");
                let inside = href.starts_with("/services/BPL")
                    && !href.contains("format=")
                    && !href.contains("/reports/");
                if inside {
                    queue.push(href);
                }
            }
        }
    }
    eprintln!("hostile text checked on {visited} pages");
    assert!(visited >= 10, "only {visited} pages were reached");
}
