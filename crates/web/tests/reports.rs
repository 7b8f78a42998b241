//! Report pages: the manager's dashboard counts an episode a trainer has just closed in
//! the application; a commissioner sees `*` where the NHS rule says; every page offers
//! its downloads, and every release is audited.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

/// Posts a flow's form and expects a redirect; returns where to.
async fn save(b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> String {
    let form = b.get(path).await;
    assert_eq!(form.status, 200, "{path}");
    let token = form.csrf();
    // As a browser would: the dates the form offers (today), unless given.
    let mut defaults: Vec<(String, String)> = Vec::new();
    for part in form.body.split("<input type=\"date\" id=\"").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        let v = part.split("value=\"").nth(1).unwrap();
        defaults.push((name.to_string(), v[..v.find('"').unwrap()].to_string()));
    }
    let mut all = vec![("csrf", token.as_str()), ("do", "save")];
    for (k, v) in &defaults {
        if !fields.iter().any(|(f, _)| f == k) {
            all.push((k.as_str(), v.as_str()));
        }
    }
    all.extend_from_slice(fields);
    let res = b.post(path, &all).await;
    assert_eq!(res.status, 303, "{path}: {}", res.body);
    res.location().unwrap().to_string()
}

fn figure(body: &str, label: &str) -> String {
    // The row of the dashboard's table: label, this quarter, last quarter.
    let at = body
        .find(&format!(">{label}</th>"))
        .unwrap_or_else(|| panic!("no row {label}"));
    let cell = &body[at..];
    let start = cell.find("<td>").unwrap() + 4;
    let cell = &cell[start..start + cell[start..].find("</td>").unwrap()];
    // A count is a link to its records: its text.
    match cell.strip_suffix("</a>") {
        Some(link) => link[link.find('>').unwrap() + 1..].to_string(),
        None => cell.to_string(),
    }
}

#[tokio::test]
async fn the_dashboard_counts_the_episode_just_closed_and_downloads_are_audited() {
    each_backend!("web_reports", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut trainer = Browser::new(&app);
        trainer.sign_in("trainer", PASSWORD).await;
        let ep = save(
            &mut trainer,
            "/services/S1/clients/C1/episodes/new",
            &[
                ("source", "gp"),
                ("kind", "full"),
                ("primary_issue", "diet"),
            ],
        )
        .await;
        let mut manager = Browser::new(&app);
        manager.sign_in("manager", PASSWORD).await;
        let before = manager.get("/services/S1/dashboard").await;
        assert_eq!(before.status, 200);
        assert_eq!(figure(&before.body, "Full episodes closed"), "0");
        save(
            &mut trainer,
            &format!("{ep}/baseline"),
            &[("weight_kg", "80"), ("height_cm", "170")],
        )
        .await;
        save(
            &mut trainer,
            &format!("{ep}/plan"),
            &[
                ("goal1_domain", "diet"),
                ("goal1_description", "Cook at home"),
            ],
        )
        .await;
        save(
            &mut trainer,
            &format!("{ep}/session"),
            &[
                ("attended", "yes"),
                ("purpose", "support"),
                ("mode", "telephone"),
                ("venue", "remote"),
                ("duration_min", "30"),
            ],
        )
        .await;
        save(&mut trainer, &format!("{ep}/exit"), &[("weight_kg", "78")]).await;
        let close = trainer.get(&format!("{ep}/close")).await;
        let goal = close.body.split("id=\"status_").nth(1).unwrap();
        let goal_ref = &goal[..goal.find('"').unwrap()];
        let name = format!("status_{goal_ref}");
        save(
            &mut trainer,
            &format!("{ep}/close"),
            &[
                (name.as_str(), "fully_achieved"),
                ("exit_reason", "completed"),
            ],
        )
        .await;
        let after = manager.get("/services/S1/dashboard").await;
        assert_eq!(
            figure(&after.body, "Full episodes closed"),
            "1",
            "the manager sees it at once"
        );
        assert_eq!(figure(&after.body, "Goals fully achieved"), "100.0%");

        // A commissioner: the same service's figures, controlled.
        let mut commissioner = Browser::new(&app);
        commissioner.sign_in("commissioner", PASSWORD).await;
        let page = commissioner
            .get("/reports/view?kind=activity&period=2026-27&services=S1")
            .await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("NHS sub-national disclosure control"));
        assert!(page.body.contains(">*<"), "small counts are suppressed");
        assert!(page.body.contains("format=csv") && page.body.contains("format=xlsx"));
        let start: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'report.release'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        for (format, kind, magic) in [
            ("json", "application/json", &b"{"[..]),
            ("xlsx", "spreadsheet", &b"PK"[..]),
            ("csv", "zip", &b"PK"[..]),
            ("html-file", "text/html", &b"<!DOCTYPE"[..]),
        ] {
            let d = commissioner
                .get(&format!(
                    "/reports/view?kind=pack&period=2026-27&services=S1&format={format}"
                ))
                .await;
            assert_eq!(d.status, 200, "{format}");
            assert!(
                d.headers["content-type"].to_str().unwrap().contains(kind),
                "{format}"
            );
            assert!(
                d.headers["content-disposition"]
                    .to_str()
                    .unwrap()
                    .starts_with("attachment")
            );
            assert!(d.body.as_bytes().starts_with(magic), "{format}");
        }
        let end: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'report.release'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(end - start, 4, "each download is a release");
        // The JSON a commissioner gets never names a client.
        let json = commissioner
            .get("/reports/view?kind=pack&period=2026-27&services=S1&format=json")
            .await;
        assert!(!json.body.contains("Northern") && !json.body.contains("C1\""));
        // An analyst's patterns, side by side.
        let mut analyst = Browser::new(&app);
        analyst.sign_in("analyst_all", PASSWORD).await;
        let p = analyst.get("/patterns/view").await;
        assert_eq!(p.status, 200);
        assert!(
            p.body
                .contains("Delivery model by quarter, services side by side")
        );
        assert!(t.db.verify_audit().await.unwrap().intact());
    });
}
