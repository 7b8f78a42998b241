//! Records governance from the command line, on both backends: a client erased leaves no
//! trace of their name, NHS number, postcode or date of birth in the database (the
//! SQLite file's bytes, or a `pg_dump` of PostgreSQL), the audit chains still verify,
//! and the reports equal those of a database the client was never imported into. A
//! detail removed from the audit log by anything but an erasure is found. Retention
//! erases exactly the clients whose last contact is older than the period, as worked out
//! here from the dataset files.

use dcrs_testkit::each_backend;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{dcrs, examples};

fn ok(out: Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A dataset file as rows of named fields.
fn read(dir: &Path, file: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(dir.join(file)).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The example dataset without some clients (service and reference: references repeat
/// between services) and everything of theirs, written to `to`.
fn without(clients: &HashSet<(String, String)>, to: &Path) {
    let from = examples();
    let mut gone: BTreeMap<&str, HashSet<(String, String)>> = BTreeMap::new();
    gone.insert("client_ref", clients.clone());
    // Each file's own reference and the parent field that ties it to a client.
    let chain = [
        ("referrals.csv", "referral_ref", "client_ref"),
        ("episodes.csv", "episode_ref", "referral_ref"),
        ("plans.csv", "plan_ref", "episode_ref"),
        ("goals.csv", "goal_ref", "plan_ref"),
        ("assessments.csv", "assessment_ref", "episode_ref"),
        ("sessions.csv", "session_ref", "episode_ref"),
        ("onward_referrals.csv", "onward_ref", "episode_ref"),
        ("wider_issues.csv", "wider_issue_ref", "episode_ref"),
    ];
    for entry in std::fs::read_dir(&from).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
    let mut write = |file: &str, parent: &str, own: Option<&'static str>| {
        let rows = read(&from, file);
        let headers: Vec<String> = rows[0].keys().cloned().collect();
        let order: Vec<String> = csv::Reader::from_path(from.join(file))
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(headers.len(), order.len());
        let mut w = csv::Writer::from_path(to.join(file)).unwrap();
        w.write_record(&order).unwrap();
        let mut dropped = HashSet::new();
        for row in rows {
            let key = |f: &str| (row["service_ref"].clone(), row[f].clone());
            if gone.get(parent).is_some_and(|g| g.contains(&key(parent))) {
                if let Some(own) = own {
                    dropped.insert(key(own));
                }
                continue;
            }
            w.write_record(order.iter().map(|h| row[h].as_str()))
                .unwrap();
        }
        w.flush().unwrap();
        if let Some(own) = own {
            gone.entry(own).or_default().extend(dropped);
        }
    };
    write("clients.csv", "client_ref", None);
    for (file, own, parent) in chain {
        write(file, parent, Some(own));
    }
}

/// Every report of the pack for a service and year, as JSON without what differs from
/// one run to the next (when it was produced, and whether counts kept from an earlier
/// report were reused).
fn reports(url: &str, service: &str, period: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pack.json");
    let args = [
        "report",
        "pack",
        "--service",
        service,
        "--period",
        period,
        "--policy",
        "none",
        "--out",
        file.to_str().unwrap(),
    ];
    ok(dcrs(url, &args));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let docs: Vec<&mut serde_json::Value> = match &mut v {
        serde_json::Value::Array(all) => all.iter_mut().collect(),
        one => vec![one],
    };
    for doc in docs {
        let doc = doc.as_object_mut().unwrap();
        doc.remove("produced_at");
        doc.remove("counts");
    }
    v
}

/// Asserts that BPL's report packs of 2008-09 and 2009-10 are the same, figure for
/// figure, in the databases at `a` and `b`; a failure names the first difference.
fn same_reports(a: &str, b: &str) {
    for period in ["2008-09", "2009-10"] {
        let (x, y) = (reports(a, "BPL", period), reports(b, "BPL", period));
        assert!(x == y, "{period}: {}", first_difference(&x, &y, ""));
    }
}

/// Where two JSON values first differ, as a path and the two values there.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (p, q) = (&x.get(k), &y.get(k));
                if p != q {
                    let none = Value::Null;
                    let path = format!("{at}/{k}");
                    return first_difference(p.unwrap_or(&none), q.unwrap_or(&none), &path);
                }
            }
            String::new()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (p, q))| p != q)
            .map(|(i, (p, q))| first_difference(p, q, &format!("{at}/{i}")))
            .unwrap_or_default(),
        _ => format!("{at}: {a} against {b}"),
    }
}

