//! What SQLite's `synchronous = FULL` costs a commit against `NORMAL` (not a test; not
//! in CI): the web application's writes are one short transaction each, so this is the
//! price of knowing that a save acknowledged to a health trainer survives a power cut.
//!
//! `dcrs-bench-sync [COMMITS] [DIR]`: in a fresh WAL-mode database under DIR (default
//! the system's temporary folder, which may be memory rather than disk: give a folder on
//! the disk the database will use), alternating rounds of COMMITS single-row
//! transactions (default 500) under each setting; prints milliseconds per commit and
//! the ratio of FULL to NORMAL, measured in the same run.

use sqlx::{ConnectOptions, Connection, Executor};
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let commits: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().join("sync.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await?;
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .await?;
    let (mut normal, mut full) = (Vec::<f64>::new(), Vec::<f64>::new());
    for round in 0..6 {
        for (setting, out) in [("NORMAL", &mut normal), ("FULL", &mut full)] {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "PRAGMA synchronous = {setting}"
            )))
            .await?;
            let started = Instant::now();
            for i in 0..commits {
                let mut tx = conn.begin().await?;
                sqlx::query("INSERT INTO t (body) VALUES ($1)")
                    .bind(format!("round {round} row {i}"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            out.push(started.elapsed().as_secs_f64() * 1000.0 / commits as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let (n, f) = (median(&mut normal), median(&mut full));
    println!("{commits} commits a round, 6 rounds each, alternating; median of the rounds:");
    println!("synchronous = NORMAL  {n:.3} ms a commit");
    println!("synchronous = FULL    {f:.3} ms a commit");
    println!(
        "FULL / NORMAL         {:.2}x (+{:.3} ms a commit)",
        f / n,
        f - n
    );
    Ok(())
}
