//! A client's data protection rights on the pages, for the manager of their service:
//! everything held about them (a page, JSON and a FHIR Bundle), and their erasure after a
//! reason and the client's reference typed to confirm; neither for anyone else.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

#[tokio::test]
async fn a_manager_answers_subject_access_and_erases_a_client_of_their_service() {
    each_backend!("web_governance", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let record = trainer.get("/services/S1/clients/C1").await;
        assert!(!record.body.contains("subject-access"), "not for a trainer");
        assert_eq!(
            trainer
                .get("/services/S1/clients/C1/subject-access")
                .await
                .status,
            404
        );

        let mut m = Browser::new(&app);
        m.sign_in("manager", PASSWORD).await;
        let record = m.get("/services/S1/clients/C1").await;
        assert!(record.body.contains("Everything held about this client"));
        let page = m.get("/services/S1/clients/C1/subject-access").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Everything held about client C1"));
        assert!(page.body.contains("Northern"), "their details");
        assert!(!page.body.contains("Southern"), "no one else's");
        assert!(
            page.body.contains("Viewed a client&#39;s record"),
            "{}",
            page.body
        );
        let json = m
            .get("/services/S1/clients/C1/subject-access?format=json")
            .await;
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(v["records"]["clients"][0]["family_name"], "Northern");
        let fhir = m
            .get("/services/S1/clients/C1/subject-access?format=fhir")
            .await;
        let b: serde_json::Value = serde_json::from_str(&fhir.body).unwrap();
        assert_eq!(b["resourceType"], "Bundle");
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'subject_access' AND actor = 'manager'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(audited, 3);

        // Erasure asks why, and the reference typed to confirm; nothing goes till then.
        let form = m.get("/services/S1/clients/C1/erase").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        let refused = m
            .post(
                "/services/S1/clients/C1/erase",
                &[("csrf", &csrf), ("reason", ""), ("confirm", "C2")],
            )
            .await;
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("<title>Error:"), "{}", refused.body);
        assert!(refused.body.contains("href=\"#reason\""));
        assert!(refused.body.contains("href=\"#confirm\""));
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(held, 2);
        let erased = m
            .post(
                "/services/S1/clients/C1/erase",
                &[
                    ("csrf", &csrf),
                    ("reason", "the client asked; no duty to keep"),
                    ("confirm", "C1"),
                ],
            )
            .await;
        assert_eq!(erased.status, 303, "{}", erased.body);
        let to = erased.location().unwrap().to_string();
        let list = m.get(&to).await;
        assert!(list.body.contains("Client C1 erased"), "{}", list.body);
        assert!(
            !m.get("/services/S1/clients?erased=C9")
                .await
                .body
                .contains("erased,"),
            "only an erasure that happened is announced"
        );
        let left: Vec<String> = sqlx::query_scalar("SELECT client_ref FROM clients")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
        assert_eq!(left, ["C2"]);
        assert!(t.db.verify_audit().await.unwrap().intact());
        assert_eq!(m.get("/services/S1/clients/C1").await.status, 404);
    });
}

