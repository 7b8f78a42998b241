//! Findings of the independent reviews (issues 28 and 29) that concern import and
//! export: spreadsheet formulas in exported text, line numbers in files with Windows
//! line ends, files that are not files, unbounded rejections, terminal escapes, the
//! unknown-postcode warning, and target areas that are not 2011 LSOAs.

use dcrs_domain::Entity;
use dcrs_exchange::export_dir;
use dcrs_testkit::each_backend;
use std::path::Path;

mod common;
use common::{examples, import};

fn copy_examples(to: &Path) {
    for e in Entity::ALL {
        std::fs::copy(examples().join(e.file_name()), to.join(e.file_name())).unwrap();
    }
}

/// Replaces the given name and family name of client `client` in a clients.csv text.
fn rename(text: &str, client: &str, given: &str, family: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut cells: Vec<String> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes())
            .records()
            .next()
            .unwrap()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        if cells[0] == client {
            cells[2] = given.into();
            cells[3] = family.into();
        }
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(&cells).unwrap();
        out.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    }
    out
}

#[tokio::test]
async fn exported_text_never_opens_as_a_formula_and_still_imports_unchanged() {
    each_backend!("csv_injection", |t| {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        let text = std::fs::read_to_string(dir.path().join("clients.csv")).unwrap();
        let names = [
            (
                "C0001",
                "=HYPERLINK(\"http://example.org\",\"x\")",
                "+cmd|' /C calc'!A0",
            ),
            ("C0002", "@SUM(1+1)", "-2+3"),
            ("C0003", "'=quoted", "'plain"),
        ];
        let mut text = text;
        for (c, g, f) in names {
            text = rename(&text, c, g, f);
        }
        std::fs::write(dir.path().join("clients.csv"), text).unwrap();
        let report = import(&t.db, dir.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        // Stored as typed; an apostrophe before a formula character is the mark an
        // export (or a spreadsheet) puts there, and is taken off.
        let stored = [
            ("C0001", names[0].1, names[0].2),
            ("C0002", names[1].1, names[1].2),
            ("C0003", "=quoted", "'plain"),
        ];
        for (c, g, f) in stored {
            let (sg, sf): (String, String) =
                sqlx::query_as("SELECT given_name, family_name FROM clients WHERE client_ref = $1")
                    .bind(c)
                    .fetch_one(t.db.pool())
                    .await
                    .unwrap();
            assert_eq!((sg.as_str(), sf.as_str()), (g, f));
        }
        // No cell of any exported file starts a formula (numbers aside).
        let out = tempfile::tempdir().unwrap();
        export_dir(&t.db, out.path()).await.unwrap();
        for e in Entity::ALL {
            let mut r = csv::Reader::from_path(out.path().join(e.file_name())).unwrap();
            for row in r.records() {
                for cell in row.unwrap().iter() {
                    let formula = cell.starts_with(['=', '+', '@', '\t', '\r'])
                        || (cell.starts_with('-') && cell.parse::<f64>().is_err());
                    assert!(!formula, "{}: {cell:?}", e.file_name());
                }
            }
        }
        // And the export imports into an empty database as the same records.
        let again = dcrs_testkit::TestDb::sqlite().await;
        assert!(import(&again.db, out.path()).await.committed);
        let second = tempfile::tempdir().unwrap();
        export_dir(&again.db, second.path()).await.unwrap();
        for e in Entity::ALL {
            assert_eq!(
                std::fs::read(out.path().join(e.file_name())).unwrap(),
                std::fs::read(second.path().join(e.file_name())).unwrap(),
                "{}",
                e.file_name()
            );
        }
    });
}

/// Writes `text` with its line ends as `\r\n`.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// The line (from 1) of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> u64 {
    text.lines().position(|l| l.starts_with(start)).unwrap() as u64 + 1
}

