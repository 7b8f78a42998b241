//! Loading the real reference data (`../shared/data`) on both backends, checked against
//! figures computed elsewhere: the publisher's checksums, the per-authority population
//! sums shipped beside the data, and spot checks from its README.

use dcrs_refdata::{LoadOptions, load};
use dcrs_testkit::each_backend;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let p = std::env::var_os("DCRS_REFDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(
        p.join("imd/imd2019_lsoa11_england.csv").is_file(),
        "the reference data is not at {}",
        p.display()
    );
    p
}

/// A directory holding the IMD, geography, census and code-list files (not the 1.77
/// million postcodes, which make a slow test); the Blackpool and Wokingham postcode
/// sample is loaded through the column-mapping option instead.
fn small_refdata() -> (tempfile::TempDir, LoadOptions) {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "imd/imd2019_lsoa11_england.csv",
        "imd/File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv",
        "imd/File_6_-_IoD2019_Population_Denominators.csv",
        "imd/imd2010_lsoa01_england.csv",
        "geography/lsoa01_lsoa11_lad11_lookup_ew.csv",
        "census/ethnic_group_2011_census_18_categories.csv",
        "census/census2011_ethnic_group_by_la_ew.csv",
        "nhs/nhs_ethnic_category_2001.csv",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(shared().join(rel), to).unwrap();
    }
    let options = LoadOptions {
        files: vec![(
            "postcodes".into(),
            shared().join("postcode/postcode_lsoa11_sample_blackpool_wokingham.csv"),
        )],
        actor: "test".into(),
        ..Default::default()
    };
    (dir, options)
}

