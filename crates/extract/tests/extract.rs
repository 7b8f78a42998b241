//! Research extracts of a generated service, on both backends: the Parquet files read
//! back (pyarrow) to the CSV's rows; pseudonyms are shared by two releases of a project
//! and by no two projects; nothing that names anyone reaches any file; every group on
//! the quasi-identifiers has at least five clients (counted here, independently); dates
//! are shifted but intervals within a client are the true ones; a release that cannot
//! reach k = 5 is refused; every release is in the register with its checksums.

use chrono::NaiveDate;
use dcrs_domain::Entity;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_extract::{Dates, ExtractError, Format, NewProject, Request};
use dcrs_refdata::{LoadOptions, load};
use dcrs_testkit::each_backend;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

const TEST: &str = "research_extracts";

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

fn options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: today(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    }
}

fn csv_rows(bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(bytes);
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn file<'a>(r: &'a dcrs_extract::Release, name: &str) -> &'a [u8] {
    &r.files.iter().find(|f| f.name == name).unwrap().bytes
}

fn request(project: &str, format: Format, services: Option<Vec<String>>) -> Request {
    Request {
        project: project.into(),
        format,
        dates: Dates::Shift,
        services,
        actor: "analyst".into(),
        today: today(),
    }
}

fn project(name: &str) -> NewProject {
    NewProject {
        name: name.into(),
        purpose: "Evaluation of outcomes by deprivation".into(),
        approver: "Research ethics committee 26/NW/0001".into(),
        ends_on: "2027-12-31".into(),
    }
}

