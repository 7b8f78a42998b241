//! Test support shared by the crates' test suites: a fresh, migrated database per test
//! on SQLite and on PostgreSQL.
//!
//! PostgreSQL is at `DCRS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).
//! In CI (`CI=true`) it must be reachable, or the test fails loudly. Elsewhere, when it
//! is not, the PostgreSQL half of each test is skipped and says so by name on the
//! terminal (written past the test harness's output capture), so it never passes silently.

use dcrs_store::Database;
use std::io::Write;

/// A database for one test; the SQLite file or PostgreSQL database is its own.
pub struct TestDb {
    /// The migrated database.
    pub db: Database,
    /// The URL it was opened with, for running the CLI against it.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Which backend a test run is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded database.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

fn postgres_base() -> String {
    std::env::var("DCRS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Whether the tests run in CI (`CI=true`), where a missing tool is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says on the terminal, past the harness's capture, that part of a test was skipped.
pub fn report_skip(test: &str, why: &str) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "SKIPPED {test}: {why}");
}

/// The path of `program` when it is on `PATH`. When it is not, a test that needs it
/// fails in CI (which installs it) and elsewhere is reported skipped by name.
pub fn tool(test: &str, program: &str, install: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let why = format!("{program} is not installed ({install})");
        assert!(!in_ci(), "{test}: {why}; .ci/run installs it");
        report_skip(test, &why);
    }
    found
}

/// Whether `python3` can import `module`. When it cannot, a test that needs it fails in
/// CI (which installs it) and elsewhere is reported skipped by name.
pub fn python_module(test: &str, module: &str) -> bool {
    let ok = tool(test, "python3", "Debian's python3").is_some_and(|python| {
        std::process::Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        let why = format!("the Python package {module} is not installed (pip install {module})");
        assert!(!in_ci(), "{test}: {why}; .ci/run installs it");
        report_skip(test, &why);
    }
    ok
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Database::connect(&url).await.expect("open SQLite");
        TestDb {
            db,
            url,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database named after the test, or `None` (with the skip
    /// reported) when PostgreSQL is not reachable outside CI.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        sqlx::any::install_default_drivers();
        let base = postgres_base();
        let admin_url = format!("{base}/postgres");
        let mut admin = match <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if !in_ci() => {
                report_skip(
                    test,
                    &format!("PostgreSQL half skipped: {base} is not reachable ({e})"),
                );
                return None;
            }
            Err(e) => panic!("CI=true but PostgreSQL at {base} is not reachable: {e}"),
        };
        let name: String = format!("dcrs_t_{test}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(63)
            .collect();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .expect("create the test database");
        }
        let url = format!("{base}/{name}");
        let db = Database::connect(&url).await.expect("open PostgreSQL");
        Some(TestDb {
            db,
            url,
            _dir: None,
        })
    }

    /// The URL of a fresh, empty PostgreSQL database named after the test (no tables: not
    /// migrated), for restoring into; `None` (with the skip reported) when PostgreSQL is
    /// not reachable outside CI.
    pub async fn empty_postgres(test: &str) -> Option<String> {
        let t = TestDb::postgres(test).await?;
        t.db.close().await;
        let url = t.url.clone();
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect to the test database");
        for sql in ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"] {
            sqlx::query(sql)
                .execute(&mut conn)
                .await
                .expect("empty the test database");
        }
        Some(url)
    }

    /// A fresh database on `backend`, or `None` when that backend is skipped.
    pub async fn on(backend: Backend, test: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite().await),
            Backend::Postgres => TestDb::postgres(test).await,
        }
    }
}

/// Both backends, in the order tests run them.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// Runs `body` once per backend, each time on a fresh database.
#[macro_export]
macro_rules! each_backend {
    ($test:literal, |$t:ident| $body:block) => {
        for backend in $crate::BACKENDS {
            let name = format!("{}_{:?}", $test, backend);
            let Some($t) = $crate::TestDb::on(backend, &name).await else {
                continue;
            };
            $body
        }
    };
}