/// Changes one field of a client (given as its CSV row) through the application's write
/// path, as a trainer on the pages would: audited with the value before and after.
async fn change_client(
    db: &dcrs_store::Database,
    row: &BTreeMap<String, String>,
    field: &str,
    value: &str,
) {
    let fields: dcrs_exchange::Fields = dcrs_domain::record::Entity::Client
        .fields()
        .iter()
        .map(|f| {
            let v = if f.name == field { value } else { &row[f.name] };
            (f.name, v.to_string())
        })
        .collect();
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        rules: Default::default(),
        actor: "trainer".into(),
        only_new: false,
    };
    let records = [(dcrs_domain::record::Entity::Client, vec![fields])];
    let report = dcrs_exchange::write_records(db, &records, &options, "application", None)
        .await
        .unwrap();
    assert!(report.committed, "{:?}", report.rejections);
}

/// A second fresh database on the same backend as the one at `url`.
async fn beside(url: &str, name: &str) -> dcrs_testkit::TestDb {
    let backend = match url.starts_with("sqlite") {
        true => dcrs_testkit::Backend::Sqlite,
        false => dcrs_testkit::Backend::Postgres,
    };
    dcrs_testkit::TestDb::on(backend, name).await.unwrap()
}

/// Every byte the database holds for `needle`: the SQLite file and its write-ahead log,
/// or a plain `pg_dump` of PostgreSQL.
fn held(url: &str, needle: &str) -> usize {
    let bytes = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut b = std::fs::read(path).unwrap();
            for extra in ["-wal", "-journal"] {
                if let Ok(more) = std::fs::read(format!("{path}{extra}")) {
                    b.extend(more);
                }
            }
            b
        }
        None => {
            let out = Command::new("pg_dump")
                .arg("--data-only")
                .arg(url)
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    bytes
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[tokio::test]
async fn an_erased_client_leaves_no_trace_and_the_reports_recount_as_if_never_imported() {
    each_backend!("cli_erase", |t| {
        if !t.url.starts_with("sqlite")
            && dcrs_testkit::tool("cli_erase", "pg_dump", "Debian's postgresql-client").is_none()
        {
            continue;
        }
        let ex = examples();
        ok(dcrs(&t.url, &["import", ex.to_str().unwrap()]));
        // The client: one of BPL's whose family name, NHS number, postcode and date of
        // birth are each held by no one else, with an episode.
        let clients = read(&ex, "clients.csv");
        let unique = |field: &str, v: &str| {
            !v.is_empty() && clients.iter().filter(|c| c[field] == v).count() == 1
        };
        let referred: HashSet<String> = read(&ex, "referrals.csv")
            .into_iter()
            .map(|r| r["client_ref"].clone())
            .collect();
        let chosen = clients
            .iter()
            .find(|c| {
                c["service_ref"] == "BPL"
                    && referred.contains(&c["client_ref"])
                    && ["family_name", "nhs_number", "postcode", "date_of_birth"]
                        .iter()
                        .all(|f| unique(f, &c[*f]))
            })
            .expect("a client with details of their own")
            .clone();
        let client = chosen["client_ref"].clone();
        // Changed through the application, so the audit log holds their details before
        // and after.
        change_client(&t.db, &chosen, "family_name", "Renamed-Erasable").await;
        let details = [
            chosen["family_name"].clone(),
            "Renamed-Erasable".to_string(),
            chosen["nhs_number"].clone(),
            chosen["postcode"].clone(),
            chosen["date_of_birth"].clone(),
        ];
        for d in &details {
            assert!(held(&t.url, d) > 0, "{d} is held before the erasure");
        }
        // Reported before (so counts are kept for the year), the client counted.
        let before = reports(&t.url, "BPL", "2008-09");

        // Refused without a reason, or for a client the service does not have.
        let no_reason = dcrs(
            &t.url,
            &[
                "erase",
                "--service",
                "BPL",
                "--client",
                &client,
                "--reason",
                " ",
            ],
        );
        assert_eq!(no_reason.status.code(), Some(2));
        let other = dcrs(
            &t.url,
            &[
                "erase",
                "--service",
                "BPL",
                "--client",
                "C9999",
                "--reason",
                "asked",
            ],
        );
        assert_eq!(other.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&other.stderr).contains("no client with the reference"));

        let said = ok(dcrs(
            &t.url,
            &[
                "erase",
                "--service",
                "BPL",
                "--client",
                &client,
                "--reason",
                "the client asked for erasure; no legal duty to keep",
            ],
        ));
        assert!(
            said.contains(&format!("Erased client {client} of BPL")),
            "{said}"
        );
        t.db.close().await;
        for d in &details {
            assert_eq!(held(&t.url, d), 0, "{d} is held after the erasure: {said}");
        }
        let verified = ok(dcrs(&t.url, &["audit", "verify"]));
        assert!(verified.contains("intact"), "{verified}");
        let again = dcrs(
            &t.url,
            &[
                "erase",
                "--service",
                "BPL",
                "--client",
                &client,
                "--reason",
                "again",
            ],
        );
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("erased already"));

        // The reports equal those of a database the client was never imported into.
        let never = beside(&t.url, "cli_erase_never").await;
        let filtered = tempfile::tempdir().unwrap();
        without(
            &HashSet::from([("BPL".to_string(), client.clone())]),
            filtered.path(),
        );
        ok(dcrs(
            &never.url,
            &["import", filtered.path().to_str().unwrap()],
        ));
        assert_ne!(
            before,
            reports(&never.url, "BPL", "2008-09"),
            "the client counts"
        );
        same_reports(&t.url, &never.url);
        never.db.close().await;

        // A detail removed by anything but an erasure is found.
        let db = dcrs_store::Database::connect(&t.url).await.unwrap();
        sqlx::query(
            "UPDATE audit_log SET detail = NULL WHERE audit_id = \
             (SELECT MIN(audit_id) FROM audit_log WHERE detail IS NOT NULL AND detail_hash IS NOT NULL)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
        let broken = dcrs(&t.url, &["audit", "verify"]);
        assert_eq!(broken.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&broken.stdout).contains("no erasure records removing it"),
            "{}",
            String::from_utf8_lossy(&broken.stdout)
        );
    });
}

