//! What the report tests share: a small reference dataset written into a directory.

#![allow(dead_code)]

use chrono::NaiveDate;
use dcrs_exchange::ImportOptions;
use dcrs_refdata::LoadOptions;
use std::path::{Path, PathBuf};

/// Import options for tests: today is fixed.
pub fn import_options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
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
