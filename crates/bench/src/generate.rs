//! Benchmark (prints figures; not a test, not in CI): generate a national deployment of
//! N clients (default 1,000,000) with all their records, then load it into a fresh SQLite
//! database through the validated import. Prints the time and peak memory of each step
//! and, as the baseline measured in the same run, `sqlite3 .import` of the same CSV files
//! into plain tables (no checks, no indexes).
//!
//! `cargo run --release -p dcrs-bench --bin dcrs-bench-generate -- [CLIENTS] [REFDATA_DIR]`

mod common;

use chrono::NaiveDate;
use common::peak_rss_mb;
use dcrs_domain::Entity;
use dcrs_domain::rules::RuleSettings;
use dcrs_exchange::{ImportOptions, import_dir};
use dcrs_store::Database;
use dcrs_synth::{Options, Scale};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The allocator the `dcrs` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `sqlite3 .import` of every file into tables of text columns, in one process.
fn raw_import(dir: &Path, data: &Path) -> Option<f64> {
    let mut script = String::from("PRAGMA journal_mode=WAL;\n.mode csv\n");
    for e in Entity::ALL {
        script.push_str(&format!(
            ".import {} raw_{}\n",
            data.join(e.file_name()).display(),
            e.file_name().trim_end_matches(".csv")
        ));
    }
    let t = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(dir.join("raw.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::io::Write::write_all(&mut child.stdin.take()?, script.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| t.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let refdata = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    let work = tempfile::tempdir_in(".")?;
    let data = work.path().join("data");
    let scale = Scale::from_options(None, Some(clients))?.expect("a size");
    println!(
        "Generating {clients} clients in {} services (seed 1) …",
        scale.services
    );
    let t = Instant::now();
    let summary = {
        let (r, d) = (refdata.clone(), data.clone());
        tokio::task::spawn_blocking(move || {
            dcrs_synth::generate(
                &r,
                &d,
                &Options {
                    seed: 1,
                    scale: Some(scale),
                },
            )
        })
        .await??
    };
    let gen_s = t.elapsed().as_secs_f64();
    let gen_peak = peak_rss_mb();
    let rows: u64 = summary.rows.iter().map(|(_, n)| n).sum();
    let bytes: u64 = Entity::ALL
        .iter()
        .filter_map(|e| std::fs::metadata(data.join(e.file_name())).ok())
        .map(|m| m.len())
        .sum();

    let url = format!("sqlite://{}", work.path().join("bench.db").display());
    let db = Database::connect(&url).await?;
    let options = ImportOptions {
        dry_run: false,
        today: NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
        rules: RuleSettings::default(),
        actor: "bench".into(),
        only_new: false,
    };
    let t = Instant::now();
    let report = import_dir(&db, &data, &options, |_| {}).await?;
    anyhow::ensure!(
        report.committed,
        "rejected: {} rows, first {:?}",
        report.rejections.len(),
        report.rejections.first()
    );
    let load_s = t.elapsed().as_secs_f64();
    let total_peak = peak_rss_mb();
    db.close().await;
    let raw = raw_import(work.path(), &data);

    println!();
    for (e, n) in &summary.rows {
        println!("  {:<26} {n:>10}", e.file_name());
    }
    println!(
        "  {:<26} {rows:>10}  ({:.0} MB of CSV)",
        "all rows",
        bytes as f64 / 1e6
    );
    println!();
    println!("| step | seconds | rows/s | peak memory |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| generate {clients} clients | {gen_s:.1} | {:.0} | {gen_peak:.0} MB |",
        rows as f64 / gen_s
    );
    println!(
        "| validated import into SQLite | {load_s:.1} | {:.0} | {total_peak:.0} MB (whole run) |",
        rows as f64 / load_s
    );
    println!("| generate + load | {:.1} | | |", gen_s + load_s);
    match raw {
        Some(r) => println!(
            "| baseline: sqlite3 .import of the same files (no checks, no indexes) | {r:.1} | {:.0} | | \n\nvalidated import ÷ raw load: {:.1}×",
            rows as f64 / r,
            load_s / r
        ),
        None => println!("(sqlite3 not found: no baseline)"),
    }
    Ok(())
}
