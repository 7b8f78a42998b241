//! Correcting a saved record: a trainer mistypes a weight in a baseline assessment, opens
//! it again from the episode's page, and corrects it. The record is changed, not added
//! again; the change goes through the write path's rules; the audit log keeps the value
//! before and after, and the manager's audit trail shows it. A record of another kind or
//! another episode is not found at the change address.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

/// Refers the example client C1 and opens a full episode: its page's address.
async fn open_episode(trainer: &mut Browser) -> String {
    let opened = trainer
        .save_form(
            "/services/S1/clients/C1/episodes/new",
            &[
                ("received_on", "2026-11-01"),
                ("first_contact_on", "2026-11-02"),
                ("source", "gp"),
                ("kind", "full"),
                ("primary_issue", "diet"),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    opened.location().unwrap().to_string()
}

#[tokio::test]
async fn a_mistyped_weight_is_corrected_with_its_before_and_after_audited() {
    each_backend!("web_corrections", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let episode = open_episode(&mut trainer).await;
        let typed = trainer
            .save_form(
                &format!("{episode}/baseline"),
                &[("weight_kg", "28.5"), ("height_cm", "170")],
            )
            .await;
        assert_eq!(typed.status, 303, "{}", typed.body);

        // The episode's page offers to change the assessment.
        let page = trainer.get(&episode).await;
        let change = page
            .body
            .split("href=\"")
            .map(|h| &h[..h.find('"').unwrap_or(0)])
            .find(|h| h.contains("/baseline/"))
            .unwrap_or_else(|| panic!("a link to change the baseline: {}", page.body))
            .to_string();
        let form = trainer.get(&change).await;
        assert!(
            form.body.contains("Change the baseline assessment"),
            "{}",
            form.body
        );
        assert!(
            form.body.contains("value=\"28.5\""),
            "the stored weight is shown"
        );
        assert!(!form.body.contains("Save as draft"));

        // A value the rules refuse is refused here too, with what was typed kept.
        let refused = trainer.save_form(&change, &[("weight_kg", "900")]).await;
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("error-summary"), "{}", refused.body);
        assert!(refused.body.contains("value=\"900\""));

        let corrected = trainer.save_form(&change, &[("weight_kg", "82.5")]).await;
        assert_eq!(corrected.status, 303, "{}", corrected.body);
        assert_eq!(corrected.location(), Some(episode.as_str()));

        let weights: Vec<(String, f64, f64)> = sqlx::query_as(
            "SELECT a.assessment_ref, a.weight_kg, a.bmi FROM assessments a \
             JOIN episodes e ON e.episode_id = a.episode_id WHERE e.episode_ref = $1",
        )
        .bind(episode.rsplit('/').next().unwrap())
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(weights.len(), 1, "changed, not added again");
        assert!((weights[0].1 - 82.5).abs() < 1e-9);
        // What the write path works out from the record is worked out again.
        assert!(
            (weights[0].2 - 82.5 / (1.7 * 1.7)).abs() < 0.1,
            "BMI {}",
            weights[0].2
        );
        let assessment = &weights[0].0;
        assert!(change.ends_with(&format!("/baseline/{assessment}")));

        let audited: Vec<(String, String)> = sqlx::query_as(
            "SELECT actor, detail FROM audit_log WHERE action = 'record.update' AND record_ref = $1",
        )
        .bind(assessment.clone())
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].0, "trainer");
        let detail: serde_json::Value = serde_json::from_str(&audited[0].1).unwrap();
        let text = detail.to_string();
        assert!(text.contains("28.5") && text.contains("82.5"), "{text}");

        // The manager sees the change in the service's audit trail.
        let mut manager = Browser::new(&app);
        manager.sign_in("manager", PASSWORD).await;
        let trail = manager.get("/services/S1/audit").await;
        let row = trail
            .body
            .split("<tr>")
            .find(|r| r.contains("Changed a record") && r.contains(assessment.as_str()))
            .expect("the change in the audit trail");
        assert!(row.contains("28.5") && row.contains("82.5"), "{row}");

        // The same record is not found as another kind, and a made-up one is not found.
        for wrong in [
            change.replace("/baseline/", "/exit/"),
            change.replace("/baseline/", "/session/"),
            change.replace(assessment.as_str(), "NOPE"),
            change.replace("/baseline/", "/close/"),
        ] {
            assert_eq!(trainer.get(&wrong).await.status, 404, "{wrong}");
        }
    });
}

/// The link on `page` whose address contains `part`.
fn link_with(page: &str, part: &str) -> String {
    page.split("href=\"")
        .map(|h| &h[..h.find('"').unwrap_or(0)])
        .find(|h| h.contains(part))
        .unwrap_or_else(|| panic!("a link with {part}: {page}"))
        .replace("&#38;", "&")
}

