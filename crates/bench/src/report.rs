//! Times `dcrs report pack` as a whole process (start, connect, every query, disclosure
//! control of every document, writing the JSON) on each database given, several runs
//! each, beside DuckDB computing the same counts from a Parquet export in the same run,
//! and prints the figures. Not a test; not run in CI.
//!
//! ```sh
//! cargo build --release -p dcrs-cli -p dcrs-bench
//! DCRS_BENCH_PARQUET=/tmp/bench/parquet \
//!   target/release/dcrs-bench-report 2010-11Q3 sqlite:///tmp/m1.db postgres://postgres@127.0.0.1/m1
//! ```
//!
//! The first argument is the quarter; the rest are database addresses holding the same
//! deployment (load one with `dcrs demo --clients 1000000`). Each run reports every
//! service plus all services (`--each-service`), twice: counting everything afresh
//! (`--fresh`), and as a report normally runs, reusing the counts kept for services
//! that have not changed since the last report of the quarter. With
//! `DCRS_BENCH_PARQUET` set to a directory made by `crates/bench/duckdb/convert.py`, the
//! baseline is `crates/bench/duckdb/pack.py` on it (Python with the duckdb package).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const RUNS: usize = 3;

fn dcrs() -> PathBuf {
    let me = std::env::current_exe().expect("the benchmark knows where it is");
    me.with_file_name("dcrs")
}

/// Wall-clock seconds of each run of `command`, sorted.
fn time(mut command: impl FnMut() -> Command) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = command().stdout(std::process::Stdio::null()).status()?;
        anyhow::ensure!(status.success(), "a benchmarked command failed");
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn print(what: &str, times: &[f64], baseline: Option<f64>) {
    let median = times[RUNS / 2];
    let ratio = baseline.map_or(String::new(), |b| format!("  ({:.2}x DuckDB)", median / b));
    println!(
        "{what:<34} min {:>6.2} s  median {median:>6.2} s{ratio}",
        times[0]
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (period, urls) = args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("usage: dcrs-bench-report QUARTER DATABASE_URL..."))?;
    let out = tempfile::tempdir()?;
    println!("report pack, every service plus all services, {period}, {RUNS} runs each");
    let mut baseline = None;
    if let Ok(parquet) = std::env::var("DCRS_BENCH_PARQUET") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb/pack.py");
        let times = time(|| {
            let mut c = Command::new("python3");
            c.arg(&script)
                .arg(&parquet)
                .arg(period)
                .arg(out.path().join("duckdb.json"));
            c
        })?;
        print("DuckDB on Parquet (baseline)", &times, None);
        baseline = Some(times[RUNS / 2]);
    } else {
        println!("(no DuckDB baseline: set DCRS_BENCH_PARQUET)");
    }
    for url in urls {
        let name = url.split(':').next().unwrap_or(url);
        for (label, fresh) in [("counted afresh", true), ("kept counts reused", false)] {
            let times = time(|| {
                let mut c = Command::new(dcrs());
                c.args(["--database", url, "report", "pack", "--each-service"])
                    .args(["--period", period])
                    .arg("--out")
                    .arg(out.path().join("pack.json"));
                if fresh {
                    c.arg("--fresh");
                }
                c
            })?;
            print(&format!("{name}: dcrs, {label}"), &times, baseline);
        }
    }
    Ok(())
}
