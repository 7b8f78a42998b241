//! Implementation patterns on the six-service scenario, checked against the truth the
//! generator writes (`scenario.json`): every service's start-up and follow-up delivery
//! model; every scripted change that moves a share by 0.2 or more (or a median by 30% or
//! more) flagged on a measure it moves within two quarters of its start, labelled
//! `explained` by its configuration when recorded and `drift` when not; and at most one
//! flag on F, the control. Then the same document on PostgreSQL and SQLite for a small
//! generated deployment must be identical.

/// Writes to the terminal past the test harness's capture, so that the figures are in
/// the log of every run (CI's included), not only with `--nocapture`.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use chrono::{TimeZone, Utc};
use dcrs_exchange::import_dir;
use dcrs_refdata::{LoadOptions, load};
use dcrs_report::patterns::{self, ModelRules, PatternsRequest};
use dcrs_report::{Policy, drift::Settings, render};
use dcrs_testkit::TestDb;
use serde_json::Value;

mod common;
use common::{import_options, shared};

#[tokio::test]
async fn the_six_service_scenario_is_read_as_it_was_written() {
    let t = TestDb::sqlite().await;
    let options = LoadOptions {
        actor: "test".into(),
        ..Default::default()
    };
    load(&t.db, &shared(), &options).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared(),
        data.path(),
        &dcrs_synth::Options {
            seed: 1,
            scale: None,
        },
    )
    .unwrap();
    let imported = import_dir(&t.db, data.path(), &import_options(), |_| {})
        .await
        .unwrap();
    assert!(imported.rejections.is_empty());
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("scenario.json")).unwrap())
            .unwrap();
    let all = patterns::series(&t.db, None, None).await.unwrap();
    let rules = ModelRules::default();
    let settings = Settings::default();
    let mut problems = Vec::new();
    let mut flagged = 0;
    for service in truth["services"].as_array().unwrap() {
        let sref = service["service_ref"].as_str().unwrap();
        let s = all
            .iter()
            .find(|s| s.service.service_ref == sref)
            .unwrap_or_else(|| panic!("no series for {sref}"));
        let (start, follow) = s.start_and_follow_up(&rules);
        say!("{sref}: {start} -> {follow}");
        if start != service["start_model"] || follow != service["end_model"] {
            problems.push(format!(
                "{sref}: models {start} -> {follow}, scenario says {} -> {}",
                service["start_model"], service["end_model"]
            ));
        }
        let found = patterns::shifts(s, &settings, &rules);
        for l in &found {
            say!(
                "  {} detected {} began {} {:.3} -> {:.3} {}",
                patterns::MEASURES[l.measure].0,
                s.quarters[l.shift.detected],
                s.quarters[l.shift.began],
                l.shift.level_before,
                l.shift.level_after,
                l.explained_by.as_deref().unwrap_or("drift")
            );
        }
        if sref == "F" && found.len() > 1 {
            problems.push(format!("F, the control, has {} flags", found.len()));
        }
        for change in service["changes"].as_array().unwrap() {
            let id = change["id"].as_str().unwrap();
            let big: Vec<&str> = change["moves"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| {
                    let name = m["measure"].as_str().unwrap();
                    let (b, a) = (m["before"].as_f64().unwrap(), m["after"].as_f64().unwrap());
                    if matches!(name, "days_to_plan" | "sessions_per_episode") {
                        (a - b).abs() >= 0.3 * b.abs()
                    } else {
                        (a - b).abs() >= 0.2 - 1e-9
                    }
                })
                .map(|m| m["measure"].as_str().unwrap())
                .collect();
            if big.is_empty() {
                continue;
            }
            let quarter = change["quarter"].as_str().unwrap();
            let at = s
                .quarters
                .iter()
                .position(|q| q.to_string() == quarter)
                .unwrap_or_else(|| panic!("{id}: quarter {quarter} outside the series"));
            // A flag on any measure the change moves counts.
            let moved: Vec<&str> = change["moves"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["measure"].as_str().unwrap())
                .collect();
            let hit = found.iter().find(|l| {
                moved.contains(&patterns::MEASURES[l.measure].0)
                    && l.shift.detected >= at
                    && l.shift.detected <= at + 2
            });
            let recorded = change["recorded"].as_bool().unwrap();
            match hit {
                None => problems.push(format!(
                    "{id} ({quarter}, moves {big:?} by 0.2 or more): not flagged within two quarters"
                )),
                Some(l) => {
                    flagged += 1;
                    let want = change["configuration_ref"].as_str().map(String::from);
                    if recorded && l.explained_by != want {
                        problems.push(format!(
                            "{id}: recorded as {want:?} but labelled {:?}",
                            l.explained_by
                        ));
                    }
                    if !recorded && l.explained_by.is_some() {
                        problems.push(format!(
                            "{id}: not recorded but labelled explained by {:?}",
                            l.explained_by
                        ));
                    }
                }
            }
        }
    }
    say!("{flagged} scripted changes flagged and labelled");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        flagged >= 8,
        "the scenario scripts at least eight large changes"
    );
}

#[tokio::test]
async fn the_patterns_document_is_the_same_on_both_backends() {
    let Some(pg) = TestDb::postgres("patterns_backends").await else {
        return;
    };
    let lite = TestDb::sqlite().await;
    let shared = shared();
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared,
        data.path(),
        &dcrs_synth::Options {
            seed: 3,
            scale: Some(dcrs_synth::Scale {
                services: 2,
                clients: 2000,
            }),
        },
    )
    .unwrap();
    let refdir = tempfile::tempdir().unwrap();
    for rel in [
        "imd/imd2019_lsoa11_england.csv",
        "census/ethnic_group_2011_census_18_categories.csv",
        "census/census2011_ethnic_group_by_la_ew.csv",
        "nhs/nhs_ethnic_category_2001.csv",
    ] {
        let to = refdir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(shared.join(rel), to).unwrap();
    }
    let options = LoadOptions {
        files: vec![(
            "postcodes".into(),
            shared.join("postcode/postcode_lsoa11_sample_blackpool_wokingham.csv"),
        )],
        actor: "test".into(),
        ..Default::default()
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let mut pages = Vec::new();
    for t in [&lite, &pg] {
        load(&t.db, refdir.path(), &options).await.unwrap();
        let imported = import_dir(&t.db, data.path(), &import_options(), |_| {})
            .await
            .unwrap();
        assert!(imported.rejections.is_empty());
        for policy in [Policy::NONE, Policy::NHS_SUB_NATIONAL] {
            let req = PatternsRequest {
                services: None,
                period: None,
                policy,
                settings: Default::default(),
                rules: Default::default(),
            };
            let r = patterns::run(&t.db, &req, now).await.unwrap();
            pages.push(render::json(std::slice::from_ref(&r)));
        }
    }
    assert!(pages[0].contains("_fingerprint"));
    assert_eq!(
        pages[0], pages[2],
        "policy none: SQLite and PostgreSQL differ"
    );
    assert_eq!(pages[1], pages[3], "NHS rule: SQLite and PostgreSQL differ");
    assert_ne!(pages[0], pages[1], "the NHS rule changes some figure");
}
