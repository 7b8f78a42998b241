//! Every report on a hand-built fixture: one service, eight clients, a small reference
//! dataset written here (four LSOAs, four postcodes, one census row), and figures for
//! 2010-11 Q1 worked out by hand in the comments beside each assertion. Run on SQLite and
//! PostgreSQL. Intervals were worked out with the Wilson and t formulas (z = 1.96,
//! t(0.975, 1) = 12.706) and are checked to 3 decimals.

use chrono::Utc;
use dcrs_exchange::import_dir;
use dcrs_report::{Figure, Kind, Period, Policy, Report, Request, run};
use dcrs_testkit::each_backend;

mod common;
use common::{fixture, import_options};

async fn pack(db: &dcrs_store::Database, policy: Policy) -> Report {
    let req = Request {
        kind: Kind::Pack,
        services: Some(vec!["S1".into()]),
        each_service: false,
        period: Period::parse("2010-11Q1").unwrap(),
        policy,
        fresh: false,
    };
    run(db, &req, Utc::now()).await.unwrap().remove(0)
}

/// The figure in `table`, row `row`, column `column`, as a number.
fn num(r: &Report, table: &str, row: &str, column: &str) -> f64 {
    let t = r.table(table).unwrap_or_else(|| panic!("no table {table}"));
    match t.get(row, column) {
        Some(f) => f
            .as_f64()
            .unwrap_or_else(|| panic!("{table}/{row}/{column} is {f:?}")),
        None => panic!("{table} has no row {row:?} or column {column:?}"),
    }
}

fn fig(r: &Report, table: &str, row: &str, column: &str) -> Figure {
    r.table(table)
        .unwrap()
        .get(row, column)
        .unwrap_or_else(|| panic!("{table}/{row}/{column}"))
        .clone()
}

#[track_caller]
fn near(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 0.0005,
        "expected {expected}, got {actual}"
    );
}

