//! Registering a client in the application: the import's own checks decide, a rejected
//! form keeps everything typed with each problem beside its field, the record is marked
//! as entered in the application and audited with its values, and only the service's
//! own staff reach the form.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

#[tokio::test]
async fn a_trainer_registers_a_client_and_a_bad_form_keeps_what_was_typed() {
    each_backend!("web_capture_client", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let form = b.get("/services/S1/clients/new").await;
        assert_eq!(form.status, 200);
        let token = form.csrf();
        let mut fields = vec![
            ("csrf", token.as_str()),
            ("do", "save"),
            ("given_name", "Zoë"),
            ("family_name", "O'Neill"),
            ("date_of_birth-day", "31"),
            ("date_of_birth-month", "13"),
            ("date_of_birth-year", "1980"),
            ("sex", "female"),
            ("postcode", "ZZ1 1ZZ"),
            ("ethnicity", "A"),
            ("gp_registered", "yes"),
            ("employment", "employed"),
            ("disability", "no"),
            ("consent_to_record", "yes"),
            ("consent_to_share_with_gp", "no"),
        ];
        let bad = b.post("/services/S1/clients/new", &fields).await;
        assert_eq!(bad.status, 200);
        assert!(bad.body.contains("There is a problem"), "{}", bad.body);
        assert!(bad.body.contains("Date of birth"), "the field is named");
        assert!(
            bad.body.contains("value=\"O&#39;Neill\""),
            "what was typed is kept"
        );
        assert!(bad.body.contains("name=\"date_of_birth-day\" value=\"31\""));
        assert!(
            bad.body
                .contains("name=\"date_of_birth-month\" value=\"13\"")
        );
        assert!(
            bad.body
                .contains("name=\"date_of_birth-year\" value=\"1980\"")
        );
        assert!(bad.body.contains("value=\"female\" checked>"));
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "nothing was written");
        // Corrected, it saves.
        fields[5] = ("date_of_birth-month", "5");
        let ok = b.post("/services/S1/clients/new", &fields).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        let to = ok.location().unwrap().to_string();
        assert!(to.starts_with("/services/S1/clients/APP-"), "{to}");
        let page = b.get(&to).await;
        assert!(page.body.contains("Zoë O&#39;Neill"));
        // The page after a save says what was saved, once.
        assert!(
            page.body
                .contains("<div class=\"banner\" role=\"status\"><h2>Client registered</h2>"),
            "{}",
            page.body
        );
        assert!(!b.get(&to).await.body.contains("Client registered"));
        let (via, sid): (String, i64) = sqlx::query_as(
            "SELECT entered_via, service_id FROM clients WHERE family_name = 'O''Neill'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(via, "application");
        let detail: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'record.add' AND actor = 'trainer'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["after"]["family_name"], "O'Neill");
        let s1: i64 =
            sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = 'S1'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(sid, s1);
        assert!(t.db.verify_audit().await.unwrap().intact());
        // Others cannot reach the form.
        for user in ["commissioner", "analyst_all", "admin"] {
            let mut o = Browser::new(&app);
            o.sign_in(user, PASSWORD).await;
            assert_eq!(
                o.get("/services/S1/clients/new").await.status,
                404,
                "{user}"
            );
        }
        let mut other = Browser::new(&app);
        other.sign_in("trainer", PASSWORD).await;
        assert_eq!(other.get("/services/S2/clients/new").await.status, 404);
    });
}