#[tokio::test]
async fn rejections_name_the_line_an_editor_shows_with_lf_and_crlf_line_ends() {
    each_backend!("crlf_lines", |t| {
        // Clients with a bad date of birth far down, after a blank line and a note that
        // runs over two lines; sessions with a bad value near the end.
        let clients = std::fs::read_to_string(examples().join("clients.csv")).unwrap();
        let mut lines: Vec<String> = clients.lines().map(String::from).collect();
        lines.insert(5, String::new());
        let c10 = lines.iter().position(|l| l.starts_with("C0010,")).unwrap();
        let mut bad_dob = lines[c10].split(',').map(String::from).collect::<Vec<_>>();
        bad_dob[5] = "1990-02-30".into();
        lines[c10] = bad_dob.join(",");
        let clients = lines.join("\n") + "\n";
        let configurations = std::fs::read_to_string(examples().join("service_configurations.csv"))
            .unwrap()
            .replacen(",Start-up model", ",\"Start-up model,\nover two lines\"", 1);
        let sessions = std::fs::read_to_string(examples().join("sessions.csv")).unwrap();
        let last = sessions.lines().last().unwrap().to_string();
        let bad_session = {
            let mut cells: Vec<&str> = last.split(',').collect();
            cells[0] = "S-BAD";
            cells[5] = "9999";
            cells.join(",")
        };
        let sessions = format!("{sessions}{bad_session}\n");
        let mut seen = Vec::new();
        for ends in ["lf", "crlf"] {
            let dir = tempfile::tempdir().unwrap();
            copy_examples(dir.path());
            for (name, text) in [
                ("clients.csv", &clients),
                ("service_configurations.csv", &configurations),
                ("sessions.csv", &sessions),
            ] {
                let text = if ends == "crlf" {
                    crlf(text)
                } else {
                    text.clone()
                };
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            let report = import(&t.db, dir.path()).await;
            assert!(!report.committed);
            let mut found: Vec<(String, Option<u64>, String)> = report
                .rejections
                .iter()
                .map(|r| (r.file.clone(), r.line, r.field.clone()))
                .collect();
            found.sort();
            seen.push(found);
        }
        assert_eq!(seen[0], seen[1], "LF and CRLF copies report the same lines");
        let expected_clients = line_of(&clients, "C0010,");
        let expected_session = line_of(&sessions, "S-BAD,");
        assert!(
            seen[0].contains(&(
                "clients.csv".into(),
                Some(expected_clients),
                "date_of_birth".into()
            )),
            "{:?} (the bad date of birth is on line {expected_clients})",
            seen[0]
        );
        assert!(
            seen[0]
                .iter()
                .any(|(f, l, _)| f == "sessions.csv" && *l == Some(expected_session)),
            "{:?} (the bad session is on line {expected_session})",
            seen[0]
        );
    });
}

#[tokio::test]
async fn a_pipe_or_a_device_named_as_a_dataset_file_is_refused_at_once() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("sessions.csv")).unwrap();
    let fifo = dir.path().join("clients.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(
        dir.path().join("organisations.csv"),
        "org_ref,name,kind,ods_code\nO1,North PCT,pct,\n",
    )
    .unwrap();
    // The guard stops a hung test; the import itself must not wait on either file.
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        import(&t.db, dir.path()),
    )
    .await
    .expect("the import does not wait on a pipe or read a device for ever");
    let mut refused: Vec<&str> = report
        .rejections
        .iter()
        .filter(|r| r.field == "(file)")
        .map(|r| r.file.as_str())
        .collect();
    refused.sort();
    assert_eq!(refused, ["clients.csv", "sessions.csv"]);
    assert!(!report.committed);
}

#[tokio::test]
async fn a_header_of_a_million_columns_gives_one_rejection_and_problems_are_bounded() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let header: Vec<String> = (0..1_000_000).map(|i| format!("c{i}")).collect();
    std::fs::write(dir.path().join("clients.csv"), header.join(",") + "\n").unwrap();
    let report = import(&t.db, dir.path()).await;
    assert_eq!(report.rejections.len(), 1, "{:?}", &report.rejections[..3]);
    assert!(report.rejections[0].reason.contains("1000000 columns"));

    // Five thousand bad rows: the first thousand problems listed, the rest counted.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("org_ref,name,kind,ods_code\n");
    for i in 0..5_000 {
        text.push_str(&format!("O{i},Name,not_a_kind,\n"));
    }
    std::fs::write(dir.path().join("organisations.csv"), text).unwrap();
    let report = import(&t.db, dir.path()).await;
    assert_eq!(report.rejections.len(), dcrs_exchange::MAX_LISTED);
    assert_eq!(report.not_listed, 4_000);
}