#[tokio::test]
async fn every_report_on_the_hand_built_fixture() {
    each_backend!("report_fixture", |t| {
        fixture(&t.db).await;
        let r = pack(&t.db, Policy::NONE).await;
        assert_eq!(r.policy.name, "none");
        assert!(r.policy.statement.contains("No disclosure control"));
        assert!(!r.synthetic);
        assert!(r.reference_data.iter().any(|f| f.file.contains("imd2019")));

        // Activity. Referrals in Q1: R1 self, R2 gp, R3 friend_or_family, R4
        // health_check, R5b practice_nurse, R6 self.
        let a = "activity_summary";
        assert_eq!(num(&r, a, "Referrals received", "value"), 6.0);
        assert_eq!(
            num(&r, "referrals_by_source", "self (community)", "count"),
            2.0
        );
        assert_eq!(num(&r, "referrals_by_group", "community", "count"), 3.0);
        assert_eq!(num(&r, "referrals_by_group", "clinical", "count"), 3.0);
        assert_eq!(
            num(&r, "referrals_by_group", "criminal_justice", "count"),
            0.0
        );
        // New clients: C1-C4 (C5 was first seen in 2009; C6 never seen; C8 in January).
        assert_eq!(num(&r, a, "New clients", "value"), 4.0);
        // Opened: E1, E2, E4, E5b full; E3 brief.
        assert_eq!(num(&r, a, "Episodes opened", "value"), 5.0);
        assert_eq!(num(&r, a, "Episodes opened: full", "value"), 4.0);
        assert_eq!(num(&r, a, "Episodes opened: brief", "value"), 1.0);
        // Open on 30 June: E4, E5b, E8.
        assert_eq!(num(&r, a, "Open caseload at period end", "value"), 3.0);
        // Sessions in Q1: attended S1a S1b S1d S1e S2a S2c S3a S4a S5b = 9; did not
        // attend S1c S5c = 2; cancelled S2b = 1.
        assert_eq!(num(&r, a, "Sessions attended", "value"), 9.0);
        assert_eq!(num(&r, a, "Sessions not attended", "value"), 2.0);
        assert_eq!(num(&r, a, "Sessions cancelled", "value"), 1.0);
        // DNA rate 2 / 11 = 0.1818, Wilson 0.0514 to 0.4770.
        near(num(&r, a, "Did-not-attend rate", "value"), 0.1818);
        near(num(&r, a, "Did-not-attend rate", "low"), 0.0514);
        near(num(&r, a, "Did-not-attend rate", "high"), 0.4770);
        assert_eq!(num(&r, a, "Plans agreed", "value"), 2.0);
        assert_eq!(
            num(&r, a, "Goals set (on plans agreed in the period)", "value"),
            5.0
        );
        // Closed in Q1: E1 completed (full), E3 completed (brief), E2 disengaged (full).
        let c = "episodes_closed_by_exit_reason";
        assert_eq!(num(&r, c, "completed", "full"), 1.0);
        assert_eq!(num(&r, c, "completed", "brief"), 1.0);
        assert_eq!(num(&r, c, "disengaged", "full"), 1.0);
        assert_eq!(num(&r, c, "All closed", "all"), 3.0);
        // Attended sessions of closed full episodes: E1 4, E2 2: median 3.
        assert_eq!(
            num(
                &r,
                a,
                "Median attended sessions per closed full episode",
                "value"
            ),
            3.0
        );
        // Days from referral to first contact: 9, 10, 2, 10, 4: median 9.
        assert_eq!(
            num(
                &r,
                a,
                "Median days from referral to first contact (episodes opened)",
                "value"
            ),
            9.0
        );

        // Reach. New clients C1 (Q1), C2 (Q1), C3 (Q3), C4 (postcode unknown).
        let q = "reach_by_quintile";
        assert_eq!(num(&r, q, "Quintile 1 (most deprived)", "new_clients"), 2.0);
        assert_eq!(num(&r, q, "Quintile 3", "new_clients"), 1.0);
        assert_eq!(num(&r, q, "Quintile unknown", "new_clients"), 1.0);
        assert_eq!(num(&r, q, "Known quintile", "new_clients"), 3.0);
        near(
            num(&r, q, "Quintile 1 (most deprived)", "client_share"),
            0.6667,
        );
        // Population 5,000: Q1 1,500 (0.3), Q2 none, Q3 1,500 (0.3), Q5 2,000 (0.4).
        assert_eq!(
            num(&r, q, "Quintile 1 (most deprived)", "population"),
            1500.0
        );
        near(
            num(&r, q, "Quintile 5 (least deprived)", "population_share"),
            0.4,
        );
        // Reach ratios: Q1 (2/3)/0.3 = 2.2222; Q3 (1/3)/0.3 = 1.1111; Q5 0; Q2 n/a.
        near(
            num(&r, q, "Quintile 1 (most deprived)", "reach_ratio"),
            2.2222,
        );
        near(num(&r, q, "Quintile 3", "reach_ratio"), 1.1111);
        near(
            num(&r, q, "Quintile 5 (least deprived)", "reach_ratio"),
            0.0,
        );
        assert_eq!(
            fig(&r, q, "Quintile 2", "reach_ratio"),
            Figure::NotApplicable
        );
        // Headline: 2 of 3 from quintiles 1-2; Wilson 0.2077 to 0.9385.
        let h = "reach_headline";
        near(
            num(&r, h, "New clients from quintiles 1-2", "share"),
            0.6667,
        );
        near(
            num(&r, h, "New clients from quintiles 1-2", "share_low"),
            0.2077,
        );
        near(
            num(&r, h, "New clients from quintiles 1-2", "share_high"),
            0.9385,
        );
        // Ethnic group: White C1, Asian C2, Black C3, not stated C4. Census shares of the
        // 5,000 stated: White 0.8, Asian 0.1, Black 0.06, Other 0.02 (Chinese in Other).
        let e = "reach_by_ethnic_group";
        assert_eq!(num(&r, e, "White", "new_clients"), 1.0);
        assert_eq!(num(&r, e, "Not stated or not known", "new_clients"), 1.0);
        near(num(&r, e, "White", "population_share"), 0.8);
        near(num(&r, e, "Other", "population_share"), 0.02);
        near(num(&r, e, "White", "reach_ratio"), 0.4167);
        near(num(&r, e, "Black", "reach_ratio"), 5.5556);
        assert_eq!(num(&r, "new_clients_by_sex", "female", "count"), 3.0);
        assert_eq!(num(&r, "new_clients_by_sex", "male", "count"), 1.0);
        // Ages at first contact: C1 29, C2 60, C3 20, C4 69.
        let g = "new_clients_by_age_band";
        for (band, n) in [
            ("16-24", 1.0),
            ("25-34", 1.0),
            ("35-44", 0.0),
            ("55-64", 1.0),
            ("65+", 1.0),
        ] {
            assert_eq!(num(&r, g, band, "count"), n, "{band}");
        }
        let gp = "new_clients_by_gp_registration";
        assert_eq!(num(&r, gp, "GP registered: no", "count"), 1.0);
        near(num(&r, gp, "GP registered: no", "share"), 0.25);

        // Outcomes. Goals finalised in Q1: G1a fully, G1b partly (C1), G2a not, G2b
        // abandoned (C2), all in quintile 1. C1 is "partly", C2 "not".
        let go = "goal_attainment_by_goal";
        assert_eq!(num(&r, go, "Quintile 1 (most deprived)", "all"), 4.0);
        near(num(&r, go, "All quintiles", "share_fully"), 0.25);
        near(num(&r, go, "All quintiles", "share_fully_low"), 0.0456);
        near(num(&r, go, "All quintiles", "share_fully_high"), 0.6994);
        let gc = "goal_attainment_by_client";
        assert_eq!(num(&r, gc, "All quintiles", "fully"), 0.0);
        assert_eq!(num(&r, gc, "All quintiles", "partly"), 1.0);
        assert_eq!(num(&r, gc, "All quintiles", "not"), 1.0);
        // BMI (rounded to 0.1 when derived): E1 81/1.6² = 31.6 -> 76/1.6² = 29.7, E2
        // 30.9 -> 30.6. Differences -1.9 and -0.3: mean -1.1, SD 1.6/√2 = 1.1314, half
        // width 12.706 × 1.1314/√2 = 10.165, so -11.265 to 9.065; standardised effect
        // -1.1/1.1314 = -0.9723; both improved.
        let p = "paired_change";
        let bmi = "BMI (kg/m²)";
        assert_eq!(num(&r, p, bmi, "n"), 2.0);
        near(num(&r, p, bmi, "baseline_mean"), 31.25);
        near(num(&r, p, bmi, "exit_mean"), 30.15);
        near(num(&r, p, bmi, "mean_difference"), -1.1);
        near(num(&r, p, bmi, "difference_low"), -11.265);
        near(num(&r, p, bmi, "difference_high"), 9.065);
        near(num(&r, p, bmi, "standardised_effect"), -0.9723);
        assert_eq!(num(&r, p, bmi, "improved"), 2.0);
        // Active days 1 -> 3 and 0 -> 2: both up by 2, SD 0: no standardised effect.
        assert_eq!(num(&r, p, "Active days a week", "mean_difference"), 2.0);
        assert_eq!(
            fig(&r, p, "Active days a week", "standardised_effect"),
            Figure::NotApplicable
        );
        // SWEMWBS 20 -> 24 improved, 18 -> 17 did not.
        assert_eq!(num(&r, p, "SWEMWBS raw score (7-35)", "improved"), 1.0);
        // Snacks 3 -> 2 improved (lower is better), 4 -> 4 not.
        assert_eq!(num(&r, p, "High-fat snacks a day", "improved"), 1.0);
        // Smoking: E1 smoked at baseline, ex at exit.
        let smoke = "Smoking: not smoking at exit, of baseline smokers";
        assert_eq!(num(&r, p, smoke, "n"), 1.0);
        assert_eq!(num(&r, p, smoke, "share_improved"), 1.0);
        let oc = "outcome_data_completeness";
        assert_eq!(
            num(&r, oc, "Quintile 1 (most deprived)", "closed_full"),
            2.0
        );
        assert_eq!(
            num(&r, oc, "Quintile 1 (most deprived)", "with_outcome_data"),
            2.0
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);

        // Pathway, a funnel: cohort R1, R2, R4, R5b, R6 (R3's episode is brief). Seen 4,
        // baseline 3 (E1, E2, E4), plan 2 (E1, E2), then a review session 1 (E1; E2 had
        // none), closed 1 and exit 1 (E1 again: E2 closed but never reached a review).
        let s = "pathway_steps";
        let steps = [
            ("Referred", 5.0),
            ("Seen (episode opened)", 4.0),
            ("Baseline recorded", 3.0),
            ("Plan agreed", 2.0),
            ("At least one review session", 1.0),
            ("Closed", 1.0),
            ("Exit assessment recorded", 1.0),
        ];
        for (step, n) in steps {
            assert_eq!(num(&r, s, step, "referrals"), n, "{step}");
        }
        near(num(&r, s, "Plan agreed", "share_of_previous"), 2.0 / 3.0);
        // By quintile: Q1 holds R1, R2, R6; Q5 R5b; unknown R4.
        let pq = "pathway_by_quintile";
        assert_eq!(num(&r, pq, "Quintile 1 (most deprived)", "referred"), 3.0);
        assert_eq!(num(&r, pq, "Quintile 1 (most deprived)", "exit"), 1.0);
        assert_eq!(num(&r, pq, "Quintile 5 (least deprived)", "seen"), 1.0);
        assert_eq!(num(&r, pq, "Quintile unknown", "baseline"), 1.0);
        let pe = "pathway_by_ethnic_group";
        // White: R1 (C1), R5b (C5), R6 (C6); Asian R2; not stated R4.
        assert_eq!(num(&r, pe, "White", "referred"), 3.0);
        assert_eq!(num(&r, pe, "Asian", "plan"), 1.0);

        // Workforce: W1 and W2 active (W3 left on 31 March). FTE 1.5. Clients seen:
        // C1, C2, C3, C4, C5. Sessions attended 9.
        let w = "workforce_summary";
        assert_eq!(num(&r, w, "Workers active", "value"), 2.0);
        near(num(&r, w, "Full-time equivalent", "value"), 1.5);
        near(num(&r, w, "Share living in the area served", "value"), 0.5);
        near(num(&r, w, "Share living in the area served", "low"), 0.0945);
        near(
            num(&r, w, "Share whose home is in quintile 1 or 2", "value"),
            1.0,
        );
        assert_eq!(
            num(
                &r,
                w,
                "Clients seen (an attended session in the period)",
                "value"
            ),
            5.0
        );
        near(num(&r, w, "Clients seen per FTE", "value"), 5.0 / 1.5);
        near(num(&r, w, "Sessions attended per FTE", "value"), 6.0);
        assert_eq!(
            num(&r, "workforce_qualification", "in_training", "count"),
            1.0
        );

        // Data quality. Clients of the period: C1-C5. C4 has no names and an unknown
        // postcode; C1 and C7 share a date of birth and postcode with similar names.
        let f = "field_completeness";
        let field = |name: &str, col: &str| {
            let t = r.table(f).unwrap();
            let row = t
                .rows
                .iter()
                .find(|row| row[1] == Figure::Text(name.into()))
                .unwrap();
            let j = t.columns.iter().position(|c| c.id == col).unwrap();
            row[j].as_f64().unwrap()
        };
        assert_eq!(field("given_name", "records"), 5.0);
        assert_eq!(field("given_name", "recorded"), 4.0);
        assert_eq!(field("nhs_number", "recorded"), 2.0);
        assert_eq!(field("ethnicity", "recorded"), 4.0);
        assert_eq!(field("employment", "recorded"), 4.0);
        // Referrals of Q1: 6, one with a reason.
        assert_eq!(field("reason", "records"), 6.0);
        assert_eq!(field("reason", "recorded"), 1.0);
        // Assessments of Q1: 5; height on the three baselines.
        assert_eq!(field("height_cm", "recorded"), 3.0);
        assert_eq!(field("swemwbs_raw", "recorded"), 4.0);
        // Goals on Q1 plans: 5, two with a target date.
        assert_eq!(field("target_on", "recorded"), 2.0);
        let dq = "data_quality_checks";
        let check = |row: &str| num(&r, dq, row, "count");
        assert_eq!(
            check("Client postcodes not found in the reference data"),
            1.0
        );
        assert_eq!(check("Possible duplicate clients"), 2.0);
        assert_eq!(check("Assessments with a BMI outside 10-90"), 0.0);
        assert_eq!(
            check("Records entered through the application more than 30 days after the event"),
            0.0
        );
        // E8 was last seen on 5 January, more than 90 days before 30 June.
        assert_eq!(
            check("Open episodes with no session in the 90 days before the period's end"),
            1.0
        );

        // The same pack under the NHS rule: 9 attended sessions are shown as 10, the 2
        // missed ones as *, so the DNA rate resting on them is * too.
        let c = pack(&t.db, Policy::NHS_SUB_NATIONAL).await;
        assert_eq!(c.policy.name, "nhs_sub_national");
        assert_eq!(fig(&c, a, "Sessions attended", "value"), Figure::Int(10));
        assert_eq!(
            fig(&c, a, "Sessions not attended", "value"),
            Figure::Suppressed
        );
        assert_eq!(
            fig(&c, "referrals_by_group", "criminal_justice", "count"),
            Figure::Int(0)
        );
        assert_eq!(
            fig(&c, a, "Did-not-attend rate", "value"),
            Figure::Suppressed
        );
        assert_eq!(fig(&c, p, bmi, "mean_difference"), Figure::Suppressed);
        // Reference figures are not about people and stay.
        assert_eq!(
            num(&c, q, "Quintile 1 (most deprived)", "population"),
            1500.0
        );
    });
}