/// A session logged in error is removed from its change page: a reason is asked for,
/// the session goes through the write path (the episode's counts are worked out again),
/// the audit log keeps what it held with the reason, and a repeat of the submission
/// removes nothing more. A baseline that an exit assessment needs is not removed, and
/// the refusal says why.
#[tokio::test]
async fn a_record_entered_in_error_is_removed_with_its_values_and_reason_audited() {
    each_backend!("web_removals", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let episode = open_episode(&mut trainer).await;
        let episode_ref = episode.rsplit('/').next().unwrap().to_string();
        for (flow, fields) in [
            (
                "baseline",
                vec![("weight_kg", "82.5"), ("height_cm", "170")],
            ),
            ("exit", vec![("weight_kg", "80"), ("height_cm", "170")]),
            (
                "session",
                vec![
                    ("attended", "yes"),
                    ("purpose", "support"),
                    ("mode", "telephone"),
                    ("venue", "remote"),
                    ("duration_min", "30"),
                ],
            ),
        ] {
            let saved = trainer
                .save_form(&format!("{episode}/{flow}"), &fields)
                .await;
            assert_eq!(saved.status, 303, "{flow}: {}", saved.body);
        }
        let attended = |db: dcrs_store::Database, e: String| async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT es.sessions_attended FROM episode_summaries es \
                 JOIN episodes e ON e.service_id = es.service_id AND e.episode_id = es.episode_id \
                 WHERE e.episode_ref = $1",
            )
            .bind(e)
            .fetch_one(db.pool())
            .await
            .unwrap()
        };
        assert_eq!(attended(t.db.clone(), episode_ref.clone()).await, 1);

        // From the episode to the session's change page, and on to removing it.
        let page = trainer.get(&episode).await;
        let change = link_with(&page.body, "/session/");
        let form = trainer.get(&change).await;
        let remove = link_with(&form.body, "/remove");
        assert!(
            form.body
                .contains("Remove this session: it was entered in error")
        );
        let confirm = trainer.get(&remove).await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.body.contains("Remove this session?"));
        assert!(
            confirm.body.contains("Telephone"),
            "what it holds, in words"
        );

        // A reason is asked for.
        let refused = trainer.save_form(&remove, &[("reason", "  ")]).await;
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("<title>Error: "), "{}", refused.body);
        assert!(
            refused
                .body
                .contains("Enter why the session was entered in error")
        );

        let form = trainer.get(&remove).await;
        let mut values = form.form_values();
        values.push(("reason".into(), "logged against the wrong client".into()));
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let removed = trainer.post(&remove, &pairs).await;
        assert_eq!(removed.status, 303, "{}", removed.body);
        assert_eq!(removed.location(), Some(episode.as_str()));
        let after = trainer.get(&episode).await;
        assert!(after.body.contains("Session removed as entered in error"));
        assert!(!after.body.contains("/session/"), "the session is gone");
        assert_eq!(attended(t.db.clone(), episode_ref.clone()).await, 0);

        // The same submission again (its answer lost, say) removes nothing more.
        let again = trainer.post(&remove, &pairs).await;
        assert_eq!(again.status, 303, "{}", again.body);
        let audited: Vec<(String, String)> =
            sqlx::query_as("SELECT actor, detail FROM audit_log WHERE action = 'record.remove'")
                .fetch_all(t.db.pool())
                .await
                .unwrap();
        assert_eq!(audited.len(), 1, "removed once, audited once");
        assert_eq!(audited[0].0, "trainer");
        let detail: serde_json::Value = serde_json::from_str(&audited[0].1).unwrap();
        assert_eq!(detail["reason"], "logged against the wrong client");
        assert_eq!(detail["before"]["mode"], "telephone");
        assert!(detail["after"].is_null());

        // The baseline the exit assessment rests on stays, and the page says why.
        let page = trainer.get(&episode).await;
        let baseline = link_with(&page.body, "/baseline/");
        let remove = format!("{baseline}/remove");
        let refused = trainer
            .save_form(&remove, &[("reason", "recorded twice")])
            .await;
        assert_eq!(refused.status, 200, "{}", refused.body);
        assert!(
            refused
                .body
                .contains("The baseline assessment cannot be removed"),
            "{}",
            refused.body
        );
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM assessments a JOIN episodes e ON e.service_id = a.service_id \
             AND e.episode_id = a.episode_id WHERE e.episode_ref = $1",
        )
        .bind(episode_ref.clone())
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(left, 2, "nothing removed");

        // A goal is changed on its own, and one agreed in error removed.
        let planned = trainer
            .save_form(
                &format!("{episode}/plan"),
                &[
                    ("goal1_domain", "diet"),
                    ("goal1_description", "Fruit at breakfsat"),
                    ("goal2_domain", "physical_activity"),
                    ("goal2_description", "Walk to the shops"),
                ],
            )
            .await;
        assert_eq!(planned.status, 303, "{}", planned.body);
        let page = trainer.get(&episode).await;
        let goal_links: Vec<String> = page
            .body
            .split("href=\"")
            .map(|h| h[..h.find('"').unwrap_or(0)].to_string())
            .filter(|h| h.contains("/goal/"))
            .collect();
        assert_eq!(goal_links.len(), 2, "each goal has a change link");
        let first = goal_links
            .iter()
            .find(|l| {
                let form = page.body.split(l.as_str()).next().unwrap();
                form.rfind("Fruit at breakfsat") > form.rfind("Walk to the shops")
            })
            .unwrap()
            .clone();
        let changed = trainer
            .save_form(&first, &[("description", "Fruit at breakfast")])
            .await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        let goals: Vec<String> = sqlx::query_scalar(
            "SELECT g.description FROM goals g JOIN plans p ON p.service_id = g.service_id \
             AND p.plan_id = g.plan_id JOIN episodes e ON e.service_id = p.service_id \
             AND e.episode_id = p.episode_id WHERE e.episode_ref = $1 ORDER BY g.description",
        )
        .bind(episode_ref.clone())
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(goals, ["Fruit at breakfast", "Walk to the shops"]);
        let second = goal_links.iter().find(|l| **l != first).unwrap();
        let removed = trainer
            .save_form(
                &format!("{second}/remove"),
                &[("reason", "agreed in error")],
            )
            .await;
        assert_eq!(removed.status, 303, "{}", removed.body);
        let after = trainer.get(&episode).await;
        assert!(after.body.contains("Goal removed as entered in error"));
        assert!(!after.body.contains("Walk to the shops"));
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('record.update', 'record.remove') \
             AND entity = 'goal'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(audited, 2, "the goal's change and the other's removal");

        // When the plan was agreed is changed on its own, through the episode's rules.
        let plan = link_with(&after.body, "/plan-agreed/");
        let agreed_on = |db: dcrs_store::Database, e: String| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT p.agreed_on FROM plans p JOIN episodes e ON e.service_id = p.service_id \
                 AND e.episode_id = p.episode_id WHERE e.episode_ref = $1",
            )
            .bind(e)
            .fetch_one(db.pool())
            .await
            .unwrap()
        };
        let first_agreed = agreed_on(t.db.clone(), episode_ref.clone()).await;
        let before_first_contact = trainer
            .save_form(&plan, &[("agreed_on", "2026-11-01")])
            .await;
        assert_eq!(before_first_contact.status, 200);
        assert!(
            before_first_contact.body.contains("Error:"),
            "{}",
            before_first_contact.body
        );
        assert_eq!(
            agreed_on(t.db.clone(), episode_ref.clone()).await,
            first_agreed,
            "nothing changed"
        );
        let moved = trainer
            .save_form(&plan, &[("agreed_on", "2026-11-10")])
            .await;
        assert_eq!(moved.status, 303, "{}", moved.body);
        assert_eq!(
            agreed_on(t.db.clone(), episode_ref.clone()).await,
            "2026-11-10"
        );
        let page = trainer.get(&episode).await;
        assert!(page.body.contains("Plan saved"), "{}", page.body);
        assert!(page.body.contains("Plan agreed on 10 November 2026"));
        let detail: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'record.update' AND entity = 'plan'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert!(
            detail.contains(&first_agreed) && detail.contains("2026-11-10"),
            "before and after: {detail}"
        );

        // A plan agreed in error is removed with its goals, each audited.
        let removed = trainer
            .save_form(&format!("{plan}/remove"), &[("reason", "wrong client")])
            .await;
        assert_eq!(removed.status, 303, "{}", removed.body);
        let page = trainer.get(&episode).await;
        assert!(
            page.body
                .contains("Plan and its goals removed as entered in error")
        );
        assert!(!page.body.contains("Fruit at breakfast"));
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM goals")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        let plans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plans")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!((left, plans), (0, 0));
        let removals: Vec<(String, String)> = sqlx::query_as(
            "SELECT entity, record_ref FROM audit_log WHERE action = 'record.remove' \
             AND entity IN ('plan', 'goal') ORDER BY audit_id",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        let kinds: Vec<&str> = removals.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(kinds, ["goal", "goal", "plan"], "{removals:?}");

        // Another service's manager cannot reach it.
        let mut other = Browser::new(&app);
        other.sign_in("manager", PASSWORD).await;
        let s2 = remove.replace("/services/S1/", "/services/S2/");
        assert_eq!(other.get(&s2).await.status, 404);
    });
}

