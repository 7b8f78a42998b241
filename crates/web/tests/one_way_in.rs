//! One way in: the same client, referral and assessment entered by file import, by the
//! capture forms and by the API are stored as the same records with the same audit
//! entries, and one bad value is refused by each, in its own terms (file and line; the
//! form's field with what was typed kept; a JSON pointer), with nothing stored.

use axum::body::Body;
use axum::http::{Request, header};
use dcrs_domain::Entity;
use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use serde_json::{Value, json};

mod common;
use common::{Browser, PASSWORD, app};

/// The references that differ by design between the three ways in: each record's own,
/// and those of the records it belongs to.
const REFERENCES: [&str; 4] = [
    "client_ref",
    "referral_ref",
    "episode_ref",
    "assessment_ref",
];

/// A record's stored values, every field but the references above.
async fn stored_record(
    db: &dcrs_store::Database,
    entity: Entity,
    reference: &str,
) -> Vec<(&'static str, String)> {
    let mut found = None;
    db.for_each_row(entity, |row| {
        if row
            .iter()
            .any(|(k, v)| *k == entity.ref_field() && v == reference)
        {
            found = Some(row);
        }
    })
    .await
    .unwrap();
    found
        .unwrap_or_else(|| panic!("{reference} is stored"))
        .into_iter()
        .filter(|(k, _)| !REFERENCES.contains(k))
        .collect()
}

async fn stored(db: &dcrs_store::Database, client_ref: &str) -> Vec<(&'static str, String)> {
    stored_record(db, Entity::Client, client_ref).await
}

/// What the audit log says was added as `reference`, references taken out.
async fn audited(db: &dcrs_store::Database, reference: &str) -> Value {
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'record.add' AND record_ref = $1",
    )
    .bind(reference.to_string())
    .fetch_one(db.pool())
    .await
    .unwrap_or_else(|e| panic!("{reference} is audited: {e}"));
    let mut v: Value = serde_json::from_str(&detail).unwrap();
    for r in REFERENCES {
        v["after"].as_object_mut().unwrap().remove(r);
    }
    v
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
    post_to(b, token, "clients", v).await
}