/// Each client's last contact as the dataset files give it: the latest date on any of
/// their records. Keyed by service and reference (references repeat between services).
fn last_contacts(dir: &Path) -> BTreeMap<(String, String), String> {
    type Key = (String, String);
    let key = |r: &BTreeMap<String, String>, f: &str| (r["service_ref"].clone(), r[f].clone());
    let mut client_of: BTreeMap<Key, Key> = BTreeMap::new();
    let mut last: BTreeMap<Key, String> = BTreeMap::new();
    let note = |client: &Key, d: &str, last: &mut BTreeMap<Key, String>| {
        if d.is_empty() {
            return;
        }
        let e = last.entry(client.clone()).or_default();
        if d > e.as_str() {
            *e = d.to_string();
        }
    };
    for r in read(dir, "referrals.csv") {
        client_of.insert(key(&r, "referral_ref"), key(&r, "client_ref"));
        note(&key(&r, "client_ref"), &r["received_on"], &mut last);
    }
    let mut episode_client = BTreeMap::new();
    for e in read(dir, "episodes.csv") {
        let c = client_of[&key(&e, "referral_ref")].clone();
        note(&c, &e["first_contact_on"], &mut last);
        note(&c, &e["closed_on"], &mut last);
        episode_client.insert(key(&e, "episode_ref"), c);
    }
    for (file, date) in [
        ("assessments.csv", "assessed_on"),
        ("plans.csv", "agreed_on"),
        ("sessions.csv", "held_on"),
        ("onward_referrals.csv", "made_on"),
        ("wider_issues.csv", "noted_on"),
    ] {
        for r in read(dir, file) {
            let c = episode_client[&key(&r, "episode_ref")].clone();
            note(&c, &r[date], &mut last);
        }
    }
    last
}

