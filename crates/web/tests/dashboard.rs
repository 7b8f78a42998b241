//! The manager's dashboard agrees with the caseload and with the report pack: on the
//! example dataset, on a fixed day, the open caseload it counts for this quarter is the
//! number of open episodes the caseload lists, its open episodes without a session in 90
//! days are those the caseload says have had none for 90 days or more, and both figures
//! are the pack's for the same quarter. The pack names the areas served.

use dcrs_testkit::TestDb;
use dcrs_web::users::NewUser;

mod common;
use common::{Browser, PASSWORD};

/// The text of the first cell after a row's heading `label` in a page's tables.
fn first_cell(body: &str, label: &str) -> String {
    let at = body
        .find(&format!(">{label}</th>"))
        .unwrap_or_else(|| panic!("no row {label}"));
    let cell = &body[at..];
    let start = cell.find("<td").unwrap();
    let start = start + cell[start..].find('>').unwrap() + 1;
    cell[start..start + cell[start..].find("</td>").unwrap()].to_string()
}

#[tokio::test]
async fn the_dashboard_agrees_with_the_caseload_and_the_pack() {
    let t = TestDb::sqlite().await;
    common::import(&t.db, &common::examples()).await;
    // The district the example service serves, as the reference data name it.
    sqlx::query("INSERT INTO ref_lad_region (lad_cd, lad_nm) VALUES ('E06000009', 'Blackpool')")
        .execute(t.db.pool())
        .await
        .unwrap();
    let n = NewUser {
        username: "manager".into(),
        display_name: "Pat Manager".into(),
        role: "service_manager".into(),
        service_ref: Some("BPL".into()),
        password: PASSWORD.into(),
        ..Default::default()
    };
    common::add_account(&t.db, &n).await;
    let app = common::app_at_clock(&t.db).await;
    let mut b = Browser::new(&app);
    b.sign_in("manager", PASSWORD).await;

    // The caseload: each open episode is a row linking to the episode; a follow-up due
    // links to its form.
    let caseload = b.get("/services/BPL/caseload").await;
    let rows: Vec<&str> = caseload.body.split("<tr>").skip(2).collect();
    let open: Vec<&&str> = rows
        .iter()
        .filter(|r| r.contains("/episodes/") && !r.contains("/follow-up\""))
        .collect();
    let idle = open
        .iter()
        .filter(|r| {
            r.split("no session for ")
                .nth(1)
                .and_then(|t| t.split(' ').next()?.parse::<i64>().ok())
                .is_some_and(|days| days >= 90)
        })
        .count();
    assert!(!open.is_empty(), "the example service has open episodes");
    assert!(idle > 0, "and some have had no session for 90 days");

    let dashboard = b.get("/services/BPL/dashboard").await;
    assert!(
        dashboard.body.contains("2026-27 Q3"),
        "this quarter by the calendar"
    );
    let open_figure = first_cell(&dashboard.body, "Open caseload at the end");
    let idle_figure = first_cell(&dashboard.body, "Open episodes with no session in 90 days");
    assert_eq!(open_figure, open.len().to_string(), "open caseload");
    assert_eq!(
        idle_figure,
        idle.to_string(),
        "open episodes without a session in 90 days"
    );

    // The pack of the same quarter, exact for the manager's own service.
    let pack = b
        .get("/reports/view?kind=pack&period=2026-27Q3&services=BPL")
        .await;
    assert_eq!(pack.status, 200);
    assert!(
        pack.body.contains("areas served: Blackpool (E06000009)"),
        "areas by name, with the code"
    );
    assert_eq!(
        first_cell(&pack.body, "Open caseload at period end"),
        open_figure
    );
    assert_eq!(
        first_cell(
            &pack.body,
            "Open episodes with no session in the 90 days before the period&#39;s end"
        ),
        idle_figure
    );
}
