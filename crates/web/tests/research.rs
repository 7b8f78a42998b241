//! Research extracts on the web, on both backends: an admin registers a project (its
//! secret goes to the secrets folder, not the database) and reads the release register;
//! an analyst releases a zip of the services they may see; a release below k = 5 is
//! refused with the reason on the page and nothing is registered.

use dcrs_domain::Entity;
use dcrs_testkit::each_backend;
use dcrs_web::Settings;

mod common;
use common::{Browser, PASSWORD, app};

async fn releases(db: &dcrs_store::Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM extract_releases")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            (f.name().unwrap().to_string(), out)
        })
        .collect()
}

async fn add_clients(db: &dcrs_store::Database, from: usize, to: usize) {
    let mut clients = String::from(
        "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp\n",
    );
    let mut referrals = String::from(
        "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason\n",
    );
    for i in from..to {
        clients.push_str(&format!(
            "K{i},S1,Kim,Keyes{i},,1980-0{}-01,female,A,,yes,,employed,no,yes,yes\n",
            1 + i % 9
        ));
        referrals.push_str(&format!("RK{i},S1,K{i},2011-01-0{},self,,\n", 1 + i % 9));
    }
    let options = dcrs_exchange::ImportOptions {
        dry_run: false,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        rules: Default::default(),
        actor: "test".into(),
        only_new: false,
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(Entity::Client.file_name()), clients).unwrap();
    std::fs::write(dir.path().join(Entity::Referral.file_name()), referrals).unwrap();
    let added = dcrs_exchange::import_dir(db, dir.path(), &options, |_| {})
        .await
        .unwrap();
    assert!(added.committed, "{:?}", added.rejections);
}

#[tokio::test]
async fn an_admin_registers_a_project_and_an_analyst_releases_an_extract() {
    each_backend!("web_research", |t| {
        let secrets = tempfile::tempdir().unwrap();
        let settings = Settings {
            secrets_dir: secrets.path().to_path_buf(),
            ..Default::default()
        };
        let app = app(&t.db, settings).await;
        let mut admin = Browser::new(&app);
        admin.sign_in("admin", PASSWORD).await;
        let csrf = admin.get("/admin/projects").await.csrf();
        let bad = admin
            .post(
                "/admin/projects",
                &[
                    ("csrf", &csrf),
                    ("name", "no spaces please"),
                    ("purpose", "short"),
                    ("approver", ""),
                    ("ends_on", "2001-01-01"),
                ],
            )
            .await;
        for field in ["name", "purpose", "approver", "ends_on"] {
            assert!(
                bad.body.contains(&format!("id=\"{field}-error\"")),
                "{field} is named"
            );
        }
        let ok = admin
            .post(
                "/admin/projects",
                &[
                    ("csrf", &csrf),
                    ("name", "eval-2027"),
                    ("purpose", "Evaluation of the service's outcomes"),
                    ("approver", "REC 27/NW/0001"),
                    ("ends_on", "2099-12-31"),
                ],
            )
            .await;
        assert!(
            ok.body.contains("Project eval-2027 registered"),
            "{}",
            ok.body
        );
        assert!(
            secrets.path().join("research-eval-2027.key").is_file(),
            "the secret is in the secrets folder"
        );

        // Too few clients in S1 for k = 5: refused, with the reason, nothing registered.
        add_clients(&t.db, 0, 3).await;
        let mut analyst = Browser::new(&app);
        analyst.sign_in("analyst", PASSWORD).await;
        let page = analyst.get("/extracts").await;
        assert!(page.body.contains("eval-2027"));
        let csrf = page.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("project", "eval-2027"),
            ("format", "csv"),
            ("dates", "shift"),
            ("services", ""),
        ];
        let refused = analyst.post("/extracts", &form).await;
        assert_eq!(refused.status, 200);
        assert!(refused.body.contains("refused"), "{}", refused.body);
        assert_eq!(releases(&t.db).await, 0);
        // Another service than theirs is refused too.
        let mut other = form;
        other[4] = ("services", "S2");
        assert!(
            analyst
                .post("/extracts", &other)
                .await
                .body
                .contains("S2 is not one of your services")
        );

        // With seven more clients alike, the release is made and downloaded as a zip.
        add_clients(&t.db, 3, 10).await;
        let mut parquet = form;
        parquet[2] = ("format", "parquet");
        let zip = analyst.post("/extracts", &parquet).await;
        assert_eq!(zip.status, 200, "{}", zip.body);
        assert_eq!(zip.headers["content-type"], "application/zip");
        let files = unzip(&zip.bytes);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "clients.parquet",
                "episodes.parquet",
                "assessments.parquet",
                "goals.parquet",
                "README.txt"
            ]
        );
        assert_eq!(releases(&t.db).await, 1);
        let csv = analyst.post("/extracts", &form).await;
        assert_eq!(csv.status, 200);
        let files = unzip(&csv.bytes);
        let clients = String::from_utf8(files[0].1.clone()).unwrap();
        assert_eq!(
            clients.lines().count(),
            11,
            "a header and ten clients: {clients}"
        );
        assert!(
            clients
                .starts_with("pseudonym,service_ref,age_band,sex,ethnic_group,area,imd_quintile")
        );
        for (name, bytes) in &files {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("Keyes") && !text.contains("1980-0"),
                "{name} names a client"
            );
        }
        assert_eq!(releases(&t.db).await, 2);

        // The admin reads the register: who, which project, files with rows and checksums.
        let register = admin.get("/admin/releases").await;
        assert!(register.body.contains("eval-2027") && register.body.contains("analyst"));
        assert!(register.body.contains("clients.parquet") && register.body.contains("clients.csv"));
        assert!(register.body.contains("SHA-256"));
    });
}
