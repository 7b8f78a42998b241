//! Schemathesis (PyPI) against the served API description, with a valid token of a
//! service manager (who reads and writes records and reads reports and patterns): it
//! generates requests from the document, both valid and invalid, and checks that none
//! gets a server error and that every response matches the document (status, content
//! type, body schema). In CI `.ci/run` installs it; elsewhere, without it, the test is
//! reported skipped by name.

use dcrs_testkit::each_backend;
use dcrs_web::Settings;
use std::io::Write;

mod common;

macro_rules! say {
    ($($t:tt)*) => {{
        let mut err = std::io::stderr();
        let _ = writeln!(err, $($t)*);
    }};
}

const TEST: &str = "api_schemathesis";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_document() {
    let Some(st) = dcrs_testkit::tool(TEST, "st", "pip install schemathesis") else {
        return;
    };
    each_backend!("web_api_schemathesis", |t| {
        let app = common::state(&t.db, Settings::default()).await;
        let manager = dcrs_web::users::by_username(&t.db, "manager")
            .await
            .unwrap()
            .unwrap();
        let checked = (
            "schemathesis".to_string(),
            dcrs_web::tokens::Access::Write,
            1,
            None,
        );
        let (_, token) = dcrs_web::tokens::create(&t.db, &manager, &checked)
            .await
            .unwrap();
        let count = |table: &'static str| {
            let db = t.db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {table}"
                )))
                .fetch_one(db.pool())
                .await
                .unwrap()
            }
        };
        let tables = [
            "clients",
            "workers",
            "service_configurations",
            "organisations",
            "services",
        ];
        let mut before = Vec::new();
        for table in tables {
            before.push(count(table).await);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(dcrs_web::serve_on(app, listener));
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/schemathesis/schemathesis.toml");
        let st = st.clone();
        let started = std::time::Instant::now();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(st)
                .arg("--config-file")
                .arg(config)
                .args([
                    "run",
                    &format!("http://127.0.0.1:{port}/api/v1/openapi.json"),
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                    "--max-examples",
                    "25",
                    "--seed",
                    "20261126",
                    "--workers",
                    "2",
                    "--generation-database",
                    "none",
                    "--no-color",
                ])
                .env("DCRS_API_TOKEN", token)
                .output()
                .expect("schemathesis runs")
        })
        .await
        .unwrap();
        server.abort();
        let mut created = Vec::new();
        for (table, was) in tables.iter().zip(&before) {
            created.push(format!("{table} {}", count(table).await - was));
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("generated") || l.contains("Tested:"))
            .map(str::trim)
            .collect();
        say!(
            "{TEST} ({}): {:.0} s; {}; records its valid requests created: {}",
            t.url.split(':').next().unwrap_or(""),
            started.elapsed().as_secs_f64(),
            summary.join(" | "),
            created.join(", ")
        );
        assert!(
            output.status.success(),
            "schemathesis found problems:\n{text}"
        );
    });
}