async fn post_to(b: &mut Browser, token: &str, collection: &str, v: Value) -> (u16, Value) {
    let req = Request::post(format!("/api/v1/services/S1/{collection}"))
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
            page.body
                .contains("name=\"date_of_birth-day\" value=\"30\"")
                && page
                    .body
                    .contains("name=\"date_of_birth-month\" value=\"2\"")
                && page
                    .body
                    .contains("name=\"date_of_birth-year\" value=\"1975\""),
            "what was typed is kept, in its three boxes"
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

async fn count(db: &dcrs_store::Database, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn pairs(v: &[(&str, String)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

async fn post_form(b: &mut Browser, path: &str, fields: &[(String, String)]) -> common::Page {
    let p: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post(path, &p).await
}

/// The referral (with its episode) and the baseline assessment of one client, as a file
/// import writes them: the header and the one line of each file.
fn episode_files(dir: &std::path::Path, client: &str, height: &str) {
    std::fs::write(
        dir.join("referrals.csv"),
        format!(
            "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n\
             R-{client},S1,{client},2026-11-02,gp,,Wants to lose weight\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("episodes.csv"),
        format!(
            "episode_ref,service_ref,referral_ref,lead_worker_ref,kind,first_contact_on,primary_issue,closed_on,exit_reason\n\
             E-{client},S1,R-{client},W1,full,2026-11-09,weight,,\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("assessments.csv"),
        format!(
            "assessment_ref,service_ref,episode_ref,occasion,assessed_on,height_cm,weight_kg,waist_cm,fruit_veg_portions_per_day,high_fat_snacks_per_day,active_days_per_week,alcohol_units_per_week,smoking_status,cigarettes_per_day,self_efficacy,general_health,swemwbs_raw\n\
             A-{client},S1,E-{client},baseline,2026-11-09,{height},82.5,96,3,2,1,14,current,10,6,70,21\n"
        ),
    )
    .unwrap();
}

/// The same assessment as the baseline form's fields.
fn baseline_form(csrf: &str, height: &str) -> Vec<(String, String)> {
    pairs(&[
        ("csrf", csrf.into()),
        ("do", "save".into()),
        ("assessed_on", "2026-11-09".into()),
        ("height_cm", height.into()),
        ("weight_kg", "82.5".into()),
        ("waist_cm", "96".into()),
        ("fruit_veg_portions_per_day", "3".into()),
        ("high_fat_snacks_per_day", "2".into()),
        ("active_days_per_week", "1".into()),
        ("alcohol_units_per_week", "14".into()),
        ("smoking_status", "current".into()),
        ("cigarettes_per_day", "10".into()),
        ("self_efficacy", "6".into()),
        ("general_health", "70".into()),
        ("swemwbs_raw", "21".into()),
    ])
}

/// The same assessment as the API's body.
fn baseline_body(episode: &str, height: Value) -> Value {
    json!({
        "assessment_ref": format!("A-{episode}"), "episode_ref": episode, "occasion": "baseline",
        "assessed_on": "2026-11-09", "height_cm": height, "weight_kg": 82.5, "waist_cm": 96,
        "fruit_veg_portions_per_day": 3, "high_fat_snacks_per_day": 2,
        "active_days_per_week": 1, "alcohol_units_per_week": 14, "smoking_status": "current",
        "cigarettes_per_day": 10, "self_efficacy": 6, "general_health": 70, "swemwbs_raw": 21,
    })
}

#[tokio::test]
async fn a_referral_and_assessment_entered_three_ways_are_stored_alike_and_a_bad_value_is_refused_by_each()
 {
    each_backend!("one_way_in_episode", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let token = token(&mut b).await;
        let options = dcrs_exchange::ImportOptions {
            dry_run: false,
            today: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            rules: Default::default(),
            actor: "trainer".into(),
            only_new: false,
        };
        // One client for each way in, entered by the API.
        for c in ["F2", "P2", "A2"] {
            let (status, answer) = post_api(&mut b, &token, body(c, DOB)).await;
            assert_eq!(status, 201, "{answer}");
        }

        // The referral and its episode, three ways.
        let dir = tempfile::tempdir().unwrap();
        episode_files(dir.path(), "F2", "168");
        std::fs::remove_file(dir.path().join("assessments.csv")).unwrap();
        let report = dcrs_exchange::import_dir(&t.db, dir.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(report.committed, "{:?}", report.rejections);
        let page = b.get("/services/S1/clients/P2/episodes/new").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let referral = pairs(&[
            ("csrf", page.csrf()),
            ("do", "save".into()),
            ("received_on", "2026-11-02".into()),
            ("source", "gp".into()),
            ("kind", "full".into()),
            ("first_contact_on", "2026-11-09".into()),
            ("primary_issue", "weight".into()),
            ("reason", "Wants to lose weight".into()),
        ]);
        let saved = post_form(&mut b, "/services/S1/clients/P2/episodes/new", &referral).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let form_episode = saved
            .location()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let form_referral: String = sqlx::query_scalar(
            "SELECT r.referral_ref FROM referrals r JOIN episodes e ON e.service_id = r.service_id \
             AND e.referral_id = r.referral_id WHERE e.episode_ref = $1",
        )
        .bind(form_episode.clone())
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        let (status, answer) = post_to(
            &mut b,
            &token,
            "referrals",
            json!({"referral_ref": "R-A2", "client_ref": "A2", "received_on": "2026-11-02",
                   "source": "gp", "referrer_org_ref": null, "reason": "Wants to lose weight"}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let (status, answer) = post_to(
            &mut b,
            &token,
            "episodes",
            json!({"episode_ref": "E-A2", "referral_ref": "R-A2", "lead_worker_ref": "W1",
                   "kind": "full", "first_contact_on": "2026-11-09", "primary_issue": "weight",
                   "closed_on": null, "exit_reason": null}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        for (entity, file, form, api) in [
            (Entity::Referral, "R-F2", form_referral.as_str(), "R-A2"),
            (Entity::Episode, "E-F2", form_episode.as_str(), "E-A2"),
        ] {
            let by_file = stored_record(&t.db, entity, file).await;
            assert_eq!(
                by_file,
                stored_record(&t.db, entity, form).await,
                "{entity:?}: file and form"
            );
            assert_eq!(
                by_file,
                stored_record(&t.db, entity, api).await,
                "{entity:?}: file and API"
            );
            assert_eq!(
                audited(&t.db, form).await,
                audited(&t.db, api).await,
                "{entity:?}: audit"
            );
        }

        // A height typed in metres, three ways: each names it in its own terms, and no
        // assessment is stored.
        let before = count(&t.db, "assessments").await;
        episode_files(dir.path(), "F2", "1.68");
        std::fs::remove_file(dir.path().join("referrals.csv")).unwrap();
        std::fs::remove_file(dir.path().join("episodes.csv")).unwrap();
        let report = dcrs_exchange::import_dir(&t.db, dir.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(!report.committed);
        let r = &report.rejections[0];
        assert_eq!(
            (r.file.as_str(), r.line, r.field.as_str(), r.value.as_str()),
            ("assessments.csv", Some(2), "height_cm", "1.68"),
            "the import names the file and line"
        );
        let path = format!("/services/S1/episodes/{form_episode}/baseline");
        let csrf = b.get(&path).await.csrf();
        let page = post_form(&mut b, &path, &baseline_form(&csrf, "1.68")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("<a href=\"#height_cm\">"),
            "the form names its field"
        );
        assert!(
            page.body.contains("value=\"1.68\""),
            "what was typed is kept"
        );
        assert!(page.body.contains("value=\"82.5\""), "and the rest of it");
        let (status, answer) = post_to(
            &mut b,
            &token,
            "assessments",
            baseline_body("E-A2", json!(1.68)),
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["problems"][0]["pointer"], "/height_cm", "{answer}");
        assert_eq!(
            count(&t.db, "assessments").await,
            before,
            "nothing was stored"
        );

        // The baseline assessment, three ways.
        episode_files(dir.path(), "F2", "168");
        std::fs::remove_file(dir.path().join("referrals.csv")).unwrap();
        std::fs::remove_file(dir.path().join("episodes.csv")).unwrap();
        let report = dcrs_exchange::import_dir(&t.db, dir.path(), &options, |_| {})
            .await
            .unwrap();
        assert!(report.committed, "{:?}", report.rejections);
        let saved = post_form(&mut b, &path, &baseline_form(&csrf, "168")).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let form_assessment: String = sqlx::query_scalar(
            "SELECT a.assessment_ref FROM assessments a JOIN episodes e ON e.service_id = a.service_id \
             AND e.episode_id = a.episode_id WHERE e.episode_ref = $1",
        )
        .bind(form_episode.clone())
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        let (status, answer) = post_to(
            &mut b,
            &token,
            "assessments",
            baseline_body("E-A2", json!(168)),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let by_file = stored_record(&t.db, Entity::Assessment, "A-F2").await;
        assert_eq!(
            by_file,
            stored_record(&t.db, Entity::Assessment, &form_assessment).await,
            "assessment: file and form"
        );
        assert_eq!(
            by_file,
            stored_record(&t.db, Entity::Assessment, "A-E-A2").await,
            "assessment: file and API"
        );
        assert_eq!(
            audited(&t.db, &form_assessment).await,
            audited(&t.db, "A-E-A2").await,
            "assessment: audit"
        );
    });
}
