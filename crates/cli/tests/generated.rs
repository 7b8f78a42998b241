//! Generated data against the real system: the six-service scenario and a small national
//! deployment import with no rejections on SQLite and PostgreSQL; the scenario's truth
//! file agrees with the configuration rows it describes; clients live where their
//! service works.

use chrono::NaiveDate;
use dcrs_domain::rules::RuleSettings;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_synth::{Options, Scale, Summary, generate};
use dcrs_testkit::each_backend;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: RuleSettings::default(),
        actor: "test".into(),
    }
}

fn rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            headers
                .iter()
                .zip(x.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The six-service scenario (seed 1) in a temporary directory.
fn scenario() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(
        &shared_data(),
        dir.path(),
        &Options {
            seed: 1,
            scale: None,
        },
    )
    .unwrap();
    dir
}

fn count(summary: &Summary, file: &str) -> i64 {
    summary
        .rows
        .iter()
        .find(|(e, _)| e.file_name() == file)
        .map(|(_, n)| *n as i64)
        .unwrap()
}

#[tokio::test]
async fn generated_data_import_with_no_rejections_on_both_backends() {
    let scenario = tempfile::tempdir().unwrap();
    let national = tempfile::tempdir().unwrap();
    let s = generate(
        &shared_data(),
        scenario.path(),
        &Options {
            seed: 1,
            scale: None,
        },
    )
    .unwrap();
    let n = generate(
        &shared_data(),
        national.path(),
        &Options {
            seed: 2,
            scale: Some(Scale {
                services: 3,
                clients: 3000,
            }),
        },
    )
    .unwrap();
    assert!(count(&s, "clients.csv") > 10_000, "{:?}", s.rows);
    assert_eq!(count(&n, "clients.csv"), 3000);
    each_backend!("generated_import", |t| {
        for (dir, summary) in [(scenario.path(), &s), (national.path(), &n)] {
            let report = import_dir(&t.db, dir, &options(), |_| {}).await.unwrap();
            assert!(
                report.rejections.is_empty(),
                "{} rejections, first: {:?}",
                report.rejections.len(),
                report.rejections.first()
            );
            assert!(report.committed);
            let added: u64 = report.counts.iter().map(|(_, c)| c.added).sum();
            let written: u64 = summary.rows.iter().map(|(_, n)| n).sum();
            assert_eq!(added, written, "every generated row is stored");
        }
        let stored: HashMap<String, i64> =
            t.db.counts()
                .await
                .unwrap()
                .into_iter()
                .map(|(e, n)| (e.file_name().to_string(), n))
                .collect();
        assert_eq!(
            stored["sessions.csv"],
            count(&s, "sessions.csv") + count(&n, "sessions.csv")
        );
    });
}

