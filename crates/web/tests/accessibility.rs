//! Every page of the web core, for every role, opened in Debian's chromium on a phone's
//! viewport (390×844) and a laptop's (1280×800) and checked with axe-core against WCAG
//! 2.2 A and AA: zero violations, and no page wider than its window. Screenshots of both
//! are kept under `target/web-pages/`. Needs node with the
//! packages of `tests/browser` (`npm ci` there) and chromium: `.ci/run` installs both;
//! elsewhere the test reports itself skipped by name when they are missing.

/// Writes to the terminal past the test harness's capture, so that the figures are in
/// the log of every run (CI's included), not only with `--nocapture`.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use dcrs_testkit::TestDb;
use dcrs_web::Settings;
use std::path::Path;

mod common;
use common::{PASSWORD, browser_dir, browser_ready, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_every_role_has_no_accessibility_violations() {
    let test = "every_page_of_every_role_has_no_accessibility_violations";
    if !browser_ready(test) {
        return;
    }
    let t = TestDb::sqlite().await;
    let app = state(&t.db, Settings::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(dcrs_web::serve_on(app, listener));
    let plan = serde_json::json!([
        {"user": "trainer", "password": PASSWORD, "pages": [
            "/", "/services/S1/clients", "/services/S1/clients/new", "/services/S1/clients/C1", "/services/S1/clients/C1/change", "/account/password",
            "/account/second-factor", "/services/S2/clients", "/account/tokens"]},
        {"user": "manager", "password": PASSWORD, "pages": [
            "/", "/services/S1/audit", "/services/S1/reports/activity?period=2010-11",
            "/services/S1/dashboard", "/services/S1/caseload", "/reports",
            "/services/S1/clients/C1/episodes/new", "/services/S1/staff",
            "/services/S1/configuration", "/services/S1/clients/C1/subject-access",
            "/services/S1/clients/C1/erase", "/services/S1/clients/C1/restrict",
            "/services/S1/duplicates"]},
        {"user": "commissioner", "password": PASSWORD, "pages": [
            "/", "/services/S1/reports/pack?period=2010-11"]},
        {"user": "analyst", "password": PASSWORD, "pages": [
            "/", "/reports", "/reports/view?kind=pack&period=2010-11&services=S1",
            "/patterns/view?services=S1", "/account/tokens", "/extracts"]},
        {"user": "admin", "password": PASSWORD, "pages": ["/", "/admin/users", "/admin/projects", "/admin/releases"]},
    ]);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-pages");
    // The browser runs while the server answers on the runtime's other thread.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(browser_dir().join("a11y.mjs"))
            .arg(&base)
            .arg(plan.to_string())
            .arg(&shots)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut problems = Vec::new();
    for r in &results {
        let v = r["violations"].as_array().unwrap();
        let at = format!("{} {} at {} px", r["user"], r["path"], r["viewport"]);
        say!("{at}: {} violations", v.len());
        if !v.is_empty() {
            problems.push(format!(
                "{at}: {}",
                serde_json::to_string_pretty(v).unwrap()
            ));
        }
    }
    let laptop = results.iter().filter(|r| r["viewport"] == 1280).count();
    assert!(laptop >= 34, "{laptop} pages checked on a laptop");
    assert_eq!(laptop * 2, results.len(), "each page on both");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
