//! Import and export against real databases (SQLite, and PostgreSQL where reachable):
//! round trips, all-or-nothing, idempotence, updates, service scoping, file format.

use dcrs_domain::Entity;
use dcrs_exchange::{ImportOptions, ImportReport, export_dir, import_dir};
use dcrs_store::Database;
use dcrs_testkit::each_backend;
use std::path::Path;

mod common;
use common::{examples, import, options};

async fn dry_run(db: &Database, dir: &Path) -> ImportReport {
    let o = ImportOptions {
        dry_run: true,
        ..options()
    };
    import_dir(db, dir, &o, |_| {})
        .await
        .expect("the import runs")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn copy_examples(to: &Path, only: &[&str]) {
    for e in Entity::ALL {
        if only.is_empty() || only.contains(&e.file_name()) {
            std::fs::copy(examples().join(e.file_name()), to.join(e.file_name())).unwrap();
        }
    }
}

async fn count(db: &Database, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn export_import_export_is_byte_identical() {
    each_backend!("round_trip", |t| {
        let first = tempfile::tempdir().unwrap();
        let again = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let report = import(&t.db, &examples()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert!(report.committed);
        export_dir(&t.db, first.path()).await.unwrap();
        export_dir(&t.db, again.path()).await.unwrap();
        assert_eq!(
            read_dir_bytes(first.path()),
            read_dir_bytes(again.path()),
            "two exports of one database differ"
        );

        let fresh = dcrs_testkit::TestDb::sqlite().await;
        let report = import(&fresh.db, first.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        export_dir(&fresh.db, second.path()).await.unwrap();
        let a = read_dir_bytes(first.path());
        assert_eq!(a.len(), 13);
        assert_eq!(
            a,
            read_dir_bytes(second.path()),
            "export → import → export changed the files"
        );
        // The export holds every example record, not just headers.
        let clients = String::from_utf8(
            a.iter()
                .find(|(n, _)| n == "clients.csv")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert_eq!(clients.lines().count(), 25);
    });
}

/// 10,000 clients of the example service, one of them with a bad NHS number.
fn ten_thousand_clients(dir: &Path, bad_row: Option<usize>, family_of_row_42: &str) {
    let mut text = String::from(
        "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,\
         gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n",
    );
    for i in 0..10_000 {
        let nhs = if Some(i) == bad_row { "9434765918" } else { "" };
        let family = if i == 42 { family_of_row_42 } else { "Example" };
        text.push_str(&format!(
            "T{i:05},BPL,Test,{family},{nhs},1970-01-{:02},female,A,FY1 5DW,yes,,employed,no,yes,no\n",
            i % 28 + 1
        ));
    }
    write(dir, "clients.csv", &text);
}

#[tokio::test]
async fn one_bad_row_in_ten_thousand_imports_nothing_and_reimport_changes_nothing() {
    each_backend!("ten_thousand", |t| {
        let base = tempfile::tempdir().unwrap();
        copy_examples(base.path(), &["organisations.csv", "services.csv"]);
        assert!(import(&t.db, base.path()).await.committed);

        let dir = tempfile::tempdir().unwrap();
        ten_thousand_clients(dir.path(), Some(6_999), "Example");
        let report = import(&t.db, dir.path()).await;
        assert!(!report.committed);
        assert_eq!(report.rejections.len(), 1, "{:#?}", report.rejections);
        let r = &report.rejections[0];
        assert_eq!(
            (r.file.as_str(), r.line, r.field.as_str(), r.value.as_str()),
            ("clients.csv", Some(7_001), "nhs_number", "9434765918")
        );
        assert_eq!(r.record.as_deref(), Some("T06999"));
        assert!(r.reason.contains("not a valid NHS number"), "{}", r.reason);
        assert_eq!(
            count(&t.db, "clients").await,
            0,
            "a rejected import wrote clients"
        );

        // Fixed, a dry run reports what it would do and writes nothing.
        ten_thousand_clients(dir.path(), None, "Example");
        let report = dry_run(&t.db, dir.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(report.totals().added, 10_000);
        assert!(!report.committed);
        assert_eq!(count(&t.db, "clients").await, 0, "a dry run wrote clients");

        let report = import(&t.db, dir.path()).await;
        assert!(report.committed);
        assert_eq!(report.totals().added, 10_000);
        assert_eq!(count(&t.db, "clients").await, 10_000);

        let audit_before = count(&t.db, "audit_log").await;
        let report = import(&t.db, dir.path()).await;
        let totals = report.totals();
        assert_eq!(
            (totals.added, totals.updated, totals.unchanged),
            (0, 0, 10_000)
        );
        // Only the run itself is audited, no record changes.
        assert_eq!(count(&t.db, "audit_log").await, audit_before + 1);

        // One changed row updates exactly that record, audited with before and after.
        ten_thousand_clients(dir.path(), None, "Changed");
        let report = import(&t.db, dir.path()).await;
        let totals = report.totals();
        assert_eq!(
            (totals.added, totals.updated, totals.unchanged),
            (0, 1, 9_999)
        );
        let changed: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT client_ref, family_name FROM clients WHERE family_name <> 'Example' ORDER BY client_ref",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(
            changed,
            vec![("T00042".to_string(), Some("Changed".to_string()))]
        );
        let detail: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'record.update' AND record_ref = 'T00042'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(
            detail,
            serde_json::json!({"family_name": {"before": "Example", "after": "Changed"}})
        );
    });
}

/// A first import of a service's records looks up only the references it has written
/// itself, and its rows are read a stretch ahead of the writes: a reference repeated
/// thousands of rows later (in another chunk) is still refused with the line of the
/// first, and a row that is not CSV of the right shape is named by its line, in file
/// order.
#[tokio::test]
async fn a_first_import_still_finds_a_reference_repeated_thousands_of_rows_later() {
    each_backend!("repeated_later", |t| {
        let base = tempfile::tempdir().unwrap();
        copy_examples(base.path(), &["organisations.csv", "services.csv"]);
        assert!(import(&t.db, base.path()).await.committed);

        let dir = tempfile::tempdir().unwrap();
        ten_thousand_clients(dir.path(), None, "Example");
        let path = dir.path().join("clients.csv");
        // The header is line 1, so client i is on line i + 2.
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines[6_001] = "T06000,BPL,Too,Short".into();
        lines[9_001] = lines[9_001].replacen("T09000,", "T00003,", 1);
        write(dir.path(), "clients.csv", &(lines.join("\n") + "\n"));

        let report = import(&t.db, dir.path()).await;
        assert!(!report.committed);
        let found: Vec<(Option<u64>, &str, &str)> = report
            .rejections
            .iter()
            .map(|r| (r.line, r.field.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (Some(6_002), "(row)", ""),
                (Some(9_002), "client_ref", "T00003")
            ],
            "{:#?}",
            report.rejections
        );
        assert!(
            report.rejections[1].reason.contains("first at line 5"),
            "{}",
            report.rejections[1].reason
        );
        assert_eq!(
            count(&t.db, "clients").await,
            0,
            "a rejected import wrote clients"
        );
    });
}

const CLIENT_HEADER: &str = "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,\
postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n";

#[tokio::test]
async fn references_resolve_within_their_own_service() {
    each_backend!("scoping", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path(), &["organisations.csv", "services.csv"]);
        write(
            dir.path(),
            "clients.csv",
            &format!(
                "{CLIENT_HEADER}C0001,BPL,,,,1970-01-01,male,A,,yes,,employed,no,yes,no\n\
                 C0001,WOK,,,,1980-01-01,female,B,,yes,,employed,no,yes,no\n\
                 ONLYBPL,BPL,,,,1980-01-01,female,B,,yes,,employed,no,yes,no\n"
            ),
        );
        write(
            dir.path(),
            "referrals.csv",
            "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n\
             R1,BPL,C0001,2010-01-01,self,,\nR1,WOK,C0001,2010-01-01,gp,ORG-GP1,\n",
        );
        let report = import(&t.db, dir.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(count(&t.db, "clients").await, 3);
        // Each service's R1 points at its own C0001.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.service_ref, c.date_of_birth FROM referrals r JOIN services s ON s.service_id = r.service_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id ORDER BY s.service_ref",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                ("BPL".into(), "1970-01-01".into()),
                ("WOK".into(), "1980-01-01".into())
            ]
        );

        // A referral in WOK naming a client that exists only in BPL is rejected.
        let cross = tempfile::tempdir().unwrap();
        write(
            cross.path(),
            "referrals.csv",
            "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\nR2,WOK,ONLYBPL,2010-01-01,self,,\n",
        );
        let report = import(&t.db, cross.path()).await;
        assert_eq!(report.rejections.len(), 1);
        let r = &report.rejections[0];
        assert_eq!(
            (r.file.as_str(), r.line, r.field.as_str(), r.value.as_str()),
            ("referrals.csv", Some(2), "client_ref", "ONLYBPL")
        );
        assert!(r.reason.contains("service WOK"), "{}", r.reason);
        assert_eq!(count(&t.db, "referrals").await, 2);
    });
}

#[tokio::test]
async fn byte_order_mark_and_crlf_are_accepted_and_unknown_columns_are_not() {
    each_backend!("format", |t| {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "organisations.csv",
            "\u{feff}kind,org_ref,name,ods_code\r\npct,O1,Example PCT,5HP\r\nother,O2,\"Name, with comma\",",
        );
        let report = import(&t.db, dir.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(report.totals().added, 2);

        let bad = tempfile::tempdir().unwrap();
        write(
            bad.path(),
            "organisations.csv",
            "org_ref,name,kind,ods_code,favourite_colour\nO3,X,pct,,blue\n",
        );
        write(bad.path(), "client.csv", "whatever\n");
        let report = import(&t.db, bad.path()).await;
        let mut fields: Vec<(String, String)> = report
            .rejections
            .iter()
            .map(|r| (r.file.clone(), r.field.clone()))
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            vec![
                ("client.csv".into(), "(file name)".into()),
                ("organisations.csv".into(), "favourite_colour".into())
            ]
        );
        assert_eq!(count(&t.db, "organisations").await, 2);

        // A required column left out: the file is refused and nothing changes.
        let missing = tempfile::tempdir().unwrap();
        write(
            missing.path(),
            "organisations.csv",
            "org_ref,kind,ods_code\nO1,pct,5HP\n",
        );
        let report = import(&t.db, missing.path()).await;
        assert_eq!(report.rejections.len(), 1);
        assert_eq!(report.rejections[0].field, "name");
        assert_eq!(report.rejections[0].line, Some(1));

        // An optional column left out (a file written before the field was added):
        // an update keeps the stored value, a new record is blank there.
        write(
            missing.path(),
            "organisations.csv",
            "org_ref,name,kind\nO1,Renamed,pct\nO9,New,other\n",
        );
        let report = import(&t.db, missing.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT org_ref, name, ods_code FROM organisations ORDER BY org_ref")
                .fetch_all(t.db.pool())
                .await
                .unwrap();
        assert_eq!(
            rows,
            vec![
                ("O1".into(), "Renamed".into(), Some("5HP".into())),
                ("O2".into(), "Name, with comma".into(), None),
                ("O9".into(), "New".into(), None),
            ]
        );
    });
}

/// Dropping a column from a file, as a file written before that column existed.
fn drop_column(file: &Path, column: &str) {
    let mut reader = csv::Reader::from_path(file).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = headers.iter().position(|h| h == column).unwrap();
    let keep = |r: &csv::StringRecord| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let rows: Vec<Vec<String>> = reader.records().map(|r| keep(&r.unwrap())).collect();
    let mut writer = csv::Writer::from_path(file).unwrap();
    writer.write_record(keep(&headers)).unwrap();
    for r in rows {
        writer.write_record(r).unwrap();
    }
    writer.flush().unwrap();
}

#[tokio::test]
async fn an_assessments_file_without_a_newer_measure_keeps_its_stored_values() {
    each_backend!("older_columns", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path(), &[]);
        let report = import(&t.db, dir.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        let before: Vec<(String, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT assessment_ref, waist_cm, weight_kg FROM assessments ORDER BY service_id, assessment_ref",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert!(before.iter().any(|(_, w, _)| w.is_some()));

        // The same file without waist_cm, and one weight changed.
        let older = dir.path().join("assessments.csv");
        drop_column(&older, "waist_cm");
        let text = std::fs::read_to_string(&older).unwrap();
        std::fs::write(&older, text.replacen(",97.6,", ",96.1,", 1)).unwrap();
        let report = import(&t.db, dir.path()).await;
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        assert_eq!(
            report.totals().updated,
            1,
            "only the changed weight is an update"
        );
        let after: Vec<(String, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT assessment_ref, waist_cm, weight_kg FROM assessments ORDER BY service_id, assessment_ref",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(after.len(), before.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(a.1, b.1, "{}: waist kept", b.0);
            if b.0 == "A0001B" && b.2 == Some(97.6) {
                assert_eq!(a.2, Some(96.1));
            } else {
                assert_eq!(a.2, b.2, "{}: weight unchanged", b.0);
            }
        }
    });
}

#[tokio::test]
async fn cross_record_rules_are_reported_with_file_and_line() {
    each_backend!("cross_record", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path(), &[]);
        // An exit assessment for the open episode E0003 of BPL, which has a baseline,
        // is fine; one for E0008 (WOK), given here without its baseline, is not.
        let mut text = std::fs::read_to_string(examples().join("assessments.csv")).unwrap();
        let before = text.lines().count();
        text = text
            .lines()
            .filter(|l| !l.starts_with("A0008B,WOK"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            text.lines().count(),
            before - 1,
            "the fixture has a baseline A0008B in WOK"
        );
        text.push_str("A0008X,WOK,E0008,exit,2010-01-20,,80,,,,,,,,,,\n");
        let line = text.lines().count() as u64;
        write(dir.path(), "assessments.csv", &text);
        let report = import(&t.db, dir.path()).await;
        assert!(!report.committed);
        assert_eq!(report.rejections.len(), 1, "{:#?}", report.rejections);
        let r = &report.rejections[0];
        assert_eq!(
            (r.file.as_str(), r.line, r.field.as_str()),
            ("assessments.csv", Some(line), "occasion")
        );
        assert!(r.reason.contains("needs a baseline"), "{}", r.reason);
        assert_eq!(count(&t.db, "assessments").await, 0);
    });
}

#[tokio::test]
async fn an_episode_keeps_its_kind_and_a_reference_appears_once_per_file() {
    each_backend!("episode_kind", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path(), &[]);
        assert!(import(&t.db, dir.path()).await.committed);

        let change = tempfile::tempdir().unwrap();
        let episodes = std::fs::read_to_string(examples().join("episodes.csv")).unwrap();
        let line = episodes
            .lines()
            .position(|l| l.starts_with("E0003,BPL"))
            .unwrap() as u64
            + 1;
        let original = episodes
            .lines()
            .find(|l| l.starts_with("E0003,BPL"))
            .unwrap();
        let changed = original.replace(",full,", ",brief,");
        write(
            change.path(),
            "episodes.csv",
            &episodes.replacen(original, &changed, 1),
        );
        let report = import(&t.db, change.path()).await;
        assert_eq!(report.rejections.len(), 1, "{:#?}", report.rejections);
        let r = &report.rejections[0];
        assert_eq!(
            (r.line, r.field.as_str(), r.value.as_str()),
            (Some(line), "kind", "brief")
        );
        assert!(r.reason.contains("does not change"), "{}", r.reason);

        let dup = tempfile::tempdir().unwrap();
        write(
            dup.path(),
            "organisations.csv",
            "org_ref,name,kind,ods_code\nX1,One,pct,\nX1,Two,pct,\n",
        );
        let report = import(&t.db, dup.path()).await;
        assert_eq!(report.rejections.len(), 1);
        assert_eq!(report.rejections[0].line, Some(3));
        assert!(report.rejections[0].reason.contains("first at line 2"));
    });
}

