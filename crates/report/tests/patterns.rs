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
        // The service in a sentence names its models in words, as the scenario wrote
        // them, and each change flagged with what records it.
        let req = patterns::PatternsRequest {
            services: None,
            period: None,
            policy: Policy::NONE,
            settings,
            rules,
        };
        let sentence = patterns::in_a_sentence(s, &req);
        say!("  {sentence}");
        fn words(m: &serde_json::Value) -> &str {
            match m.as_str().unwrap() {
                "community_peer" => "community peer support",
                "primary_care" => "primary care",
                "telephone_triage" => "telephone triage",
                other => other,
            }
        }
        for m in [&service["start_model"], &service["end_model"]] {
            if !sentence.contains(words(m)) {
                problems.push(format!("{sref}: {sentence:?} does not say {m}"));
            }
        }
        for l in &found {
            let phrase = match &l.explained_by {
                Some(c) => format!("configuration {c} records"),
                None => "no configuration change records".to_string(),
            };
            if !sentence.contains(&phrase) {
                problems.push(format!("{sref}: {sentence:?} does not say {phrase:?}"));
            }
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

/// A service of 30 referrals a quarter from 2008-09 to 2011-12, each with a full episode
/// of two attended sessions, and a team of twelve, all living in the area served, until
/// eight of them leave on 2010-03-31 and eight who live elsewhere start the next day.
fn small_team(dir: &std::path::Path) {
    let mut clients = String::from(
        "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n",
    );
    let mut referrals = String::from(
        "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n",
    );
    let mut episodes = String::from(
        "episode_ref,service_ref,referral_ref,lead_worker_ref,kind,first_contact_on,primary_issue,closed_on,exit_reason\n",
    );
    let mut sessions = String::from(
        "session_ref,service_ref,episode_ref,worker_ref,held_on,duration_min,mode,venue,purpose,attended\n",
    );
    let mut n = 0;
    for year in 2008..2012 {
        for (month, close) in [("04", "06"), ("07", "09"), ("10", "12")] {
            for i in 0..30 {
                n += 1;
                let day = 1 + i % 25;
                clients.push_str(&format!(
                    "C{n},S1,,,,1970-01-01,female,A,FY9 1AA,yes,,employed,no,yes,yes\n"
                ));
                referrals.push_str(&format!("R{n},S1,C{n},{year}-{month}-{day:02},self,,\n"));
                episodes.push_str(&format!(
                    "E{n},S1,R{n},W1,full,{year}-{month}-{day:02},diet,{year}-{close}-{day:02},disengaged\n"
                ));
                for (k, m) in [(1, month), (2, close)] {
                    sessions.push_str(&format!(
                        "X{n}_{k},S1,E{n},W1,{year}-{m}-{day:02},60,face_to_face,community_venue,support,yes\n"
                    ));
                }
            }
        }
        // January to March of the next calendar year.
        let next = year + 1;
        for i in 0..30 {
            n += 1;
            let day = 1 + i % 25;
            clients.push_str(&format!(
                "C{n},S1,,,,1970-01-01,female,A,FY9 1AA,yes,,employed,no,yes,yes\n"
            ));
            referrals.push_str(&format!("R{n},S1,C{n},{next}-01-{day:02},self,,\n"));
            episodes.push_str(&format!(
                "E{n},S1,R{n},W1,full,{next}-01-{day:02},diet,{next}-03-{day:02},disengaged\n"
            ));
            for (k, m) in [(1, "01"), (2, "03")] {
                sessions.push_str(&format!(
                    "X{n}_{k},S1,E{n},W1,{next}-{m}-{day:02},60,face_to_face,community_venue,support,yes\n"
                ));
            }
        }
    }
    let mut workers = String::from(
        "worker_ref,service_ref,display_name,role,sex,age_band,lives_in_area_served,home_imd_quintile,qualification,started_on,left_on,fte\n",
    );
    for w in 1..=12 {
        let left = if w <= 8 { "2010-03-31" } else { "" };
        workers.push_str(&format!(
            "W{w},S1,Trainer,health_trainer,female,35-44,yes,1,none,2008-01-01,{left},1.0\n"
        ));
    }
    for w in 1..=8 {
        workers.push_str(&format!(
            "N{w},S1,Trainer,health_trainer,female,35-44,no,3,none,2010-04-01,,1.0\n"
        ));
    }
    let files = [
        (
            "organisations.csv",
            "org_ref,name,kind,ods_code\nO1,Fixture PCT,pct,\n".to_string(),
        ),
        (
            "services.csv",
            "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\nS1,Fixture,O1,E06000099,2008-04-01,\n".into(),
        ),
        ("workers.csv", workers),
        ("clients.csv", clients),
        ("referrals.csv", referrals),
        ("episodes.csv", episodes),
        ("sessions.csv", sessions),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

#[tokio::test]
async fn a_small_team_is_not_shown_under_control_and_the_caption_agrees_with_the_flags() {
    let t = TestDb::sqlite().await;
    let refdir = tempfile::tempdir().unwrap();
    let options = common::reference_data(refdir.path());
    load(&t.db, refdir.path(), &options).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    small_team(data.path());
    let imported = import_dir(&t.db, data.path(), &import_options(), |_| {})
        .await
        .unwrap();
    assert!(
        imported.rejections.is_empty(),
        "{:?}",
        imported.rejections.first()
    );
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let run = |policy| {
        let db = &t.db;
        async move {
            let req = PatternsRequest {
                services: None,
                period: None,
                policy,
                settings: Default::default(),
                rules: Default::default(),
            };
            patterns::run(db, &req, now).await.unwrap()
        }
    };
    let exact = run(Policy::NONE).await;
    let controlled = run(Policy::NHS_SUB_NATIONAL).await;
    let column = |r: &dcrs_report::Report, table: &str, col: &str| -> Vec<dcrs_report::Figure> {
        let t = r.table(table).unwrap();
        let j = t.columns.iter().position(|c| c.id == col).unwrap();
        t.rows.iter().map(|row| row[j].clone()).collect()
    };
    // Exactly: 12 of 12 local, then 4 of 12 from 2010-11 Q1 (the quarter 2009-10 Q4
    // counts the eight leavers, active until its last day).
    let exact_share = column(&exact, "s1_fingerprint", "local_worker_share");
    let quarters = column(&exact, "s1_fingerprint", "quarter");
    let at = |label: &str| {
        quarters
            .iter()
            .position(|q| *q == dcrs_report::Figure::Text(label.into()))
            .unwrap()
    };
    assert_eq!(exact_share[at("2009-10 Q4")].as_f64(), Some(1.0));
    assert_eq!(exact_share[at("2010-11 Q1")].as_f64(), Some(4.0 / 12.0));
    // The detector flags the change in the quarter it happened, as drift (nothing is
    // recorded), in both documents.
    for r in [&exact, &controlled] {
        let measures = column(r, "s1_shifts", "measure");
        let detected = column(r, "s1_shifts", "detected");
        let flagged: Vec<usize> = (0..measures.len())
            .filter(|&i| measures[i] == dcrs_report::Figure::Text("local_worker_share".into()))
            .collect();
        assert_eq!(flagged.len(), 1, "{measures:?}");
        assert_eq!(
            detected[flagged[0]],
            dcrs_report::Figure::Text("2010-11 Q1".into())
        );
    }
    // Under control, twelve workers are too few for a share: every quarter shows *,
    // where rounding 12 of 12 and 4 of 12 would have shown 100% and 50% (or worse).
    let controlled_share = column(&controlled, "s1_fingerprint", "local_worker_share");
    assert!(
        controlled_share
            .iter()
            .all(|f| *f == dcrs_report::Figure::Suppressed),
        "{controlled_share:?}"
    );
    // The caption says what the flags say: each flag of the shift table is in the
    // caption of its measure, and the local worker share's caption gives no level that
    // is not published.
    let charts = dcrs_report::chart::pattern_charts(&controlled, "");
    let measures_chart = charts.iter().find(|c| c.id.ends_with("-measures")).unwrap();
    let shifts = controlled.table("s1_shifts").unwrap();
    for row in &shifts.rows {
        let text = |j: usize| row[j].to_text();
        let (measure, detected, label) = (text(0), text(1), text(5));
        let name = patterns::MEASURES
            .iter()
            .find(|m| m.0 == measure)
            .unwrap()
            .1;
        let kind = if label == "drift" {
            "drift"
        } else {
            "explained shift"
        };
        let caption = measures_chart
            .description
            .split(". ")
            .find(|s| s.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no caption for {name}"));
        assert!(
            caption.contains(&format!("{kind} in {detected}")),
            "{caption}"
        );
    }
    let worker_caption = measures_chart
        .description
        .split(". ")
        .find(|s| s.trim_start().starts_with("Local worker share"))
        .unwrap();
    assert_eq!(
        worker_caption.trim(),
        "Local worker share: not shown at first, not shown latest; drift in 2010-11 Q1 \
         (levels not shown: too few to publish)",
    );
    // The JSON gives rows as named fields, counts as integers, and the changes.
    for (r, controlled) in [(&exact, false), (&controlled, true)] {
        let doc: Value = serde_json::from_str(&render::json(std::slice::from_ref(r))).unwrap();
        let table = |id: &str| -> Value {
            doc["sections"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["tables"].as_array().unwrap().iter())
                .find(|t| t["id"] == id)
                .unwrap_or_else(|| panic!("no table {id}"))
                .clone()
        };
        let fingerprint = table("s1_fingerprint");
        let first = &fingerprint["rows"][0];
        assert_eq!(first["quarter"], "2008-09 Q1");
        assert!(first["referrals"].is_i64(), "{first}");
        assert_eq!(first["referrals"], 30);
        assert_eq!(first["sessions_attended"], 60);
        let shift = table("s1_shifts")["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["measure"] == "local_worker_share")
            .unwrap()
            .clone();
        assert_eq!(shift["detected"], "2010-11 Q1");
        assert_eq!(shift["label"], "drift");
        assert!(shift["change"].is_i64(), "{shift}");
        if controlled {
            // Twelve workers: neither the levels nor their difference are published,
            // and the evidence rests on who joined, which no published count shows.
            assert_eq!(shift["size"], "*");
            assert_eq!(shift["z"], "*");
        } else {
            // 4 of 12 (pooled over the quarter detected) against 48 of 48.
            assert!((shift["size"].as_f64().unwrap() - (4.0 / 12.0 - 1.0)).abs() < 1e-6);
            assert!(shift["z"].as_f64().unwrap() < -3.5, "{shift}");
        }
        let changes = table("s1_changes");
        let change = &changes["rows"][shift["change"].as_u64().unwrap() as usize - 1];
        assert!(
            change["measures"]
                .as_str()
                .unwrap()
                .contains("local_worker_share"),
            "{change}"
        );
        assert_eq!(change["label"], "drift");
        let overview = &table("overview")["rows"][0];
        assert!(
            overview["changes_drift"].as_i64().unwrap() >= 1,
            "{overview}"
        );
        assert_eq!(
            overview["flags"].as_i64().unwrap(),
            table("s1_shifts")["rows"].as_array().unwrap().len() as i64
        );
    }
}