/// A client's details are corrected from their page: the same form as registering, one
/// page, filled with what is stored; the change goes through the write path (a bad NHS
/// number is refused with nothing changed) and is audited with before and after.
#[tokio::test]
async fn a_clients_details_are_corrected_with_before_and_after_audited() {
    each_backend!("web_client_details", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let page = trainer.get("/services/S1/clients/C1").await;
        let change = link_with(&page.body, "/change");
        assert_eq!(change, "/services/S1/clients/C1/change");
        let form = trainer.get(&change).await;
        assert_eq!(form.status, 200);
        assert!(
            form.body.contains("Change the client&#39;s details"),
            "{}",
            form.body
        );
        assert!(
            form.body.contains("value=\"Northern\""),
            "filled with what is stored"
        );
        let family = |db: dcrs_store::Database| async move {
            sqlx::query_scalar::<_, String>(
                "SELECT family_name FROM clients WHERE client_ref = 'C1'",
            )
            .fetch_one(db.pool())
            .await
            .unwrap()
        };
        let refused = trainer
            .save_form(
                &change,
                &[("family_name", "Norton"), ("nhs_number", "1234567890")],
            )
            .await;
        assert_eq!(refused.status, 200);
        assert!(
            refused.body.contains("href=\"#nhs_number\""),
            "{}",
            refused.body
        );
        assert_eq!(family(t.db.clone()).await, "Northern", "nothing changed");
        let saved = trainer
            .save_form(&change, &[("family_name", "Norton")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(saved.location().unwrap(), "/services/S1/clients/C1");
        let after = trainer.get("/services/S1/clients/C1").await;
        assert!(
            after.body.contains("Client&#39;s details saved"),
            "{}",
            after.body
        );
        assert_eq!(family(t.db.clone()).await, "Norton");
        let detail: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'record.update' AND entity = 'client' \
             AND record_ref = 'C1'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        let d: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(d["family_name"]["before"], "Northern");
        assert_eq!(d["family_name"]["after"], "Norton");
        assert_eq!(
            trainer.get("/services/S2/clients/C2/change").await.status,
            404,
            "another service's client"
        );
    });
}

/// Two people change one record: the one who saves second, on a form opened before the
/// first saved, is shown what is stored now under each answer that differs, and nothing
/// is written over it; saving that form again keeps their answers, deliberately.
#[tokio::test]
async fn a_change_saved_over_anothers_is_shown_both_versions_not_written() {
    each_backend!("web_change_conflict", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let episode = open_episode(&mut trainer).await;
        let saved = trainer
            .save_form(
                &format!("{episode}/session"),
                &[
                    ("duration_min", "30"),
                    ("attended", "yes"),
                    ("mode", "face_to_face"),
                    ("venue", "gp_practice"),
                    ("purpose", "assessment"),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let page = trainer.get(&episode).await;
        let change = link_with(&page.body, "/session/");
        // The trainer opens the session's form; the manager changes the session first.
        let opened = trainer.get(&change).await;
        let mut manager = Browser::new(&app);
        manager.sign_in("manager", PASSWORD).await;
        let theirs = manager.save_form(&change, &[("duration_min", "45")]).await;
        assert_eq!(theirs.status, 303, "{}", theirs.body);
        let mut mine: Vec<(String, String)> = opened
            .form_values()
            .into_iter()
            .filter(|(n, _)| n != "duration_min")
            .collect();
        mine.push(("duration_min".into(), "60".into()));
        mine.push(("do".into(), "save".into()));
        let pairs: Vec<(&str, &str)> = mine.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let conflict = trainer.post(&change, &pairs).await;
        assert_eq!(conflict.status, 200);
        assert!(
            conflict
                .body
                .contains("was changed by someone else after you opened it"),
            "{}",
            conflict.body
        );
        assert!(
            conflict.body.contains("Now stored: 45"),
            "{}",
            conflict.body
        );
        assert!(
            conflict.body.contains("value=\"60\""),
            "what was typed is kept"
        );
        let duration = |db: dcrs_store::Database| async move {
            sqlx::query_scalar::<_, i64>("SELECT duration_min FROM sessions")
                .fetch_one(db.pool())
                .await
                .unwrap()
        };
        assert_eq!(duration(t.db.clone()).await, 45, "the other change stands");
        // Saving the form as shown keeps the trainer's answers.
        let again: Vec<(String, String)> = conflict
            .form_values()
            .into_iter()
            .chain([("do".to_string(), "save".to_string())])
            .collect();
        let pairs: Vec<(&str, &str)> = again
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let kept = trainer.post(&change, &pairs).await;
        assert_eq!(kept.status, 303, "{}", kept.body);
        assert_eq!(duration(t.db.clone()).await, 60);
    });
}
