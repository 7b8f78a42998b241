//! Every report on a hand-built fixture: one service, eight clients, a small reference
//! dataset written here (four LSOAs, four postcodes, one census row), and figures for
//! 2010-11 Q1 worked out by hand in the comments beside each assertion. Run on SQLite and
//! PostgreSQL. Intervals were worked out with the Wilson and t formulas (z = 1.96,
//! t(0.975, 1) = 12.706) and are checked to 3 decimals.

use chrono::Utc;
use dcrs_exchange::import_dir;
use dcrs_refdata::load;
use dcrs_report::{Figure, Kind, Period, Policy, Report, Request, run};
use dcrs_testkit::each_backend;
use std::path::Path;

mod common;
use common::{import_options, reference_data};

/// The dataset, as import files.
fn dataset(dir: &Path) {
    let files: [(&str, &str); 11] = [
        (
            "organisations.csv",
            "org_ref,name,kind,ods_code\nO1,Fixture PCT,pct,\n",
        ),
        (
            "services.csv",
            "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\n\
             S1,Fixture Health Trainers,O1,E06000099,2008-01-01,\n",
        ),
        (
            "workers.csv",
            "worker_ref,service_ref,display_name,role,sex,age_band,lives_in_area_served,home_imd_quintile,qualification,started_on,left_on,fte\n\
             W1,S1,Trainer one,health_trainer,female,35-44,yes,1,level3_certificate,2009-01-01,,1.0\n\
             W2,S1,Trainer two,health_trainer,male,25-34,no,,in_training,2010-05-01,,0.5\n\
             W3,S1,Trainer three,health_trainer,male,45-54,yes,2,level2_award,2008-01-01,2010-03-31,1.0\n",
        ),
        (
            "clients.csv",
            "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n\
             C1,S1,Ann,Smith,9000000017,1980-05-01,female,A,FY9 1AA,yes,,employed,no,yes,yes\n\
             C2,S1,Bob,Jones,9000000025,1950-01-01,male,H,FY9 1AB,no,,employed,no,yes,yes\n\
             C3,S1,Cat,Brown,,1990-01-01,female,M,FY9 1AC,yes,,not_stated,no,yes,yes\n\
             C4,S1,,,,1940-06-01,female,Z,FY9 9ZZ,unknown,,employed,no,yes,yes\n\
             C5,S1,Dan,Green,,1975-01-01,male,A,FY9 1AD,yes,,employed,no,yes,yes\n\
             C6,S1,Eve,White,,1985-03-03,female,A,FY9 1AA,yes,,employed,no,yes,yes\n\
             C7,S1,Anna,Smith,,1980-05-01,female,A,FY9 1AA,yes,,employed,no,yes,yes\n\
             C8,S1,Fay,Black,,1960-02-02,female,B,FY9 1AC,yes,,retired,no,yes,yes\n",
        ),
        (
            "referrals.csv",
            "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n\
             R1,S1,C1,2010-04-01,self,,wants to lose weight\n\
             R2,S1,C2,2010-04-05,gp,,\n\
             R3,S1,C3,2010-05-01,friend_or_family,,\n\
             R4,S1,C4,2010-05-10,health_check,,\n\
             R5a,S1,C5,2009-06-01,self,,\n\
             R5b,S1,C5,2010-06-01,practice_nurse,,\n\
             R6,S1,C6,2010-06-20,self,,\n\
             R8,S1,C8,2010-01-01,self,,\n",
        ),
        (
            "episodes.csv",
            "episode_ref,service_ref,referral_ref,lead_worker_ref,kind,first_contact_on,primary_issue,closed_on,exit_reason\n\
             E1,S1,R1,W1,full,2010-04-10,weight,2010-06-25,completed\n\
             E2,S1,R2,W1,full,2010-04-15,alcohol,2010-06-28,disengaged\n\
             E3,S1,R3,W1,brief,2010-05-03,diet,2010-05-03,completed\n\
             E4,S1,R4,W1,full,2010-05-20,weight,,\n\
             E5a,S1,R5a,W1,full,2009-06-10,diet,2009-09-01,disengaged\n\
             E5b,S1,R5b,W1,full,2010-06-05,physical_activity,,\n\
             E8,S1,R8,W1,full,2010-01-05,diet,,\n",
        ),
        (
            "assessments.csv",
            "assessment_ref,service_ref,episode_ref,occasion,assessed_on,height_cm,weight_kg,waist_cm,fruit_veg_portions_per_day,high_fat_snacks_per_day,active_days_per_week,alcohol_units_per_week,smoking_status,cigarettes_per_day,self_efficacy,general_health,swemwbs_raw\n\
             A1b,S1,E1,baseline,2010-04-10,160,81,,2,3,1,10,current,10,4,50,20\n\
             A1e,S1,E1,exit,2010-06-25,,76,,4,2,3,8,ex,,6,60,24\n\
             A2b,S1,E2,baseline,2010-04-15,180,100,,1,4,0,30,never,,3,40,18\n\
             A2e,S1,E2,exit,2010-06-28,,99,,1,4,2,20,never,,3,45,17\n\
             A4b,S1,E4,baseline,2010-05-20,165,90,,3,,,,,,,,\n",
        ),
        (
            "plans.csv",
            "plan_ref,service_ref,episode_ref,agreed_on\nP1,S1,E1,2010-04-20\nP2,S1,E2,2010-04-30\n",
        ),
        (
            "goals.csv",
            "goal_ref,service_ref,plan_ref,domain,description,target_on,status,status_on\n\
             G1a,S1,P1,diet,Five a day,2010-06-30,fully_achieved,2010-06-20\n\
             G1b,S1,P1,physical_activity,Walk daily,2010-06-30,partly_achieved,2010-06-20\n\
             G2a,S1,P2,alcohol,Two dry days,,not_achieved,2010-06-28\n\
             G2b,S1,P2,weight,Lose 5 kg,,abandoned,2010-06-01\n\
             G2c,S1,P2,diet,Cook at home,,open,\n",
        ),
        (
            "sessions.csv",
            "session_ref,service_ref,episode_ref,worker_ref,held_on,duration_min,mode,venue,purpose,attended\n\
             S1a,S1,E1,W1,2010-04-10,60,face_to_face,community_venue,assessment,yes\n\
             S1b,S1,E1,W1,2010-04-20,45,face_to_face,community_venue,plan_setting,yes\n\
             S1c,S1,E1,W1,2010-05-10,45,face_to_face,community_venue,support,did_not_attend\n\
             S1d,S1,E1,W1,2010-05-20,30,telephone,remote,review,yes\n\
             S1e,S1,E1,W1,2010-06-25,45,face_to_face,community_venue,review,yes\n\
             S2a,S1,E2,W1,2010-04-15,60,face_to_face,gp_practice,assessment,yes\n\
             S2b,S1,E2,W1,2010-05-01,45,face_to_face,gp_practice,support,cancelled\n\
             S2c,S1,E2,W1,2010-05-15,45,face_to_face,gp_practice,support,yes\n\
             S3a,S1,E3,W1,2010-05-03,20,face_to_face,pharmacy,brief_intervention,yes\n\
             S4a,S1,E4,W1,2010-05-20,60,face_to_face,community_venue,assessment,yes\n\
             S5a,S1,E5a,W1,2009-06-10,60,face_to_face,community_venue,assessment,yes\n\
             S5b,S1,E5b,W1,2010-06-05,60,face_to_face,community_venue,assessment,yes\n\
             S5c,S1,E5b,W1,2010-06-15,45,face_to_face,community_venue,support,did_not_attend\n\
             S8a,S1,E8,W1,2010-01-05,60,face_to_face,community_venue,assessment,yes\n",
        ),
        (
            "onward_referrals.csv",
            "onward_ref,service_ref,episode_ref,made_on,action,destination,outcome\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

async fn fixture(db: &dcrs_store::Database) {
    let refdir = tempfile::tempdir().unwrap();
    let options = reference_data(refdir.path());
    load(db, refdir.path(), &options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let report = import_dir(db, dir.path(), &import_options(), |_| {})
        .await
        .unwrap();
    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
}

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