#[tokio::test]
async fn what_is_printed_of_a_rejection_holds_no_terminal_escape() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("organisations.csv"),
        "org_ref,name,kind,ods_code\n\"O\x1b[2J1\",Name,not_a_kind,\n",
    )
    .unwrap();
    let report = import(&t.db, dir.path()).await;
    assert!(!report.rejections.is_empty());
    for r in &report.rejections {
        let printed = r.to_string();
        assert!(!printed.contains('\x1b'), "{printed:?}");
        assert!(printed.contains("\\u{1b}"), "{printed:?}");
    }
}

#[tokio::test]
async fn an_unknown_postcode_is_named_with_its_value_and_line() {
    each_backend!("unknown_postcode", |t| {
        // A postcode lookup that knows one postcode only.
        sqlx::query("INSERT INTO ref_postcodes (pcds, lsoa11cd) VALUES ('FY1 2NE', 'E01012680')")
            .execute(t.db.pool())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        let clients = std::fs::read_to_string(examples().join("clients.csv")).unwrap();
        let report = import(&t.db, dir.path()).await;
        assert!(report.committed, "{:?}", report.rejections);
        let c2 = report
            .warnings
            .iter()
            .find(|w| {
                w.field == "postcode"
                    && w.record.as_deref().is_some_and(|r| r.starts_with("C0002 "))
            })
            .expect("a warning for C0002, whose postcode is not in the lookup");
        assert_eq!(c2.value, "FY5 1DR");
        assert_eq!(c2.line, Some(line_of(&clients, "C0002,")));
        let printed = c2.to_string();
        assert!(
            printed.contains("line 3") && printed.contains("FY5 1DR"),
            "{printed}"
        );
        assert!(!printed.contains("(blank)"), "{printed}");
    });
}

#[tokio::test]
async fn target_areas_must_be_2011_lsoas_when_the_reference_data_knows_them() {
    each_backend!("target_lsoas_2011", |t| {
        // E01000001 is a 2011 LSOA; E01999999 was a 2001 LSOA split in 2011.
        for sql in [
            "INSERT INTO ref_lsoa11 (lsoa11cd) VALUES ('E01000001')",
            "INSERT INTO ref_lsoa11 (lsoa11cd) VALUES ('E01033001')",
            "INSERT INTO ref_lsoa11 (lsoa11cd) VALUES ('E01033002')",
            "INSERT INTO ref_lsoa01_lsoa11 (lsoa01cd, lsoa11cd, chgind) VALUES ('E01999999', 'E01033001', 'S')",
            "INSERT INTO ref_lsoa01_lsoa11 (lsoa01cd, lsoa11cd, chgind) VALUES ('E01999999', 'E01033002', 'S')",
        ] {
            sqlx::query(sql).execute(t.db.pool()).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        let text = std::fs::read_to_string(examples().join("service_configurations.csv")).unwrap();
        let text = text.replacen(
            "most_deprived_20pct,,no,one_to_one_behaviour_change,Start-up model",
            "deprived_areas_local,E01000001;E01999999,no,one_to_one_behaviour_change,Start-up model",
            1,
        );
        assert!(
            text.contains("E01999999"),
            "the fixture's first configuration changed"
        );
        std::fs::write(dir.path().join("service_configurations.csv"), &text).unwrap();
        let report = import(&t.db, dir.path()).await;
        assert!(!report.committed);
        let r = report
            .rejections
            .iter()
            .find(|r| r.field == "target_lsoas")
            .unwrap_or_else(|| panic!("{:?}", report.rejections));
        assert_eq!(r.line, Some(line_of(&text, "CFG1,")));
        assert!(
            r.reason.contains("E01999999 is a 2001 LSOA code"),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("E01033001, E01033002"), "{}", r.reason);
        assert!(!r.reason.contains("E01000001"), "{}", r.reason);
    });
}