#[tokio::test]
async fn episode_summaries_follow_every_write() {
    each_backend!("summaries", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path(), &[]);
        assert!(import(&t.db, dir.path()).await.committed);
        assert_eq!(
            count(&t.db, "episode_summaries").await,
            count(&t.db, "episodes").await
        );

        let attended = |db: Database| async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT sessions_attended FROM episode_summaries es JOIN episodes e \
                 ON e.service_id = es.service_id AND e.episode_id = es.episode_id \
                 JOIN services s ON s.service_id = e.service_id WHERE s.service_ref = 'BPL' AND e.episode_ref = 'E0003'",
            )
            .fetch_one(db.pool())
            .await
            .unwrap()
        };
        let independent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions x JOIN episodes e ON e.service_id = x.service_id AND e.episode_id = x.episode_id \
             JOIN services s ON s.service_id = e.service_id WHERE s.service_ref = 'BPL' AND e.episode_ref = 'E0003' AND x.attended = 'yes'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(attended(t.db.clone()).await, independent);

        let more = tempfile::tempdir().unwrap();
        write(
            more.path(),
            "sessions.csv",
            "session_ref,service_ref,episode_ref,worker_ref,held_on,duration_min,mode,venue,purpose,attended\n\
             NEW1,BPL,E0003,W1,2012-01-10,30,telephone,remote,support,yes\n",
        );
        assert!(import(&t.db, more.path()).await.committed);
        assert_eq!(attended(t.db.clone()).await, independent + 1);
    });
}