#[test]
fn the_scenario_truth_matches_its_configuration_rows_and_the_study() {
    let dir = scenario();
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("scenario.json")).unwrap())
            .unwrap();
    assert_eq!(truth["synthetic"], Value::Bool(true));
    let configs = rows(&dir.path().join("service_configurations.csv"));
    let services = truth["services"].as_array().unwrap();
    let refs: Vec<&str> = services
        .iter()
        .map(|s| s["service_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["A", "B", "C", "D", "E", "F"]);
    let model = |r: &str, which: &str| -> String {
        services.iter().find(|s| s["service_ref"] == r).unwrap()[which]
            .as_str()
            .unwrap()
            .to_string()
    };
    for r in refs.iter() {
        assert_eq!(
            model(r, "start_model"),
            "community_peer",
            "{r} starts as a community peer service"
        );
    }
    assert_eq!(model("B", "end_model"), "primary_care");
    assert_eq!(model("C", "end_model"), "community_peer");
    assert_eq!(model("D", "end_model"), "telephone_triage");
    assert_eq!(model("F", "end_model"), "community_peer");
    assert_ne!(model("A", "end_model"), "community_peer");
    assert_ne!(model("E", "end_model"), "community_peer");

    let mut recorded = 0;
    let mut unrecorded = 0;
    for s in services {
        let sref = s["service_ref"].as_str().unwrap();
        let own: Vec<_> = configs
            .iter()
            .filter(|c| c["service_ref"] == sref)
            .collect();
        assert_eq!(
            own[0]["effective_from"],
            s["started_on"].as_str().unwrap(),
            "{sref}"
        );
        let changes = s["changes"].as_array().unwrap();
        let recorded_here = changes.iter().filter(|c| c["recorded"] == true).count();
        assert_eq!(
            own.len(),
            1 + recorded_here,
            "{sref}: one row per recorded change"
        );
        for c in changes {
            let starts = c["starts_on"].as_str().unwrap();
            if c["recorded"] == true {
                recorded += 1;
                let cref = c["configuration_ref"].as_str().unwrap();
                let row = own.iter().find(|r| r["configuration_ref"] == cref).unwrap();
                assert_eq!(row["effective_from"], starts, "{cref}");
            } else {
                unrecorded += 1;
                assert!(c["configuration_ref"].is_null());
                assert!(
                    own.iter().all(|r| r["effective_from"] != starts),
                    "an unrecorded change has no configuration row"
                );
                assert!(
                    !c["moves"].as_array().unwrap().is_empty(),
                    "drift moves a measure"
                );
            }
            for m in c["moves"].as_array().unwrap() {
                let (b, a) = (m["before"].as_f64().unwrap(), m["after"].as_f64().unwrap());
                assert!(b != a, "{m}");
            }
        }
    }
    assert!(
        recorded >= 4 && unrecorded >= 4,
        "{recorded} recorded, {unrecorded} unrecorded"
    );
    assert!(
        services.iter().find(|s| s["service_ref"] == "F").unwrap()["changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The postcode → LSOA → local authority of each placeable client, read straight from the
/// reference files.
fn place(postcodes: &HashSet<String>) -> HashMap<String, String> {
    let mut lad_of = HashMap::new();
    for r in rows(&shared_data().join("imd/imd2019_lsoa11_england.csv")) {
        lad_of.insert(r["lsoa11cd"].clone(), r["lad19cd"].clone());
    }
    let mut out = HashMap::new();
    for f in ["A-K", "L-R", "S-Z"] {
        let file = std::fs::File::open(
            shared_data().join(format!("postcode/postcode_lsoa11_england_{f}.csv.gz")),
        )
        .unwrap();
        for line in BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
            let line = line.unwrap();
            let mut p = line.split(',');
            let (pc, lsoa) = (p.next().unwrap(), p.next().unwrap());
            if postcodes.contains(pc) {
                out.insert(pc.to_string(), lad_of[lsoa].clone());
            }
        }
    }
    out
}

#[test]
fn clients_live_in_real_postcodes_of_their_service_areas() {
    let dir = scenario();
    let areas: HashMap<String, String> = rows(&dir.path().join("services.csv"))
        .into_iter()
        .map(|s| (s["service_ref"].clone(), s["areas_served"].clone()))
        .collect();
    let clients = rows(&dir.path().join("clients.csv"));
    let postcodes: HashSet<String> = clients.iter().map(|c| c["postcode"].clone()).collect();
    let lad = place(&postcodes);
    let (mut blank, mut pseudo, mut home, mut elsewhere) = (0, 0, 0, 0);
    for c in &clients {
        let pc = &c["postcode"];
        if pc.is_empty() {
            blank += 1;
        } else if pc.starts_with("ZZ99") {
            pseudo += 1;
        } else {
            let l = lad
                .get(pc)
                .unwrap_or_else(|| panic!("{pc} is not a real postcode"));
            if areas[&c["service_ref"]].split(';').any(|a| a == l) {
                home += 1;
            } else {
                elsewhere += 1;
            }
        }
        assert!(
            c["family_name"].starts_with("Synth-"),
            "names are obviously synthetic"
        );
    }
    let n = clients.len() as f64;
    let share = |k: i32| f64::from(k) / n;
    assert!(
        (0.005..0.02).contains(&share(blank)),
        "blank {}",
        share(blank)
    );
    assert!(
        (0.008..0.025).contains(&share(pseudo)),
        "unknown {}",
        share(pseudo)
    );
    assert!(
        (0.015..0.05).contains(&share(elsewhere)),
        "from a neighbour {}",
        share(elsewhere)
    );
    assert!(share(home) > 0.9);
}
