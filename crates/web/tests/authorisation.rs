//! The authorisation matrix: every route × every role × own service / other service,
//! each cell allowed or refused as designed (written out here by hand, not derived from
//! the code), on SQLite and PostgreSQL. A refusal is a 404 whose page is the same
//! whether or not the record exists; cross-site and token-less posts are refused; every
//! response carries the security headers.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{ACCOUNTS, Browser, PASSWORD, app};

/// (route with `{S}` for the service and `{C}` for its client, who may open it for their
/// own service (S1), who for the other (S2)). Roles by user name, as in `ACCOUNTS`.
const MATRIX: [(&str, &[&str], &[&str]); 20] = [
    ("/services/{S}/clients", &["trainer", "manager"], &[]),
    ("/services/{S}/clients/{C}", &["trainer", "manager"], &[]),
    (
        "/services/{S}/clients/{C}/subject-access",
        &["manager"],
        &[],
    ),
    (
        "/services/{S}/clients/{C}/change",
        &["trainer", "manager"],
        &[],
    ),
    ("/services/{S}/clients/{C}/erase", &["manager"], &[]),
    ("/services/{S}/clients/{C}/restrict", &["manager"], &[]),
    ("/services/{S}/duplicates", &["manager"], &[]),
    ("/services/{S}/audit", &["manager"], &[]),
    (
        "/services/{S}/reports/activity?period=2010-11",
        &["manager", "commissioner", "analyst", "analyst_all"],
        &["analyst_all"],
    ),
    ("/admin/users", &["admin"], &["admin"]),
    (
        "/reports/view?kind=activity&period=2010-11&services={S}",
        &["manager", "commissioner", "analyst", "analyst_all"],
        &["analyst_all"],
    ),
    ("/services/{S}/dashboard", &["manager"], &[]),
    (
        "/services/{S}/dashboard/records?figure=open-episodes&period=2010-11Q3",
        &["manager"],
        &[],
    ),
    (
        "/patterns/view?services={S}",
        &["manager", "analyst", "analyst_all"],
        &["analyst_all"],
    ),
    ("/services/{S}/caseload", &["trainer", "manager"], &[]),
    ("/services/{S}/staff", &["manager"], &[]),
    ("/services/{S}/configuration", &["manager"], &[]),
    ("/admin/projects", &["admin"], &["admin"]),
    ("/admin/releases", &["admin"], &["admin"]),
    (
        "/extracts",
        &["analyst", "analyst_all"],
        &["analyst", "analyst_all"],
    ),
];

#[tokio::test]
async fn every_route_every_role_own_and_other_service() {
    each_backend!("web_authorisation", |t| {
        let app = app(&t.db, Settings::default()).await;
        let mut cells = 0;
        let mut wrong = Vec::new();
        for (user, ..) in ACCOUNTS {
            let mut b = Browser::new(&app);
            let signed = b.sign_in(user, PASSWORD).await;
            assert_eq!(signed.status, 303, "{user} signs in");
            for (route, own, other) in MATRIX {
                for (service, client, allowed) in [("S1", "C1", own), ("S2", "C2", other)] {
                    let path = route.replace("{S}", service).replace("{C}", client);
                    let page = b.get(&path).await;
                    let expect = if allowed.contains(&user) { 200 } else { 404 };
                    cells += 1;
                    if page.status != expect {
                        wrong.push(format!(
                            "{user} GET {path}: {} (expected {expect})",
                            page.status
                        ));
                    }
                    for h in [
                        "content-security-policy",
                        "x-content-type-options",
                        "referrer-policy",
                        "cache-control",
                    ] {
                        assert!(page.headers.contains_key(h), "{path}: {h}");
                    }
                    assert_eq!(page.headers["cache-control"], "no-store");
                    if expect == 404 {
                        // Nothing about the record: the page is the one for a record that
                        // does not exist at all.
                        let missing = b
                            .get(&route.replace("{S}", "NOPE").replace("{C}", "NOPE"))
                            .await;
                        assert_eq!(page.body, missing.body, "{user} {path}");
                        assert!(!page.body.contains("Northern") && !page.body.contains("Southern"));
                    }
                }
            }
            // Adding an account: the admin only (with a valid token).
            let token = b.token().await;
            let n = format!("new_{user}");
            let add = b
                .post(
                    "/admin/users",
                    &[
                        ("csrf", &token),
                        ("username", &n),
                        ("display_name", "New person"),
                        ("role", "analyst"),
                        ("password", PASSWORD),
                    ],
                )
                .await;
            let expect = if user == "admin" { 303 } else { 404 };
            cells += 1;
            if add.status != expect {
                wrong.push(format!(
                    "{user} POST /admin/users: {} (expected {expect})",
                    add.status
                ));
            }
        }
        println!("{cells} cells of the matrix checked");
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert_eq!(cells, ACCOUNTS.len() * (MATRIX.len() * 2 + 1));
    });
}

#[tokio::test]
async fn identifiable_pages_show_only_the_own_service_and_reports_follow_the_policy() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut trainer = Browser::new(&app);
    trainer.sign_in("trainer", PASSWORD).await;
    let list = trainer.get("/services/S1/clients").await;
    assert!(list.body.contains("Ann Northern"));
    assert!(!list.body.contains("Southern"));
    // The manager's own reports are exact; the commissioner's are controlled.
    let mut manager = Browser::new(&app);
    manager.sign_in("manager", PASSWORD).await;
    let exact = manager
        .get("/services/S1/reports/activity?period=2010-11&format=json")
        .await;
    assert!(
        exact.body.contains("\"name\": \"none\""),
        "{}",
        &exact.body[..400.min(exact.body.len())]
    );
    let mut commissioner = Browser::new(&app);
    commissioner.sign_in("commissioner", PASSWORD).await;
    let controlled = commissioner
        .get("/services/S1/reports/activity?period=2010-11&format=json")
        .await;
    assert!(controlled.body.contains("\"name\": \"nhs_sub_national\""));
    let page = commissioner
        .get("/services/S1/reports/activity?period=2010-11")
        .await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("'sha256-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
}

#[tokio::test]
async fn cross_site_and_token_less_posts_are_refused() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let app = app(&t.db, Settings::default()).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", PASSWORD).await;
    let token = admin.token().await;
    let form = |u: &'static str| {
        vec![
            ("username", u),
            ("display_name", "X"),
            ("role", "admin"),
            ("password", PASSWORD),
        ]
    };
    // No token.
    let none = admin.post("/admin/users", &form("x1")).await;
    assert_eq!(none.status, 403);
    // A wrong token.
    let mut f = form("x2");
    f.push(("csrf", "0000"));
    assert_eq!(admin.post("/admin/users", &f).await.status, 403);
    // The right token from another site.
    let mut f = form("x3");
    f.push(("csrf", &token));
    let cross = admin
        .post_with("/admin/users", &f, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(cross.status, 403);
    let other_origin = admin
        .post_with("/admin/users", &f, &[("origin", "https://evil.example")])
        .await;
    assert_eq!(other_origin.status, 403);
    // Sign-in itself needs the form's own token.
    let mut stranger = Browser::new(&app);
    let login = stranger
        .post("/login", &[("username", "admin"), ("password", PASSWORD)])
        .await;
    assert_eq!(login.status, 403);
    // None of them added an account.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username LIKE 'x%'")
        .fetch_one(t.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    // And the same form with its token works.
    assert_eq!(admin.post("/admin/users", &f).await.status, 303);
}
