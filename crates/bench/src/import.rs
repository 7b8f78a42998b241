//! Import benchmark: a validated import of 1,000,000 session rows (with their parent
//! records) into SQLite and PostgreSQL, beside the databases' own raw loaders
//! (`sqlite3 .import` and PostgreSQL `COPY`) loading the same session CSV into an
//! indexed table, measured in the same run (the raw load before and after the system's,
//! their mean the baseline, as this machine's speed drifts by a third within minutes);
//! then postcode lookups.
//!
//! Run: `cargo run --release -p dcrs-bench --bin dcrs-bench-import [SESSIONS]
//! [--db NAME] [--raw-db NAME]` (needs the `sqlite3` and `psql` programs, and PostgreSQL
//! at DCRS_BENCH_POSTGRES or postgres://postgres@127.0.0.1:5432). The two PostgreSQL
//! databases (default `dcrs_bench` and `dcrs_bench_raw`) must not exist: the benchmark
//! creates them and drops them at the end, and refuses to touch a database it did not
//! create. Prints figures; asserts nothing.

mod common;

/// The allocator `dcrs import` runs with (crates/cli/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::{Duration, NaiveDate};
use common::peak_rss_mb;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_store::Database;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SESSIONS_PER_EPISODE: usize = 10;

/// A small deterministic generator (64-bit LCG), so every run imports the same data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn write_dataset(dir: &Path, sessions: usize) -> anyhow::Result<()> {
    let clients = sessions / SESSIONS_PER_EPISODE;
    let mut r = Lcg(42);
    let file = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut f = file("organisations.csv")?;
    writeln!(
        f,
        "org_ref,name,kind,ods_code\nO1,Benchmark PCT (synthetic),pct,"
    )?;
    let mut f = file("services.csv")?;
    writeln!(
        f,
        "service_ref,name,commissioner_org_ref,areas_served,started_on,ended_on"
    )?;
    writeln!(
        f,
        "S1,Benchmark service (synthetic),O1,E06000009,2006-04-01,"
    )?;
    let mut f = file("workers.csv")?;
    writeln!(
        f,
        "worker_ref,service_ref,display_name,role,sex,age_band,lives_in_area_served,home_imd_quintile,qualification,started_on,left_on,fte"
    )?;
    for w in 0..20 {
        writeln!(
            f,
            "W{w},S1,Worker {w},health_trainer,female,35-44,yes,1,level3_certificate,2006-04-01,,1"
        )?;
    }
    let (mut fc, mut fr, mut fe, mut fs) = (
        file("clients.csv")?,
        file("referrals.csv")?,
        file("episodes.csv")?,
        file("sessions.csv")?,
    );
    writeln!(
        fc,
        "client_ref,service_ref,given_name,family_name,nhs_number,date_of_birth,sex,ethnicity,postcode,gp_registered,gp_practice_code,employment,disability,consent_to_record,consent_to_share_with_gp"
    )?;
    writeln!(
        fr,
        "referral_ref,service_ref,client_ref,received_on,source,referrer_org_ref,reason"
    )?;
    writeln!(
        fe,
        "episode_ref,service_ref,referral_ref,lead_worker_ref,kind,first_contact_on,primary_issue,closed_on,exit_reason"
    )?;
    writeln!(
        fs,
        "session_ref,service_ref,episode_ref,worker_ref,held_on,duration_min,mode,venue,purpose,attended"
    )?;
    let base = NaiveDate::from_ymd_opt(2007, 1, 1).unwrap();
    let modes = ["face_to_face", "face_to_face", "telephone"];
    let venues = ["community_venue", "gp_practice", "client_home"];
    let purposes = ["support", "review", "support", "assessment"];
    let attended = ["yes", "yes", "yes", "did_not_attend", "cancelled"];
    for c in 0..clients {
        let dob = NaiveDate::from_ymd_opt(
            1940 + r.next(50) as i32,
            1 + r.next(12) as u32,
            1 + r.next(28) as u32,
        )
        .unwrap();
        writeln!(fc, "C{c:07},S1,,,,{dob},female,A,,yes,,employed,no,yes,no")?;
        let received = base + Duration::days(r.next(2500) as i64);
        writeln!(fr, "R{c:07},S1,C{c:07},{received},self,,")?;
        let first = received + Duration::days(r.next(20) as i64);
        let worker = r.next(20);
        writeln!(fe, "E{c:07},S1,R{c:07},W{worker},full,{first},diet,,")?;
        for s in 0..SESSIONS_PER_EPISODE {
            let held = first + Duration::days((s * 14) as i64);
            writeln!(
                fs,
                "S{c:07}{s:02},S1,E{c:07},W{worker},{held},{},{},{},{},{}",
                15 + r.next(60),
                modes[r.next(3) as usize],
                venues[r.next(3) as usize],
                purposes[r.next(4) as usize],
                attended[r.next(5) as usize]
            )?;
        }
    }
    Ok(())
}

