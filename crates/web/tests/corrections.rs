//! Correcting a saved record: a trainer mistypes a weight in a baseline assessment, opens
//! it again from the episode's page, and corrects it. The record is changed, not added
//! again; the change goes through the write path's rules; the audit log keeps the value
//! before and after, and the manager's audit trail shows it. A record of another kind or
//! another episode is not found at the change address.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

#[tokio::test]
async fn a_mistyped_weight_is_corrected_with_its_before_and_after_audited() {
    each_backend!("web_corrections", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let opened = trainer
            .save_form(
                "/services/S1/clients/C1/episodes/new",
                &[
                    ("source", "gp"),
                    ("kind", "full"),
                    ("primary_issue", "diet"),
                ],
            )
            .await;
        assert_eq!(opened.status, 303, "{}", opened.body);
        let episode = opened.location().unwrap().to_string();
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
