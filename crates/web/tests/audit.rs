//! Audit: every kind of read of identifiable data and every write leaves its entry (who,
//! what, which records, which service, before and after), and the hash chains detect an
//! entry edited, deleted or reordered directly in the database, on both backends.

use dcrs_store::Database;
use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use serde_json::Value;

mod common;
use common::{Browser, PASSWORD, app};

/// An entry as stored: (actor, action, service_id, record_ref, detail).
type RawEntry = (String, String, Option<i64>, Option<String>, Option<String>);

/// An entry with its detail read.
type Entry = (String, String, Option<i64>, Option<String>, Value);

/// (actor, action, service_id, record_ref, detail) of every entry after `after`.
async fn entries(db: &Database, after: i64) -> Vec<Entry> {
    let rows: Vec<RawEntry> = sqlx::query_as(
        "SELECT actor, action, service_id, record_ref, detail FROM audit_log WHERE audit_id > $1 ORDER BY audit_id",
    )
    .bind(after)
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, b, c, d, e)| {
            (
                a,
                b,
                c,
                d,
                serde_json::from_str(&e.unwrap_or("null".into())).unwrap(),
            )
        })
        .collect()
}

async fn last_id(db: &Database) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(audit_id) FROM audit_log")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .unwrap_or(0)
}

async fn service_id(db: &Database, r: &str) -> i64 {
    sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = $1")
        .bind(r.to_string())
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_read_and_write_leaves_its_entry() {
    each_backend!("web_audit_entries", |t| {
        let app = app(&t.db, Settings::default()).await;
        let s1 = service_id(&t.db, "S1").await;
        let mut b = Browser::new(&app);
        let start = last_id(&t.db).await;
        b.sign_in("trainer", "wrong password!!").await;
        b.sign_in("trainer", PASSWORD).await;
        b.get("/services/S1/clients").await;
        b.get("/services/S1/clients/C1").await;
        b.get("/services/S2/clients/C2").await; // refused
        let log = entries(&t.db, start).await;
        let actions: Vec<&str> = log.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(
            actions,
            [
                "auth.login.failed",
                "auth.login",
                "view.clients",
                "view.client",
                "access.denied"
            ]
        );
        assert!(log.iter().all(|e| e.0 == "trainer"));
        assert_eq!(log[2].2, Some(s1), "the list is logged against its service");
        assert_eq!(
            log[2].4["records"],
            serde_json::json!(["C1"]),
            "every record shown is listed"
        );
        assert_eq!(log[3].3.as_deref(), Some("C1"));
        assert_eq!(log[3].4["records"], serde_json::json!(["C1"]));

        // A manager reads the trail and releases a report; an admin adds and disables.
        let mut m = Browser::new(&app);
        m.sign_in("manager", PASSWORD).await;
        let start = last_id(&t.db).await;
        let trail = m.get("/services/S1/audit").await;
        assert!(
            trail.body.contains("Viewed a client&#39;s record"),
            "the manager sees the trainer's views"
        );
        m.get("/services/S1/reports/activity?period=2010-11&format=json")
            .await;
        let log = entries(&t.db, start).await;
        assert_eq!(log[0].1, "view.audit");
        assert_eq!(log[1].1, "report.release.uncontrolled");
        assert_eq!(log[1].4["report"], "activity");
        assert_eq!(log[1].4["period"], "2010-11");

        let mut a = Browser::new(&app);
        a.sign_in("admin", PASSWORD).await;
        let token = a.token().await;
        let start = last_id(&t.db).await;
        a.post(
            "/admin/users",
            &[
                ("csrf", &token),
                ("username", "newtrainer"),
                ("display_name", "New Trainer"),
                ("role", "health_trainer"),
                ("service_ref", "S1"),
                ("worker_ref", "W1"),
                ("password", PASSWORD),
            ],
        )
        .await;
        let id: i64 = sqlx::query_scalar("SELECT user_id FROM users WHERE username = 'newtrainer'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        a.post(&format!("/admin/users/{id}/disable"), &[("csrf", &token)])
            .await;
        let log = entries(&t.db, start).await;
        assert_eq!(log[0].1, "user.add");
        assert_eq!(log[0].0, "admin");
        assert_eq!(log[0].2, Some(s1));
        assert_eq!(log[0].4["before"], Value::Null);
        assert_eq!(log[0].4["after"]["role"], "health_trainer");
        assert_eq!(log[0].4["after"]["worker_ref"], "W1");
        assert!(
            !log[0].4.to_string().contains(PASSWORD),
            "no password in the log"
        );
        assert_eq!(log[1].1, "user.disable");
        assert_eq!(log[1].4["before"]["disabled"], false);
        assert_eq!(log[1].4["after"]["disabled"], true);
        // A disabled account cannot sign in.
        let mut gone = Browser::new(&app);
        assert_eq!(gone.sign_in("newtrainer", PASSWORD).await.status, 200);
        assert!(t.db.verify_audit().await.unwrap().intact());
    });
}

/// Entries in two chains (two services) and the system chain.
async fn chained(db: &Database) {
    let app = app(db, Settings::default()).await;
    for user in ["trainer", "manager", "admin"] {
        let mut b = Browser::new(&app);
        b.sign_in(user, PASSWORD).await;
        b.get("/services/S1/clients").await;
        b.get("/services/S1/clients/C1").await;
    }
    let v = db.verify_audit().await.unwrap();
    assert!(v.intact(), "{:?}", v.problems);
    assert!(v.chains >= 2 && v.entries >= 6, "{v:?}");
}

/// The chain position and id of the `n`th entry (from 1) of service S1's chain.
async fn nth(db: &Database, n: i64) -> i64 {
    let s1 = service_id(db, "S1").await;
    sqlx::query_scalar("SELECT audit_id FROM audit_log WHERE chain = $1 AND seq = $2")
        .bind(format!("service:{s1}:reads"))
        .bind(n)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn verify_detects_an_edited_deleted_or_reordered_entry() {
    each_backend!("web_audit_tamper", |t| {
        chained(&t.db).await;
        // Edited.
        let id = nth(&t.db, 2).await;
        sqlx::query("UPDATE audit_log SET actor = 'someone else' WHERE audit_id = $1")
            .bind(id)
            .execute(t.db.pool())
            .await
            .unwrap();
        let v = t.db.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("edited")),
            "{:?}",
            v.problems
        );
    });
    each_backend!("web_audit_delete", |t| {
        chained(&t.db).await;
        let id = nth(&t.db, 2).await;
        sqlx::query("DELETE FROM audit_log WHERE audit_id = $1")
            .bind(id)
            .execute(t.db.pool())
            .await
            .unwrap();
        let v = t.db.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("deleted")),
            "{:?}",
            v.problems
        );
    });
    each_backend!("web_audit_delete_last", |t| {
        chained(&t.db).await;
        let s1 = service_id(&t.db, "S1").await;
        sqlx::query("DELETE FROM audit_log WHERE audit_id = (SELECT MAX(audit_id) FROM audit_log WHERE service_id = $1)")
            .bind(s1)
            .execute(t.db.pool())
            .await
            .unwrap();
        let v = t.db.verify_audit().await.unwrap();
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains("at the end were deleted")),
            "{:?}",
            v.problems
        );
    });
    each_backend!("web_audit_insert", |t| {
        chained(&t.db).await;
        // An entry slipped in outside the chains, to blame a colleague.
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES ('2026-11-26T09:00:00Z', 'manager', 'view.client', '{}')",
        )
        .execute(t.db.pool())
        .await
        .unwrap();
        let v = t.db.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("inserted directly")),
            "{:?}",
            v.problems
        );
    });
    each_backend!("web_audit_reorder", |t| {
        chained(&t.db).await;
        // Swap the positions of the second and third entries.
        let (a, b) = (nth(&t.db, 2).await, nth(&t.db, 3).await);
        for (id, seq) in [(a, -1), (b, 2), (a, 3)] {
            sqlx::query("UPDATE audit_log SET seq = $1 WHERE audit_id = $2")
                .bind(seq)
                .bind(id)
                .execute(t.db.pool())
                .await
                .unwrap();
        }
        let v = t.db.verify_audit().await.unwrap();
        assert!(!v.intact());
        assert!(
            v.problems.iter().any(|p| p.contains("reordered")),
            "{:?}",
            v.problems
        );
    });
}

