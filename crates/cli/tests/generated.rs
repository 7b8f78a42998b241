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
        only_new: false,
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

/// A quarter as a number: four times the financial year's first calendar year plus 0–3.
fn quarter_of(date: &str) -> i32 {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let q = dcrs_domain::types::Quarter::containing(d);
    q.year().start_year() * 4 + i32::from(q.number()) - 1
}

fn quarter_label(label: &str) -> i32 {
    let q = dcrs_domain::types::Quarter::parse(label).unwrap();
    q.year().start_year() * 4 + i32::from(q.number()) - 1
}

/// Numerator and denominator per (service, quarter), or values for medians.
#[derive(Default)]
struct Measured {
    shares: HashMap<(String, String, i32), (f64, f64)>,
    values: HashMap<(String, String, i32), Vec<f64>>,
}

impl Measured {
    fn share(&mut self, m: &str, s: &str, q: i32, hit: bool) {
        let e = self.shares.entry((m.into(), s.into(), q)).or_default();
        e.0 += f64::from(u8::from(hit));
        e.1 += 1.0;
    }

    /// The measure pooled over quarters `from..=to`: a ratio of sums, or a median.
    fn level(&self, m: &str, s: &str, from: i32, to: i32) -> Option<(f64, usize)> {
        let mut hit = 0.0;
        let mut all = 0.0;
        let mut values = Vec::new();
        for q in from..=to {
            let key = (m.to_string(), s.to_string(), q);
            if let Some((h, a)) = self.shares.get(&key) {
                hit += h;
                all += a;
            }
            values.extend(self.values.get(&key).into_iter().flatten());
        }
        if all > 0.0 {
            return Some((hit / all, all as usize));
        }
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some((values[values.len() / 2], values.len()))
    }
}

/// Section 7's measures that can be read from the files alone, per service and quarter,
/// computed here without the generator's code.
fn measure(dir: &Path) -> Measured {
    const COMMUNITY: [&str; 7] = [
        "self",
        "friend_or_family",
        "community_organisation",
        "outreach_event",
        "workplace",
        "local_authority_service",
        "housing_or_jobcentre",
    ];
    const CLINICAL: [&str; 8] = [
        "gp",
        "practice_nurse",
        "health_check",
        "stop_smoking_service",
        "pharmacy",
        "hospital",
        "mental_health_service",
        "other_health_professional",
    ];
    let mut m = Measured::default();
    for r in rows(&dir.join("referrals.csv")) {
        let (s, q) = (&r["service_ref"], quarter_of(&r["received_on"]));
        let source = r["source"].as_str();
        m.share(
            "community_referral_share",
            s,
            q,
            COMMUNITY.contains(&source),
        );
        m.share("clinical_referral_share", s, q, CLINICAL.contains(&source));
    }
    let mut attended: HashMap<(String, String), f64> = HashMap::new();
    for x in rows(&dir.join("sessions.csv")) {
        if x["attended"] != "yes" {
            continue;
        }
        let (s, q) = (&x["service_ref"], quarter_of(&x["held_on"]));
        m.share("telephone_share", s, q, x["mode"] == "telephone");
        if x["mode"] == "face_to_face" {
            let clinical =
                ["gp_practice", "health_centre", "pharmacy"].contains(&x["venue"].as_str());
            m.share("clinical_venue_share", s, q, clinical);
        }
        *attended
            .entry((s.clone(), x["episode_ref"].clone()))
            .or_default() += 1.0;
    }
    let plans: HashMap<(String, String), String> = rows(&dir.join("plans.csv"))
        .into_iter()
        .map(|p| {
            (
                (p["service_ref"].clone(), p["episode_ref"].clone()),
                p["agreed_on"].clone(),
            )
        })
        .collect();
    let wider: HashSet<(String, String)> = rows(&dir.join("wider_issues.csv"))
        .into_iter()
        .map(|w| (w["service_ref"].clone(), w["episode_ref"].clone()))
        .collect();
    for e in rows(&dir.join("episodes.csv")) {
        let s = &e["service_ref"];
        let key = (s.clone(), e["episode_ref"].clone());
        let q = quarter_of(&e["first_contact_on"]);
        let full = e["kind"] == "full";
        m.share("brief_share", s, q, !full);
        m.share("wider_issue_rate", s, q, wider.contains(&key));
        if full {
            m.share("plan_rate", s, q, plans.contains_key(&key));
            if let Some(agreed) = plans.get(&key) {
                let days = (NaiveDate::parse_from_str(agreed, "%Y-%m-%d").unwrap()
                    - NaiveDate::parse_from_str(&e["first_contact_on"], "%Y-%m-%d").unwrap())
                .num_days();
                m.values
                    .entry(("days_to_plan".into(), s.clone(), q))
                    .or_default()
                    .push(days as f64);
            }
            if !e["closed_on"].is_empty() {
                m.values
                    .entry((
                        "sessions_per_episode".into(),
                        s.clone(),
                        quarter_of(&e["closed_on"]),
                    ))
                    .or_default()
                    .push(attended.get(&key).copied().unwrap_or(0.0));
            }
        }
    }
    let workers = rows(&dir.join("workers.csv"));
    for q in quarter_of("2005-04-01")..=quarter_of("2013-03-31") {
        for w in &workers {
            let (start, left) = (quarter_of(&w["started_on"]), &w["left_on"]);
            let active = start <= q && (left.is_empty() || quarter_of(left) >= q);
            if active && w["lives_in_area_served"] != "unknown" {
                m.share(
                    "local_worker_share",
                    &w["service_ref"],
                    q,
                    w["lives_in_area_served"] == "yes",
                );
            }
        }
    }
    m
}