/// A client whose processing is restricted stays stored but leaves the caseload's
/// worklist until the restriction is lifted; every viewer of their page is told.
#[tokio::test]
async fn a_restricted_client_leaves_the_worklist_until_the_restriction_is_lifted() {
    each_backend!("web_restriction", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut m = Browser::new(&app);
        m.sign_in("manager", PASSWORD).await;
        let opened = m
            .save_form(
                "/services/S1/clients/C1/episodes/new",
                &[
                    ("source", "gp"),
                    ("kind", "full"),
                    ("primary_issue", "diet"),
                    ("lead_worker_ref", "W1"),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{}", opened.body);
        let listed = |body: &str| body.contains("Ann Northern");
        assert!(listed(&m.get("/services/S1/caseload").await.body));

        let form = m.get("/services/S1/clients/C1/restrict").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        let blank = m
            .post(
                "/services/S1/clients/C1/restrict",
                &[("csrf", &csrf), ("do", "restrict"), ("reason", " ")],
            )
            .await;
        assert_eq!(blank.status, 200);
        assert!(blank.body.contains("Enter the reason"));
        let restricted = m
            .post(
                "/services/S1/clients/C1/restrict",
                &[
                    ("csrf", &csrf),
                    ("do", "restrict"),
                    ("reason", "accuracy disputed"),
                ],
            )
            .await;
        assert_eq!(restricted.status, 303, "{}", restricted.body);
        let page = m.get("/services/S1/clients/C1").await;
        assert!(page.body.contains("is restricted since"), "{}", page.body);
        assert!(page.body.contains("Lift the restriction on processing"));
        let access = m.get("/services/S1/clients/C1/subject-access").await;
        assert!(
            access.body.contains("is restricted since"),
            "told in subject access too"
        );
        let json = m
            .get("/services/S1/clients/C1/subject-access?format=json")
            .await;
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(v["processing_restricted"]["reason"], "accuracy disputed");
        assert!(!listed(&m.get("/services/S1/caseload").await.body));
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(held, 2, "still stored");
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let seen = trainer.get("/services/S1/clients/C1").await;
        assert!(seen.body.contains("is restricted since"));
        assert_eq!(
            trainer.get("/services/S1/clients/C1/restrict").await.status,
            404
        );

        let lifted = m
            .post(
                "/services/S1/clients/C1/restrict",
                &[("csrf", &csrf), ("do", "lift"), ("reason", "checked")],
            )
            .await;
        assert_eq!(lifted.status, 303);
        assert!(listed(&m.get("/services/S1/caseload").await.body));
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE action LIKE 'client.restrict%' ORDER BY audit_id",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(actions, ["client.restrict", "client.restrict.lift"]);
    });
}

/// A client registered twice is listed with the evidence and merged into the first;
/// only a pair the list offers can be merged.
#[tokio::test]
async fn a_client_registered_twice_is_merged_from_the_duplicates_list() {
    each_backend!("web_merge", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut m = Browser::new(&app);
        m.sign_in("manager", PASSWORD).await;
        let again = m
            .save_form(
                "/services/S1/clients/new",
                &[
                    ("consent_to_record", "yes"),
                    ("consent_to_share_with_gp", "yes"),
                    ("given_name", "Ann"),
                    ("family_name", "Northern"),
                    ("date_of_birth-day", "1"),
                    ("date_of_birth-month", "5"),
                    ("date_of_birth-year", "1980"),
                    ("sex", "female"),
                    ("nhs_number", "9000000017"),
                    ("ethnicity", "A"),
                    ("gp_registered", "yes"),
                    ("employment", "employed"),
                    ("disability", "no"),
                ],
            )
            .await;
        assert_eq!(again.status, 303, "{}", again.body);
        let second = again
            .location()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let list = m.get("/services/S1/clients").await;
        assert!(list.body.contains("Possible duplicate clients"));
        let page = m.get("/services/S1/duplicates").await;
        assert_eq!(page.status, 200);
        assert!(
            page.body
                .contains(&format!("{second} and C1: the same NHS number")),
            "{}",
            page.body
        );
        let csrf = page.csrf();
        let not_offered = m
            .post(
                "/services/S1/duplicates",
                &[("csrf", &csrf), ("keep", "C1"), ("merge", "C9")],
            )
            .await;
        assert_eq!(not_offered.status, 404);
        let merged = m
            .post(
                "/services/S1/duplicates",
                &[("csrf", &csrf), ("keep", "C1"), ("merge", &second)],
            )
            .await;
        assert_eq!(merged.status, 303, "{}", merged.body);
        assert_eq!(merged.location().unwrap(), "/services/S1/clients/C1");
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT c.client_ref FROM clients c JOIN services s ON s.service_id = c.service_id \
             WHERE s.service_ref = 'S1'",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(left, ["C1"]);
        assert!(
            m.get("/services/S1/duplicates")
                .await
                .body
                .contains("None found")
        );
        assert!(t.db.verify_audit().await.unwrap().intact());
    });
}