#[tokio::test]
async fn retention_erases_the_clients_whose_period_has_ended_and_no_others() {
    each_backend!("cli_retention", |t| {
        let ex = examples();
        ok(dcrs(&t.url, &["import", ex.to_str().unwrap()]));
        // BPL keeps records 10 years; judged on a day that falls between its clients'
        // last contacts.
        ok(dcrs(
            &t.url,
            &["retention", "--service", "BPL", "--set-years", "10"],
        ));
        let bpl: HashSet<String> = read(&ex, "clients.csv")
            .into_iter()
            .filter(|c| c["service_ref"] == "BPL")
            .map(|c| c["client_ref"].clone())
            .collect();
        let mut lasts: Vec<(String, String)> = last_contacts(&ex)
            .into_iter()
            .filter(|((s, _), _)| s == "BPL")
            .map(|((_, c), d)| (c, d))
            .collect();
        lasts.sort_by(|a, b| a.1.cmp(&b.1));
        let middle = &lasts[lasts.len() / 2].1;
        let day: chrono::NaiveDate = middle.parse().unwrap();
        let today = (day + chrono::Months::new(120)).to_string();
        let expected: Vec<String> = lasts
            .iter()
            .filter(|(_, d)| d <= middle)
            .map(|(c, _)| c.clone())
            .collect();
        assert!(!expected.is_empty() && expected.len() < bpl.len());

        let listed = ok(dcrs(
            &t.url,
            &[
                "retention",
                "--service",
                "BPL",
                "--dry-run",
                "--today",
                &today,
            ],
        ));
        for c in &bpl {
            assert_eq!(
                listed.contains(&format!("  {c}: last contact")),
                expected.contains(c),
                "{c}: {listed}"
            );
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(held, 24, "a dry run changes nothing");

        let applied = ok(dcrs(
            &t.url,
            &[
                "retention",
                "--service",
                "BPL",
                "--apply",
                "--today",
                &today,
            ],
        ));
        assert!(
            applied.contains(&format!("Erased {} clients.", expected.len())),
            "{applied}"
        );
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT c.client_ref FROM clients c JOIN services s ON s.service_id = c.service_id \
             WHERE s.service_ref = 'BPL' ORDER BY c.client_ref",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        for c in &expected {
            assert!(!left.contains(c), "{c} erased");
        }
        assert_eq!(left.len(), bpl.len() - expected.len());
        let tombstones: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM erasures")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
        assert_eq!(tombstones as usize, expected.len());
        let verified = ok(dcrs(&t.url, &["audit", "verify"]));
        assert!(verified.contains("intact"), "{verified}");
        let runs: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE action LIKE 'retention.%' ORDER BY audit_id",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        assert_eq!(
            runs,
            ["retention.set", "retention.dry_run", "retention.apply"]
        );
    });
}

/// One client's records of every kind, found in a folder of dataset files by following
/// references down from the client (within their service: references repeat between
/// services), as (file, row) pairs.
fn records_of(dir: &Path, service: &str, client: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut mine: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for c in read(dir, "clients.csv") {
        if c["service_ref"] == service && c["client_ref"] == client {
            out.push(("clients".to_string(), c));
        }
    }
    mine.insert("client_ref", HashSet::from([client.to_string()]));
    for (file, own, parent) in [
        ("referrals", "referral_ref", "client_ref"),
        ("episodes", "episode_ref", "referral_ref"),
        ("plans", "plan_ref", "episode_ref"),
        ("goals", "goal_ref", "plan_ref"),
        ("assessments", "assessment_ref", "episode_ref"),
        ("sessions", "session_ref", "episode_ref"),
        ("onward_referrals", "onward_ref", "episode_ref"),
        ("wider_issues", "wider_issue_ref", "episode_ref"),
    ] {
        let mut found = HashSet::new();
        for r in read(dir, &format!("{file}.csv")) {
            if r["service_ref"] == service && mine[parent].contains(&r[parent]) {
                found.insert(r[own].clone());
                out.push((file.to_string(), r));
            }
        }
        mine.insert(own, found);
    }
    out
}

