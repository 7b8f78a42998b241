//! Pages in words a person reads: on every page a health trainer, a service manager and a
//! commissioner reach from their start page (the example dataset), the text shows no
//! code of a code list where it has words, no date written `YYYY-MM-DD` and no
//! `snake_case` or `dotted.name`. Analysts' downloads keep codes on purpose, and what is typed into
//! a form or held in an attribute is not text a person reads.

use dcrs_testkit::TestDb;
use dcrs_web::users::NewUser;
use std::collections::{BTreeMap, HashSet};

mod common;
use common::{Browser, PASSWORD};

/// The text of a page a person reads: the elements' text without the head, styles,
/// scripts and `<code>` (commands and tokens shown as they are typed), each element's
/// text on its own line, with the entities the templates write decoded.
fn visible_text(html: &str) -> Vec<String> {
    let body = html.split("<body").nth(1).unwrap_or(html);
    let mut out = Vec::new();
    let mut skip: Option<&str> = None;
    for piece in body.split('<').skip(1) {
        let (tag, text) = piece.split_once('>').unwrap_or((piece, ""));
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match skip {
            Some(open) if tag.starts_with('/') && name == open => {
                skip = None;
                continue;
            }
            Some(_) => continue,
            None if !tag.starts_with('/')
                && ["style", "script", "code", "svg"].contains(&name.as_str()) =>
            {
                skip = Some(
                    ["style", "script", "code", "svg"]
                        .into_iter()
                        .find(|n| *n == name)
                        .unwrap(),
                );
                continue;
            }
            None => {}
        }
        let text = text
            .replace("&#60;", "<")
            .replace("&#62;", ">")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&#38;", "&");
        let text = text.trim();
        if !text.is_empty() {
            out.push(text.to_string());
        }
    }
    out
}

/// Codes whose words differ from the code, for every code list: such a code shown alone
/// in a table cell or a summary list is a code where words belong.
fn codes_with_words() -> HashSet<String> {
    dcrs_domain::catalogue::all_lists()
        .iter()
        .flat_map(|list| list.words())
        .filter(|(code, words)| code != words)
        .map(|(code, _)| code.to_string())
        .collect()
}

/// What is wrong with one piece of text, if anything.
fn problem(text: &str, codes: &HashSet<String>) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let iso = (0..bytes.len()).any(|i| {
        (i == 0 || !digit(i - 1))
            && (0..4).all(|k| digit(i + k))
            && bytes.get(i + 4) == Some(&b'-')
            && digit(i + 5)
            && digit(i + 6)
            && bytes.get(i + 7) == Some(&b'-')
            && digit(i + 8)
            && digit(i + 9)
    });
    if iso {
        return Some("a date written YYYY-MM-DD");
    }
    let snake = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| {
            let parts: Vec<&str> = w.split('_').collect();
            parts.len() > 1
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        });
    if snake {
        return Some("a snake_case name");
    }
    let dotted = text.split_whitespace().any(|w| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() > 1
            && parts
                .iter()
                .all(|p| p.len() > 1 && p.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    });
    if dotted {
        return Some("a dotted name");
    }
    if codes.contains(text) {
        return Some("a code where its words belong");
    }
    None
}

#[tokio::test]
async fn pages_show_words_not_codes_iso_dates_or_snake_case() {
    let t = TestDb::sqlite().await;
    common::import(&t.db, &common::examples()).await;
    let accounts = [
        ("manager", "service_manager", Some("BPL"), None, None),
        ("trainer", "health_trainer", Some("BPL"), Some("W1"), None),
        ("commissioner", "commissioner", None, None, Some("ORG-BPL")),
    ];
    for (username, role, service, worker, org) in accounts {
        let n = NewUser {
            username: username.into(),
            display_name: format!("Pat {username}"),
            role: role.into(),
            service_ref: service.map(String::from),
            worker_ref: worker.map(String::from),
            org_ref: org.map(String::from),
            password: PASSWORD.into(),
            ..Default::default()
        };
        common::add_account(&t.db, &n).await;
    }
    let app = common::app_at_clock(&t.db).await;
    let codes = codes_with_words();
    // What was found: the problem and the text, with the pages it is on.
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut visited = 0;
    for user in ["trainer", "manager", "commissioner"] {
        let mut b = Browser::new(&app);
        b.sign_in(user, PASSWORD).await;
        let mut queue = vec!["/".to_string()];
        let mut seen = HashSet::new();
        while let Some(path) = queue.pop() {
            if !seen.insert(path.clone()) || seen.len() > 80 {
                continue;
            }
            let page = b.get(&path).await;
            if page.status.as_u16() != 200 || !page.body.contains("<html") {
                continue;
            }
            visited += 1;
            for text in visible_text(&page.body) {
                if let Some(why) = problem(&text, &codes) {
                    let pages = found.entry((why.to_string(), text)).or_default();
                    pages.push(format!("{user} {path}"));
                }
            }
            for href in page.body.split("href=\"").skip(1) {
                let href = href[..href.find('"').unwrap()].replace("&#38;", "&");
                let followed = href.starts_with('/')
                    && !href.contains("format=")
                    && !href.starts_with("/static")
                    && !href.starts_with("/api");
                if followed {
                    queue.push(href);
                }
            }
        }
    }
    let listed: Vec<String> = found
        .iter()
        .map(|((why, text), pages)| {
            let text: String = text.chars().take(120).collect();
            format!(
                "{why}: {text:?} on {} page(s): {}",
                pages.len(),
                pages.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    eprintln!("words checked on {visited} pages");
    assert!(visited >= 20, "only {visited} pages were reached");
    assert!(
        listed.is_empty(),
        "{} problems:\n{}",
        listed.len(),
        listed.join("\n")
    );
}