#[tokio::test]
async fn a_write_shows_in_the_next_report() {
    each_backend!("report_live", |t| {
        fixture(&t.db).await;
        let before = pack(&t.db, Policy::NONE).await;
        assert_eq!(before.counts.counted, 1, "{:?}", before.counts);
        // Asked again with nothing changed: the service's counts are reused, and every
        // figure is the same.
        let again = pack(&t.db, Policy::NONE).await;
        assert_eq!((again.counts.reused, again.counts.counted), (1, 0));
        let figures = |r: &Report| serde_json::to_string(&r.sections).unwrap();
        assert_eq!(figures(&again), figures(&before));
        // Kept counts that cannot be read as this program's (another version made them,
        // or they were damaged) are counted again, with the same figures.
        for table in ["report_facts", "report_quality"] {
            let damage =
                format!("UPDATE {table} SET facts = '{{\"format\":\"old\",\"counts\":{{}}}}'");
            sqlx::query(sqlx::AssertSqlSafe(damage))
                .execute(t.db.pool())
                .await
                .unwrap();
        }
        let recounted = pack(&t.db, Policy::NONE).await;
        assert_eq!((recounted.counts.reused, recounted.counts.counted), (0, 1));
        assert_eq!(figures(&recounted), figures(&before));
        // One more attended session for E4, through the importer's update path.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sessions.csv"),
            "session_ref,service_ref,episode_ref,worker_ref,held_on,duration_min,mode,venue,purpose,attended\n\
             S4b,S1,E4,W1,2010-06-10,30,telephone,remote,review,yes\n",
        )
        .unwrap();
        let report = import_dir(&t.db, dir.path(), &import_options(), |_| {})
            .await
            .unwrap();
        assert!(report.rejections.is_empty(), "{:?}", report.rejections);
        let after = pack(&t.db, Policy::NONE).await;
        // The write moved the service's version on: its counts are made afresh.
        assert_eq!((after.counts.reused, after.counts.counted), (0, 1));
        let a = "activity_summary";
        assert_eq!(num(&before, a, "Sessions attended", "value"), 9.0);
        assert_eq!(num(&after, a, "Sessions attended", "value"), 10.0);
        assert_eq!(
            num(&after, "workforce_summary", "Sessions attended", "value"),
            10.0
        );
    });
}

