//! One way in: the same client entered by file import, by the registration form and by
//! the API is stored as the same record, and one bad value is refused by each, in its
//! own terms (file and line; the form's field with what was typed kept; a JSON pointer),
//! with nothing stored.

use axum::body::Body;
use axum::http::{Request, header};
use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use serde_json::{Value, json};

mod common;
use common::{Browser, PASSWORD, app};

/// The client's stored values, every column but its own reference, ids and the way it
/// was entered.
async fn stored(db: &dcrs_store::Database, client_ref: &str) -> Vec<(&'static str, String)> {
    let mut found = None;
    db.for_each_row(dcrs_domain::Entity::Client, |row| {
        if row
            .iter()
            .any(|(k, v)| *k == "client_ref" && v == client_ref)
        {
            found = Some(row);
        }
    })
    .await
    .unwrap();
    found
        .unwrap_or_else(|| panic!("{client_ref} is stored"))
        .into_iter()
        .filter(|(k, _)| *k != "client_ref")
        .collect()
}

const DOB: &str = "1975-03-02";

fn form(csrf: &str, dob: &str) -> Vec<(String, String)> {
    [
        ("csrf", csrf),
        ("do", "save"),
        ("given_name", "Cara"),
        ("family_name", "O'Neill"),
        ("date_of_birth", dob),
        ("sex", "female"),
        ("postcode", ""),
        ("nhs_number", ""),
        ("ethnicity", "J"),
        ("gp_registered", "yes"),
        ("gp_practice_code", ""),
        ("employment", "employed"),
        ("disability", "not_stated"),
        ("consent_to_record", "yes"),
        ("consent_to_share_with_gp", "no"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn body(reference: &str, dob: &str) -> Value {
    json!({
        "client_ref": reference, "given_name": "Cara", "family_name": "O'Neill",
        "date_of_birth": dob, "sex": "female", "ethnicity": "J", "postcode": null,
        "nhs_number": null, "gp_registered": "yes", "gp_practice_code": null,
        "employment": "employed", "disability": "not_stated", "consent_to_record": "yes",
        "consent_to_share_with_gp": "no",
    })
}

fn file(reference: &str, dob: &str) -> String {
    format!(
        "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n\
         X1,S1,Xan,Other,,1960-01-01,male,A,,yes,,employed,no,yes,yes\n\
         {reference},S1,Cara,O'Neill,,{dob},female,J,,yes,,employed,not_stated,yes,no\n"
    )
}

async fn token(b: &mut Browser) -> String {
    let page = b.get("/account/tokens").await;
    let csrf = page.csrf();
    let made = b
        .post(
            "/account/tokens",
            &[
                ("csrf", &csrf),
                ("name", "same"),
                ("access", "write"),
                ("days", "1"),
            ],
        )
        .await;
    let at = made.body.find("<code class=\"token\">").unwrap() + "<code class=\"token\">".len();
    made.body[at..at + made.body[at..].find('<').unwrap()].to_string()
}

async fn post_api(b: &mut Browser, token: &str, v: Value) -> (u16, Value) {
    let req = Request::post("/api/v1/services/S1/clients")
        .header(header::HOST, "dcrs.test")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap();
    let page = b.send(req).await;
    (
        page.status.as_u16(),
        serde_json::from_str(&page.body).unwrap(),
    )
}

async fn clients(db: &dcrs_store::Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_entered_three_ways_is_stored_alike_and_a_bad_value_is_refused_by_each() {
    each_backend!("one_way_in", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let token = token(&mut b).await;
        let before = clients(&t.db).await;

        // A bad date of birth, three ways: nothing is stored by any.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clients.csv"), file("F1", "1975-02-30")).unwrap();
        let options = dcrs_exchange::ImportOptions {
            dry_run: false,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            rules: Default::default(),
            actor: "trainer".into(),
            only_new: false,
        };
        let report = dcrs_exchange::import_dir(&t.db, dir.path(), &options, |_| {})
            .await
            .unwrap();
        let r = &report.rejections[0];
        assert_eq!(
            (r.file.as_str(), r.line, r.field.as_str(), r.value.as_str()),
            ("clients.csv", Some(3), "date_of_birth", "1975-02-30"),
            "the import names the file and line"
        );
        let csrf = b.get("/services/S1/clients/new").await.csrf();
        let bad = form(&csrf, "1975-02-30");
        let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let page = b.post("/services/S1/clients/new", &pairs).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("<a href=\"#date_of_birth\">"),
            "the form names its field"
        );
        assert!(
            page.body.contains("value=\"1975-02-30\""),
            "what was typed is kept"
        );
        assert!(
            page.body.contains("value=\"O&#39;Neill\""),
            "and the rest of it"
        );
        let (status, answer) = post_api(&mut b, &token, body("A1", "1975-02-30")).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            answer["problems"][0]["pointer"], "/date_of_birth",
            "{answer}"
        );
        assert_eq!(clients(&t.db).await, before, "nothing was stored");

        // The same client, three ways.
        std::fs::write(dir.path().join("clients.csv"), file("F1", DOB)).unwrap();
        let report = dcrs_exchange::import_dir(&t.db, dir.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(report.committed, "{:?}", report.rejections);
        let good = form(&csrf, DOB);
        let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let saved = b.post("/services/S1/clients/new", &pairs).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let form_ref = saved
            .location()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let (status, answer) = post_api(&mut b, &token, body("A1", DOB)).await;
        assert_eq!(status, 201, "{answer}");
        let by_file = stored(&t.db, "F1").await;
        assert_eq!(by_file, stored(&t.db, &form_ref).await, "file and form");
        assert_eq!(by_file, stored(&t.db, "A1").await, "file and API");

        // The form and the API leave the same audit entry (the import audits its run).
        let details: Vec<(String, String)> = sqlx::query_as(
            "SELECT record_ref, detail FROM audit_log WHERE action = 'record.add' AND actor = 'trainer' ORDER BY audit_id",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        let after = |r: &str| -> Value {
            let d = &details.iter().find(|(x, _)| x == r).unwrap().1;
            let mut v: Value = serde_json::from_str(d).unwrap();
            v["after"].as_object_mut().unwrap().remove("client_ref");
            v
        };
        assert_eq!(after(&form_ref), after("A1"));
    });
}
