//! The manager's dashboard agrees with the caseload and with the report pack: on the
//! example dataset, on a fixed day, the open caseload it counts for this quarter is the
//! number of open episodes the caseload lists, its open episodes without a session in 90
//! days are those the caseload says have had none for 90 days or more, and both figures
//! are the pack's for the same quarter. The pack names the areas served. Its figures per
//! health trainer equal a count made here from the stored episodes and sessions, and
//! each count links to a list of exactly that many records.

use dcrs_web::users::NewUser;

mod common;
use common::{Browser, PASSWORD};

/// The text of the first cell after a row's heading `label` in a page's tables.
fn first_cell(body: &str, label: &str) -> String {
    let at = body
        .find(&format!(">{label}</th>"))
        .unwrap_or_else(|| panic!("no row {label}"));
    cells(&body[at..]).remove(0)
}

/// The text of each cell (`<td>`) of the row that starts `row`, tags removed.
fn cells(row: &str) -> Vec<String> {
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    row.split("<td")
        .skip(1)
        .map(|c| {
            let c = &c[c.find('>').unwrap() + 1..];
            let c = &c[..c.find("</td>").unwrap()];
            let mut text = String::new();
            let mut in_tag = false;
            for ch in c.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    _ if !in_tag => text.push(ch),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// One trainer's figures for a quarter, counted from the stored episodes and sessions
/// (not the summaries the report reads): open at the end, of those with no first
/// contact or attended session in the 90 days before it, opened, sessions attended,
/// full episodes closed.
async fn counted_here(db: &dcrs_store::Database, worker: &str, from: &str, to: &str) -> [i64; 5] {
    let episodes: Vec<(i64, String, Option<String>, String)> = sqlx::query_as(
        "SELECT e.episode_id, e.first_contact_on, e.closed_on, e.kind FROM episodes e \
         JOIN workers w ON w.service_id = e.service_id AND w.worker_id = e.lead_worker_id \
         JOIN services v ON v.service_id = e.service_id \
         WHERE w.worker_ref = $1 AND v.service_ref = 'BPL'",
    )
    .bind(worker)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let sessions: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT s.episode_id, s.held_on, s.attended, w.worker_ref FROM sessions s \
         JOIN workers w ON w.service_id = s.service_id AND w.worker_id = s.worker_id \
         JOIN services v ON v.service_id = s.service_id WHERE v.service_ref = 'BPL'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let to_day = chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap();
    let stale = (to_day - chrono::Days::new(90)).to_string();
    let (from, to, stale) = (from.to_string(), to.to_string(), stale.as_str());
    let mut n = [0; 5];
    for (id, first, closed, kind) in &episodes {
        let open = *first <= to && closed.as_ref().is_none_or(|c| *c > to);
        if open {
            n[0] += 1;
            let seen = sessions.iter().any(|(e, held, attended, _)| {
                e == id && attended == "yes" && held.as_str() >= stale && *held <= to
            });
            if first.as_str() < stale && !seen {
                n[1] += 1;
            }
        }
        if *first >= from && *first <= to {
            n[2] += 1;
        }
        if kind == "full" && closed.as_ref().is_some_and(|c| *c >= from && *c <= to) {
            n[4] += 1;
        }
    }
    n[3] = sessions
        .iter()
        .filter(|(_, held, attended, w)| {
            w == worker && attended == "yes" && *held >= from && *held <= to
        })
        .count() as i64;
    n
}

#[tokio::test]
async fn the_dashboard_agrees_with_the_caseload_and_the_pack() {
    dcrs_testkit::each_backend!("web_dashboard", |t| {
        common::import(&t.db, &common::examples()).await;
        // The district the example service serves, as the reference data name it.
        sqlx::query(
            "INSERT INTO ref_lad_region (lad_cd, lad_nm) VALUES ('E06000009', 'Blackpool')",
        )
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
        // Retention: the example data end in 2010, so every client of the service is
        // more than 8 years past their last contact on the fixed day (16 November 2026).
        let (clients, latest): (i64, String) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM clients c JOIN services s ON s.service_id = c.service_id \
             WHERE s.service_ref = 'BPL'), \
             (SELECT MAX(d) FROM (SELECT MAX(held_on) AS d FROM sessions \
             UNION ALL SELECT MAX(closed_on) FROM episodes \
             UNION ALL SELECT MAX(assessed_on) FROM assessments) x)",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert!(latest.as_str() < "2018-11-16", "{latest}");
        let due =
            format!("{clients} clients are past that now, and 0 clients more by 31 March 2027");
        assert!(dashboard.body.contains(&due), "{due}: {}", dashboard.body);
        assert!(
            dashboard.body.contains("<svg class=\"sparkline\"")
                && dashboard
                    .body
                    .contains("Eight quarters, oldest first. 2024-25 Q4: "),
            "each figure's trend over eight quarters"
        );

        // Per health trainer, this quarter and the last: as counted here, and adding up to
        // the service's figures.
        let workers: Vec<(String, String)> = sqlx::query_as(
            "SELECT worker_ref, display_name FROM workers w \
                 JOIN services v ON v.service_id = w.service_id WHERE v.service_ref = 'BPL'",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        for (heading, from, to) in [
            ("2026-27 Q3 so far", "2026-10-01", "2026-12-31"),
            ("2026-27 Q2", "2026-07-01", "2026-09-30"),
        ] {
            let at = dashboard
                .body
                .find(&format!("By health trainer, {heading}</h2>"))
                .unwrap_or_else(|| panic!("a table per trainer for {heading}"));
            let table = &dashboard.body[at..at + dashboard.body[at..].find("</table>").unwrap()];
            let mut open_sum = 0;
            for (worker, name) in &workers {
                let row = table
                    .find(&format!(">{name}</th>"))
                    .unwrap_or_else(|| panic!("{name} has a row for {heading}"));
                let shown = cells(&table[row..]);
                let here = counted_here(&t.db, worker, from, to).await;
                let shown: Vec<i64> = [0, 1, 2, 3, 5]
                    .iter()
                    .map(|&i| shown[i].parse().unwrap())
                    .collect();
                assert_eq!(shown, here.to_vec(), "{name}, {heading}");
                open_sum += here[0];
            }
            if heading.ends_with("so far") {
                assert_eq!(
                    open_sum,
                    open.len() as i64,
                    "the trainers' open caseloads add up to the service's"
                );
            }
        }

        // Every count links to a list of exactly that many records.
        let links: Vec<(String, String)> = dashboard
            .body
            .split("<a href=\"")
            .skip(1)
            .filter(|l| l.contains("/dashboard/records?"))
            .map(|l| {
                let href = l[..l.find('"').unwrap()]
                    .replace("&amp;", "&")
                    .replace("&#38;", "&");
                let text = l[l.find('>').unwrap() + 1..l.find("</a>").unwrap()].to_string();
                (href, text)
            })
            .collect();
        assert!(links.len() >= 5, "counts link to their records: {links:?}");
        for (href, count) in &links {
            let list = b.get(href).await;
            assert_eq!(list.status, 200, "{href}");
            let rows = list.body.matches("<tr>").count() - 1;
            let expected = if count == "1" {
                "1 record".to_string()
            } else {
                format!("{count} records")
            };
            assert!(
                list.body.contains(&format!("<p>{expected}</p>")),
                "{href} lists {count}"
            );
            assert_eq!(rows.to_string(), *count, "{href} shows every record");
        }
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
    });
}