/// Registering asks, on its first page, what a first conversation starts with (consent,
/// who the client is and where they live) and checks just that before going on; the
/// equality, GP and work questions follow on a second page that carries the first's
/// answers, and can go back to them with nothing lost.
#[tokio::test]
async fn the_client_form_asks_consent_and_identity_first_and_the_rest_on_a_second_page() {
    each_backend!("web_capture_client_pages", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let path = "/services/S1/clients/new";
        let first = b.get(path).await;
        assert!(first.body.contains("Page 1 of 2"), "{}", first.body);
        assert!(first.body.contains("name=\"consent_to_record\""));
        assert!(!first.body.contains("<select id=\"ethnicity\""));
        assert!(
            first
                .body
                .contains("<input type=\"hidden\" name=\"ethnicity\" value=\"\">")
        );
        let send = |values: &[(String, String)], changes: &[(&str, &str)]| {
            let mut out: Vec<(String, String)> = values.to_vec();
            for (name, value) in changes {
                out.retain(|(n, _)| n != name);
                out.push((name.to_string(), value.to_string()));
            }
            out
        };
        let typed = send(
            &first.form_values(),
            &[
                ("do", "continue"),
                ("consent_to_record", "yes"),
                ("consent_to_share_with_gp", "no"),
                ("given_name", "Zoë"),
                ("family_name", "O'Neill"),
                ("date_of_birth-day", "31"),
                ("date_of_birth-month", "5"),
                ("date_of_birth-year", "1980"),
                ("sex", "female"),
                ("postcode", "FY1 5DW"),
                ("nhs_number", "1234567890"),
            ],
        );
        // The first page's answers are checked on their own: the NHS number is refused,
        // and nothing is said yet about the questions of the second page.
        let refused = post_all(&mut b, path, &typed).await;
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("Page 1 of 2"));
        assert!(
            refused.body.contains("href=\"#nhs_number\""),
            "{}",
            refused.body
        );
        assert!(!refused.body.contains("#ethnicity"), "{}", refused.body);
        let typed = send(&typed, &[("nhs_number", "")]);
        let second = post_all(&mut b, path, &typed).await;
        assert_eq!(second.status, 200);
        assert!(second.body.contains("Page 2 of 2"), "{}", second.body);
        assert!(second.body.contains("<select id=\"ethnicity\""));
        assert!(
            second
                .body
                .contains("<input type=\"hidden\" name=\"family_name\" value=\"O&#39;Neill\">"),
            "the first page's answers ride along: {}",
            second.body
        );
        // Back to the first page, with everything typed.
        let values = second.form_values();
        let back = post_all(&mut b, path, &send(&values, &[("do", "back")])).await;
        assert!(back.body.contains("Page 1 of 2"));
        assert!(back.body.contains("value=\"Zoë\""), "{}", back.body);
        // Saving the second page unanswered names its questions, on that page.
        let unanswered = post_all(&mut b, path, &send(&values, &[("do", "save")])).await;
        assert_eq!(unanswered.status, 200);
        assert!(unanswered.body.contains("Page 2 of 2"));
        assert!(
            unanswered.body.contains("href=\"#ethnicity\""),
            "{}",
            unanswered.body
        );
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "nothing was written");
        let answered = send(
            &values,
            &[
                ("do", "save"),
                ("ethnicity", "A"),
                ("gp_registered", "yes"),
                ("employment", "employed"),
                ("disability", "no"),
            ],
        );
        let saved = post_all(&mut b, path, &answered).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let (dob, consent): (String, String) = sqlx::query_as(
            "SELECT date_of_birth, consent_to_share_with_gp FROM clients \
             WHERE family_name = 'O''Neill'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!((dob.as_str(), consent.as_str()), ("1980-05-31", "no"));
    });
}

/// Posts a form's values as they are.
async fn post_all(b: &mut Browser, path: &str, values: &[(String, String)]) -> common::Page {
    let pairs: Vec<(&str, &str)> = values
        .iter()
        .map(|(a, c)| (a.as_str(), c.as_str()))
        .collect();
    b.post(path, &pairs).await
}

#[tokio::test]
async fn a_manager_opens_an_episode_choosing_its_lead_worker() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut m = Browser::new(&app);
    m.sign_in("manager", PASSWORD).await;
    let form = m.get("/services/S1/clients/C1/episodes/new").await;
    assert!(form.body.contains("Lead worker") && form.body.contains("value=\"W1\""));
    assert!(
        !form.body.contains("value=\"W2\""),
        "only the service's own workers"
    );
    let token = form.csrf();
    let base = [
        ("csrf", token.as_str()),
        ("do", "save"),
        ("received_on", "2026-11-20"),
        ("source", "gp"),
        ("kind", "full"),
        ("first_contact_on", "2026-11-25"),
        ("primary_issue", "diet"),
    ];
    // Without a lead worker the import's rule says so, beside the form.
    let missing = m.post("/services/S1/clients/C1/episodes/new", &base).await;
    assert_eq!(missing.status, 200);
    assert!(missing.body.contains("There is a problem"));
    let mut with = base.to_vec();
    with.push(("lead_worker_ref", "W1"));
    let ok = m.post("/services/S1/clients/C1/episodes/new", &with).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let page = m.get(ok.location().unwrap()).await;
    assert!(page.body.contains("Ann Northern") && page.body.contains("Open"));
}