/// SHA256SUMS as published beside the data: path → checksum.
fn published_checksums() -> HashMap<String, String> {
    std::fs::read_to_string(shared().join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(sum, path)| {
            (
                path.trim()
                    .trim_start_matches('*')
                    .trim_start_matches("./")
                    .to_string(),
                sum.to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn population_by_quintile_equals_the_published_sums_and_checksums_match() {
    each_backend!("refdata_population", |t| {
        let (dir, options) = small_refdata();
        let report = load(&t.db, dir.path(), &options)
            .await
            .expect("the load succeeds");
        assert_eq!(report.imd_year, 2019);

        // Each file's SHA-256 is the one published beside it.
        let sums = published_checksums();
        for f in &report.files {
            if let Some(expected) = sums.get(&f.file) {
                assert_eq!(&f.sha256, expected, "{}", f.file);
            }
        }
        assert!(
            report
                .files
                .iter()
                .filter(|f| sums.contains_key(&f.file))
                .count()
                >= 8
        );

        // Population of each local authority by national quintile, from the loaded
        // LSOAs, against the shipped per-authority sums.
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT lad19cd, (imd2019_decile + 1) / 2, CAST(SUM(pop_mid2015) AS BIGINT) FROM ref_lsoa11 GROUP BY lad19cd, (imd2019_decile + 1) / 2",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        let mut loaded: HashMap<(String, i64), i64> = HashMap::new();
        for (lad, q, pop) in rows {
            loaded.insert((lad, q), pop);
        }
        let text = std::fs::read_to_string(
            shared().join("imd/imd2019_lad19_quintile_population_england.csv"),
        )
        .unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let mut authorities = 0;
        let mut england = 0i64;
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            // Names with commas are quoted; codes and counts come first and last.
            let lad = cells[0].to_string();
            let from_end = |name: &str| cells[cells.len() - (header.len() - col(name))];
            for q in 1..=5 {
                let expected: i64 = from_end(&format!("pop_mid2015_q{q}")).parse().unwrap();
                let got = loaded.get(&(lad.clone(), q)).copied().unwrap_or(0);
                assert_eq!(got, expected, "{lad} quintile {q}");
                england += got;
            }
            authorities += 1;
        }
        assert_eq!(authorities, 317);
        assert_eq!(england, 54_728_204);

        // File 1's quirks (BOM, CRLF, "29,199") read to the same rank as the derived file.
        let (rank, decile): (i64, i64) = sqlx::query_as(
            "SELECT imd2019_rank, imd2019_decile FROM ref_lsoa11 WHERE lsoa11cd = 'E01000001'",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!((rank, decile), (29_199, 9));
    });
}

#[tokio::test]
async fn the_publishers_file_1_alone_loads_with_its_quirks() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("imd")).unwrap();
    let name = "imd/File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv";
    let bytes = std::fs::read(shared().join(name)).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF") && bytes.windows(2).any(|w| w == b"\r\n"),
        "the fixture keeps its quirks"
    );
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let report = load(&t.db, dir.path(), &LoadOptions::default())
        .await
        .unwrap();
    assert_eq!(report.files[0].rows, 32_844);
    let (rank, q): (i64, i64) = sqlx::query_as(
        "SELECT l.imd2019_rank, i.imd_quintile FROM ref_lsoa11 l JOIN ref_lsoa11_imd i ON i.lsoa11cd = l.lsoa11cd AND i.year = 2019 \
         WHERE l.lsoa11cd = 'E01021988'",
    )
    .fetch_one(t.db.pool())
    .await
    .unwrap();
    assert_eq!((rank, q), (1, 1), "Jaywick is the most deprived LSOA");
}

#[tokio::test]
async fn another_layout_needs_its_columns_named() {
    let t = dcrs_testkit::TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("onspd.csv");
    std::fs::write(
        &file,
        "pcd,lsoa11,dointr,doterm,usertype\nFY1 5DW,E01012736,198001,,0\n",
    )
    .unwrap();
    let mut options = LoadOptions {
        files: vec![("postcodes".into(), file.clone())],
        ..Default::default()
    };
    let err = load(&t.db, dir.path(), &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("there is no column \"pcds\"") && err.contains("--map postcodes.pcds=HEADER"),
        "{err}"
    );
    options.maps = vec![
        ("postcodes".into(), "pcds".into(), "pcd".into()),
        ("postcodes".into(), "lsoa11cd".into(), "lsoa11".into()),
    ];
    load(&t.db, dir.path(), &options).await.unwrap();
    let lsoa: String =
        sqlx::query_scalar("SELECT lsoa11cd FROM ref_postcodes WHERE pcds = 'FY1 5DW'")
            .fetch_one(t.db.pool())
            .await
            .unwrap();
    assert_eq!(lsoa, "E01012736");
}

#[test]
fn merged_2001_areas_take_the_decile_of_their_mean_rank() {
    // Ten 2001 LSOAs ranked 1..10; A and B (ranks 1 and 9) merged into X; C split into Y and Z.
    let rows: Vec<dcrs_refdata::LegacyRow> =
        (1..=10).map(|r| (format!("L{r}"), None, r, r)).collect();
    let lookup: Vec<dcrs_refdata::LookupRow> = vec![
        ("L1".into(), "X".into(), "M".into(), None),
        ("L9".into(), "X".into(), "M".into(), None),
        ("L3".into(), "Y".into(), "S".into(), None),
        ("L3".into(), "Z".into(), "S".into(), None),
    ];
    let out = dcrs_refdata::legacy_on_2011(&rows, &lookup);
    // X: mean rank 5 of 10 → decile 5; Y and Z keep L3's decile 3.
    assert_eq!(
        out,
        vec![
            ("X".into(), 5.0, 5),
            ("Y".into(), 3.0, 3),
            ("Z".into(), 3.0, 3)
        ]
    );
}

mod clients {
    use super::*;
    use chrono::NaiveDate;
    use dcrs_exchange::{ImportOptions, import_dir};

    const HEADER: &str = "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,\
postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n";

    fn import_options() -> ImportOptions {
        ImportOptions {
            dry_run: false,
            today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            rules: Default::default(),
            actor: "test".into(),
            only_new: false,
        }
    }

    fn client_files(dir: &Path, rows: &str) {
        std::fs::write(
            dir.join("organisations.csv"),
            "org_ref,name,kind,ods_code\nO1,Example PCT,pct,\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("services.csv"),
            "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\nS1,Example,O1,E06000009,2008-01-01,\n",
        )
        .unwrap();
        std::fs::write(dir.join("clients.csv"), format!("{HEADER}{rows}")).unwrap();
    }

    async fn areas(
        db: &dcrs_store::Database,
    ) -> Vec<(
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    )> {
        sqlx::query_as("SELECT client_ref, lsoa11cd, lad_cd, imd_decile, imd_quintile FROM clients ORDER BY client_ref")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    /// The 2010 decile of the 2001 LSOA behind a 2011 LSOA, read straight from the files.
    fn imd2010_decile_of(lsoa11: &str) -> i64 {
        let lookup =
            std::fs::read_to_string(shared().join("geography/lsoa01_lsoa11_lad11_lookup_ew.csv"))
                .unwrap();
        let parents: Vec<&str> = lookup
            .lines()
            .filter(|l| l.split(',').nth(2) == Some(lsoa11))
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(
            parents.len(),
            1,
            "the test LSOA was unchanged or split, not merged"
        );
        let imd = std::fs::read_to_string(shared().join("imd/imd2010_lsoa01_england.csv")).unwrap();
        let line = imd.lines().find(|l| l.starts_with(parents[0])).unwrap();
        line.rsplit(',').next().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn postcodes_give_areas_unknown_ones_warn_and_malformed_ones_are_rejected() {
        each_backend!("client_areas", |t| {
            let (refdir, options) = small_refdata();
            load(&t.db, refdir.path(), &options).await.unwrap();

            let dir = tempfile::tempdir().unwrap();
            client_files(
                dir.path(),
                "C1,S1,,,,1970-01-01,female,A,fy15dw,yes,,employed,no,yes,no\n\
                 C2,S1,,,,1970-01-01,female,A,,yes,,employed,no,yes,no\n\
                 C3,S1,,,,1970-01-01,female,A,FY9 9ZZ,yes,,employed,no,yes,no\n\
                 C4,S1,,,,1970-01-01,female,A,RG40 1AA,yes,,employed,no,yes,no\n",
            );
            let report = import_dir(&t.db, dir.path(), &import_options(), |_| {})
                .await
                .unwrap();
            assert!(report.committed, "{:?}", report.rejections);
            let warned: Vec<(&str, &str)> = report
                .warnings
                .iter()
                .map(|w| (w.record.as_deref().unwrap_or(""), w.field.as_str()))
                .collect();
            assert_eq!(warned, vec![("C3 in service S1", "postcode")]);
            let blackpool = Some("E06000009".to_string());
            assert_eq!(
                areas(&t.db).await,
                vec![
                    (
                        "C1".into(),
                        Some("E01012736".into()),
                        blackpool,
                        Some(1),
                        Some(1)
                    ),
                    ("C2".into(), None, None, None, None),
                    ("C3".into(), None, None, None, None),
                    (
                        "C4".into(),
                        Some("E01016696".into()),
                        Some("E06000041".into()),
                        Some(9),
                        Some(5)
                    ),
                ]
            );

            // A malformed postcode is rejected and nothing changes.
            let bad = tempfile::tempdir().unwrap();
            client_files(
                bad.path(),
                "C5,S1,,,,1970-01-01,female,A,FY1 5D,yes,,employed,no,yes,no\n",
            );
            let report = import_dir(&t.db, bad.path(), &import_options(), |_| {})
                .await
                .unwrap();
            assert_eq!(report.rejections.len(), 1);
            assert_eq!(report.rejections[0].field, "postcode");
            assert_eq!(areas(&t.db).await.len(), 4);

            // Choosing another index year recomputes every stored client.
            let options = LoadOptions {
                imd_year: Some(2010),
                ..options.clone()
            };
            load(&t.db, refdir.path(), &options).await.unwrap();
            let expected = imd2010_decile_of("E01012736");
            let c1 = areas(&t.db).await.remove(0);
            assert_eq!((c1.3, c1.4), (Some(expected), Some((expected + 1) / 2)));
        });
    }
}