/// How far a pooled level may sit from the intended one: two to three standard errors
/// of a share over four quarters, 20% of a median, more for the small workforce.
fn tolerance(measure: &str, intended: f64) -> f64 {
    match measure {
        "days_to_plan" | "sessions_per_episode" => (0.2 * intended).max(1.0),
        "local_worker_share" => 0.2,
        _ => 0.06,
    }
}

#[test]
fn the_generated_records_show_the_levels_the_truth_file_states() {
    let dir = scenario();
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("scenario.json")).unwrap())
            .unwrap();
    let m = measure(dir.path());
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, measure: &str, s: &str, from: i32, to: i32, intended: f64| {
        let Some((level, n)) = m.level(measure, s, from, to) else {
            return;
        };
        checked += 1;
        if (level - intended).abs() > tolerance(measure, intended) {
            failures.push(format!(
                "{what}: {measure} measured {level:.3} (n={n}), intended {intended}"
            ));
        }
    };
    for service in truth["services"].as_array().unwrap() {
        let s = service["service_ref"].as_str().unwrap();
        for c in service["changes"].as_array().unwrap() {
            let start = quarter_label(c["quarter"].as_str().unwrap());
            let done = quarter_label(c["complete_in_quarter"].as_str().unwrap());
            for mv in c["moves"].as_array().unwrap() {
                let name = mv["measure"].as_str().unwrap();
                let (before, after) = (
                    mv["before"].as_f64().unwrap(),
                    mv["after"].as_f64().unwrap(),
                );
                let id = c["id"].as_str().unwrap();
                // Four quarters before the change; four after it is complete, leaving out
                // the quarter after, when episodes begun under the old model still run.
                check(
                    format!("{id} before"),
                    name,
                    s,
                    start - 4,
                    start - 1,
                    before,
                );
                check(format!("{id} after"), name, s, done + 2, done + 5, after);
            }
        }
    }
    // F, the control, keeps its start-up levels throughout.
    let f = truth["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service_ref"] == "F")
        .unwrap();
    for (name, level) in f["start_fingerprint"].as_object().unwrap() {
        let from = quarter_of(f["started_on"].as_str().unwrap()) + 1;
        check(
            format!("F {name}"),
            name,
            "F",
            from,
            quarter_of("2013-03-31"),
            level.as_f64().unwrap(),
        );
    }
    assert!(checked >= 40, "only {checked} levels could be checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} levels off:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