#[tokio::test]
async fn the_caseload_search_finds_by_name_reference_or_birth_date_within_the_service() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut b = Browser::new(&app);
    b.sign_in("trainer", PASSWORD).await;
    let page = b.get("/services/S1/caseload").await;
    assert_eq!(page.status, 200);
    let token = page.csrf();
    for q in ["northern", "C1", "1980-05-01"] {
        let r = b
            .post("/services/S1/caseload", &[("csrf", &token), ("q", q)])
            .await;
        assert!(r.body.contains("Ann Northern"), "{q}");
    }
    // Another service's client is not found.
    let r = b
        .post(
            "/services/S1/caseload",
            &[("csrf", &token), ("q", "Southern")],
        )
        .await;
    assert!(r.body.contains("No client of the service matches"));
    // Without the token the search is refused.
    assert_eq!(
        b.post("/services/S1/caseload", &[("q", "Ann")])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_manager_adds_and_disables_a_trainer_of_their_own_service_only() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut m = Browser::new(&app);
    m.sign_in("manager", PASSWORD).await;
    let page = m.get("/services/S1/staff").await;
    assert!(page.body.contains("trainer") && !page.body.contains("commissioner"));
    let token = page.csrf();
    // A worker of the other service cannot be linked.
    let other = m
        .post(
            "/services/S1/staff",
            &[
                ("csrf", &token),
                ("username", "t2"),
                ("display_name", "T"),
                ("worker_ref", "W2"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(
        other
            .body
            .contains("There is no worker with that reference in the service")
    );
    let ok = m
        .post(
            "/services/S1/staff",
            &[
                ("csrf", &token),
                ("username", "t2"),
                ("display_name", "T"),
                ("worker_ref", "W1"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    let (id, role, must): (i64, String, i64) = sqlx::query_as(
        "SELECT user_id, role, must_change_password FROM users WHERE username = 't2'",
    )
    .fetch_one(t.db.pool())
    .await
    .unwrap();
    assert_eq!((role.as_str(), must), ("health_trainer", 1));
    assert_eq!(
        m.post(
            &format!("/services/S1/staff/{id}/disable"),
            &[("csrf", &token)]
        )
        .await
        .status,
        303
    );
    // Not the manager's own account, nor anyone of another service.
    let own: i64 = sqlx::query_scalar("SELECT user_id FROM users WHERE username = 'manager'")
        .fetch_one(t.db.pool())
        .await
        .unwrap();
    assert_eq!(
        m.post(
            &format!("/services/S1/staff/{own}/disable"),
            &[("csrf", &token)]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        m.post(
            &format!("/services/S2/staff/{id}/disable"),
            &[("csrf", &token)]
        )
        .await
        .status,
        404
    );
    let config = m.get("/services/S1/configuration").await;
    assert_eq!(config.status, 200);
}

#[tokio::test]
async fn a_form_sent_twice_is_stored_once() {
    each_backend!("web_once_key", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let count = |family: &'static str| {
            let db = t.db.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clients WHERE family_name = $1")
                    .bind(family)
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        let fields = |csrf: &str, once: &str, family: &str| -> Vec<(String, String)> {
            [
                ("csrf", csrf),
                ("once", once),
                ("do", "save"),
                ("given_name", "Rita"),
                ("family_name", family),
                ("date_of_birth", "1970-07-07"),
                ("sex", "female"),
                ("ethnicity", "A"),
                ("gp_registered", "yes"),
                ("employment", "employed"),
                ("disability", "no"),
                ("consent_to_record", "yes"),
                ("consent_to_share_with_gp", "no"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let page = b.get("/services/S1/clients/new").await;
        let csrf = page.csrf();
        let at = page
            .body
            .find("name=\"once\" value=\"")
            .expect("the form carries a one-time key")
            + "name=\"once\" value=\"".len();
        let once = page.body[at..at + 32].to_string();
        // Sent, then sent again (a reload after the answer was lost): one client, and
        // both answers lead to it.
        let f = fields(&csrf, &once, "Twice");
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let first = b.post("/services/S1/clients/new", &pairs).await;
        let second = b.post("/services/S1/clients/new", &pairs).await;
        assert_eq!(first.status, 303, "{}", first.body);
        assert_eq!(second.status, 303, "{}", second.body);
        assert_eq!(first.location(), second.location());
        assert_eq!(count("Twice").await, 1);
        // The trainer is told the second was not saved again.
        let shown = b.get(second.location().unwrap()).await;
        assert!(
            shown
                .body
                .contains("This client was already registered: nothing was saved twice"),
            "{}",
            shown.body
        );

        // Two at the same moment (a double tap): still one.
        let page = b.get("/services/S1/clients/new").await;
        let at = page.body.find("name=\"once\" value=\"").unwrap() + "name=\"once\" value=\"".len();
        let once = page.body[at..at + 32].to_string();
        let f = fields(&page.csrf(), &once, "Together");
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut other = b.clone();
        let (x, y) = tokio::join!(
            b.post("/services/S1/clients/new", &pairs),
            other.post("/services/S1/clients/new", &pairs),
        );
        assert_eq!((x.status.as_u16(), y.status.as_u16()), (303, 303));
        assert_eq!(x.location(), y.location());
        assert_eq!(count("Together").await, 1);

        // A new form is a new submission.
        let page = b.get("/services/S1/clients/new").await;
        let at = page.body.find("name=\"once\" value=\"").unwrap() + "name=\"once\" value=\"".len();
        let f = fields(&page.csrf(), &page.body[at..at + 32], "Twice");
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(b.post("/services/S1/clients/new", &pairs).await.status, 303);
        assert_eq!(count("Twice").await, 2);
    });
}

#[tokio::test]
async fn a_client_record_reads_in_words_and_uk_dates() {
    each_backend!("web_client_page", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut b = Browser::new(&app);
        b.sign_in("trainer", PASSWORD).await;
        let page = b.get("/services/S1/clients/C1").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("1 May 1980"), "{}", page.body);
        assert!(!page.body.contains("1980-05-01"), "no ISO dates");
        assert!(page.body.contains("Female"), "sex in words");
    });
}
