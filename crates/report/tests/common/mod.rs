//! What the report tests share: a small reference dataset written into a directory.

#![allow(dead_code)]

use chrono::NaiveDate;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_refdata::{LoadOptions, load};
use std::path::{Path, PathBuf};

/// Import options for tests: today is fixed.
pub fn import_options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    }
}

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Four LSOAs of a made-up district E06000099: two in quintile 1 (populations 1,000 and
/// 500), one in quintile 3 (1,500), one in quintile 5 (2,000); four postcodes, one per
/// LSOA; and 2011 Census counts for the district: White 4,000, Mixed 100, Asian 500
/// (Chinese 60 counted as Other instead), Black 300, Other 100.
pub fn reference_data(dir: &Path) -> LoadOptions {
    std::fs::create_dir_all(dir.join("imd")).unwrap();
    std::fs::create_dir_all(dir.join("census")).unwrap();
    std::fs::create_dir_all(dir.join("nhs")).unwrap();
    let mut imd = String::from(
        "lsoa11cd,lsoa11nm,lad19cd,lad19nm,imd_score,imd_rank,imd_decile,imd_quintile,pop_mid2015,\
         pop_0_15_mid2015,pop_16_59_mid2015,pop_60_plus_mid2015,pop_working_age_mid2015,pop_mid2019\n",
    );
    for (code, rank, decile, quintile, pop) in [
        ("E01900001", 100, 1, 1, 1000),
        ("E01900002", 5000, 2, 1, 500),
        ("E01900003", 15000, 5, 3, 1500),
        ("E01900004", 32000, 10, 5, 2000),
    ] {
        imd.push_str(&format!(
            "{code},Fixture {code},E06000099,Fixture,10.0,{rank},{decile},{quintile},{pop},0,0,0,0,{pop}\n"
        ));
    }
    std::fs::write(dir.join("imd/imd2019_lsoa11_england.csv"), imd).unwrap();
    let postcodes = dir.join("postcodes.csv");
    std::fs::write(
        &postcodes,
        "pcds,dointr,doterm,usertype,oa11cd,lsoa11cd,msoa11cd,ladcd,ladnm\n\
         FY9 1AA,198001,,0,E00000001,E01900001,E02000001,E06000099,Fixture\n\
         FY9 1AB,198001,,0,E00000002,E01900002,E02000001,E06000099,Fixture\n\
         FY9 1AC,198001,,0,E00000003,E01900003,E02000001,E06000099,Fixture\n\
         FY9 1AD,198001,,0,E00000004,E01900004,E02000001,E06000099,Fixture\n",
    )
    .unwrap();
    for rel in [
        "census/ethnic_group_2011_census_18_categories.csv",
        "nhs/nhs_ethnic_category_2001.csv",
    ] {
        std::fs::copy(shared().join(rel), dir.join(rel)).unwrap();
    }
    // The census file's own header; one row for the fixture district, each category's
    // column filled by its order in the category list.
    let census =
        std::fs::read_to_string(shared().join("census/census2011_ethnic_group_by_la_ew.csv"))
            .unwrap();
    let header = census.lines().next().unwrap();
    let categories =
        std::fs::read_to_string(shared().join("census/ethnic_group_2011_census_18_categories.csv"))
            .unwrap();
    let by_order: [i64; 18] = [
        3000, 500, 100, 400, // White: A, B, C, C
        25, 25, 25, 25, // Mixed: D, E, F, G
        200, 150, 50, 60,
        100, // Indian H, Pakistani J, Bangladeshi K, Chinese R, Other Asian L
        150, 100, 50, // Black: N, M, P
        20, 20, // Arab S, any other S
    ];
    let nomis: Vec<(String, i64)> = categories
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let order: usize = f[0].parse().unwrap();
            (f[4].to_string(), by_order[order - 1])
        })
        .collect();
    let mut reader = csv::Reader::from_reader(header.as_bytes());
    let cols: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let row: Vec<String> = cols
        .iter()
        .map(|c| match c.as_str() {
            "date" => "2011".into(),
            "geography" => "Fixture".into(),
            "geography code" => "E06000099".into(),
            "Rural Urban" => "Total".into(),
            other => nomis
                .iter()
                .find(|(n, _)| n == other)
                .map(|(_, v)| v.to_string())
                .unwrap_or_else(|| {
                    if other.contains("All categories") {
                        "5060".into()
                    } else {
                        "0".into()
                    }
                }),
        })
        .collect();
    let mut w =
        csv::Writer::from_path(dir.join("census/census2011_ethnic_group_by_la_ew.csv")).unwrap();
    w.write_record(&cols).unwrap();
    w.write_record(&row).unwrap();
    w.flush().unwrap();
    LoadOptions {
        files: vec![("postcodes".into(), postcodes)],
        actor: "test".into(),
        ..Default::default()
    }
}

/// The hand-built fixture of `tests/fixture.rs` (one service, eight clients, 2010-11 Q1),
/// as import files.
pub fn dataset(dir: &Path) {
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

pub async fn fixture(db: &dcrs_store::Database) {
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

/// A small generated deployment in `db`: the national reference files that matter to
/// reports (IMD 2019, census ethnicity and its categories, the NHS categories), the
/// Blackpool and Wokingham postcode sample, and `services` services sharing `clients`
/// generated clients from `seed`.
pub async fn generated_deployment(
    db: &dcrs_store::Database,
    seed: u64,
    services: u32,
    clients: u64,
) {
    let shared = shared();
    let options = LoadOptions {
        files: vec![(
            "postcodes".into(),
            shared.join("postcode/postcode_lsoa11_sample_blackpool_wokingham.csv"),
        )],
        actor: "test".into(),
        ..Default::default()
    };
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
    load(db, refdir.path(), &options).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared,
        data.path(),
        &dcrs_synth::Options {
            seed,
            scale: Some(dcrs_synth::Scale { services, clients }),
        },
    )
    .unwrap();
    let imported = import_dir(db, data.path(), &import_options(), |_| {})
        .await
        .unwrap();
    assert!(imported.rejections.is_empty());
}