#[tokio::test]
async fn controlled_reports_need_whole_quarters_or_years() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let mut req = Request {
        kind: Kind::Activity,
        services: None,
        each_service: false,
        period: Period::parse("2010-04-01..2010-05-31").unwrap(),
        policy: Policy::NHS_SUB_NATIONAL,
        fresh: false,
    };
    let err = run(&t.db, &req, Utc::now()).await.unwrap_err().to_string();
    assert!(err.contains("not a whole quarter"), "{err}");
    req.policy = Policy::NONE;
    assert!(run(&t.db, &req, Utc::now()).await.is_ok());
    // A range that is exactly one quarter is that quarter.
    let p = Period::parse("2010-11Q2..2010-11Q2").unwrap();
    assert!(p.whole);
    assert_eq!(p.label, "2010-11 Q2");
    assert_eq!(Period::parse("2010-07-01..2010-09-30").unwrap(), p);
    let y = Period::parse("2010-11Q1..2010-11Q4").unwrap();
    assert!(y.whole);
    assert_eq!(y.label, "2010-11");
    assert!(Period::parse("2010-11Q5").is_err());
    req.services = Some(vec!["NOPE".into()]);
    let err = run(&t.db, &req, Utc::now()).await.unwrap_err().to_string();
    assert!(err.contains("NOPE"), "{err}");
}
