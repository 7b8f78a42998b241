//! Every option of every select and radio group on every capture form, posted through the page, is
//! accepted by the dataset's rules for its field: a form can offer nothing the parser
//! refuses (the client form once offered disability "unknown", which the standard
//! spells `not_stated`). The options' labels are words, never the stored codes.

use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

/// (name, value) pairs.
type Pairs = Vec<(String, String)>;

/// The inputs of a page's forms with their values, and its selects and radio groups
/// with every option's value and label.
fn form_fields(page: &str) -> (Pairs, Vec<(String, Pairs)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let mut inputs = Vec::new();
    let mut selects: Vec<(String, Pairs)> = Vec::new();
    for part in page.split("<input").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = attr(tag, "value").unwrap_or_default();
        if tag.contains("type=\"radio\"") {
            // A radio button's option: its value and the words of its label.
            let label = part.split("<label").nth(1).unwrap();
            let label =
                label[label.find('>').unwrap() + 1..label.find("</label>").unwrap()].to_string();
            match selects.iter_mut().find(|(n, _)| *n == name) {
                Some((_, options)) => options.push((value, label)),
                None => selects.push((name, vec![(value, label)])),
            }
            continue;
        }
        inputs.push((name, value));
    }
    for part in page.split("<select").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let name = attr(tag, "name").unwrap();
        let body = &part[..part.find("</select>").unwrap()];
        let options = body
            .split("<option")
            .skip(1)
            .map(|o| {
                let value = attr(o, "value").unwrap_or_default();
                let label = o[o.find('>').unwrap() + 1..o.find("</option>").unwrap()].to_string();
                (value, label)
            })
            .filter(|(v, _)| !v.is_empty())
            .collect();
        selects.push((name, options));
    }
    (inputs, selects)
}

/// A value for a field that a form renders empty, so that the rest of the form is valid.
fn fill(name: &str) -> &'static str {
    match name {
        "given_name" => "Ann",
        "family_name" => "Walker",
        "date_of_birth" => "1980-01-01",
        "date_of_birth-day" | "date_of_birth-month" => "1",
        "date_of_birth-year" => "1980",
        "goal1_description" => "Walk to work twice a week",
        "goal1_target_on" => "2027-06-30",
        "weight_kg" => "80",
        "height_cm" => "170",
        "duration_min" => "30",
        _ => "",
    }
}

#[tokio::test]
async fn every_option_of_every_capture_form_is_accepted_for_its_field() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut b = Browser::new(&app);
    b.sign_in("manager", PASSWORD).await;
    // An episode to post the episode forms on.
    let form = b.get("/services/S1/clients/C1/episodes/new").await;
    let (inputs, selects) = form_fields(&form.body);
    let mut values: Vec<(String, String)> = inputs
        .into_iter()
        .map(|(n, v)| {
            let v = if v.is_empty() {
                fill(&n).to_string()
            } else {
                v
            };
            (n, v)
        })
        .collect();
    for (name, options) in &selects {
        values.push((name.clone(), options[0].0.clone()));
    }
    values.retain(|(n, _)| n != "do");
    values.push(("do".into(), "save".into()));
    let set = |values: &mut Vec<(String, String)>, k: &str, v: &str| {
        for (n, x) in values.iter_mut() {
            if n == k {
                *x = v.into();
            }
        }
    };
    set(&mut values, "kind", "full");
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let opened = b.post("/services/S1/clients/C1/episodes/new", &pairs).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let episode = opened
        .location()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // Each form: its address, and the page shown there (the client form's second page
    // is shown after its first is answered, and posts to the same address).
    let mut pages: Vec<(String, Option<String>)> = vec![
        ("/services/S1/clients/new".to_string(), None),
        ("/services/S1/clients/C1/episodes/new".to_string(), None),
    ];
    let first = b.get("/services/S1/clients/new").await;
    let (inputs, radios) = form_fields(&first.body);
    let mut answered: Vec<(String, String)> = inputs
        .iter()
        .filter(|(n, _)| n != "do")
        .map(|(n, v)| {
            (
                n.clone(),
                if v.is_empty() {
                    fill(n).into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    answered.extend(radios.iter().map(|(n, o)| (n.clone(), o[0].0.clone())));
    answered.push(("do".into(), "continue".into()));
    let pairs: Vec<(&str, &str)> = answered
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let second = b.post("/services/S1/clients/new", &pairs).await;
    assert!(second.body.contains("Page 2 of 2"), "{}", second.body);
    pages.push(("/services/S1/clients/new".to_string(), Some(second.body)));
    for flow in [
        "baseline",
        "plan",
        "session",
        "onward",
        "wider-issue",
        "exit",
        "follow-up",
        "close",
    ] {
        pages.push((format!("/services/S1/episodes/{episode}/{flow}"), None));
    }
    let mut posted = 0;
    for (path, shown) in &pages {
        let body = match shown {
            Some(body) => body.clone(),
            None => {
                let page = b.get(path).await;
                assert_eq!(page.status, 200, "{path}");
                page.body
            }
        };
        let (inputs, selects) = form_fields(&body);
        assert!(
            !selects.is_empty() || path.ends_with("/close"),
            "{path} has selects"
        );
        for (field, options) in &selects {
            for (code, label) in options {
                // The words a person reads, not the stored code.
                assert!(
                    !label.contains('_') && label != code,
                    "{path}: {field} offers {code:?} labelled {label:?}"
                );
                let mut form: Vec<(String, String)> = inputs
                    .iter()
                    .filter(|(n, _)| n != "do")
                    .map(|(n, v)| {
                        let v = if v.is_empty() {
                            fill(n).to_string()
                        } else {
                            v.clone()
                        };
                        (n.clone(), v)
                    })
                    .collect();
                for (other, opts) in &selects {
                    let v = if other == field {
                        code.clone()
                    } else if other.starts_with("goal2") || other.starts_with("goal3") {
                        String::new()
                    } else {
                        opts[0].0.clone()
                    };
                    form.push((other.clone(), v));
                }
                form.push(("do".into(), "save".into()));
                let pairs: Vec<(&str, &str)> =
                    form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let answer = b.post(path, &pairs).await;
                assert!(
                    !answer.body.contains(&format!("<a href=\"#{field}\">")),
                    "{path}: {field} = {code:?} ({label}) is offered but refused:\n{}",
                    &answer.body[answer.body.find("error-summary").unwrap_or(0)..]
                        .chars()
                        .take(600)
                        .collect::<String>()
                );
                posted += 1;
            }
        }
    }
    assert!(posted > 150, "{posted} options posted");
}