#[tokio::test]
async fn a_subject_access_export_holds_every_record_of_the_client_and_nothing_of_others() {
    each_backend!("cli_subject_access", |t| {
        let ex = examples();
        ok(dcrs(&t.url, &["import", ex.to_str().unwrap()]));
        // A change through the application, so the log holds who changed what.
        let chosen = read(&ex, "clients.csv")
            .into_iter()
            .find(|c| c["service_ref"] == "BPL" && c["client_ref"] == "C0002")
            .unwrap();
        change_client(&t.db, &chosen, "employment", "employed").await;

        // The whole database exported, and the client's records picked out of it here.
        let all = tempfile::tempdir().unwrap();
        ok(dcrs(&t.url, &["export", all.path().to_str().unwrap()]));
        let expected = records_of(all.path(), "BPL", "C0002");
        assert!(expected.len() > 5, "{expected:?}");

        let out = tempfile::tempdir().unwrap();
        let said = ok(dcrs(
            &t.url,
            &[
                "subject-access",
                "--service",
                "BPL",
                "--client",
                "C0002",
                "--out",
                out.path().to_str().unwrap(),
            ],
        ));
        assert!(
            said.contains(&format!("{} records", expected.len())),
            "{said}"
        );
        let text = std::fs::read_to_string(out.path().join("subject-access.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut got: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        for (file, rows) in v["records"].as_object().unwrap() {
            for row in rows.as_array().unwrap() {
                let row = row
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                got.push((file.clone(), row));
            }
        }
        let key = |r: &(String, BTreeMap<String, String>)| format!("{}{:?}", r.0, r.1);
        let mut want = expected.clone();
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(
            got, want,
            "every record of the client, as the export has it"
        );

        // Nothing of any other client: no reference of another record of the service,
        // and none of another client's names or NHS number.
        let ours: HashSet<String> = expected
            .iter()
            .flat_map(|(_, r)| r.values().cloned())
            .collect();
        for (file, own) in [
            ("clients", "client_ref"),
            ("referrals", "referral_ref"),
            ("episodes", "episode_ref"),
            ("sessions", "session_ref"),
        ] {
            for r in read(all.path(), &format!("{file}.csv")) {
                if r["service_ref"] == "BPL" && !ours.contains(&r[own]) {
                    assert!(!text.contains(&format!("\"{}\"", r[own])), "{}", r[own]);
                }
            }
        }
        for c in read(all.path(), "clients.csv") {
            for f in ["family_name", "nhs_number"] {
                if !c[f].is_empty() && !ours.contains(&c[f]) {
                    assert!(!text.contains(&c[f]), "{} of {}", c[f], c["client_ref"]);
                }
            }
        }
        // Who changed their record, with the values; the FHIR Bundle beside it.
        let changed = v["processing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["action"] == "record.update")
            .expect("the change is listed");
        assert_eq!(changed["actor"], "trainer");
        assert_eq!(changed["detail"]["employment"]["after"], "employed");
        assert_eq!(changed["detail"]["employment"]["before"], "not_stated");
        let bundle: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("fhir-bundle.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(bundle["resourceType"], "Bundle");
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'subject_access' AND record_ref = 'C0002'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(audited, 1);
    });
}

/// The example dataset with client C0001 of BPL given a second referral, a brief
/// episode and a session, written to `to`; with `split`, that referral belongs instead to
/// C0001-DUP, a second record of the same person (same details), and a young client
/// C0001-YOUNG (registered, born 2000) is added.
fn with_second_referral(to: &Path, split: bool) {
    let from = examples();
    for entry in std::fs::read_dir(&from).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
    let append = |file: &str, line: &str| {
        let mut text = std::fs::read_to_string(to.join(file)).unwrap();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        std::fs::write(to.join(file), text).unwrap();
    };
    let owner = if split { "C0001-DUP" } else { "C0001" };
    append(
        "referrals.csv",
        &format!("R9001,BPL,{owner},2009-01-05,self,,"),
    );
    append(
        "episodes.csv",
        "E9001,BPL,R9001,W1,brief,2009-01-12,diet,2009-01-12,completed",
    );
    append(
        "sessions.csv",
        "S9001,BPL,E9001,W1,2009-01-12,20,face_to_face,gp_practice,brief_intervention,yes",
    );
    if split {
        let clients = read(&from, "clients.csv");
        let c = clients
            .iter()
            .find(|c| c["service_ref"] == "BPL" && c["client_ref"] == "C0001")
            .unwrap();
        let order: Vec<String> = csv::Reader::from_path(from.join("clients.csv"))
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        for (r, born) in [("C0001-DUP", None), ("C0001-YOUNG", Some("2000-01-01"))] {
            let row: Vec<String> = order
                .iter()
                .map(|h| match h.as_str() {
                    "client_ref" => r.to_string(),
                    "date_of_birth" => born.unwrap_or(&c[h]).to_string(),
                    "nhs_number" if born.is_some() => String::new(),
                    _ => c[h].clone(),
                })
                .collect();
            append("clients.csv", &row.join(","));
        }
    }
}

#[tokio::test]
async fn a_merge_gives_the_reports_of_the_client_imported_as_one_from_the_start() {
    each_backend!("cli_merge", |t| {
        let split = tempfile::tempdir().unwrap();
        with_second_referral(split.path(), true);
        ok(dcrs(&t.url, &["import", split.path().to_str().unwrap()]));
        let one = beside(&t.url, "cli_merge_one").await;
        let whole = tempfile::tempdir().unwrap();
        with_second_referral(whole.path(), false);
        ok(dcrs(&one.url, &["import", whole.path().to_str().unwrap()]));
        assert_ne!(
            reports(&t.url, "BPL", "2008-09"),
            reports(&one.url, "BPL", "2008-09"),
            "two records of one person count as two new clients"
        );
        // The pair is listed, with the evidence.
        let listed = ok(dcrs(&t.url, &["duplicates", "--service", "BPL"]));
        assert!(
            listed.contains("C0001 and C0001-DUP: the same NHS number"),
            "{listed}"
        );
        // Refused where the merged records break a rule: a referral at 9 years old.
        let refused = dcrs(
            &t.url,
            &[
                "merge",
                "--service",
                "BPL",
                "--keep",
                "C0001-YOUNG",
                "--merge",
                "C0001-DUP",
            ],
        );
        assert_eq!(refused.status.code(), Some(2));
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(why.contains("Nothing was merged"), "{why}");
        let held: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM clients WHERE client_ref LIKE 'C0001%'")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(
            held, 4,
            "nothing changed: C0001 of each service, DUP and YOUNG"
        );

        // The duplicate's record changed through the application before the merge: its
        // entry keeps the duplicate's reference.
        let dup = read(split.path(), "clients.csv")
            .into_iter()
            .find(|c| c["client_ref"] == "C0001-DUP")
            .unwrap();
        change_client(&t.db, &dup, "family_name", "Jones-Dup").await;
        ok(dcrs(
            &t.url,
            &[
                "merge",
                "--service",
                "BPL",
                "--keep",
                "C0001",
                "--merge",
                "C0001-DUP",
            ],
        ));
        same_reports(&t.url, &one.url);
        let verified = ok(dcrs(&t.url, &["audit", "verify"]));
        assert!(verified.contains("intact"), "{verified}");
        let detail: String = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'client.merge' AND record_ref = 'C0001'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert!(detail.contains("\"merged\":\"C0001-DUP\""), "{detail}");
        // The person's subject access lists the change made to the merged record, and
        // erasing them empties its detail too.
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().to_str().unwrap();
        ok(dcrs(
            &t.url,
            &[
                "subject-access",
                "--service",
                "BPL",
                "--client",
                "C0001",
                "--out",
                dir,
            ],
        ));
        let access = std::fs::read_to_string(out.path().join("subject-access.json")).unwrap();
        assert!(
            access.contains("Jones-Dup"),
            "the merged record's change is listed"
        );
        ok(dcrs(
            &t.url,
            &[
                "erase",
                "--service",
                "BPL",
                "--client",
                "C0001",
                "--reason",
                "asked",
            ],
        ));
        let left: Option<String> = sqlx::query_scalar(
            "SELECT detail FROM audit_log WHERE action = 'record.update' AND record_ref = 'C0001-DUP'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(left, None, "emptied with the person it was merged into");
        let verified = ok(dcrs(&t.url, &["audit", "verify"]));
        assert!(verified.contains("intact"), "{verified}");
        one.db.close().await;
    });
}