#[tokio::test]
async fn sqlite_export_imports_into_postgres_byte_identical() {
    let Some(pg) = dcrs_testkit::TestDb::postgres("cross_backend").await else {
        return;
    };
    let lite = dcrs_testkit::TestDb::sqlite().await;
    assert!(import(&lite.db, &examples()).await.committed);
    let from_sqlite = tempfile::tempdir().unwrap();
    export_dir(&lite.db, from_sqlite.path()).await.unwrap();
    let report = import(&pg.db, from_sqlite.path()).await;
    assert!(report.committed, "{:?}", report.rejections);
    let from_postgres = tempfile::tempdir().unwrap();
    export_dir(&pg.db, from_postgres.path()).await.unwrap();
    assert_eq!(
        read_dir_bytes(from_sqlite.path()),
        read_dir_bytes(from_postgres.path())
    );
}

/// Text that the bulk paths must carry exactly: quotes, a backslash, braces and commas
/// (the syntax of PostgreSQL's array literals), the word NULL, JSON's escapes and
/// letters outside ASCII.
const AWKWARD: &str = concat!(r#"Zoë "Jo" O'Brien \ {a,b} NULL \n ☃"#, "\tnext\r\nline");

#[tokio::test]
async fn awkward_text_survives_the_bulk_paths_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(examples()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    // The first client's given name becomes the awkward text (quoted for CSV).
    let clients = dir.path().join("clients.csv");
    let text = std::fs::read_to_string(&clients).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    let client_ref = fields[0].clone();
    fields[2] = format!("\"{}\"", AWKWARD.replace('"', "\"\""));
    lines[1] = fields.join(",");
    std::fs::write(&clients, lines.join("\n") + "\n").unwrap();

    let mut exports = Vec::new();
    each_backend!("awkward_text", |db| {
        let report = import(&db.db, dir.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        let out = tempfile::tempdir().unwrap();
        export_dir(&db.db, out.path()).await.unwrap();
        let mut reader = csv::Reader::from_path(out.path().join("clients.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let name = headers.iter().position(|h| h == "given_name").unwrap();
        let found = reader
            .records()
            .map(|r| r.unwrap())
            .find(|r| r.get(0) == Some(client_ref.as_str()))
            .unwrap();
        assert_eq!(found.get(name), Some(AWKWARD));
        // Importing the export again changes nothing (the stored text compares equal).
        let again = import(&db.db, out.path()).await;
        assert!(again.committed, "{:?}", again.rejections);
        assert_eq!(again.totals().updated, 0);
        exports.push(read_dir_bytes(out.path()));
    });
    if exports.len() == 2 {
        assert_eq!(exports[0], exports[1]);
    }
}

/// Every episode summary, by service and episode reference, as text.
async fn summaries(db: &Database) -> Vec<Vec<Option<String>>> {
    let columns: Vec<String> = dcrs_domain::rules::EpisodeSummary::COLUMNS
        .iter()
        .map(|c| format!("CAST(s.{c} AS TEXT)"))
        .collect();
    let sql = format!(
        "SELECT v.service_ref, e.episode_ref, {} FROM episode_summaries s \
         JOIN episodes e ON e.service_id = s.service_id AND e.episode_id = s.episode_id \
         JOIN services v ON v.service_id = s.service_id \
         JOIN clients c ON c.service_id = s.service_id AND c.client_id = s.client_id \
         WHERE c.client_ref = s.client_ref ORDER BY v.service_ref, e.episode_ref",
        columns.join(", ")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.pool())
        .await
        .unwrap();
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            (0..columns.len() + 2)
                .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect()
}

/// Replaces `from` by `to` in a line of a dataset file that starts with `key`.
fn edit(dir: &Path, file: &str, key: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut hits = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(key) && l.contains(from) {
                hits += 1;
                l.replacen(from, to, 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        hits, 1,
        "{file}: one line starts with {key:?} and holds {from:?}"
    );
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn summaries_rewritten_in_place_match_a_fresh_import_of_the_same_records() {
    let first = tempfile::tempdir().unwrap();
    copy_examples(first.path(), &[]);
    let changed = tempfile::tempdir().unwrap();
    copy_examples(changed.path(), &[]);
    // What the summaries' indexes hold changes: a referral's date, an episode's first
    // contact, and (by moving its referral) the client an open episode belongs to.
    edit(
        changed.path(),
        "referrals.csv",
        "R0001,BPL",
        "2008-05-24",
        "2008-05-20",
    );
    edit(
        changed.path(),
        "episodes.csv",
        "E0001,BPL",
        "2008-06-09",
        "2008-06-05",
    );
    edit(
        changed.path(),
        "referrals.csv",
        "R0003,BPL",
        "C0003",
        "C0012",
    );
    each_backend!("summaries_in_place", |t| {
        let report = import(&t.db, first.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        let before = summaries(&t.db).await;
        let report = import(&t.db, changed.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        assert_eq!(report.totals().updated, 3);
        let after = summaries(&t.db).await;
        assert_ne!(before, after);
        let backend = if t.url.starts_with("postgres") {
            dcrs_testkit::Backend::Postgres
        } else {
            dcrs_testkit::Backend::Sqlite
        };
        let fresh = dcrs_testkit::TestDb::on(backend, "summaries_in_place_fresh")
            .await
            .expect("a second database on the same backend");
        let report = import(&fresh.db, changed.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        let expected = summaries(&fresh.db).await;
        assert_eq!(after.len(), expected.len(), "a summary row per episode");
        assert_eq!(after, expected);
        let moved = after
            .iter()
            .find(|r| r[0].as_deref() == Some("BPL") && r[1].as_deref() == Some("E0003"))
            .expect("E0003 is summarised");
        assert_eq!(moved[2].as_deref(), Some("C0012"));
    });
}

/// Inserts in bulk may leave PostgreSQL's per-row foreign key checks to the importer,
/// which resolved and locked each parent; every other write in the same transaction is
/// still checked, on both backends.
#[tokio::test]
async fn only_bulk_inserts_of_checked_parents_go_unchecked_by_the_database() {
    use dcrs_store::RecordStore;
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path(), &[]);
    each_backend!("unchecked_only_in_bulk", |t| {
        let report = import(&t.db, dir.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        let mut tx = t.db.begin().await.unwrap();
        tx.start_journal().await.unwrap();
        let sid = tx
            .find_id(Entity::Service, None, "BPL")
            .await
            .unwrap()
            .unwrap();
        let fields: Vec<(&'static str, String)> = [
            ("session_ref", "SX1"),
            ("service_ref", "BPL"),
            ("episode_ref", "E0001"),
            ("worker_ref", "W1"),
            ("held_on", "2008-07-01"),
            ("duration_min", "30"),
            ("mode", "telephone"),
            ("venue", "client_home"),
            ("purpose", "support"),
            ("attended", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let record = dcrs_domain::record::parse_record(Entity::Session, &fields, options().today)
            .expect("a valid session");
        let mut parents = Vec::new();
        for ((_, parent), reference) in Entity::Session.ref_fields().zip(record.parent_refs()) {
            let reference = reference.unwrap().to_string();
            let found = tx
                .find_parent_ids(parent, Some(sid), std::slice::from_ref(&reference))
                .await
                .unwrap();
            parents.push(Some(found[&reference]));
        }
        let values = record.values();
        tx.insert_many(
            Entity::Session,
            Some(sid),
            &[("SX1".to_string(), parents.clone(), values.clone())],
            "import",
        )
        .await
        .expect("the bulk insert of checked parents");
        // A single insert naming an episode that does not exist is refused by the
        // database itself: the checks were switched off for the bulk statement alone.
        let mut orphan = parents.clone();
        orphan[0] = Some(987_654_321);
        let refused = tx
            .insert(
                Entity::Session,
                Some(sid),
                "SX2",
                &orphan,
                &values,
                "import",
            )
            .await;
        assert!(
            refused.is_err(),
            "the database accepted a session of an episode that does not exist"
        );
        drop(tx);
    });
}