fn options() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        today: dcrs_domain::types::uk_today(chrono::Utc::now()),
        rules: Default::default(),
        actor: "benchmark".into(),
        only_new: false,
    }
}

/// Imports the parents, then times the sessions file alone; returns (parents, sessions) seconds.
async fn dcrs_import(db: &Database, data: &Path) -> anyhow::Result<(f64, f64)> {
    let parents = tempfile::tempdir()?;
    let sessions = tempfile::tempdir()?;
    for e in dcrs_domain::Entity::ALL {
        let from = data.join(e.file_name());
        if from.exists() {
            let to = if e == dcrs_domain::Entity::Session {
                sessions.path()
            } else {
                parents.path()
            };
            std::fs::copy(&from, to.join(e.file_name()))?;
        }
    }
    let t = Instant::now();
    let report = import_dir(db, parents.path(), &options(), |_| {}).await?;
    anyhow::ensure!(
        report.committed,
        "parents rejected: {:?}",
        report.rejections.first()
    );
    let parents_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = import_dir(db, sessions.path(), &options(), |_| {}).await?;
    anyhow::ensure!(
        report.committed,
        "sessions rejected: {:?}",
        report.rejections.first()
    );
    Ok((parents_s, t.elapsed().as_secs_f64()))
}

/// The raw loaders' tables: the session file's columns, no validation. `narrow` has the
/// key and the episode index only (the first runs' baseline); `indexed` has the same
/// indexes as the system's `sessions` table, on the file's columns: the reference key,
/// the episode index and the reports' index by date, attendance and episode. (The
/// system's table also has a key on its integer id, which grows in order and costs
/// little, and an index of records entered in the application, which an import never
/// enters.)
fn raw_table(name: &str) -> String {
    let mut sql = format!(
        "CREATE TABLE {name} (session_ref TEXT NOT NULL, service_ref TEXT NOT NULL, \
         episode_ref TEXT NOT NULL, worker_ref TEXT NOT NULL, held_on TEXT NOT NULL, duration_min BIGINT NOT NULL, \
         mode TEXT NOT NULL, venue TEXT NOT NULL, purpose TEXT NOT NULL, attended TEXT NOT NULL, \
         PRIMARY KEY (service_ref, session_ref)); \
         CREATE INDEX {name}_episode ON {name} (service_ref, episode_ref);"
    );
    if name.starts_with("indexed") {
        sql.push_str(&format!(
            " CREATE INDEX {name}_held ON {name} (service_ref, held_on, attended, episode_ref);"
        ));
    }
    sql
}

