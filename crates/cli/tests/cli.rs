//! The `dcrs` binary as an operator meets it: exit codes, messages, quiet output when
//! not on a terminal, and the audit trail of each run.

use dcrs_testkit::each_backend;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{dcrs, examples};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test]
async fn import_reports_exits_and_audits() {
    each_backend!("cli_import", |t| {
        let ex = examples();
        let ex = ex.to_str().unwrap();

        // A dry run says what it would do and writes nothing.
        let out = dcrs(&t.url, &["import", "--dry-run", ex]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("Dry run: no problems found"), "{stdout}");
        assert!(
            stdout.contains("clients.csv                       24         0         0"),
            "{stdout}"
        );
        assert_eq!(
            text(&out.stderr),
            "",
            "no progress bar when not on a terminal"
        );
        let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(clients, 0);

        let out = dcrs(&t.url, &["import", ex]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Imported."));

        // A bad row: exit status 1, the row named, nothing written.
        let bad = tempfile::tempdir().unwrap();
        std::fs::write(
            bad.path().join("workers.csv"),
            "worker_ref,service_ref,display_name,role,sex,age_band,lives_in_area_served,home_imd_quintile,qualification,started_on,left_on,fte\n\
             W9,BPL,New Trainer,health_trainer,female,25-34,yes,6,level3_certificate,2011-01-01,,1\n",
        )
        .unwrap();
        let out = dcrs(&t.url, &["import", bad.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("workers.csv line 2, record W9: home_imd_quintile = \"6\": this must be between 1 and 5"),
            "{stdout}"
        );
        assert!(stdout.contains("nothing was imported"), "{stdout}");

        // Export is audited as the operator; the export holds the data.
        let dir = tempfile::tempdir().unwrap();
        let out = dcrs(&t.url, &["export", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("Exported 281 records"));
        let actions: Vec<(String, String)> =
            sqlx::query_as("SELECT actor, action FROM audit_log WHERE action IN ('import', 'import.dry_run', 'export') ORDER BY audit_id")
                .fetch_all(t.db.pool())
                .await
                .unwrap();
        // The operator, with the operating-system account that ran the command.
        let (actors, actions): (Vec<String>, Vec<String>) = actions.into_iter().unzip();
        assert_eq!(actions, ["import.dry_run", "import", "import", "export"]);
        for a in actors {
            assert!(
                a.starts_with("operator (cli, os user test-operator, uid "),
                "{a}"
            );
        }
    });
}

#[test]
fn a_bad_database_address_is_explained() {
    let out = dcrs("mysql://nowhere", &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("use sqlite://PATH or postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

#[test]
fn demo_loads_reference_data_and_the_scenario_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let refdata = shared_data();
    let refdata = refdata.to_str().unwrap();
    let first = dcrs(&url, &["demo", "--no-serve", "--refdata", refdata]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("SYNTHETIC"), "{stdout}");
    assert!(stdout.contains("Loading reference data from"), "{stdout}");
    assert!(
        stdout.contains("Generated the six-service scenario"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 updated, 0 unchanged"),
        "a first load adds everything: {stdout}"
    );
    for service in [
        "Blackpool",
        "Nottingham",
        "County Durham",
        "Liverpool",
        "Bolton",
        "Hastings",
    ] {
        assert!(stdout.contains(service), "{service} missing: {stdout}");
    }
    let second = dcrs(&url, &["demo", "--no-serve", "--refdata", refdata]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let again = text(&second.stdout);
    assert!(again.contains("Reference data: already loaded."), "{again}");
    assert!(
        again.contains("already loaded; nothing was changed"),
        "{again}"
    );

    // At national scale, beside the scenario: the reference data are reused.
    let national = dcrs(
        &url,
        &[
            "demo",
            "--no-serve",
            "--refdata",
            refdata,
            "--clients",
            "1500",
            "--services",
            "2",
        ],
    );
    assert!(national.status.success(), "{}", text(&national.stderr));
    let out = text(&national.stdout);
    assert!(out.contains("Reference data: already loaded."), "{out}");
    assert!(out.contains("a national deployment"), "{out}");
    assert!(out.contains("S001") && out.contains("S002"), "{out}");
    let clients = |listing: &str| -> i64 {
        listing
            .lines()
            .find(|l| l.starts_with("clients.csv"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    assert_eq!(clients(&out), clients(&stdout) + 1500, "{out}");

    // Reports on the demonstration: JSON for one service, CSV for each service.
    let json = dir.path().join("a.json");
    let a = dcrs(
        &url,
        &[
            "report",
            "pack",
            "--service",
            "A",
            "--period",
            "2010-11Q3",
            "--out",
            json.to_str().unwrap(),
        ],
    );
    assert!(a.status.success(), "{}", text(&a.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["policy"]["name"], "nhs_sub_national");
    assert_eq!(doc["synthetic"], true);
    assert!(
        doc["title"]
            .as_str()
            .unwrap()
            .starts_with("SYNTHETIC DATA.")
    );
    assert_eq!(doc["sections"].as_array().unwrap().len(), 6);
    let csv_dir = dir.path().join("csv");
    let each = dcrs(
        &url,
        &[
            "report",
            "reach",
            "--service",
            "A,B",
            "--each-service",
            "--period",
            "2010-11",
            "--format",
            "csv",
            "--out",
            csv_dir.to_str().unwrap(),
        ],
    );
    assert!(each.status.success(), "{}", text(&each.stderr));
    for folder in ["all", "service-A", "service-B"] {
        let about = std::fs::read_to_string(csv_dir.join(folder).join("about.csv")).unwrap();
        assert!(
            about.contains("disclosure_policy,nhs_sub_national"),
            "{about}"
        );
        assert!(csv_dir.join(folder).join("reach_by_quintile.csv").is_file());
    }
    // A date range is refused under the NHS rule and explained.
    let range = dcrs(
        &url,
        &[
            "report",
            "activity",
            "--period",
            "2010-04-01..2010-05-31",
            "--out",
            json.to_str().unwrap(),
        ],
    );
    assert!(!range.status.success());
    assert!(
        text(&range.stderr).contains("not a whole quarter"),
        "{}",
        text(&range.stderr)
    );
    // Exact figures must be asked for, are flagged, and the release is audited as such.
    let none = dcrs(
        &url,
        &[
            "report",
            "activity",
            "--service",
            "A",
            "--period",
            "2010-04-01..2010-05-31",
            "--policy",
            "none",
            "--out",
            json.to_str().unwrap(),
        ],
    );
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert!(text(&none.stderr).contains("not disclosure-controlled"));
    let audit = dcrs(&url, &["status"]);
    assert!(audit.status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let actions: Vec<String> = rt.block_on(async {
        let db = dcrs_store::Database::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE action LIKE 'report%' ORDER BY audit_id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
    });
    assert_eq!(
        actions,
        vec![
            "report.release",
            "report.release",
            "report.release.uncontrolled"
        ]
    );
    // Implementation patterns: controlled by default, every format, audited likewise.
    for format in ["json", "csv", "html", "xlsx"] {
        let out = dir.path().join(format!("patterns.{format}"));
        let run = dcrs(
            &url,
            &[
                "patterns",
                "--service",
                "A,F",
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(out.exists(), "{format}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("patterns.json")).unwrap())
            .unwrap();
    assert_eq!(doc["kind"], "patterns");
    assert_eq!(doc["policy"]["name"], "nhs_sub_national");
    assert!(
        dir.path()
            .join("patterns.csv")
            .join("a_fingerprint.csv")
            .is_file()
    );
    let exact = dcrs(
        &url,
        &[
            "patterns",
            "--service",
            "F",
            "--policy",
            "none",
            "--out",
            dir.path().join("f.json").to_str().unwrap(),
        ],
    );
    assert!(exact.status.success(), "{}", text(&exact.stderr));
    assert!(text(&exact.stderr).contains("not disclosure-controlled"));
    let actions: Vec<String> = rt.block_on(async {
        let db = dcrs_store::Database::connect(&url).await.unwrap();
        sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE action LIKE 'patterns%' ORDER BY audit_id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap()
    });
    assert_eq!(
        actions,
        vec![
            "patterns.release",
            "patterns.release",
            "patterns.release",
            "patterns.release",
            "patterns.release.uncontrolled"
        ]
    );
}

#[test]
fn demo_without_reference_data_says_how_to_get_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let missing = dir.path().join("no-such-directory");
    let out = dcrs(
        &url,
        &["demo", "--no-serve", "--refdata", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no reference data is loaded"), "{stderr}");
    assert!(stderr.contains("dcrs refdata load DIR"), "{stderr}");
    let status = dcrs(&url, &["status"]);
    assert!(
        text(&status.stdout).contains("clients.csv"),
        "{}",
        text(&status.stdout)
    );
    assert!(
        !text(&status.stdout)
            .lines()
            .any(|l| l.starts_with("clients") && !l.trim_end().ends_with(" 0")),
        "nothing should have been loaded: {}",
        text(&status.stdout)
    );
}

#[test]
fn generate_writes_a_dataset_without_touching_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("never.db");
    let url = format!("sqlite://{}", db_path.display());
    let out_dir = dir.path().join("generated");
    let out = dcrs(
        &url,
        &[
            "generate",
            "--out",
            out_dir.to_str().unwrap(),
            "--seed",
            "3",
            "--services",
            "2",
            "--clients",
            "500",
            "--refdata",
            shared_data().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("SYNTHETIC"));
    assert!(out_dir.join("scenario.json").is_file());
    let clients = std::fs::read_to_string(out_dir.join("clients.csv")).unwrap();
    assert_eq!(clients.lines().count(), 501, "a header and 500 clients");
    assert!(!db_path.exists(), "generate must not create a database");
    let bad = dcrs(
        &url,
        &[
            "generate",
            "--out",
            out_dir.to_str().unwrap(),
            "--services",
            "5",
            "--clients",
            "3",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("at least one client per service"));
}

fn dcrs_with_input(url: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcrs"))
        .arg("--database")
        .arg(url)
        .args(args)
        .env_remove("DCRS_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dcrs runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_first_admin_is_added_and_audit_verify_detects_tampering() {
    each_backend!("cli_user_audit", |t| {
        let url = t.url.clone();
        let short = dcrs_with_input(
            &url,
            &["user", "add", "--username", "boss", "--name", "The Boss"],
            "short\n",
        );
        assert_eq!(short.status.code(), Some(1));
        assert!(text(&short.stderr).contains("password: Enter a password of at least 12"));
        let added = dcrs_with_input(
            &url,
            &["user", "add", "--username", "boss", "--name", "The Boss"],
            "a long enough password\n",
        );
        assert!(added.status.success(), "{}", text(&added.stderr));
        let again = dcrs_with_input(
            &url,
            &["user", "add", "--username", "boss", "--name", "Another"],
            "a long enough password\n",
        );
        assert!(text(&again.stderr).contains("already taken"));
        let ok = dcrs(&url, &["audit", "verify"]);
        assert!(ok.status.success(), "{}", text(&ok.stdout));
        assert!(text(&ok.stdout).contains("The audit log is intact."));
        let stored: String =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'boss'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert!(stored.starts_with("$argon2id$"), "an Argon2id hash");
        sqlx::query("UPDATE audit_log SET detail = '{}' WHERE action = 'user.add'")
            .execute(t.db.pool())
            .await
            .unwrap();
        let broken = dcrs(&url, &["audit", "verify"]);
        assert_eq!(broken.status.code(), Some(1));
        assert!(
            text(&broken.stdout).contains("BROKEN"),
            "{}",
            text(&broken.stdout)
        );
    });
}

#[tokio::test]
async fn an_export_that_cannot_be_audited_writes_nothing() {
    // SQLite, write-locked by another connection: the audit entry cannot be written.
    let t = dcrs_testkit::TestDb::sqlite().await;
    let ex = examples();
    let out = dcrs(&t.url, &["import", ex.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lock = t.db.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    for args in [&["export"][..], &["export", "--fhir"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let mut all = args.to_vec();
        all.push(target.to_str().unwrap());
        let run = dcrs(&t.url, &all);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&run.stdout)
        );
        let written = std::fs::read_dir(&target).map_or(0, |d| d.count());
        assert_eq!(
            written, 0,
            "{args:?}: files released without an audit entry"
        );
    }
    sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);
    // Unlocked: the export runs and its entry was written before its files.
    let dir = tempfile::tempdir().unwrap();
    let run = dcrs(&t.url, &["export", dir.path().to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let detail: String = sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'export'")
        .fetch_one(t.db.pool())
        .await
        .unwrap();
    assert!(detail.contains("\"records\":281"), "{detail}");
}

#[tokio::test]
async fn audit_verify_finds_a_chain_deleted_whole_and_an_end_cut_off_against_an_anchor() {
    each_backend!("cli_audit_chains", |t| {
        let url = t.url.clone();
        let ex = examples();
        let out = dcrs(&url, &["import", ex.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let anchor_dir = tempfile::tempdir().unwrap();
        let anchor = anchor_dir.path().join("anchor.txt");
        let anchor = anchor.to_str().unwrap();
        let made = dcrs(&url, &["audit", "anchor", anchor]);
        assert!(made.status.success(), "{}", text(&made.stderr));
        let ok = dcrs(&url, &["audit", "verify", "--against", anchor]);
        assert!(ok.status.success(), "{}", text(&ok.stdout));

        // The last entry of the system chain cut off, the head moved back to match:
        // the chains alone cannot tell; the anchor can.
        let (seq, hash): (i64, String) = sqlx::query_as(
            "SELECT seq, prev_hash FROM audit_log WHERE chain = 'system' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        for sql in [
            format!("DELETE FROM audit_log WHERE chain = 'system' AND seq = {seq}"),
            format!(
                "UPDATE audit_heads SET seq = {}, hash = '{hash}' WHERE chain = 'system'",
                seq - 1
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(t.db.pool())
                .await
                .unwrap();
        }
        let plain = dcrs(&url, &["audit", "verify"]);
        assert!(plain.status.success(), "{}", text(&plain.stdout));
        let anchored = dcrs(&url, &["audit", "verify", "--against", anchor]);
        assert_eq!(anchored.status.code(), Some(1));
        assert!(
            text(&anchored.stdout).contains("chain system: the anchor records position"),
            "{}",
            text(&anchored.stdout)
        );

        // A service's chain deleted whole, head and all.
        let service: i64 =
            sqlx::query_scalar("SELECT service_id FROM services WHERE service_ref = 'BPL'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        for sql in [
            format!("DELETE FROM audit_log WHERE chain = 'service:{service}'"),
            format!("DELETE FROM audit_heads WHERE chain = 'service:{service}'"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(t.db.pool())
                .await
                .unwrap();
        }
        let broken = dcrs(&url, &["audit", "verify"]);
        assert_eq!(broken.status.code(), Some(1));
        assert!(
            text(&broken.stdout)
                .contains(&format!("chain service:{service} (service BPL) is missing")),
            "{}",
            text(&broken.stdout)
        );

        // The whole log, heads and all.
        for sql in ["DELETE FROM audit_log", "DELETE FROM audit_heads"] {
            sqlx::query(sql).execute(t.db.pool()).await.unwrap();
        }
        let gone = dcrs(&url, &["audit", "verify"]);
        assert_eq!(gone.status.code(), Some(1));
        assert!(
            text(&gone.stdout).contains("the system chain is missing"),
            "{}",
            text(&gone.stdout)
        );
    });
}

#[cfg(unix)]
#[test]
fn health_data_is_written_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let url = format!("sqlite://{}", db.display());
    let ex = examples();
    let out = dcrs(&url, &["import", ex.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = dir.path().join("csv");
    let fhir = dir.path().join("fhir");
    assert!(
        dcrs(&url, &["export", csv.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        dcrs(&url, &["export", "--fhir", fhir.to_str().unwrap()])
            .status
            .success()
    );
    let mut checked = 0;
    let mut files = vec![db.clone()];
    for side in ["-wal", "-shm"] {
        let p = dir.path().join(format!("new.db{side}"));
        if p.exists() {
            files.push(p);
        }
    }
    for d in [&csv, &fhir] {
        files.extend(std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()));
    }
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", f.display());
        checked += 1;
    }
    assert!(checked > 14, "{checked}");
}

#[tokio::test]
async fn an_import_commits_with_its_audit_entry_or_not_at_all() {
    each_backend!("cli_import_audit_atomic", |t| {
        // The database refuses the import's entry: the records must not be kept either.
        let refuse: &[&str] = match t.db.backend() {
            dcrs_store::Backend::Sqlite => &[
                "CREATE TRIGGER refuse_import BEFORE INSERT ON audit_log WHEN NEW.action = 'import' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ],
            dcrs_store::Backend::Postgres => &[
                "CREATE FUNCTION refuse_import() RETURNS trigger AS $$ BEGIN \
                 IF NEW.action = 'import' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ \
                 LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_import BEFORE INSERT ON audit_log FOR EACH ROW \
                 EXECUTE FUNCTION refuse_import()",
            ],
        };
        for sql in refuse {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(t.db.pool())
                .await
                .unwrap();
        }
        let ex = examples();
        let out = dcrs(&t.url, &["import", ex.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("refused"),
            "{}",
            text(&out.stderr)
        );
        let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(clients, 0, "records kept without their audit entry");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_restores_whole_and_a_changed_byte_is_refused() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let ex = examples();
    assert!(
        dcrs(&t.url, &["import", ex.to_str().unwrap()])
            .status
            .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dcrs.backup");
    // Two hundred writes, each its own commit, while the backup is taken.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..200 {
        let db = t.db.clone();
        writes.spawn(async move {
            db.audit(&dcrs_store::AuditEntry {
                actor: "writer".into(),
                action: "record.update".into(),
                record_ref: Some(format!("W{i}")),
                ..Default::default()
            })
            .await
            .unwrap();
        });
    }
    let (url, path) = (t.url.clone(), file.to_str().unwrap().to_string());
    let taken = tokio::task::spawn_blocking(move || dcrs(&url, &["backup", &path]))
        .await
        .unwrap();
    writes.join_all().await;
    assert!(taken.status.success(), "{}", text(&taken.stderr));

    // Restored into an empty database: its counts match and its chains verify.
    let restored = format!("sqlite://{}", dir.path().join("restored.db").display());
    let back = dcrs(&restored, &["restore", file.to_str().unwrap()]);
    assert!(
        back.status.success(),
        "{}{}",
        text(&back.stdout),
        text(&back.stderr)
    );
    assert!(
        text(&back.stdout).contains("the counts match"),
        "{}",
        text(&back.stdout)
    );
    let verify = dcrs(&restored, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    // Not over a database that holds data.
    let again = dcrs(&restored, &["restore", file.to_str().unwrap()]);
    assert_ne!(again.status.code(), Some(0));

    // One byte changed: refused, and nothing is written.
    let changed = changed_copy(&file, dir.path());
    let target = dir.path().join("from-changed.db");
    let refused = dcrs(
        &format!("sqlite://{}", target.display()),
        &["restore", changed.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("changed or damaged"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!target.exists(), "nothing is written from a changed backup");

    // Encrypted with the key in the secrets folder; another key cannot open it.
    let secrets = dir.path().join("secrets");
    let sealed = dir.path().join("sealed.backup");
    let run = |url: &str, secrets: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dcrs"))
            .arg("--database")
            .arg(url)
            .arg("--secrets")
            .arg(secrets)
            .args(args)
            .env_remove("DCRS_DATABASE_URL")
            .output()
            .unwrap()
    };
    let enc = run(
        &t.url,
        &secrets,
        &["backup", "--encrypt", sealed.to_str().unwrap()],
    );
    assert!(enc.status.success(), "{}", text(&enc.stderr));
    let body = std::fs::read(&sealed).unwrap();
    assert!(
        !body.windows(15).any(|w| w == b"SQLite format 3"),
        "the copy is sealed"
    );
    let other = dir.path().join("other-secrets");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("backup.key"), "11".repeat(32)).unwrap();
    let wrong = run(
        &format!("sqlite://{}", dir.path().join("wrong.db").display()),
        &other,
        &["restore", sealed.to_str().unwrap()],
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stdout));
    let right = run(
        &format!("sqlite://{}", dir.path().join("right.db").display()),
        &secrets,
        &["restore", sealed.to_str().unwrap()],
    );
    assert!(
        right.status.success(),
        "{}{}",
        text(&right.stdout),
        text(&right.stderr)
    );
}

#[tokio::test]
async fn a_postgres_backup_restores_into_an_empty_database_and_a_changed_one_is_refused() {
    let test = "cli_pg_backup";
    let Some(t) = dcrs_testkit::TestDb::postgres("cli_pg_backup_from").await else {
        return;
    };
    if dcrs_testkit::tool(test, "pg_dump", "Debian's postgresql-client").is_none()
        || dcrs_testkit::tool(test, "pg_restore", "Debian's postgresql-client").is_none()
    {
        return;
    }
    let ex = examples();
    assert!(
        dcrs(&t.url, &["import", ex.to_str().unwrap()])
            .status
            .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.backup");
    let taken = dcrs(&t.url, &["backup", file.to_str().unwrap()]);
    assert!(taken.status.success(), "{}", text(&taken.stderr));

    // One byte changed: refused before anything reaches the database.
    let Some(empty) = dcrs_testkit::TestDb::empty_postgres("cli_pg_backup_to").await else {
        return;
    };
    let changed = changed_copy(&file, dir.path());
    let refused = dcrs(&empty, &["restore", changed.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("changed or damaged"));

    // The backup itself restores whole into the empty database.
    let back = dcrs(&empty, &["restore", file.to_str().unwrap()]);
    assert!(
        back.status.success(),
        "{}{}",
        text(&back.stdout),
        text(&back.stderr)
    );
    assert!(
        text(&back.stdout).contains("the counts match"),
        "{}",
        text(&back.stdout)
    );
    assert!(dcrs(&empty, &["audit", "verify"]).status.success());
    // Not over a database that holds data.
    let again = dcrs(&empty, &["restore", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("empty database only"),
        "{}",
        text(&again.stderr)
    );
}

/// A copy of a backup with one byte of its body changed.
fn changed_copy(file: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() - bytes.len() / 3;
    bytes[middle] ^= 0x01;
    let changed = dir.join("changed.backup");
    std::fs::write(&changed, &bytes).unwrap();
    changed
}
