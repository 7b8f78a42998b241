//! The health trainer's flow in a real browser on a phone's viewport (see
//! `tests/browser/flow.mjs`): register a client (a rejected form keeps what was typed),
//! refer and open an episode, baseline with its BMI, a two-goal plan, a session, a draft
//! that survives signing out and in, an exit assessment, closing the episode. axe-core
//! finds nothing on any page. Prints each step's page and field counts; screenshots are
//! kept under `target/web-flow/`. The same flow runs on a laptop's viewport (1280×800),
//! its screenshots under `target/web-flow-laptop/`.

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
use std::path::{Path, PathBuf};

mod common;
use common::{PASSWORD, browser_dir, browser_ready, state};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Runs `flow.mjs` on a fresh database at a viewport (`WIDTHxHEIGHT`), its screenshots
/// under `target/SHOTS/`: the database and the flow's JSON report.
async fn run_flow(viewport: &str, shots: &str) -> (TestDb, serde_json::Value) {
    let t = TestDb::sqlite().await;
    // Blackpool's postcodes and the IMD 2019, so the postcode is confirmed with its area.
    let refdir = tempfile::tempdir().unwrap();
    let imd = "imd/imd2019_lsoa11_england.csv";
    std::fs::create_dir_all(refdir.path().join("imd")).unwrap();
    std::fs::copy(shared().join(imd), refdir.path().join(imd)).unwrap();
    let options = dcrs_refdata::LoadOptions {
        files: vec![(
            "postcodes".into(),
            shared().join("postcode/postcode_lsoa11_sample_blackpool_wokingham.csv"),
        )],
        actor: "test".into(),
        ..Default::default()
    };
    dcrs_refdata::load(&t.db, refdir.path(), &options)
        .await
        .unwrap();
    let app = state(&t.db, Settings::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(dcrs_web::serve_on(app, listener));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(shots);
    let viewport = viewport.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(browser_dir().join("flow.mjs"))
            .args([base.as_str(), "trainer", PASSWORD, "S1"])
            .arg(&shots)
            .arg(viewport)
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
    (t, serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_trainer_takes_a_client_from_registration_to_closing_on_a_phone() {
    let test = "a_health_trainer_takes_a_client_from_registration_to_closing_on_a_phone";
    if !browser_ready(test) {
        return;
    }
    // The same flow on a laptop first: every page checked and photographed there too.
    let (_, laptop) = run_flow("1280x800", "web-flow-laptop").await;
    let laptop_violations: Vec<String> = laptop["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["violations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
        })
        .collect();
    assert!(
        laptop_violations.is_empty(),
        "axe-core on a laptop: {laptop_violations:#?}"
    );
    let laptop_pages: i64 = laptop["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pages"].as_i64().unwrap())
        .sum();
    say!("on a laptop (1280×800): {laptop_pages} pages, no axe-core violations");
    let (t, r) = run_flow("390x844", "web-flow").await;
    let mut pages = 0;
    let mut violations = Vec::new();
    // The four tasks the first review timed: register a client (with the referral that
    // opens the episode), a baseline, a two-goal plan and a session.
    const TASKS: [&str; 5] = [
        "register-client",
        "referral-and-episode",
        "baseline",
        "plan-two-goals",
        "session",
    ];
    let (mut task_pages, mut task_answers) = (0, 0);
    for s in r["steps"].as_array().unwrap() {
        let answered = s["typed"].as_array().map_or(0, Vec::len);
        say!(
            "{:<22} {:>2} pages {:>3} fields shown {:>3} answered",
            s["name"].as_str().unwrap(),
            s["pages"],
            s["fields"],
            answered
        );
        if TASKS.contains(&s["name"].as_str().unwrap()) {
            task_pages += s["pages"].as_i64().unwrap();
            task_answers += answered;
        }
        pages += s["pages"].as_i64().unwrap();
        for v in s["violations"].as_array().unwrap() {
            violations.push(v.to_string());
        }
    }
    say!("{pages} pages in all; checks: {}", r["checks"]);
    // Pages include the form shown again with an error and after a postcode check.
    say!(
        "register, baseline, two-goal plan and session: {task_pages} pages and {task_answers} \
         questions answered (the first review: 23 pages and 45 fields)"
    );
    assert!(
        task_pages < 23 && task_answers < 45,
        "{task_pages} pages, {task_answers} answered"
    );
    assert!(violations.is_empty(), "axe-core: {violations:#?}");
    assert_eq!(laptop_pages, pages, "the same pages on a laptop");
    let c = &r["checks"];
    assert!(
        c["postcode_confirmation"]
            .as_str()
            .unwrap()
            .contains("deprivation quintile"),
        "{c}"
    );
    assert!(
        c["rejected_form_summary"]
            .as_str()
            .unwrap()
            .contains("There is a problem")
    );
    // Registering asks consent and who the client is first, the rest on a second page.
    let first = c["client_first_page"].as_str().unwrap();
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert!(!first.contains("Ethnic group"), "{first}");
    let second = c["client_second_page"].as_str().unwrap();
    assert!(
        second.contains("Page 2 of 2") && second.contains("Ethnic group"),
        "{second}"
    );
    assert!(!second.contains("Date of birth"), "{second}");
    assert_eq!(c["rejected_form_kept"]["given_name"], "Zoë");
    assert_eq!(c["rejected_form_kept"]["family_name"], "O'Neill");
    assert_eq!(c["rejected_form_kept"]["sex"], "female");
    assert_eq!(c["rejected_form_kept"]["postcode"], "FY1 5DW");
    assert!(c["bmi_shown"].as_str().unwrap().contains("BMI 30.3"), "{c}");
    // The client's copy of the plan: their name, the trainer's, and both goals in words.
    let copy = c["plan_copy"].as_str().unwrap_or_default();
    assert!(copy.contains("Your plan, Zoë O'Neill"), "{copy}");
    assert!(
        copy.contains("Walk to work three days a week") && copy.contains("Physical activity"),
        "{copy}"
    );
    // The caseload names a draft by its form and its client, not by a reference.
    let named = c["draft_named"].as_str().unwrap_or_default();
    assert!(
        named.starts_with("Signposting or onward referral: ") && !named.contains("EP-"),
        "{named}"
    );
    assert_eq!(c["draft_kept"]["action"], "signposted");
    assert_eq!(c["draft_kept"]["destination"], "weight_management");
    assert_eq!(c["new_session_token_differs"], true);
    assert_eq!(c["goals_asked_at_close"], 2);
    assert!(c["closed"].as_str().unwrap().contains("Closed on"), "{c}");
    // The manager's dashboard, in the same quarter, counts it (exact figures).
    assert_eq!(c["dashboard_closed"], "1", "{c}");
    // ... and links to the episode it counted, by the client's name.
    let records = c["dashboard_records"].as_str().unwrap_or_default();
    assert!(records.contains("Zoë O'Neill"), "{c}");
    // Removing a record entered in error asks why first.
    let asks = c["removal_asks_why"].as_str().unwrap_or_default();
    assert!(
        asks.contains("Enter why the session was entered in error"),
        "{c}"
    );
    // The commissioner: controlled figures with suppressed cells, and no client page.
    assert_eq!(c["commissioner_policy"], true);
    assert!(c["commissioner_stars"].as_i64().unwrap() > 0, "{c}");
    assert_eq!(c["commissioner_client_page"], 404);
    // What the database holds: everything, entered via the application.
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'episode', COUNT(*) FROM episodes WHERE entered_via = 'application' AND closed_on IS NOT NULL AND exit_reason = 'completed' \
         UNION ALL SELECT 'assessment', COUNT(*) FROM assessments WHERE entered_via = 'application' \
         UNION ALL SELECT 'goal', COUNT(*) FROM goals WHERE entered_via = 'application' AND status <> 'open' \
         UNION ALL SELECT 'session', COUNT(*) FROM sessions WHERE entered_via = 'application' \
         UNION ALL SELECT 'onward', COUNT(*) FROM onward_referrals WHERE entered_via = 'application' \
         UNION ALL SELECT 'draft', COUNT(*) FROM drafts",
    )
    .fetch_all(t.db.pool())
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            ("episode".into(), 1),
            ("assessment".into(), 2),
            ("goal".into(), 2),
            ("session".into(), 1),
            ("onward".into(), 1),
            ("draft".into(), 0)
        ]
    );
    assert!(t.db.verify_audit().await.unwrap().intact());
}