/// `sqlite3 .import` into a fresh database with the page cache the system's own
/// connections have (64 MB; the program's default of 2 MB made the indexed load three
/// times slower at a million rows).
fn sqlite_raw(dir: &Path, csv: &Path, table: &str) -> anyhow::Result<f64> {
    let db = dir.join(format!("{table}.db"));
    let script = format!(
        ".output /dev/null\nPRAGMA journal_mode=WAL;\nPRAGMA cache_size=-65536;\n.output\n{}\n.mode csv\n.import --skip 1 {} {table}\n",
        raw_table(table),
        csv.display()
    );
    let t = Instant::now();
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(".read /dev/stdin")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(script.as_bytes())?;
            child.wait_with_output()
        })?;
    anyhow::ensure!(out.status.success(), "sqlite3 failed");
    Ok(t.elapsed().as_secs_f64())
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-c")
        .arg(sql)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn postgres_raw(url: &str, csv: &Path, table: &str) -> anyhow::Result<f64> {
    psql(url, &raw_table(table))?;
    let t = Instant::now();
    psql(
        url,
        &format!(
            "\\copy {table} FROM '{}' WITH (FORMAT csv, HEADER true)",
            csv.display()
        ),
    )?;
    Ok(t.elapsed().as_secs_f64())
}

/// Creates a database for this run; refuses one that already exists, as it may hold
/// someone's data.
fn fresh_postgres(base: &str, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {name:?}: use lower-case letters, digits and _"
    );
    let out = Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-tA", "-c"])
        .arg(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "database {name} already exists: the benchmark only uses databases it creates; drop it yourself or choose another name (--db, --raw-db)"
    );
    psql(
        &format!("{base}/postgres"),
        &format!("CREATE DATABASE {name}"),
    )?;
    Ok(format!("{base}/{name}"))
}