#[tokio::test]
async fn extracts_are_pseudonymous_k_anonymous_stable_within_a_project_and_registered() {
    let data = tempfile::tempdir().unwrap();
    dcrs_synth::generate(
        &shared(),
        data.path(),
        &dcrs_synth::Options {
            seed: 7,
            scale: Some(dcrs_synth::Scale {
                services: 1,
                clients: 400,
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
        std::fs::copy(shared().join(rel), to).unwrap();
    }
    let python = dcrs_testkit::python_module(TEST, "pyarrow");
    each_backend!("extract_releases", |t| {
        let db = &t.db;
        let load_options = LoadOptions {
            files: vec![(
                "postcodes".into(),
                shared().join("postcode/postcode_lsoa11_sample_blackpool_wokingham.csv"),
            )],
            actor: "test".into(),
            ..Default::default()
        };
        load(db, refdir.path(), &load_options).await.unwrap();
        let imported = import_dir(db, data.path(), &options(), |_| {})
            .await
            .unwrap();
        assert!(imported.rejections.is_empty());
        let secrets = tempfile::tempdir().unwrap();
        for name in ["alpha", "beta"] {
            dcrs_extract::register(db, secrets.path(), &project(name), "admin", today())
                .await
                .unwrap();
        }
        assert!(matches!(
            dcrs_extract::register(db, secrets.path(), &project("alpha"), "admin", today()).await,
            Err(ExtractError::ProjectExists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dcrs_extract::secret_path(secrets.path(), "alpha"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret is readable by its owner only");
        }
        let secret_in_db: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM research_projects WHERE secret_sha256 = $1")
                .bind(
                    std::fs::read_to_string(dcrs_extract::secret_path(secrets.path(), "alpha"))
                        .unwrap()
                        .trim()
                        .to_string(),
                )
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(secret_in_db, 0, "the secret itself is not in the database");

        let a1 = dcrs_extract::release(db, secrets.path(), &request("alpha", Format::Csv, None))
            .await
            .unwrap();
        let a2 =
            dcrs_extract::release(db, secrets.path(), &request("alpha", Format::Parquet, None))
                .await
                .unwrap();
        let a3 = dcrs_extract::release(db, secrets.path(), &request("alpha", Format::Csv, None))
            .await
            .unwrap();
        let b1 = dcrs_extract::release(db, secrets.path(), &request("beta", Format::Csv, None))
            .await
            .unwrap();

        // Pseudonyms: the same within a project, unrelated across projects.
        let pseudonyms = |r: &dcrs_extract::Release| -> HashSet<String> {
            csv_rows(file(r, "clients.csv"))
                .into_iter()
                .map(|c| c["pseudonym"].clone())
                .collect()
        };
        let clients_with_referral: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT client_id) FROM referrals")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(
            (pseudonyms(&a1).len() + a1.withheld) as i64,
            clients_with_referral,
            "one row per client, but those withheld"
        );
        assert!(a1.withheld <= 20, "{} withheld", a1.withheld);
        assert_eq!(
            pseudonyms(&a1),
            pseudonyms(&a3),
            "two releases of a project share pseudonyms"
        );
        assert!(
            pseudonyms(&a1).is_disjoint(&pseudonyms(&b1)),
            "two projects share none"
        );
        assert_eq!(
            file(&a1, "episodes.csv"),
            file(&a3, "episodes.csv"),
            "and the same dates"
        );

        // A client whose processing is restricted leaves the next release.
        let (sid, client, _): (i64, String, i64) = sqlx::query_as(
            "SELECT c.service_id, c.client_ref, COUNT(*) FROM clients c \
             JOIN referrals r ON r.service_id = c.service_id AND r.client_id = c.client_id \
             JOIN episodes e ON e.service_id = r.service_id AND e.referral_id = r.referral_id \
             GROUP BY c.service_id, c.client_ref ORDER BY COUNT(*) DESC, c.client_ref LIMIT 1",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert!(
            db.set_restriction(sid, &client, true, "manager", "accuracy disputed")
                .await
                .unwrap()
        );
        let restricted =
            dcrs_extract::release(db, secrets.path(), &request("alpha", Format::Csv, None))
                .await
                .unwrap();
        assert_eq!(
            (pseudonyms(&restricted).len() + restricted.withheld) as i64,
            clients_with_referral - 1,
            "the restricted client is left out"
        );
        assert!(
            db.set_restriction(sid, &client, false, "manager", "checked")
                .await
                .unwrap()
        );

        // Nothing that names anyone, in any file of any release.
        type Names = (
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            String,
        );
        let sources: Vec<Names> = sqlx::query_as(
            "SELECT given_name, family_name, nhs_number, date_of_birth, postcode, client_ref FROM clients",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let mut forbidden: HashSet<String> = HashSet::new();
        for (g, f, nhs, dob, pc, r) in &sources {
            forbidden.extend(
                [g, f]
                    .into_iter()
                    .flatten()
                    .filter(|x| x.len() > 2)
                    .cloned(),
            );
            forbidden.extend(nhs.iter().cloned());
            forbidden.extend(pc.iter().cloned());
            forbidden.insert(dob.clone());
            forbidden.insert(r.clone());
        }
        let mut cells = 0;
        for r in [&a1, &a3, &b1] {
            for f in &r.files {
                for row in csv_rows(&f.bytes) {
                    for v in row.values() {
                        cells += 1;
                        assert!(!forbidden.contains(v), "{} holds {v:?}", f.name);
                    }
                }
            }
        }
        for f in &a2.files {
            let text = String::from_utf8_lossy(&f.bytes);
            for (_, _, nhs, dob, pc, _) in &sources {
                for x in [nhs.as_deref(), Some(dob.as_str()), pc.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    assert!(!text.contains(x), "{} holds {x}", f.name);
                }
            }
        }

        // k-anonymity, counted here from the file.
        let mut groups: HashMap<(String, String, String, String), i64> = HashMap::new();
        for c in csv_rows(file(&a1, "clients.csv")) {
            *groups
                .entry((
                    c["age_band"].clone(),
                    c["sex"].clone(),
                    c["ethnic_group"].clone(),
                    c["area"].clone(),
                ))
                .or_default() += 1;
        }
        let smallest = *groups.values().min().unwrap();
        assert!(smallest >= 5, "a group of {smallest}");
        assert_eq!(smallest, a1.smallest_group);
        assert!(
            !a1.generalisation.is_empty(),
            "400 clients over many LSOAs need generalising"
        );

        // Dates: shifted, but each client's intervals are the true ones.
        let key_hex =
            std::fs::read_to_string(dcrs_extract::secret_path(secrets.path(), "alpha")).unwrap();
        let key: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&key_hex.trim()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let truth: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT c.client_ref, e.first_contact_on, r.received_on, s.service_ref FROM episodes e \
             JOIN referrals r ON r.service_id = e.service_id AND r.referral_id = e.referral_id \
             JOIN clients c ON c.service_id = r.service_id AND c.client_id = r.client_id \
             JOIN services s ON s.service_id = e.service_id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let mut true_intervals: HashMap<String, Vec<i64>> = HashMap::new();
        let mut true_contacts: HashMap<String, Vec<String>> = HashMap::new();
        for (client, contact, received, service) in &truth {
            let p = dcrs_extract::pseudonym(&key, service, client);
            let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            true_intervals
                .entry(p.clone())
                .or_default()
                .push((d(contact) - d(received)).num_days());
            true_contacts.entry(p).or_default().push(contact.clone());
        }
        let mut shifted = 0;
        let episodes = csv_rows(file(&a1, "episodes.csv"));
        let released = pseudonyms(&a1);
        let expected = truth
            .iter()
            .filter(|(c, _, _, s)| released.contains(&dcrs_extract::pseudonym(&key, s, c)))
            .count();
        assert_eq!(
            episodes.len(),
            expected,
            "every episode of the clients released"
        );
        for e in &episodes {
            let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
            let interval = (d(&e["first_contact_date"]) - d(&e["referral_date"])).num_days();
            assert!(
                true_intervals[&e["pseudonym"]].contains(&interval),
                "interval kept"
            );
            if !true_contacts[&e["pseudonym"]].contains(&e["first_contact_date"]) {
                shifted += 1;
            }
        }
        assert_eq!(shifted, episodes.len(), "every date is shifted");

        // Parquet reads back to the CSV's rows.
        if python {
            let dir = tempfile::tempdir().unwrap();
            for r in [&a1, &a2] {
                for f in &r.files {
                    std::fs::write(dir.path().join(&f.name), &f.bytes).unwrap();
                }
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parquet_matches_csv.py");
            let run = std::process::Command::new("python3")
                .arg(script)
                .arg(dir.path())
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&run.stdout);
            assert!(
                run.status.success(),
                "{out}{}",
                String::from_utf8_lossy(&run.stderr)
            );
            let _ = writeln!(std::io::stderr(), "{TEST}: {}", out.trim());
        }

        // The register holds every release with its files' rows and checksums.
        let register = dcrs_extract::register_entries(db).await.unwrap();
        assert_eq!(
            register.len(),
            5,
            "four releases, and the one after a restriction"
        );
        let entry = register
            .iter()
            .find(|e| e.release_id == a2.release_id)
            .unwrap();
        assert_eq!(entry.project, "alpha");
        assert_eq!(entry.released_by, "analyst");
        for f in &a2.files {
            let listed = entry
                .files
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == f.name.as_str())
                .unwrap();
            assert_eq!(listed["rows"].as_u64(), Some(f.rows as u64));
            let sha: String = {
                use sha2::Digest;
                sha2::Sha256::digest(&f.bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            };
            assert_eq!(listed["sha256"], sha.as_str());
        }
        let audited: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'extract.release'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(audited, 5);

        // A service too small for k = 5 even fully generalised: refused, nothing registered.
        let tiny = [
            (Entity::Organisation, "org_ref,name,kind,ods_code\nOT,Tiny PCT,pct,\n".to_string()),
            (
                Entity::Service,
                "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on\nTINY,Tiny,OT,E06000009,2010-01-01,\n".to_string(),
            ),
            (
                Entity::Client,
                "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n\
                 T1,TINY,,,,1980-01-01,female,A,,yes,,employed,no,yes,yes\n\
                 T2,TINY,,,,1981-01-01,female,A,,yes,,employed,no,yes,yes\n\
                 T3,TINY,,,,1982-01-01,male,A,,yes,,employed,no,yes,yes\n".to_string(),
            ),
            (
                Entity::Referral,
                "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n\
                 R1,TINY,T1,2011-01-01,self,,\nR2,TINY,T2,2011-01-01,self,,\nR3,TINY,T3,2011-01-01,self,,\n".to_string(),
            ),
        ];
        let tiny_dir = tempfile::tempdir().unwrap();
        for (entity, text) in &tiny {
            std::fs::write(tiny_dir.path().join(entity.file_name()), text).unwrap();
        }
        let added = import_dir(db, tiny_dir.path(), &options(), |_| {})
            .await
            .unwrap();
        assert!(added.committed, "{:?}", added.rejections);
        let refused = dcrs_extract::release(
            db,
            secrets.path(),
            &request("alpha", Format::Csv, Some(vec!["TINY".into()])),
        )
        .await;
        assert!(
            matches!(refused, Err(ExtractError::BelowK { records: 3, .. })),
            "{refused:?}"
        );
        assert_eq!(dcrs_extract::register_entries(db).await.unwrap().len(), 5);

        // A missing or replaced secret, and a project past its end, are refused.
        std::fs::write(
            dcrs_extract::secret_path(secrets.path(), "beta"),
            "00".repeat(32),
        )
        .unwrap();
        assert!(matches!(
            dcrs_extract::release(db, secrets.path(), &request("beta", Format::Csv, None)).await,
            Err(ExtractError::Secret { .. })
        ));
        let mut late = request("alpha", Format::Csv, None);
        late.today = NaiveDate::from_ymd_opt(2028, 1, 1).unwrap();
        assert!(matches!(
            dcrs_extract::release(db, secrets.path(), &late).await,
            Err(ExtractError::Ended(..))
        ));

        // A release whose audit entry cannot be stored is not registered or handed out
        // (the database refuses the entry here, as a locked or failing log would).
        let refuse: &[&str] = match db.backend() {
            dcrs_store::Backend::Sqlite => {
                &["CREATE TRIGGER refuse_release BEFORE INSERT ON audit_log \
                 WHEN NEW.action = 'extract.release' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
            }
            dcrs_store::Backend::Postgres => &[
                "CREATE FUNCTION refuse_release() RETURNS trigger AS $$ BEGIN \
                 IF NEW.action = 'extract.release' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_release BEFORE INSERT ON audit_log FOR EACH ROW \
                 EXECUTE FUNCTION refuse_release()",
            ],
        };
        for sql in refuse {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(db.pool())
                .await
                .unwrap();
        }
        assert!(
            dcrs_extract::release(db, secrets.path(), &request("alpha", Format::Csv, None))
                .await
                .is_err()
        );
        assert_eq!(dcrs_extract::register_entries(db).await.unwrap().len(), 5);

        let _ = writeln!(
            std::io::stderr(),
            "{TEST}: {} clients, {} episodes; {cells} cells checked; smallest group {smallest} after: {}",
            pseudonyms(&a1).len(),
            episodes.len(),
            a1.generalisation.join("; ")
        );
    });
}