#[tokio::test]
async fn entries_that_arrive_together_are_all_stored_in_intact_chains() {
    each_backend!("web_audit_grouped", |t| {
        let _app = app(&t.db, Settings::default()).await;
        let s1 = service_id(&t.db, "S1").await;
        let before = last_id(&t.db).await;
        // A write holds the turn to write (on SQLite) while 40 entries arrive for two
        // chains; each caller returns only once its own entry has committed.
        let tx = t.db.begin().await.unwrap();
        let mut calls = Vec::new();
        for i in 0..40 {
            let db = t.db.clone();
            calls.push(tokio::spawn(async move {
                db.audit(&dcrs_store::AuditEntry {
                    actor: format!("grouped-{i}"),
                    action: "client.view".into(),
                    service_id: (i % 2 == 0).then_some(s1),
                    ..Default::default()
                })
                .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        tx.commit().await.unwrap();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        let stored = entries(&t.db, before).await;
        let mut actors: Vec<String> = stored.iter().map(|e| e.0.clone()).collect();
        actors.sort();
        let mut expected: Vec<String> = (0..40).map(|i| format!("grouped-{i}")).collect();
        expected.sort();
        assert_eq!(actors, expected);
        let v = t.db.verify_audit().await.unwrap();
        assert!(v.intact(), "{:?}", v.problems);
    });
}