/// Drops a database this run created.
fn drop_created(base: &str, name: &str) -> anyhow::Result<()> {
    psql(
        &format!("{base}/postgres"),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
}

struct Args {
    sessions: usize,
    db: String,
    raw_db: String,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        sessions: 1_000_000,
        db: "dcrs_bench".into(),
        raw_db: "dcrs_bench_raw".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--db" => {
                a.db = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--db needs a name"))?
            }
            "--raw-db" => {
                a.raw_db = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--raw-db needs a name"))?
            }
            n => {
                a.sessions = n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("unknown argument {n}"))?
            }
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let sessions = a.sessions;
    let pg_base = std::env::var("DCRS_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    std::fs::create_dir(&data)?;
    let t = Instant::now();
    write_dataset(&data, sessions)?;
    let csv = data.join("sessions.csv");
    println!(
        "dataset: {sessions} sessions, {} clients/referrals/episodes, written in {:.1} s",
        sessions / SESSIONS_PER_EPISODE,
        t.elapsed().as_secs_f64()
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    // `DCRS_BENCH_ONLY=sqlite` or `postgres` runs one backend (for profiling).
    let only = std::env::var("DCRS_BENCH_ONLY").unwrap_or_default();
    let run_lite = only.is_empty() || only == "sqlite";
    let run_pg = only.is_empty() || only == "postgres";
    let mut dbs: Vec<(&str, Database)> = Vec::new();

    // SQLite.
    if run_lite {
        let narrow = sqlite_raw(work.path(), &csv, "narrow")?;
        let raw_before = sqlite_raw(work.path(), &csv, "indexed")?;
        let lite = Database::connect(&format!(
            "sqlite://{}",
            work.path().join("dcrs.db").display()
        ))
        .await?;
        let (parents, ours) = dcrs_import(&lite, &data).await?;
        let raw_after = sqlite_raw(work.path(), &csv, "indexed_again")?;
        let raw_sqlite = (raw_before + raw_after) / 2.0;
        println!(
            "SQLite     sqlite3 .import of sessions.csv: {raw_sqlite:>7.1} s  (same indexes as sessions: {raw_before:.1} s before dcrs, {raw_after:.1} s after; {narrow:.1} s with the key and episode index only)"
        );
        println!(
            "SQLite     dcrs import of sessions.csv:     {ours:>7.1} s  ({:.0} rows/s; ratio to .import {:.2}x; {:.2}x the narrow table)",
            sessions as f64 / ours,
            ours / raw_sqlite,
            ours / narrow
        );
        println!(
            "SQLite     dcrs import of the parents:      {parents:>7.1} s  (clients, referrals, episodes)"
        );
        println!("           peak memory so far: {:.0} MB", peak_rss_mb());
        dbs.push(("SQLite", lite));
    }

    // PostgreSQL.
    if run_pg {
        let raw_url = fresh_postgres(&pg_base, &a.raw_db)?;
        let narrow = postgres_raw(&raw_url, &csv, "narrow")?;
        let raw_before = postgres_raw(&raw_url, &csv, "indexed")?;
        let pg_url = fresh_postgres(&pg_base, &a.db)?;
        let pg = Database::connect(&pg_url).await?;
        let (parents, ours) = dcrs_import(&pg, &data).await?;
        let raw_after = postgres_raw(&raw_url, &csv, "indexed_again")?;
        drop_created(&pg_base, &a.raw_db)?;
        let raw_pg = (raw_before + raw_after) / 2.0;
        println!(
            "PostgreSQL COPY of sessions.csv:            {raw_pg:>7.1} s  (same indexes as sessions: {raw_before:.1} s before dcrs, {raw_after:.1} s after; {narrow:.1} s with the key and episode index only)"
        );
        println!(
            "PostgreSQL dcrs import of sessions.csv:     {ours:>7.1} s  ({:.0} rows/s; ratio to COPY {:.2}x; {:.2}x the narrow table)",
            sessions as f64 / ours,
            ours / raw_pg,
            ours / narrow
        );
        println!("PostgreSQL dcrs import of the parents:      {parents:>7.1} s");
        println!("           peak memory so far: {:.0} MB", peak_rss_mb());
        dbs.push(("PostgreSQL", pg));
    }

    // Postcode lookups, as a client write does them.
    let refdata = std::env::var_os("DCRS_REFDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "../shared/data".into());
    if std::env::var_os("DCRS_BENCH_NO_REFDATA").is_some() {
        println!("(DCRS_BENCH_NO_REFDATA set; postcode lookups not measured)");
    } else if refdata.join("postcode").is_dir() {
        for (name, db) in &dbs {
            let t = Instant::now();
            dcrs_refdata::load(
                db,
                &refdata,
                &dcrs_refdata::LoadOptions {
                    actor: "benchmark".into(),
                    ..Default::default()
                },
            )
            .await?;
            let load_s = t.elapsed().as_secs_f64();
            let codes: Vec<String> =
                sqlx::query_scalar("SELECT pcds FROM ref_postcodes ORDER BY pcds")
                    .fetch_all(db.pool())
                    .await?;
            let mut r = Lcg(7);
            let n = 10_000;
            let t = Instant::now();
            for _ in 0..n {
                let pc = &codes[r.next(codes.len() as u64) as usize];
                let _: Option<(String, i64)> = sqlx::query_as(
                    "SELECT p.lsoa11cd, i.imd_quintile FROM ref_postcodes p JOIN ref_lsoa11_imd i \
                     ON i.lsoa11cd = p.lsoa11cd AND i.year = 2019 WHERE p.pcds = $1",
                )
                .bind(pc.clone())
                .fetch_optional(db.pool())
                .await?;
            }
            let per = t.elapsed().as_secs_f64() / n as f64 * 1000.0;
            println!(
                "{name:<10} reference data load: {load_s:.1} s; postcode → LSOA and quintile lookup: {per:.3} ms each ({n} random postcodes)"
            );
        }
    } else {
        println!(
            "(reference data not found at {}; postcode lookups not measured)",
            refdata.display()
        );
    }
    if run_pg {
        dbs.clear();
        drop_created(&pg_base, &a.db)?;
    }
    Ok(())
}
